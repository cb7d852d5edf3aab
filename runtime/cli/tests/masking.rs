//! Masking end to end: a `weft server` requiring API keys, workflow types
//! masked by each source (a component's `sensitive!` declaration, deploy
//! flags, the config file), executions carrying a marker in their masked
//! fields, and the CLI's output for callers with and without `unmask`,
//! and the server's log, searched for it.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

mod common;

use common::{Dev, WEFT, guest, listening_address, offline_key, weft};
use std::process::Stdio;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// In the masked fields of every execution, and nowhere else.
const MARK: &str = "ADA-LOVELACE-7731";

/// `weft server` on a free loopback port with `config`, requiring API
/// keys, its log (stderr, at debug for weft's crates and trace for guest
/// logs) read into the returned task.
async fn server(dir: &std::path::Path, config: &str) -> (Dev, tokio::task::JoinHandle<String>) {
    let config_path = dir.join("weft.toml");
    std::fs::write(&config_path, config).unwrap();
    let keyring = dir.join("server-keyring.toml");
    weft_protect::Keyring::generate("k1")
        .unwrap()
        .save(&keyring)
        .unwrap();
    let mut child = Command::new(WEFT)
        .args(["server", "--config", config_path.to_str().unwrap()])
        .env("WEFT_SERVER_LISTEN", "127.0.0.1:0")
        .env("WEFT_SERVER_DATA_DIR", dir)
        .env("WEFT_SECURITY_KEYRING", &keyring)
        .env(
            "RUST_LOG",
            "info,weft=debug,weft_server=debug,weft_api=debug,weft_engine=trace",
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn weft server");
    let mut stderr = child.stderr.take().unwrap();
    let log = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let address = listening_address(&mut child).await;
    let dev = Dev {
        child,
        address,
        tls: None,
        api_key: None,
    };
    (dev, log)
}

/// Run the CLI against `dev` with `key`; its stdout and stderr together,
/// and whether it succeeded.
async fn cli(dev: &Dev, key: &str, args: &[&str]) -> (bool, String) {
    let base = ["--address", &dev.address, "--api-key", key];
    let (ok, out, err) = weft(&[&base[..], args].concat()).await;
    (ok, format!("{out}{err}"))
}

/// Everything a caller can read about the executions, through the CLI.
async fn everything(dev: &Dev, key: &str) -> String {
    let mut all = String::new();
    for id in ["screen-ok", "screen-rejected", "pay-1"] {
        for args in [
            vec!["workflow", "show", id],
            vec!["workflow", "show", id, "--output", "json"],
            vec!["workflow", "describe", id],
            vec!["workflow", "describe", id, "--output", "json"],
            vec!["workflow", "result", id],
        ] {
            let (_, out) = cli(dev, key, &args).await;
            all.push_str(&format!("$ weft {}\n{out}\n", args.join(" ")));
        }
        // The export holds payloads as bytes: decoded, as `weft replay`
        // reads them, and shown as text.
        let (ok, export) = cli(dev, key, &["workflow", "show", id, "--output", "json"]).await;
        assert!(ok, "{export}");
        let export: serde_json::Value = serde_json::from_str(&export).unwrap();
        let events: Vec<weft_core::Event> =
            serde_json::from_value(export["events"].clone()).unwrap();
        all.push_str(&weft_core::render_history(&events));
    }
    for args in [
        vec!["workflow", "query", "screen-ok", "--name", "applicant"],
        vec!["workflow", "list"],
        vec!["workflow", "list", "--output", "json"],
    ] {
        let (ok, out) = cli(dev, key, &args).await;
        assert!(ok, "{out}");
        all.push_str(&format!("$ weft {}\n{out}\n", args.join(" ")));
    }
    all
}

#[tokio::test]
async fn masked_fields_reach_only_callers_with_unmask_and_never_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let admin = offline_key(dir.path(), "admin", &["*:admin"]).await;
    let reader = offline_key(dir.path(), "reader", &["default:reader"]).await;
    let auditor = offline_key(dir.path(), "auditor", &["default:reader", "default:unmask"]).await;
    // The config masks the payment's result; the deploy below, its input.
    let (dev, log) = server(
        dir.path(),
        "[[mask]]\nworkflow_type = \"payment\"\nrules = [\"result=$.holder\"]\n",
    )
    .await;

    // `screening` declares `$.applicant` itself (`sensitive!`).
    let (ok, out) = cli(
        &dev,
        &admin,
        &[
            "component",
            "deploy",
            "--type",
            "screening",
            &guest("guest-masked"),
        ],
    )
    .await;
    assert!(ok, "{out}");
    assert!(out.contains("masked     input=$.applicant"), "{out}");
    let (ok, out) = cli(
        &dev,
        &admin,
        &[
            "component",
            "deploy",
            "--type",
            "payment",
            &guest("payment-workflow"),
            "--mask",
            "$.account",
            "--mask-activity",
            "validate_account=$",
        ],
    )
    .await;
    assert!(ok, "{out}");
    assert!(out.contains("masked     result=$.holder"), "{out}");
    // A bad rule is refused before anything is deployed, naming it.
    let (ok, out) = cli(
        &dev,
        &admin,
        &[
            "component",
            "deploy",
            "--type",
            "other",
            &guest("payment-workflow"),
            "--mask",
            "$..account",
        ],
    )
    .await;
    assert!(!ok && out.contains("$..account"), "{out}");

    let applicant = format!(r#"{{"applicant": "{MARK}", "amount": 5}}"#);
    let nothing = format!(r#"{{"applicant": "{MARK}", "amount": 0}}"#);
    let payment = format!(r#"{{"account": "{MARK}", "amount_cents": 100, "currency": "EUR"}}"#);
    for (id, workflow_type, input) in [
        ("screen-ok", "screening", &applicant),
        ("screen-rejected", "screening", &nothing),
        ("pay-1", "payment", &payment),
    ] {
        let (ok, out) = cli(
            &dev,
            &admin,
            &[
                "workflow",
                "start",
                "--type",
                workflow_type,
                "--id",
                id,
                "--input",
                input,
            ],
        )
        .await;
        assert!(ok, "{out}");
        // Waits for the close (a failure is an unsuccessful exit).
        cli(&dev, &admin, &["workflow", "result", id]).await;
    }

    // Without `unmask` (an admin too): no marker anywhere, and the masks
    // are there to see.
    for key in [&admin, &reader] {
        let seen = everything(&dev, key).await;
        assert!(!seen.contains(MARK), "{seen}");
        assert!(seen.contains("***"), "{seen}");
        // What is not masked still shows.
        assert!(seen.contains("asked for nothing"), "{seen}");
        assert!(seen.contains("EUR"), "{seen}");
    }
    // With it: the real values, in the history, the export, the memo, the
    // query's answer, the failure and the result.
    let seen = everything(&dev, &auditor).await;
    for wanted in [
        format!("applicant={MARK}"),
        format!("{MARK} asked for nothing"),
        format!("Holder of {MARK}"),
        format!(r#""applicant":"{MARK}""#),
        format!(r#"input={{"account":"{MARK}""#),
    ] {
        assert!(seen.contains(&wanted), "{wanted} not in\n{seen}");
    }

    let status = dev.terminate().await;
    assert!(status.success(), "{status:?}");
    let log = log.await.unwrap();
    assert!(!log.contains(MARK), "{log}");
    // The guest's log line was written, masked.
    assert!(log.contains("screening ***"), "{log}");
}
