//! Shared by the end-to-end tests: a `weft dev` process and gRPC helpers.

#![allow(dead_code)] // each test binary uses its own subset

use serde_json::Value;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tonic::transport::Channel;
use weft_api::pb;
use weft_tests::guest_path;

pub const WEFT: &str = env!("CARGO_BIN_EXE_weft");

/// A `weft dev` process, or a `weft server` one over mutual TLS.
pub struct Dev {
    pub child: Child,
    pub address: String,
    /// The client side of the server's TLS, if it speaks TLS.
    pub tls: Option<weft_api::ClientTls>,
    /// An admin API key, if the server requires keys.
    pub api_key: Option<String>,
}

impl Dev {
    pub async fn start(data_dir: &std::path::Path) -> Dev {
        let mut command = Command::new(WEFT);
        command.args([
            "--data-dir",
            data_dir.to_str().unwrap(),
            "dev",
            "--port",
            "0",
        ]);
        Self::spawn(command, None, None).await
    }

    /// `weft server` on a free loopback port over mutual TLS, with
    /// certificates from `weft certs dev` in `data_dir/certs`, requiring
    /// API keys (its default): an admin key is made first, offline, as an
    /// operator makes the first one.
    pub async fn start_mtls(data_dir: &std::path::Path) -> Dev {
        let certs = data_dir.join("certs");
        let (ok, _, err) = weft(&["certs", "dev", "--out", certs.to_str().unwrap()]).await;
        assert!(ok, "{err}");
        let api_key = offline_key(data_dir, "test-admin", &["*:admin"]).await;
        // A production keyring, as an operator makes one.
        let keyring = data_dir.join("server-keyring.toml");
        let (ok, _, err) = weft(&["keys", "init", "--keyring", keyring.to_str().unwrap()]).await;
        assert!(ok, "{err}");
        let mut command = Command::new(WEFT);
        command
            .arg("server")
            .env("WEFT_SERVER_LISTEN", "127.0.0.1:0")
            .env("WEFT_SERVER_DATA_DIR", data_dir)
            .env("WEFT_SECURITY_KEYRING", &keyring)
            .env("WEFT_SECURITY_TLS_CERT", certs.join("server.pem"))
            .env("WEFT_SECURITY_TLS_KEY", certs.join("server-key.pem"))
            .env("WEFT_SECURITY_TLS_CLIENT_CA", certs.join("ca.pem"));
        let tls = weft_api::ClientTls {
            ca: Some(certs.join("ca.pem")),
            cert: Some(certs.join("client.pem")),
            key: Some(certs.join("client-key.pem")),
            server_name: None,
        };
        Self::spawn(command, Some(tls), Some(api_key)).await
    }

    async fn spawn(
        mut command: Command,
        tls: Option<weft_api::ClientTls>,
        api_key: Option<String>,
    ) -> Dev {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn weft");
        let address = listening_address(&mut child).await;
        Dev {
            child,
            address,
            tls,
            api_key,
        }
    }

    /// A connection to the server (over its TLS, if any).
    pub async fn channel(&self) -> Channel {
        match &self.tls {
            Some(tls) => tls.connect(&self.address).await.unwrap(),
            None => Channel::from_shared(self.address.clone())
                .unwrap()
                .connect()
                .await
                .unwrap(),
        }
    }

    /// A client sending the admin key (if any).
    pub async fn client(&self) -> weft_api::Client {
        self.client_with(self.api_key.as_deref()).await
    }

    /// A client sending `credential` (an API key or a JWT; none: `None`).
    pub async fn client_with(&self, credential: Option<&str>) -> weft_api::Client {
        let bearer = weft_api::Bearer::new(credential).unwrap();
        weft_api::client(self.channel().await, bearer)
    }

    /// The CLI's TLS flags for this server (none for plaintext).
    pub fn tls_args(&self) -> Vec<String> {
        let Some(tls) = &self.tls else {
            return Vec::new();
        };
        let mut args = Vec::new();
        for (flag, path) in [
            ("--tls-ca", &tls.ca),
            ("--tls-cert", &tls.cert),
            ("--tls-key", &tls.key),
        ] {
            if let Some(path) = path {
                args.push(flag.to_owned());
                args.push(path.to_str().unwrap().to_owned());
            }
        }
        args
    }

    /// The CLI's connection flags for this server: address, TLS, key.
    pub fn connection_args(&self) -> Vec<String> {
        let mut args = vec!["--address".to_owned(), self.address.clone()];
        args.extend(self.tls_args());
        if let Some(key) = &self.api_key {
            args.extend(["--api-key".to_owned(), key.clone()]);
        }
        args
    }

    /// Run the CLI against this server; (success, stdout, stderr).
    pub async fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let connection = self.connection_args();
        let connection: Vec<&str> = connection.iter().map(String::as_str).collect();
        weft(&[&connection, args].concat()).await
    }

    /// SIGTERM, then the exit status.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().unwrap();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().await.unwrap()
    }
}

/// The address a `weft dev` or `weft server` child prints in its first
/// line ("weft dev listening on http://127.0.0.1:PORT (...)").
pub async fn listening_address(child: &mut Child) -> String {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines
        .next_line()
        .await
        .unwrap()
        .expect("the server printed nothing");
    line.split_whitespace()
        .find(|w| w.starts_with("http://") || w.starts_with("https://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned()
}

/// Deploy the test guest `guest_name` as `workflow_type` with the CLI.
pub async fn deploy(dev: &Dev, workflow_type: &str, guest_name: &str) {
    let (ok, out, err) = dev
        .cli(&[
            "component",
            "deploy",
            "--type",
            workflow_type,
            &guest(guest_name),
        ])
        .await;
    assert!(ok, "{out}{err}");
}

/// The history of `id` (default namespace), as the API returns it.
pub async fn history(client: &mut weft_api::Client, id: &str) -> Vec<pb::HistoryEvent> {
    client
        .get_history(pb::GetHistoryRequest {
            workflow_id: id.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events
}

/// An API key with `grants`, written by `weft auth key create --offline`
/// into `data_dir` (no server may have it open).
pub async fn offline_key(data_dir: &std::path::Path, name: &str, grants: &[&str]) -> String {
    let mut args = vec![
        "--data-dir",
        data_dir.to_str().unwrap(),
        "auth",
        "key",
        "create",
        "--offline",
        "--name",
        name,
    ];
    for grant in grants {
        args.extend(["--role", grant]);
    }
    let (ok, out, err) = weft(&args).await;
    assert!(ok, "{err}");
    assert!(err.contains("shown only now"), "{err}");
    let key = out.trim().to_owned();
    assert!(key.starts_with("weft_"), "{out}");
    key
}

/// Run `weft` with `args`: success, stdout, stderr.
pub async fn weft(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(WEFT).args(args).output().await.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn guest(name: &str) -> String {
    guest_path(name).to_str().unwrap().to_owned()
}

pub fn start(id: &str, workflow_type: &str, input: Value) -> pb::StartWorkflowRequest {
    pb::StartWorkflowRequest {
        workflow_id: id.into(),
        workflow_type: workflow_type.into(),
        input: serde_json::to_vec(&input).unwrap(),
        ..Default::default()
    }
}

pub async fn completed(client: &mut weft_api::Client, id: &str) -> Value {
    let r = client
        .get_result(pb::GetResultRequest {
            workflow_id: id.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    match r.outcome {
        Some(pb::get_result_response::Outcome::Completed(v)) => serde_json::from_slice(&v).unwrap(),
        other => panic!("{id} did not complete: {other:?}"),
    }
}

/// Follow `id`'s history live (long-poll) until an `event` appears;
/// returns the run id.
pub async fn wait_for_event(client: &mut weft_api::Client, id: &str, event: &str) -> String {
    let mut from = 0;
    loop {
        let page = client
            .get_history(pb::GetHistoryRequest {
                workflow_id: id.into(),
                from_index: from,
                wait_new_events: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        from = page.next_index;
        if page.events.iter().any(|e| e.event_type == event) {
            return page.run_id;
        }
        assert!(!page.closed, "{id} closed without recording {event}");
    }
}

/// A keyring for a `weft server` under `dir` (made once).
pub fn keyring(dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("server-keyring.toml");
    if !path.exists() {
        weft_protect::Keyring::generate("k1")
            .unwrap()
            .save(&path)
            .unwrap();
    }
    path
}
