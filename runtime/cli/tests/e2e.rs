//! End to end: `weft dev` as a process on a free loopback port, driven by
//! the `weft` CLI and by a gRPC client.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

mod common;

use common::*;

use serde_json::{Value, json};
use tokio::process::Command;
use tonic::Code;
use tonic::transport::Channel;
use weft_api::pb;

fn payment(account: &str) -> Value {
    json!({"account": account, "amount_cents": 1250, "currency": "EUR"})
}

fn loan(id: &str) -> Value {
    json!({"application_id": id, "applicant": "ada", "amount_cents": 5000})
}

/// The services the server lists through gRPC reflection.
async fn reflected_services(channel: Channel) -> Vec<String> {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses
        .message()
        .await
        .unwrap()
        .expect("a reflection answer");
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

/// As a bank runs it: `weft server` over mutual TLS, every call of the CLI
/// and of the gRPC client carrying an API key.
#[tokio::test]
async fn the_cli_and_a_grpc_client_drive_weft_server_over_mutual_tls_with_api_keys() {
    let dir = tempfile::tempdir().unwrap();
    let dev = Dev::start_mtls(dir.path()).await;
    let mut client = dev.client().await;
    assert_eq!(
        client
            .health(pb::HealthRequest {})
            .await
            .unwrap()
            .into_inner()
            .status,
        "serving"
    );
    // Server reflection: a generic client (grpcurl, Postman) finds the API.
    let services = reflected_services(dev.channel().await).await;
    assert!(services.iter().any(|s| s == "weft.v1.Weft"), "{services:?}");

    // Deploy with the CLI; nothing is deployed before.
    let (ok, out, _) = dev.cli(&["component", "list"]).await;
    assert!(ok && !out.contains("payment"), "{out}");
    for (t, g) in [
        ("payment", "payment-workflow"),
        ("loan-approval", "loan-approval"),
        ("account-opening", "account-opening"),
    ] {
        let (ok, out, err) = dev
            .cli(&["component", "deploy", "--type", t, &guest(g)])
            .await;
        assert!(ok, "{out}{err}");
        assert!(out.contains(&format!("deployed `{t}`")), "{out}");
    }

    // `workflow execute` starts, follows the history live, prints the result.
    let input = payment("acc-1").to_string();
    let (ok, out, err) = dev
        .cli(&[
            "workflow", "execute", "--type", "payment", "--id", "pay-1", "--input", &input,
        ])
        .await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("ActivityFailed") && out.contains("ExecutionCompleted"),
        "{out}"
    );
    assert!(out.contains("\"charge_id\":\"ch_000001_acc-1\""), "{out}");

    // ExecuteWorkflow: start and result in one call.
    let executed = client
        .execute_workflow(start("pay-exec", "payment", payment("acc-x")))
        .await
        .unwrap()
        .into_inner();
    match executed.outcome {
        Some(pb::get_result_response::Outcome::Completed(v)) => {
            let receipt: Value = serde_json::from_slice(&v).unwrap();
            assert_eq!(receipt["holder"], "Holder of acc-x");
        }
        other => panic!("pay-exec did not complete: {other:?}"),
    }
    assert!(!executed.run_id.is_empty());

    // A loan waits for approval: describe, query, follow, list, signal.
    let mut req = start("loan-1", "loan-approval", loan("loan-1"));
    req.search_attributes.insert("region".into(), "eu".into());
    client.start_workflow(req).await.unwrap();
    wait_for_event(&mut client, "loan-1", "SignalAwaited").await;
    let (ok, out, _) = dev.cli(&["workflow", "describe", "loan-1"]).await;
    assert!(
        ok && out.contains("status     Running") && out.contains("timer"),
        "{out}"
    );
    // Times read as UTC, not epoch milliseconds.
    let timer = out.lines().find(|l| l.contains("timer")).unwrap();
    assert!(
        timer.contains("fires at 20") && timer.ends_with('Z'),
        "{timer}"
    );
    assert!(out.contains("  started    20"), "{out}");
    let (ok, out, _) = dev.cli(&["workflow", "list"]).await;
    assert!(
        ok && out.contains("STARTED (UTC)") && !out.contains("(ms)"),
        "{out}"
    );
    let (ok, out, _) = dev
        .cli(&["workflow", "query", "loan-1", "--name", "status"])
        .await;
    assert!(ok, "{out}");
    let status: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(status["stage"], "awaiting-approval");
    let (ok, out, _) = dev
        .cli(&[
            "-o",
            "json",
            "workflow",
            "list",
            "--search",
            "region=eu",
            "--status",
            "Running",
        ])
        .await;
    assert!(ok, "{out}");
    let listed: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["workflow_id"], "loan-1");

    // `show --follow` streams until the loan closes, signalled meanwhile.
    let follow = {
        let connection = dev.connection_args();
        tokio::spawn(async move {
            Command::new(WEFT)
                .args(connection)
                .args(["workflow", "show", "loan-1", "--follow"])
                .output()
                .await
                .unwrap()
        })
    };
    let approval = json!({"approved": true, "reviewer": "grace"}).to_string();
    let (ok, out, err) = dev
        .cli(&[
            "workflow", "signal", "loan-1", "--name", "approval", "--input", &approval,
        ])
        .await;
    assert!(ok, "{out}{err}");
    let followed = follow.await.unwrap();
    assert!(followed.status.success());
    let followed = String::from_utf8_lossy(&followed.stdout);
    assert!(
        followed.contains("SignalReceived") && followed.contains("ExecutionCompleted"),
        "{followed}"
    );
    assert_eq!(
        completed(&mut client, "loan-1").await["outcome"],
        "approved"
    );

    // Cancel one loan, terminate another.
    for id in ["loan-2", "loan-3"] {
        client
            .start_workflow(start(id, "loan-approval", loan(id)))
            .await
            .unwrap();
    }
    for id in ["loan-2", "loan-3"] {
        wait_for_event(&mut client, id, "TimerStarted").await;
    }
    let (ok, _, err) = dev
        .cli(&["workflow", "cancel", "loan-2", "--reason", "withdrawn"])
        .await;
    assert!(ok, "{err}");
    let (ok, _, err) = dev.cli(&["workflow", "terminate", "loan-3"]).await;
    assert!(ok, "{err}");
    let (ok, _, err) = dev.cli(&["workflow", "result", "loan-2"]).await;
    assert!(!ok && err.contains("Cancelled"), "{err}");
    let (ok, _, err) = dev.cli(&["workflow", "result", "loan-3"]).await;
    assert!(!ok && err.contains("terminated"), "{err}");
    let (ok, out, _) = dev
        .cli(&["workflow", "count", "--status", "Cancelled"])
        .await;
    assert!(ok && out.trim() == "1", "{out}");

    // Reset a waiting loan to its start: the old run is terminated, a new
    // one re-runs the checks and waits for approval again.
    client
        .start_workflow(start("loan-4", "loan-approval", loan("loan-4")))
        .await
        .unwrap();
    let old_run = wait_for_event(&mut client, "loan-4", "SignalAwaited").await;
    let (ok, out, err) = dev
        .cli(&["workflow", "reset", "loan-4", "--event", "0"])
        .await;
    assert!(ok && out.contains("new run"), "{out}{err}");
    let (ok, out, _) = dev
        .cli(&["-o", "json", "workflow", "describe", "loan-4"])
        .await;
    assert!(ok, "{out}");
    let described: Value = serde_json::from_str(out.trim()).unwrap();
    assert_ne!(described["info"]["run_id"], old_run);
    let (ok, out, _) = dev
        .cli(&["workflow", "count", "--status", "Terminated"])
        .await;
    assert!(
        ok && out.trim() == "2",
        "loan-3 and loan-4's first run: {out}"
    );
    // Listing pages through the runs, newest first, two at a time.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut args = vec!["-o", "json", "workflow", "list", "--limit", "2"];
        if let Some(token) = &token {
            args.extend(["--page-token", token.as_str()]);
        }
        let (ok, out, err) = dev.cli(&args).await;
        assert!(ok, "{err}");
        let page: Value = serde_json::from_str(out.trim()).unwrap();
        seen.extend(
            page.as_array()
                .unwrap()
                .iter()
                .map(|w| w["run_id"].as_str().unwrap().to_owned()),
        );
        match err
            .lines()
            .find_map(|l| l.strip_prefix("next page: --page-token "))
        {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }
    let (ok, out, _) = dev.cli(&["-o", "json", "workflow", "list"]).await;
    assert!(ok);
    let all: Value = serde_json::from_str(out.trim()).unwrap();
    let all: Vec<String> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["run_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(all.len() >= 5, "{all:?}");
    assert_eq!(seen, all, "the pages together are the whole list, in order");
    let (ok, _, err) = dev
        .cli(&["workflow", "list", "--page-token", "forged"])
        .await;
    assert!(!ok && err.contains("page token `forged`"), "{err}");

    // Namespaces isolate ids and visibility.
    let (ok, _, err) = dev
        .cli(&["namespace", "create", "payments", "--retention", "3600"])
        .await;
    assert!(ok, "{err}");
    // Workflow types belong to a namespace too: `payment` is deployed in
    // the default one only, until it is deployed here.
    let mut req = start("pay-1", "payment", payment("acc-2"));
    req.namespace = "payments".into();
    let refused = client.start_workflow(req.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);
    assert!(
        refused
            .message()
            .contains("unknown workflow type `payment` in namespace `payments`"),
        "{refused:?}"
    );
    let (ok, out, _) = dev.cli(&["-n", "payments", "component", "list"]).await;
    assert!(ok && !out.contains("payment"), "{out}");
    let (ok, _, err) = dev
        .cli(&[
            "-n",
            "payments",
            "component",
            "deploy",
            "--type",
            "payment",
            &guest("payment-workflow"),
        ])
        .await;
    assert!(ok, "{err}");
    client.start_workflow(req).await.unwrap();
    let r = client
        .get_result(pb::GetResultRequest {
            namespace: "payments".into(),
            workflow_id: "pay-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(
        r.outcome,
        Some(pb::get_result_response::Outcome::Completed(_))
    ));
    let (ok, out, _) = dev.cli(&["-n", "payments", "workflow", "count"]).await;
    assert!(ok && out.trim() == "1", "{out}");
    let (ok, out, _) = dev.cli(&["workflow", "count", "--type", "payment"]).await;
    assert!(
        ok && out.trim() == "2",
        "the default namespace keeps its two (pay-1, pay-exec): {out}"
    );

    // Task queue.
    let (ok, out, _) = dev.cli(&["task-queue", "describe", "default"]).await;
    assert!(ok && out.contains("in-process worker"), "{out}");

    assert!(dev.terminate().await.success());
}

#[tokio::test]
async fn bad_requests_get_the_right_status_and_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let dev = Dev::start(dir.path()).await;
    let mut client = dev.client().await;
    let code = |r: Result<tonic::Response<pb::StartWorkflowResponse>, tonic::Status>| {
        let s = r.unwrap_err();
        (s.code(), s.message().to_owned())
    };

    let (c, m) = code(client.start_workflow(start("x", "nope", json!(null))).await);
    assert_eq!(c, Code::NotFound);
    assert!(m.contains("unknown workflow type `nope`"), "{m}");

    client
        .deploy_component(pb::DeployComponentRequest {
            workflow_type: "loan-approval".into(),
            component: std::fs::read(guest("loan-approval")).unwrap(),
            ..Default::default()
        })
        .await
        .unwrap();
    client
        .start_workflow(start("dup", "loan-approval", loan("dup")))
        .await
        .unwrap();
    let (c, m) = code(
        client
            .start_workflow(start("dup", "loan-approval", loan("dup")))
            .await,
    );
    assert_eq!(c, Code::AlreadyExists);
    assert!(m.contains("already has a running execution"), "{m}");

    let mut bad = start("bad", "loan-approval", json!(null));
    bad.input = b"{not json".to_vec();
    let (c, m) = code(client.start_workflow(bad).await);
    assert_eq!(c, Code::InvalidArgument);
    assert!(m.contains("not valid JSON"), "{m}");

    let mut elsewhere = start("x", "loan-approval", json!(null));
    elsewhere.namespace = "nowhere".into();
    let (c, m) = code(client.start_workflow(elsewhere).await);
    assert_eq!(c, Code::NotFound);
    assert!(m.contains("unknown namespace `nowhere`"), "{m}");

    let huge = serde_json::to_vec(&"x".repeat(3 * 1024 * 1024)).unwrap();
    let s = client
        .signal_workflow(pb::SignalWorkflowRequest {
            workflow_id: "dup".into(),
            signal_name: "approval".into(),
            payload: huge,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::ResourceExhausted);
    assert!(s.message().contains("limit"), "{}", s.message());

    let s = client
        .deploy_component(pb::DeployComponentRequest {
            workflow_type: "junk".into(),
            component: b"not wasm".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);

    let s = client
        .signal_workflow(pb::SignalWorkflowRequest {
            workflow_id: "ghost".into(),
            signal_name: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::NotFound);

    // The CLI prints the status and message, and fails.
    let (ok, _, err) = dev.cli(&["workflow", "describe", "ghost"]).await;
    assert!(
        !ok && err.contains("NotFound") && err.contains("ghost"),
        "{err}"
    );
    assert!(dev.terminate().await.success());
}

#[tokio::test]
async fn sigterm_under_load_loses_no_started_execution() {
    let dir = tempfile::tempdir().unwrap();
    let dev = Dev::start(dir.path()).await;
    let mut client = dev.client().await;
    client
        .deploy_component(pb::DeployComponentRequest {
            workflow_type: "payment".into(),
            component: std::fs::read(guest("payment-workflow")).unwrap(),
            ..Default::default()
        })
        .await
        .unwrap();
    // Start executions from several clients; SIGTERM once some have
    // started, while the rest are still arriving.
    let (started_tx, mut started_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut load = tokio::task::JoinSet::new();
    for lane in 0..4 {
        let mut client = client.clone();
        let started = started_tx.clone();
        load.spawn(async move {
            for i in 0..100 {
                let id = format!("load-{lane}-{i}");
                match client
                    .start_workflow(start(&id, "payment", payment(&id)))
                    .await
                {
                    Ok(_) => {
                        let _ = started.send(id);
                    }
                    Err(_) => return, // the server is going away
                }
            }
        });
    }
    drop(started_tx);
    let mut accepted = Vec::new();
    while accepted.len() < 40 {
        accepted.push(started_rx.recv().await.unwrap());
    }
    let status = dev.terminate().await;
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");
    while load.join_next().await.is_some() {}
    while let Some(id) = started_rx.recv().await {
        accepted.push(id);
    }

    // Every start the server acknowledged completes after a restart.
    let dev = Dev::start(dir.path()).await;
    let mut client = dev.client().await;
    for id in &accepted {
        assert!(completed(&mut client, id).await["charge_id"].is_string());
    }
    assert!(dev.terminate().await.success());
}

/// A seconds-long run of both bench modes keeps `weft bench` working
/// (numbers come from release builds; see BENCHMARKS.md).
#[tokio::test]
async fn bench_smoke_in_process_and_over_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let modes: [&[&str]; 5] = [
        &[],
        &["--local"],
        &["--grpc"],
        &["--grpc", "--remote-workers"],
        &["--grpc", "--tls", "--remote-workers"],
    ];
    for mode in modes {
        let mut args = vec![
            "--data-dir".to_owned(),
            dir.path().to_str().unwrap().to_owned(),
            "bench".to_owned(),
            "--component".to_owned(),
            guest("bench-payment"),
            "--n".to_owned(),
            "20".to_owned(),
            "-c".to_owned(),
            "4".to_owned(),
            "--warmup".to_owned(),
            "4".to_owned(),
        ];
        args.extend(mode.iter().map(|a| a.to_string()));
        let out = Command::new(WEFT).args(&args).output().await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        assert_eq!(json["n"], 20, "{mode:?}: {stdout}");
        if mode.contains(&"--tls") {
            assert_eq!(json["client"], "gRPC over mutual TLS (separate process)");
        }
        assert!(json["throughput_per_s"].as_f64().unwrap() > 0.0);
        // Read from the closed database: its executions' pages.
        let in_use = json["disk_in_use_bytes_per_exec"].as_f64();
        assert!(in_use.is_some_and(|b| b > 0.0), "{mode:?}: {stdout}");
    }
    // The list scenario checks what it lists (every running execution, in
    // process and over gRPC) before it reports times.
    let out = Command::new(WEFT)
        .args(["--data-dir", dir.path().to_str().unwrap(), "bench"])
        .args(["--component", &guest("bench-payment")])
        .args(["--scenario", "list", "--n", "300", "-c", "8"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(
        (json["closed"].as_u64(), json["running"].as_u64()),
        (Some(300), Some(3))
    );
    assert!(json["grpc_running_p50_ms"].as_f64().unwrap() > 0.0);
}

/// `weft check <file>`: success, stdout, stderr.
async fn weft_check(file: &std::path::Path) -> (bool, String, String) {
    weft(&["check", &file.to_string_lossy()]).await
}

#[tokio::test]
async fn weft_check_takes_binary_components_only_and_never_calls_inert_imports_clean() {
    let dir = tempfile::tempdir().unwrap();
    // A Rust component that imports the filesystem and sockets, with an
    // interpreter mark appended (a custom section anyone can add).
    let mut marked = std::fs::read(guest("guest-forbidden")).unwrap();
    let name = weft_engine::INTERPRETER_SECTION.as_bytes();
    let body: Vec<u8> = [&[name.len() as u8][..], name, b"python"].concat();
    marked.extend([0, body.len() as u8]);
    marked.extend(body);
    let file = dir.path().join("marked.wasm");
    std::fs::write(&file, &marked).unwrap();
    let (ok, out, err) = weft_check(&file).await;
    assert!(ok, "{err}");
    assert!(!out.starts_with("ok: "), "reported clean: {out}");
    assert!(out.contains("inert import(s)"), "{out}");
    assert!(out.contains("inert   wasi:filesystem/"), "{out}");
    assert!(out.contains("inert   wasi:sockets/"), "{out}");
    assert!(out.contains("every file access fails"), "{out}");

    // Unmarked, the same component is refused; a clean one is clean.
    let (ok, _, err) = weft_check(std::path::Path::new(&guest("guest-forbidden"))).await;
    assert!(!ok && err.contains("is not allowed"), "{err}");
    let (ok, out, _) = weft_check(std::path::Path::new(&guest("guest-trap"))).await;
    assert!(ok && out.starts_with("ok: "), "{out}");

    // Text and junk get a reason about binary components.
    for (bytes, says) in [
        (&b"(component)"[..], "looks like WebAssembly text"),
        (&b""[..], "the file is empty"),
        (&[0x13, 0x37, 0xca, 0xfe, 0, 1][..], "bad magic"),
    ] {
        let file = dir.path().join("junk.wasm");
        std::fs::write(&file, bytes).unwrap();
        let (ok, _, err) = weft_check(&file).await;
        assert!(!ok, "{says}");
        assert!(
            err.contains("not a WebAssembly component") && err.contains(says),
            "{err}"
        );
    }
}

#[tokio::test]
async fn weft_run_and_workflow_result_report_a_parked_execution_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let loan_wasm = guest("loan-approval");
    // A loan application waits for its approval signal (72 h timeout).
    let dev = Dev::start(dir.path()).await;
    let mut client = dev.client().await;
    client
        .deploy_component(pb::DeployComponentRequest {
            workflow_type: "loan-approval".into(),
            component: std::fs::read(&loan_wasm).unwrap(),
            ..Default::default()
        })
        .await
        .unwrap();
    client
        .start_workflow(start("parked-1", "loan-approval", loan("parked-1")))
        .await
        .unwrap();
    wait_for_event(&mut client, "parked-1", "TimerStarted").await;
    assert!(dev.terminate().await.success());

    // Forced onto code that does not replay its history: it will park.
    let (ok, _, err) = weft(&[
        "--data-dir",
        data,
        "upgrade",
        "--type",
        "loan-approval",
        "--component",
        &guest("payment-workflow"),
        "--force",
    ])
    .await;
    assert!(ok, "{err}");

    // `weft run` resumes waiting on it, finds it parked, says why and what
    // to do, and exits non-zero (bounded: a hang is the bug under test).
    let args = [
        "--data-dir",
        data,
        "run",
        "--component",
        &loan_wasm,
        "--type",
        "loan-approval",
        "--id",
        "parked-1",
    ];
    let (ok, _, err) = tokio::time::timeout(std::time::Duration::from_secs(120), weft(&args))
        .await
        .expect("weft run must not wait on a parked execution");
    assert!(!ok, "{err}");
    assert!(
        err.contains("execution `parked-1` is parked: nondeterminism"),
        "{err}"
    );
    assert!(
        err.contains("weft workflow upgrade --type loan-approval")
            && err.contains("weft workflow fail parked-1"),
        "{err}"
    );

    // Over gRPC too: `workflow result` gets FAILED_PRECONDITION, non-zero.
    let dev = Dev::start(dir.path()).await;
    let wait = dev.cli(&["workflow", "result", "parked-1"]);
    let (ok, _, err) = tokio::time::timeout(std::time::Duration::from_secs(120), wait)
        .await
        .expect("workflow result must not wait on a parked execution");
    assert!(!ok && err.contains("is parked"), "{err}");

    // The operator's ways out, over the API: a dry run, the upgrade back
    // to code that replays (it resumes), then failing it with a reason.
    let (ok, out, err) = dev
        .cli(&[
            "workflow",
            "upgrade",
            "--type",
            "loan-approval",
            "--component",
            &loan_wasm,
            "--dry-run",
        ])
        .await;
    assert!(
        ok && out.contains("default/parked-1: replays"),
        "{out}{err}"
    );
    let (ok, out, err) = dev
        .cli(&[
            "workflow",
            "upgrade",
            "--type",
            "loan-approval",
            "--component",
            &loan_wasm,
        ])
        .await;
    assert!(
        ok && out.contains("default/parked-1: upgraded"),
        "{out}{err}"
    );
    let mut client = dev.client().await;
    let described = client
        .describe_workflow(pb::DescribeWorkflowRequest {
            workflow_id: "parked-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(described.info.unwrap().parked_reason, "", "resumed");
    let (ok, _, err) = dev
        .cli(&["workflow", "fail", "parked-1", "--reason", ""])
        .await;
    assert!(!ok && err.contains("a reason is required"), "{err}");
    let (ok, out, err) = dev
        .cli(&[
            "workflow",
            "fail",
            "parked-1",
            "--reason",
            "refunded by hand",
        ])
        .await;
    assert!(ok, "{out}{err}");
    let (ok, _, err) = dev.cli(&["workflow", "result", "parked-1"]).await;
    assert!(
        !ok && err.contains("FailedByOperator") && err.contains("refunded by hand"),
        "{err}"
    );
    dev.terminate().await;
}
