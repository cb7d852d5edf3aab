//! Remote activity workers against a `weft dev` process: gRPC workers that
//! die, fail, heartbeat and get cancelled, and the Python worker library
//! serving the payment workflow's activities.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

mod common;

use common::*;
use serde_json::{Value, json};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tonic::Code;
use weft_api::pb;

async fn poll(client: &mut weft_api::Client, queue: &str, identity: &str) -> pb::ActivityTask {
    client
        .poll_activity_task(pb::PollActivityTaskRequest {
            task_queue: queue.into(),
            identity: identity.into(),
            wait_ms: 30_000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap_or_else(|| panic!("{identity}: no task on {queue} within 30 s"))
}

async fn heartbeat(
    client: &mut weft_api::Client,
    token: &[u8],
    details: Option<Value>,
) -> Result<bool, tonic::Status> {
    client
        .record_activity_heartbeat(pb::RecordActivityHeartbeatRequest {
            task_token: token.to_vec(),
            details: details.map(|d| serde_json::to_vec(&d).unwrap()),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().cancel_requested)
}

async fn complete(
    client: &mut weft_api::Client,
    token: &[u8],
    result: Value,
) -> Result<(), tonic::Status> {
    client
        .complete_activity_task(pb::CompleteActivityTaskRequest {
            task_token: token.to_vec(),
            result: serde_json::to_vec(&result).unwrap(),
            ..Default::default()
        })
        .await
        .map(|_| ())
}

async fn outcome(client: &mut weft_api::Client, id: &str) -> pb::get_result_response::Outcome {
    client
        .get_result(pb::GetResultRequest {
            workflow_id: id.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .outcome
        .unwrap()
}

#[tokio::test]
async fn a_worker_that_dies_mid_activity_is_replaced_after_the_heartbeat_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let dev = Dev::start(dir.path()).await;
    deploy(&dev, "call", "guest-call").await;
    let mut client = dev.client().await;
    let input = json!({
        "activity": "resize", "input": "photo-1", "task_queue": "images",
        "heartbeat_ms": 1000, "start_to_close_ms": 600000, "initial_interval_ms": 100
    });
    client
        .start_workflow(start("resize-1", "call", input))
        .await
        .unwrap();

    // Worker A takes the task, reports progress, then dies.
    let mut worker_a = dev.client().await;
    let first = poll(&mut worker_a, "images", "worker-a").await;
    assert_eq!((first.activity_name.as_str(), first.attempt), ("resize", 1));
    assert_eq!(first.workflow_id, "resize-1");
    assert_eq!(first.heartbeat_timeout_ms, 1000);
    let cancel = heartbeat(&mut worker_a, &first.task_token, Some(json!({"rows": 40})))
        .await
        .unwrap();
    assert!(!cancel);
    let queue = client
        .describe_task_queue(pb::DescribeTaskQueueRequest {
            task_queue: "images".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(queue.running, 1);
    assert!(
        queue.pollers.iter().any(|p| p.starts_with("worker-a")),
        "{:?}",
        queue.pollers
    );
    drop(worker_a);

    // Worker B gets attempt 2 once A's heartbeat deadline passed, with
    // A's last progress and the same idempotency key.
    let mut worker_b = dev.client().await;
    let second = poll(&mut worker_b, "images", "worker-b").await;
    assert_eq!(second.attempt, 2);
    assert_eq!(second.idempotency_key, first.idempotency_key);
    let details: Value =
        serde_json::from_slice(second.heartbeat_details.as_deref().unwrap()).unwrap();
    assert_eq!(details, json!({"rows": 40}));

    // A's attempt is no longer current: its report is refused.
    let late = complete(&mut client, &first.task_token, json!("from a")).await;
    assert_eq!(late.unwrap_err().code(), Code::NotFound);
    complete(&mut worker_b, &second.task_token, json!("resized by b"))
        .await
        .unwrap();
    assert_eq!(
        completed(&mut client, "resize-1").await,
        json!("resized by b")
    );
    let events = history(&mut client, "resize-1").await;
    let timed_out: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "ActivityTimedOut")
        .collect();
    assert_eq!(timed_out.len(), 1, "{events:?}");
    assert!(timed_out[0].details.contains("heartbeat"), "{timed_out:?}");
}

fn cancelled_failure() -> pb::FailActivityTaskRequest {
    pb::FailActivityTaskRequest {
        task_token: Vec::new(),
        failure: Some(pb::Failure {
            message: "stopped".into(),
            error_type: "Cancelled".into(),
            non_retryable: true,
        }),
        next_retry_delay_ms: None,
        ..Default::default()
    }
}

#[tokio::test]
async fn remote_failures_retry_after_and_heartbeats_carry_cancellation() {
    let dir = tempfile::tempdir().unwrap();
    let dev = Dev::start(dir.path()).await;
    deploy(&dev, "call", "guest-call").await;
    let mut client = dev.client().await;
    // Two exports at once: after a cancellation the workflow still waits
    // for the second, so both attempts can hear of it.
    let input = json!({
        "activity": "export", "input": {"report": "q3"}, "task_queue": "batch-reporting",
        "initial_interval_ms": 60000, "copies": 2
    });
    client
        .start_workflow(start("export-1", "call", input))
        .await
        .unwrap();
    let mut worker = dev.client().await;
    let first = poll(&mut worker, "batch-reporting", "reporter").await;
    let other = poll(&mut worker, "batch-reporting", "reporter").await;
    assert_eq!(
        serde_json::from_slice::<Value>(&first.input).unwrap(),
        json!({"report": "q3"})
    );
    assert_ne!(first.idempotency_key, other.idempotency_key);

    // Bad reports are refused with a clear status, and change nothing.
    let bad = complete(&mut worker, b"not a token", json!(1))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument, "{bad:?}");
    let bad = worker
        .complete_activity_task(pb::CompleteActivityTaskRequest {
            task_token: first.task_token.clone(),
            result: b"{not json".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument, "{bad:?}");
    assert!(bad.message().contains("not valid JSON"), "{bad:?}");
    // Tokens are signed: the old guessable tuple (execution, seq, attempt),
    // a token with one bit flipped, and a good token reported from another
    // namespace are all refused, and the history does not move.
    let before = history(&mut client, "export-1").await;
    let guessed = [
        &1u64.to_be_bytes()[..],
        &1u32.to_be_bytes(),
        &1u32.to_be_bytes(),
    ]
    .concat();
    let bad = complete(&mut worker, &guessed, json!(1)).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument, "{bad:?}");
    for i in [1, 9, 20, first.task_token.len() - 1] {
        let mut tampered = first.task_token.clone();
        tampered[i] ^= 0x40;
        let bad = complete(&mut worker, &tampered, json!(1))
            .await
            .unwrap_err();
        assert_eq!(bad.code(), Code::PermissionDenied, "byte {i}: {bad:?}");
        assert!(
            bad.message().contains("not issued by this server"),
            "{bad:?}"
        );
    }
    let bad = worker
        .complete_activity_task(pb::CompleteActivityTaskRequest {
            task_token: first.task_token.clone(),
            result: b"1".to_vec(),
            namespace: "elsewhere".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::PermissionDenied, "{bad:?}");
    assert!(bad.message().contains("namespace `default`"), "{bad:?}");
    let bad = heartbeat(&mut worker, &guessed, None).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument, "{bad:?}");
    assert_eq!(history(&mut client, "export-1").await, before);

    // A failure that asks for its retry in 200 ms (not the policy's 60 s).
    worker
        .fail_activity_task(pb::FailActivityTaskRequest {
            task_token: first.task_token.clone(),
            failure: Some(pb::Failure {
                message: "warehouse busy".into(),
                error_type: "Busy".into(),
                non_retryable: false,
            }),
            next_retry_delay_ms: Some(200),
            ..Default::default()
        })
        .await
        .unwrap();
    let retried = poll(&mut worker, "batch-reporting", "reporter").await;
    assert_eq!(retried.attempt, 2);
    assert_eq!(retried.idempotency_key, first.idempotency_key);
    let events = history(&mut client, "export-1").await;
    let failed = events
        .iter()
        .find(|e| e.event_type == "ActivityFailed")
        .unwrap();
    assert!(failed.details.contains("Busy"), "{failed:?}");

    // Cancel the workflow: heartbeats say so.
    assert!(
        !heartbeat(&mut worker, &other.task_token, None)
            .await
            .unwrap()
    );
    client
        .cancel_workflow(pb::CancelWorkflowRequest {
            workflow_id: "export-1".into(),
            reason: "not needed".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    for task in [&retried, &other] {
        let cancel = heartbeat(&mut worker, &task.task_token, None)
            .await
            .unwrap();
        assert!(cancel, "attempt {} heard no cancellation", task.attempt);
        let mut report = cancelled_failure();
        report.task_token = task.task_token.clone();
        worker.fail_activity_task(report).await.unwrap();
    }
    match outcome(&mut client, "export-1").await {
        pb::get_result_response::Outcome::Failed(f) => assert_eq!(f.error_type, "Cancelled"),
        other => panic!("expected a cancellation, got {other:?}"),
    }
    let described = client
        .describe_workflow(pb::DescribeWorkflowRequest {
            workflow_id: "export-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(described.info.unwrap().status, "Cancelled");
}

/// The Python worker library's virtualenv (made by its setup script).
async fn python() -> String {
    let setup = concat!(env!("CARGO_MANIFEST_DIR"), "/../../workers/python/setup.sh");
    let out = Command::new("bash").arg(setup).output().await.unwrap();
    assert!(
        out.status.success(),
        "workers/python/setup.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn the_python_worker_serves_the_payment_workflow_and_never_charges_twice() {
    let python = python().await;
    let dir = tempfile::tempdir().unwrap();
    // Over mutual TLS with API keys: the worker presents a client
    // certificate and a key that may only work the queue it serves.
    let dev = Dev::start_mtls(dir.path()).await;
    deploy(&dev, "payment", "payment-workflow").await;
    let (ok, worker_key, err) = dev
        .cli(&[
            "auth",
            "key",
            "create",
            "--name",
            "py-worker",
            "--role",
            "default:worker:payments-py",
        ])
        .await;
    assert!(ok, "{err}");
    let ledger = dir.path().join("charges.jsonl");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../workers/python/examples/payment_worker.py"
    );
    let mut worker = Command::new(&python)
        .args([
            script,
            "--address",
            &dev.address,
            "--task-queue",
            "payments-py",
        ])
        .args([
            "--identity",
            "py-worker-1",
            "--ledger",
            ledger.to_str().unwrap(),
        ])
        .args(dev.tls_args())
        .env("WEFT_API_KEY", worker_key.trim())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(worker.stdout.take().unwrap()).lines();
    let ready = lines
        .next_line()
        .await
        .unwrap()
        .expect("the worker printed nothing");
    assert!(ready.starts_with("serving payments-py"), "{ready}");

    let mut client = dev.client().await;
    let accounts = ["acct-1", "acct-2", "acct-3"];
    for account in accounts {
        let mut req = start(
            &format!("pay-{account}"),
            "payment",
            json!({"account": account, "amount_cents": 990, "currency": "EUR"}),
        );
        req.task_queue = "payments-py".into();
        client.start_workflow(req).await.unwrap();
    }
    for account in accounts {
        let id = format!("pay-{account}");
        let receipt = completed(&mut client, &id).await;
        assert_eq!(receipt["holder"], format!("Holder of {account}"));
        let charge_id = receipt["charge_id"].as_str().unwrap();
        assert!(
            charge_id.starts_with("py_ch_"),
            "charged in Python: {receipt}"
        );
        // Attempt 1 charged and lost the answer; attempt 2 got the same
        // charge back.
        let events = history(&mut client, &id).await;
        assert!(
            events
                .iter()
                .any(|e| e.event_type == "ActivityFailed" && e.details.contains("CardNetworkBusy")),
            "{events:?}"
        );
    }
    let charges: Vec<Value> = std::fs::read_to_string(&ledger)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        charges.len(),
        accounts.len(),
        "one charge per payment: {charges:?}"
    );

    let queue = client
        .describe_task_queue(pb::DescribeTaskQueueRequest {
            task_queue: "payments-py".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        queue.pollers.iter().any(|p| p.starts_with("py-worker-1")),
        "{:?}",
        queue.pollers
    );
    assert_eq!((queue.backlog, queue.running), (0, 0));
}
