//! Encryption at rest as operators meet it: `weft server` refuses to run
//! without a keyring unless told `--no-encryption`, the local tools make a
//! development keyring and say so, and `weft keys` rotates.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

mod common;

use common::{WEFT, guest, listening_address, weft};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test]
async fn weft_server_refuses_to_start_without_a_keyring_unless_told_no_encryption() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(WEFT)
        .arg("server")
        .env("WEFT_SERVER_LISTEN", "127.0.0.1:0")
        .env("WEFT_SERVER_DATA_DIR", dir.path().join("data"))
        .env("WEFT_SECURITY_AUTH", "none")
        .env_remove("WEFT_KEYRING")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("needs a keyring")
            && err.contains("weft keys init")
            && err.contains("--no-encryption"),
        "{err}"
    );
    assert!(
        !dir.path().join("data/keyring.toml").exists(),
        "no silent default"
    );

    let mut child = Command::new(WEFT)
        .args(["server", "--no-encryption"])
        .env("WEFT_SERVER_LISTEN", "127.0.0.1:0")
        .env("WEFT_SERVER_DATA_DIR", dir.path().join("data"))
        .env("WEFT_SECURITY_AUTH", "none")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    listening_address(&mut child).await;
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut said = false;
    while let Some(line) = stderr.next_line().await.unwrap() {
        if line.contains("UNENCRYPTED") {
            said = true;
            break;
        }
    }
    assert!(said, "the log says it runs unencrypted");
}

#[tokio::test]
async fn local_tools_make_a_development_keyring_once_and_keys_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let run = |id: &'static str| {
        let component = guest("payment-workflow");
        async move {
            weft(&[
                "--data-dir",
                data,
                "run",
                "--component",
                &component,
                "--type",
                "payment",
                "--id",
                id,
                "--input",
                r#"{"account":"acc-1","amount_cents":1250,"currency":"EUR"}"#,
            ])
            .await
        }
    };
    let (ok, _, err) = run("p1").await;
    assert!(ok, "{err}");
    assert!(err.contains("created a development keyring at"), "{err}");
    let (ok, _, err) = run("p2").await;
    assert!(ok, "{err}");
    assert!(
        !err.contains("created a development keyring"),
        "once: {err}"
    );

    let (ok, out, err) = weft(&["--data-dir", data, "keys", "list"]).await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "dev-1 (current)");
    let (ok, out, err) = weft(&["--data-dir", data, "keys", "rotate", "--id", "k2"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("`k2` is now current"), "{out}");
    let (ok, out, _) = weft(&["--data-dir", data, "keys", "list"]).await;
    assert!(ok);
    assert_eq!(out.trim(), "dev-1\nk2 (current)");
    // Both keys read: the run before the rotation shows, the next runs.
    let (ok, _, err) = run("p3").await;
    assert!(ok, "{err}");
    let (ok, _, err) = weft(&["--data-dir", data, "keys", "remove", "--id", "k2"]).await;
    assert!(!ok && err.contains("current"), "{err}");
    // The two runs before the rotation move to the new key; then the old
    // key can go.
    let (ok, out, err) = weft(&["--data-dir", data, "keys", "rewrap"]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("re-wrapped the data keys of 2 execution(s) with `k2`"),
        "{out}"
    );
    let (ok, _, err) = weft(&["--data-dir", data, "keys", "remove", "--id", "dev-1"]).await;
    assert!(ok, "{err}");
    let (ok, _, err) = run("p4").await;
    assert!(ok, "{err}");
}

#[tokio::test]
async fn a_rotated_keyring_is_reloaded_on_sighup_and_wraps_new_executions() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap().to_owned();
    let mut child = Command::new(WEFT)
        .args(["--data-dir", &data_arg, "dev", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let address = listening_address(&mut child).await;
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let cli = |args: Vec<String>| {
        let address = address.clone();
        async move {
            let mut all = vec!["--address".to_owned(), address];
            all.extend(args);
            let all: Vec<&str> = all.iter().map(String::as_str).collect();
            weft(&all).await
        }
    };
    let s = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let component = guest("payment-workflow");
    let (ok, _, err) = cli(s(&["component", "deploy", "--type", "payment", &component])).await;
    assert!(ok, "{err}");
    let input = r#"{"account":"acc-1","amount_cents":1250,"currency":"EUR"}"#;
    let pay = |id: &'static str| {
        let cli = &cli;
        async move {
            let (ok, _, err) = cli(s(&[
                "workflow", "execute", "--type", "payment", "--id", id, "--input", input,
            ]))
            .await;
            assert!(ok, "{err}");
            let (ok, out, err) = cli(s(&["-o", "json", "workflow", "show", id])).await;
            assert!(ok, "{err}");
            let export: serde_json::Value = serde_json::from_str(&out).unwrap();
            export["chain"]["data_key"].as_str().unwrap().to_owned()
        }
    };
    assert_eq!(pay("before").await, "wrapped:dev-1");
    let (ok, _, err) = weft(&["--data-dir", &data_arg, "keys", "rotate", "--id", "k2"]).await;
    assert!(ok, "{err}");
    let status = std::process::Command::new("kill")
        .args(["-HUP", &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    loop {
        let line = stderr
            .next_line()
            .await
            .unwrap()
            .expect("the server logs the reload");
        if line.contains("keyring") && line.contains("reloaded") {
            assert!(line.contains("`k2`"), "{line}");
            break;
        }
    }
    assert_eq!(pay("after").await, "wrapped:k2");
    // The one from before still reads, under its own key.
    let (ok, out, err) = cli(s(&["workflow", "result", "before"])).await;
    assert!(ok && out.contains("receipt"), "{out}{err}");
}
