//! Tamper evidence and erasure as an auditor and an operator meet them:
//! `weft audit verify` online, offline and on an exported file (edited by
//! hand, with a forged signature, against the wrong key), `weft audit
//! pubkey`, and `weft workflow erase`.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

mod common;

use common::{Dev, deploy, weft};
use serde_json::Value;

const MARKER: &str = "acct-DE89-Ada-Lovelace";

async fn run_payment(dev: &Dev, id: &str) {
    let input = format!(r#"{{"account":"{MARKER}","amount_cents":1250,"currency":"EUR"}}"#);
    let (ok, _, err) = dev
        .cli(&[
            "workflow", "start", "--type", "payment", "--id", id, "--input", &input,
        ])
        .await;
    assert!(ok, "{err}");
    let (ok, _, err) = dev.cli(&["workflow", "result", id]).await;
    assert!(ok, "{err}");
}

#[tokio::test]
async fn histories_verify_online_offline_and_exported_and_every_forgery_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    let dev = Dev::start(&data).await;
    deploy(&dev, "payment", "payment-workflow").await;
    run_payment(&dev, "pay-1").await;
    run_payment(&dev, "pay-2").await;
    let (ok, out, err) = dev.cli(&["audit", "verify", "pay-1"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("pay-1") && out.contains("ok:"), "{out}");

    // Erasure: the payloads are gone, the skeleton stays and verifies, and
    // its code cannot be run against it again.
    let (ok, _, err) = dev
        .cli(&["workflow", "erase", "pay-2", "--reason", "GDPR request 17"])
        .await;
    assert!(ok, "{err}");
    let (ok, shown, err) = dev.cli(&["workflow", "show", "pay-2"]).await;
    assert!(ok, "{err}");
    assert!(
        shown.contains("<erased>") && shown.contains("ExecutionCompleted"),
        "{shown}"
    );
    assert!(!shown.contains(MARKER), "{shown}");
    let (ok, _, err) = dev
        .cli(&["workflow", "reset", "pay-2", "--event", "2"])
        .await;
    assert!(!ok && err.contains("was erased"), "{err}");
    let (ok, out, err) = dev.cli(&["audit", "verify", "pay-2"]).await;
    assert!(ok && out.contains("ok:"), "{out}{err}");
    let (ok, shown, _) = dev.cli(&["workflow", "show", "pay-1"]).await;
    assert!(
        ok && shown.contains(MARKER),
        "the other execution is untouched: {shown}"
    );
    // At shutdown the server signs what closed.
    assert!(dev.terminate().await.success());

    let (ok, key, err) = weft(&["--data-dir", data_arg, "audit", "pubkey", "--offline"]).await;
    assert!(ok, "{err}");
    let key = key.trim().to_owned();
    assert_eq!(key.len(), 64, "{key}");
    let (ok, out, err) = weft(&[
        "--data-dir",
        data_arg,
        "audit",
        "verify",
        "--offline",
        "--all",
        "--public-key",
        &key,
    ])
    .await;
    assert!(ok, "{out}{err}");
    assert_eq!(
        out.matches("signed in closed checkpoint").count(),
        2,
        "{out}"
    );

    let dev = Dev::start(&data).await;
    let (ok, online_key, _) = dev.cli(&["audit", "pubkey"]).await;
    assert!(ok);
    assert_eq!(online_key.trim(), key);
    let (ok, exported, err) = dev.cli(&["-o", "json", "workflow", "show", "pay-1"]).await;
    assert!(ok, "{err}");
    let export_path = dir.path().join("pay-1.json");
    std::fs::write(&export_path, &exported).unwrap();
    let verify_file = |path: std::path::PathBuf, key: String| async move {
        weft(&[
            "audit",
            "verify",
            "--history",
            path.to_str().unwrap(),
            "--public-key",
            &key,
        ])
        .await
    };
    let (ok, out, err) = verify_file(export_path.clone(), key.clone()).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("signed in closed checkpoint"), "{out}");

    let mut export: Value = serde_json::from_str(&exported).unwrap();
    let edit = |export: &Value, f: &dyn Fn(&mut Value)| {
        let mut copy = export.clone();
        f(&mut copy);
        let path = dir.path().join("edited.json");
        std::fs::write(&path, serde_json::to_string(&copy).unwrap()).unwrap();
        path
    };
    // An event edited by hand: its time (the first byte after the version
    // and the 8-byte link, as hex).
    let edited = edit(&export, &|e| {
        let event = e["chain"]["stored"][2].as_str().unwrap().to_owned();
        let mut bytes = weft_core::unhex(&event).unwrap();
        bytes[9] ^= 1;
        e["chain"]["stored"][2] = Value::String(weft_core::hex(&bytes));
    });
    let (ok, out, err) = verify_file(edited, key.clone()).await;
    assert!(!ok, "{out}");
    assert!(out.contains("BROKEN: event 3: broken link"), "{out}{err}");
    // A forged signature, and the right signature against another key.
    let forged = edit(&export, &|e| {
        let sig = e["chain"]["checkpoint"]["signature"].as_str().unwrap();
        let flipped = if sig.starts_with('0') { "1" } else { "0" };
        e["chain"]["checkpoint"]["signature"] = Value::String(format!("{flipped}{}", &sig[1..]));
    });
    let (ok, out, _) = verify_file(forged, key.clone()).await;
    assert!(!ok && out.contains("bad signature"), "{out}");
    let stranger = weft_core::hex(&[7u8; 32]);
    let (ok, out, _) = verify_file(export_path.clone(), stranger).await;
    assert!(!ok && out.contains("bad signature"), "{out}");
    // A dropped event.
    export["chain"]["stored"].as_array_mut().unwrap().remove(1);
    let dropped = edit(&export, &|_| {});
    let (ok, out, _) = verify_file(dropped, key).await;
    assert!(!ok && out.contains("BROKEN: event 1: broken link"), "{out}");
    assert!(dev.terminate().await.success());
}
