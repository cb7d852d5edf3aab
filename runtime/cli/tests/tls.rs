//! TLS and mutual TLS on the gRPC API, with real handshakes: `weft server`
//! as a process with certificates from `weft certs dev`, and the `weft`
//! CLI as the client.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

mod common;

use common::{WEFT, keyring, listening_address, weft};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, Command};

/// A set of certificates from `weft certs dev` in `dir/name`.
async fn certs(dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    let (ok, _, err) = weft(&["certs", "dev", "--out", out.to_str().unwrap()]).await;
    assert!(ok, "{err}");
    out
}

/// A `weft server` process configured by `env`.
struct Server {
    child: Child,
    address: String,
    stderr: Lines<BufReader<ChildStderr>>,
}

impl Server {
    async fn start(data: &Path, args: &[&str], env: &[(&str, &Path)]) -> Server {
        let mut command = Command::new(WEFT);
        command
            .arg("server")
            .args(args)
            .env("WEFT_SERVER_LISTEN", "127.0.0.1:0")
            .env("WEFT_SERVER_DATA_DIR", data)
            .env("WEFT_SECURITY_KEYRING", keyring(data))
            // These tests are about the handshake; credentials are auth.rs's.
            .env("WEFT_SECURITY_AUTH", "none")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let address = listening_address(&mut child).await;
        Server {
            child,
            address,
            stderr,
        }
    }

    /// `weft workflow list` against this server with `tls` options.
    async fn list(&self, tls: &[(&str, &Path)]) -> (bool, String) {
        let mut args = vec!["--address".to_owned(), self.address.clone()];
        for (flag, path) in tls {
            args.push((*flag).to_owned());
            args.push(path.to_str().unwrap().to_owned());
        }
        args.extend(["workflow".to_owned(), "list".to_owned()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, _, err) = weft(&args).await;
        (ok, err)
    }

    /// Wait until the server logs a line containing `text`.
    async fn logged(&mut self, text: &str) {
        while let Some(line) = self.stderr.next_line().await.unwrap() {
            if line.contains(text) {
                return;
            }
        }
        panic!("the server ended without logging {text:?}");
    }
}

fn tls_env(set: &Path, client_ca: bool) -> Vec<(&'static str, PathBuf)> {
    let mut env = vec![
        ("WEFT_SECURITY_TLS_CERT", set.join("server.pem")),
        ("WEFT_SECURITY_TLS_KEY", set.join("server-key.pem")),
    ];
    if client_ca {
        env.push(("WEFT_SECURITY_TLS_CLIENT_CA", set.join("ca.pem")));
    }
    env
}

fn refs<'a>(env: &'a [(&'static str, PathBuf)]) -> Vec<(&'static str, &'a Path)> {
    env.iter().map(|(k, v)| (*k, v.as_path())).collect()
}

#[tokio::test]
async fn mutual_tls_lets_in_only_clients_with_a_certificate_of_its_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ours = certs(dir.path(), "ours").await;
    let theirs = certs(dir.path(), "theirs").await;
    let env = tls_env(&ours, true);
    let server = Server::start(&dir.path().join("data"), &[], &refs(&env)).await;
    assert!(server.address.starts_with("https://"), "{}", server.address);

    let ca = ours.join("ca.pem");
    let (cert, key) = (ours.join("client.pem"), ours.join("client-key.pem"));
    let (ok, err) = server
        .list(&[
            ("--tls-ca", &ca),
            ("--tls-cert", &cert),
            ("--tls-key", &key),
        ])
        .await;
    assert!(ok, "a client of our CA gets in: {err}");

    // No client certificate: the server refuses the handshake.
    // (Its reason varies under TLS 1.3: the alert, a closed connection or
    // a broken pipe, depending on which side gets there first.)
    let (ok, _) = server.list(&[("--tls-ca", &ca)]).await;
    assert!(!ok, "no client certificate");
    // A client certificate of another CA: refused too.
    let (ok, _) = server
        .list(&[
            ("--tls-ca", &ca),
            ("--tls-cert", &theirs.join("client.pem")),
            ("--tls-key", &theirs.join("client-key.pem")),
        ])
        .await;
    assert!(!ok, "a client certificate of another CA");
    // A client that trusts another CA refuses the server's certificate.
    let (ok, err) = server
        .list(&[
            ("--tls-ca", &theirs.join("ca.pem")),
            ("--tls-cert", &cert),
            ("--tls-key", &key),
        ])
        .await;
    assert!(!ok, "the wrong CA");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    // Plaintext to a TLS port gets nowhere.
    let plain = Server {
        address: server.address.replace("https://", "http://"),
        ..server
    };
    let (ok, _) = plain.list(&[]).await;
    assert!(!ok, "plaintext");
}

#[tokio::test]
async fn a_rotated_certificate_is_served_after_sighup_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let old = certs(dir.path(), "old").await;
    let new = certs(dir.path(), "new").await;
    // The server reads its certificate from files that are rotated in place.
    let live = dir.path().join("live");
    std::fs::create_dir_all(&live).unwrap();
    for file in ["server.pem", "server-key.pem"] {
        std::fs::copy(old.join(file), live.join(file)).unwrap();
    }
    let env = tls_env(&live, false);
    let mut server = Server::start(&dir.path().join("data"), &[], &refs(&env)).await;
    let (ok, err) = server.list(&[("--tls-ca", &old.join("ca.pem"))]).await;
    assert!(ok, "{err}");

    for file in ["server.pem", "server-key.pem"] {
        std::fs::copy(new.join(file), live.join(file)).unwrap();
    }
    let pid = server.child.id().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    server.logged("TLS certificates reloaded").await;

    // The same process now serves the new certificate.
    let (ok, err) = server.list(&[("--tls-ca", &new.join("ca.pem"))]).await;
    assert!(ok, "the new certificate: {err}");
    let (ok, _) = server.list(&[("--tls-ca", &old.join("ca.pem"))]).await;
    assert!(!ok, "the old CA no longer matches");
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "never restarted"
    );

    // A broken file on reload keeps the current certificate in force.
    std::fs::write(live.join("server.pem"), "not a certificate").unwrap();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    server.logged("the current certificates stay").await;
    let (ok, err) = server.list(&[("--tls-ca", &new.join("ca.pem"))]).await;
    assert!(ok, "{err}");
}

#[tokio::test]
async fn weft_server_refuses_plaintext_off_loopback_unless_told_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(WEFT)
        .arg("server")
        .env("WEFT_SERVER_LISTEN", "0.0.0.0:0")
        .env("WEFT_SERVER_DATA_DIR", dir.path().join("data"))
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to listen on 0.0.0.0"), "{err}");
    assert!(
        err.contains("weft certs dev") && err.contains("--insecure"),
        "{err}"
    );

    // Told so, it listens, and says it in its first line and its log.
    let mut command = Command::new(WEFT);
    command
        .args(["server", "--insecure"])
        .env("WEFT_SERVER_LISTEN", "0.0.0.0:0")
        .env("WEFT_SERVER_DATA_DIR", dir.path().join("data"))
        .env("WEFT_SECURITY_KEYRING", keyring(dir.path()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = stdout.next_line().await.unwrap().unwrap();
    assert!(line.contains("PLAINTEXT on the network"), "{line}");
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut warned = false;
    while let Some(line) = stderr.next_line().await.unwrap() {
        if line.contains("PLAINTEXT (--insecure)") {
            warned = true;
            break;
        }
    }
    assert!(warned);
    child.kill().await.unwrap();
}
