//! Python and JavaScript workflows (componentize-py, componentize-js)
//! against the same runtime and native activities as the Rust ones: the
//! payment example issues the same commands in all three languages,
//! survives a restart by replay, and a nondeterministic change to the
//! Python version is caught; each language's own clock and randomness are
//! recorded, and its sandbox holds.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

use serde_json::{Value, json};
use weft_core::{Event, EventKind, ExecutionId};
use weft_engine::ReplayError;
use weft_server::{ActivityRegistry, RuntimeConfig, WorkflowOutcome};
use weft_tests::{StartGuest, TestRuntime, guest, repin};

fn payment_activities() -> (ActivityRegistry, payment_activities::Processor) {
    let processor = payment_activities::Processor::default();
    let mut activities = ActivityRegistry::new();
    payment_activities::register(&mut activities, processor.clone());
    (activities, processor)
}

fn payment_input(account: &str) -> Value {
    json!({"account": account, "amount_cents": 1250, "currency": "EUR"})
}

/// The commands and results of a history, in order: (event, activity or
/// detail, input); the receipt id (random per execution) replaced.
fn commands(history: &[Event], receipt_id: &str) -> Vec<(String, String, String)> {
    history
        .iter()
        .map(|e| {
            let (what, input) = match &e.kind {
                EventKind::ActivityScheduled { name, input, .. } => {
                    (name.clone(), String::from_utf8_lossy(input).into_owned())
                }
                EventKind::ActivityFailed { failure, .. } => {
                    (failure.error_type.clone(), String::new())
                }
                _ => (String::new(), String::new()),
            };
            let input = input.replace(receipt_id, "<receipt>");
            (e.kind.name().to_owned(), what, input)
        })
        .collect()
}

async fn completed(t: &TestRuntime, id: &str) -> Value {
    match t.runtime.result(id).await.unwrap() {
        WorkflowOutcome::Completed(v) => serde_json::from_slice(&v).unwrap(),
        other => panic!("{id}: expected a result, got {other:?}"),
    }
}

async fn failed(t: &TestRuntime, id: &str) -> weft_core::Failure {
    match t.runtime.result(id).await.unwrap() {
        WorkflowOutcome::Failed(f) => f,
        other => panic!("{id}: expected a failure, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn the_payment_issues_the_same_commands_in_rust_python_and_javascript() {
    let (activities, processor) = payment_activities();
    let t = TestRuntime::new(activities).await;
    let mut seen = Vec::new();
    for (guest_name, workflow_type) in [
        ("payment-workflow", "payment"),
        ("payment-py", "payment-py"),
        ("payment-js", "payment-js"),
    ] {
        let id = format!("pay-{workflow_type}");
        t.start_guest(guest_name, workflow_type, &id, payment_input("acct-7"))
            .await;
        let receipt = completed(&t, &id).await;
        assert_eq!(
            receipt["holder"], "Holder of acct-7",
            "{workflow_type}: {receipt}"
        );
        assert_eq!(receipt["amount_cents"], 1250);
        let receipt_id = receipt["receipt_id"].as_str().unwrap().to_owned();
        assert!(
            receipt_id.starts_with("R-") && receipt_id.len() == 18,
            "{receipt_id}"
        );
        let history = t.runtime.history(&id).await.unwrap();
        seen.push((workflow_type, commands(&history, &receipt_id)));
    }
    let (_, rust) = &seen[0];
    assert!(
        rust.iter()
            .any(|(e, name, _)| e == "ActivityFailed" && name == "CardNetworkBusy")
    );
    for (language, commands) in &seen[1..] {
        assert_eq!(commands, rust, "{language} differs from Rust");
    }
    assert_eq!(processor.charge_count(), 3, "one charge per payment");
}

#[tokio::test(start_paused = true)]
async fn polyglot_payments_resume_by_replay_after_a_restart() {
    let (activities, _) = payment_activities();
    let t = TestRuntime::new(activities).await;
    for (guest_name, workflow_type) in [("payment-py", "payment-py"), ("payment-js", "payment-js")]
    {
        let id = format!("restart-{workflow_type}");
        t.start_guest(guest_name, workflow_type, &id, payment_input("acct-9"))
            .await;
        // Stop after the first charge attempt failed, before its retry.
        t.wait_for_event(&id, "ActivityFailed").await.unwrap();
    }
    let (activities, processor) = payment_activities();
    let t = t.restart(activities, RuntimeConfig::default()).await;
    for workflow_type in ["payment-py", "payment-js"] {
        let id = format!("restart-{workflow_type}");
        let receipt = completed(&t, &id).await;
        assert_eq!(receipt["holder"], "Holder of acct-9");
        let history = t.runtime.history(&id).await.unwrap();
        let validations = history
            .iter()
            .filter(|e| matches!(&e.kind, EventKind::ActivityScheduled { name, .. } if name == "validate_account"))
            .count();
        assert_eq!(
            validations, 1,
            "{workflow_type}: replay scheduled nothing twice"
        );
    }
    assert_eq!(
        processor.charge_count(),
        2,
        "each payment charged once, after the restart"
    );
    assert!(t.runtime.stats().replays >= 2, "both resumed by replay");
}

#[tokio::test(start_paused = true)]
async fn a_nondeterministic_change_to_the_python_workflow_is_caught() {
    let (activities, _) = payment_activities();
    let t = TestRuntime::new(activities).await;
    t.start_guest(
        "payment-py",
        "payment-py",
        "py-orig",
        payment_input("acct-1"),
    )
    .await;
    completed(&t, "py-orig").await;
    let mut history = t.runtime.history("py-orig").await.unwrap();
    // The original replays cleanly.
    let report = t
        .engine
        .replay(ExecutionId::new("py-orig", "r"), history.clone())
        .await
        .unwrap();
    assert!(report.closed);
    // The reordered version does not, and the report names the step.
    let changed = t.engine.load(&guest("guest-py-payment-reordered")).unwrap();
    repin(&mut history, changed);
    match t
        .engine
        .replay(ExecutionId::new("py-orig", "r"), history)
        .await
    {
        Err(ReplayError::Nondeterminism(n)) => {
            let message = n.to_string();
            assert!(message.contains("validate_account"), "{message}");
            assert!(message.contains("charge"), "{message}");
        }
        other => panic!("expected nondeterminism, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn python_and_javascript_clocks_and_randomness_come_from_history() {
    let t = TestRuntime::new(ActivityRegistry::new()).await;
    for (guest_name, workflow_type) in [
        ("guest-py-sandbox", "py-sandbox"),
        ("guest-js-sandbox", "js-sandbox"),
    ] {
        let mut values = Vec::new();
        for n in 0..2 {
            let id = format!("{workflow_type}-clock-{n}");
            t.start_guest(guest_name, workflow_type, &id, json!("clock-random"))
                .await;
            let out = completed(&t, &id).await;
            let history = t.runtime.history(&id).await.unwrap();
            let started_ms = history[0].at.0 as f64;
            // Python's time.time() is seconds, JavaScript's Date.now() ms.
            let scale = if workflow_type == "py-sandbox" {
                1000.0
            } else {
                1.0
            };
            let time = out["time"].as_f64().unwrap() * scale;
            assert!(
                (time - started_ms).abs() < 1.0,
                "{workflow_type}: {out} vs {started_ms}"
            );
            let after = out["time_after_sleep"].as_f64().unwrap() * scale;
            assert!(
                (after - time - 5000.0).abs() < 1.0,
                "a 5 s durable sleep: {out}"
            );
            // Replaying the history gives the same values: nothing read
            // the real clock or real randomness.
            let report = t
                .engine
                .replay(ExecutionId::new(&id, "r"), history)
                .await
                .unwrap();
            assert!(report.closed, "{workflow_type} replays");
            values.push(out);
        }
        assert_ne!(
            values[0]["random"], values[1]["random"],
            "each execution its own stream"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn python_and_javascript_side_effects_that_draw_randomness_replay_identically() {
    let t = TestRuntime::new(ActivityRegistry::new()).await;
    for (guest_name, workflow_type) in [
        ("guest-py-sandbox", "py-sandbox"),
        ("guest-js-sandbox", "js-sandbox"),
    ] {
        let id = format!("{workflow_type}-side-effect");
        t.start_guest(guest_name, workflow_type, &id, json!("side-effect-random"))
            .await;
        let out = completed(&t, &id).await;
        assert_ne!(out["inside"], out["after"], "{workflow_type}: {out}");
        // The language's own generator was first used inside the side
        // effect: a replay that skipped its code would draw `after` anew.
        let history = t.runtime.history(&id).await.unwrap();
        let report = t
            .engine
            .replay(ExecutionId::new(&id, "r"), history)
            .await
            .unwrap();
        assert!(report.closed, "{workflow_type} replays");
    }
}

#[tokio::test(start_paused = true)]
async fn python_and_javascript_workflows_cannot_leave_the_sandbox() {
    let t = TestRuntime::new(ActivityRegistry::new()).await;
    let cases = [
        (
            "guest-py-sandbox",
            "open-file",
            "SandboxViolation",
            "cannot open files",
        ),
        (
            "guest-py-sandbox",
            "socket",
            "NetworkAccessDenied",
            "network",
        ),
        ("guest-py-sandbox", "sleep", "NonDurableSleep", "ctx.sleep"),
        ("guest-js-sandbox", "fetch", "SandboxViolation", "network"),
        (
            "guest-js-sandbox",
            "set-timeout",
            "SandboxViolation",
            "ctx.sleep",
        ),
    ];
    for (guest_name, mode, error_type, says) in cases {
        let id = format!("{guest_name}-{mode}");
        t.start_guest(guest_name, guest_name, &id, json!(mode))
            .await;
        let failure = failed(&t, &id).await;
        assert_eq!(failure.error_type, error_type, "{id}: {failure}");
        assert!(failure.message.contains(says), "{id}: {failure}");
    }
}
