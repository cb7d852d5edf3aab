//! The payment example end to end: exact history, retry, idempotency.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

use serde_json::json;
use weft_core::EventKind;
use weft_server::{ActivityRegistry, WorkflowOutcome};
use weft_tests::{StartGuest, TestRuntime, completed_result, event_names};

fn payment_activities() -> (ActivityRegistry, payment_activities::Processor) {
    let processor = payment_activities::Processor::default();
    let mut registry = ActivityRegistry::new();
    payment_activities::register(&mut registry, processor.clone());
    (registry, processor)
}

#[tokio::test(start_paused = true)]
async fn payment_completes_with_the_expected_history() {
    let (activities, processor) = payment_activities();
    let t = TestRuntime::new(activities).await;
    let input = json!({"account": "acct-7", "amount_cents": 2500, "currency": "EUR"});
    let id = t
        .start_guest("payment-workflow", "payment", "pay-1", input)
        .await;

    let outcome = t.runtime.result(&id).await.unwrap();
    let WorkflowOutcome::Completed(result) = outcome else {
        panic!("payment failed: {outcome:?}")
    };
    let receipt: serde_json::Value = serde_json::from_slice(&result).unwrap();
    assert_eq!(receipt["holder"], "Holder of acct-7");
    assert_eq!(receipt["amount_cents"], 2500);
    assert!(receipt["charge_id"].as_str().unwrap().starts_with("ch_"));

    let history = t.runtime.history(&id).await.unwrap();
    assert_eq!(
        event_names(&history),
        [
            "ExecutionStarted",
            "ActivityScheduled", // validate_account
            "ActivityStarted",
            "ActivityCompleted",
            "ActivityScheduled", // charge
            "ActivityStarted",   // attempt 1
            "ActivityFailed",    //   transient: retried
            "ActivityStarted",   // attempt 2
            "ActivityCompleted",
            "ActivityScheduled", // send_receipt
            "ActivityStarted",
            "ActivityCompleted",
            "ExecutionCompleted",
        ]
    );
    let names: Vec<&str> = history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ActivityScheduled { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["validate_account", "charge", "send_receipt"]);

    // The failed attempt is recorded with its reason and the retry time the
    // workflow's policy asked for (initial interval 200 ms).
    let (failed_at, retry_at, failure) = history
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::ActivityFailed {
                seq: 1,
                attempt: 1,
                failure,
                retry_at,
            } => Some((e.at, *retry_at, failure)),
            _ => None,
        })
        .expect("charge attempt 1 failed");
    assert_eq!(failure.error_type, "CardNetworkBusy");
    assert_eq!(retry_at.unwrap().0 - failed_at.0, 200);
    assert!(history.iter().any(|e| matches!(
        e.kind,
        EventKind::ActivityCompleted {
            seq: 1,
            attempt: 2,
            ..
        }
    )));

    assert_eq!(completed_result(&history), receipt);
    assert_eq!(processor.charge_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn non_retryable_failure_fails_the_workflow_without_retry() {
    let (activities, processor) = payment_activities();
    let t = TestRuntime::new(activities).await;
    let input = json!({"account": "closed-9", "amount_cents": 1, "currency": "EUR"});
    let id = t
        .start_guest("payment-workflow", "payment", "pay-closed", input)
        .await;
    let WorkflowOutcome::Failed(failure) = t.runtime.result(&id).await.unwrap() else {
        panic!("a closed account must fail the payment")
    };
    assert_eq!(failure.error_type, "AccountInvalid");
    let history = t.runtime.history(&id).await.unwrap();
    assert_eq!(
        event_names(&history),
        [
            "ExecutionStarted",
            "ActivityScheduled",
            "ActivityStarted",
            "ActivityFailed",
            "ExecutionFailed"
        ]
    );
    assert_eq!(processor.charge_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn malformed_input_fails_that_execution_only() {
    let (activities, _) = payment_activities();
    let t = TestRuntime::new(activities).await;
    let bad = t
        .start_guest(
            "payment-workflow",
            "payment",
            "pay-bad",
            json!({"account": 5}),
        )
        .await;
    let good = t
        .start_guest(
            "payment-workflow",
            "payment",
            "pay-good",
            json!({"account": "a", "amount_cents": 1, "currency": "EUR"}),
        )
        .await;
    let WorkflowOutcome::Failed(failure) = t.runtime.result(&bad).await.unwrap() else {
        panic!("bad input accepted")
    };
    assert_eq!(failure.error_type, "PayloadError");
    assert!(failure.message.contains("workflow input"), "{failure}");
    assert!(matches!(
        t.runtime.result(&good).await.unwrap(),
        WorkflowOutcome::Completed(_)
    ));
}

#[tokio::test(start_paused = true)]
async fn payments_run_on_the_pooling_allocator_even_when_its_pool_runs_out() {
    let (activities, processor) = payment_activities();
    // Two instance slots for six executions waiting at once: an
    // activation that finds the pool full fails, is retried after a
    // backoff, and runs once a slot is free. Nothing is lost.
    let engine = weft_engine::EngineConfig {
        pooling_slots: 2,
        ..weft_engine::EngineConfig::default()
    };
    let t =
        TestRuntime::with_engine(activities, weft_server::RuntimeConfig::default(), engine).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        let input = json!({"account": format!("acct-{i}"), "amount_cents": 100, "currency": "EUR"});
        ids.push(
            t.start_guest("payment-workflow", "payment", &format!("pooled-{i}"), input)
                .await,
        );
    }
    for (i, id) in ids.iter().enumerate() {
        let outcome = t.runtime.result(id).await.unwrap();
        assert!(
            matches!(outcome, WorkflowOutcome::Completed(_)),
            "{id}: {outcome:?}"
        );
        let receipt = completed_result(&t.runtime.history(id).await.unwrap());
        assert_eq!(receipt["holder"], format!("Holder of acct-{i}"));
    }
    assert_eq!(processor.charge_count(), 6);
}

#[tokio::test]
async fn the_cold_start_probe_instantiates_loaded_components_only() {
    // `WorkflowEngine::instantiate` is what `weft bench` times as a cold
    // start: the same store and instance an activation starts from.
    for pooling_slots in [0, 4] {
        let engine = weft_engine::WorkflowEngine::new(weft_engine::EngineConfig {
            pooling_slots,
            ..weft_engine::EngineConfig::default()
        })
        .unwrap();
        let started = |component| {
            let event = weft_core::Event::new(
                weft_core::Timestamp(1),
                weft_core::EventKind::ExecutionStarted {
                    workflow_type: "payment".into(),
                    component,
                    input: b"{}".to_vec(),
                    random_seed: [7; 32],
                    task_queue: "q".into(),
                },
            );
            weft_core::ExecutionState::from_history(
                weft_core::ExecutionId::new("probe", "r"),
                vec![event],
            )
            .unwrap()
        };
        let bytes = weft_tests::guest("payment-workflow");
        let missing = engine.instantiate(started(weft_core::ComponentId::of(&bytes)));
        assert!(
            missing
                .await
                .unwrap_err()
                .to_string()
                .contains("not loaded"),
            "pooling {pooling_slots}"
        );
        let id = engine.load(&bytes).unwrap();
        // More rounds than slots: each probe gives its slot back.
        for _ in 0..8 {
            engine.instantiate(started(id)).await.unwrap();
        }
    }
}
