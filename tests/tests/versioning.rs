//! An execution is pinned to the component it started with; new code
//! applies to new executions.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

use serde_json::json;
use tokio::sync::mpsc;
use weft_core::EventKind;
use weft_server::{
    ActivityContext, ActivityError, ActivityRegistry, RuntimeConfig, WorkflowOutcome,
};
use weft_tests::{StartGuest, TestRuntime, guest};

fn activity_order(history: &[weft_core::Event]) -> Vec<String> {
    history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ActivityScheduled { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect()
}

fn payment_registry() -> ActivityRegistry {
    let mut registry = ActivityRegistry::new();
    payment_activities::register(&mut registry, payment_activities::Processor::default());
    registry
}

#[tokio::test(start_paused = true)]
async fn execution_finishes_on_its_own_version_after_v2_is_deployed_and_the_node_restarts() {
    // v1 runs until `validate_account` starts, which tells the test and
    // then never finishes on this node.
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let mut v1_node = ActivityRegistry::new();
    v1_node.register(
        "validate_account",
        move |_ctx: ActivityContext, _account: String| {
            let _ = started_tx.send(());
            async { std::future::pending::<Result<(), ActivityError>>().await }
        },
    );
    let t = TestRuntime::new(v1_node).await;
    let input = json!({"account": "acct-1", "amount_cents": 10, "currency": "EUR"});
    let old = t
        .start_guest("payment-workflow", "payment", "old", input.clone())
        .await;
    started.recv().await.unwrap();

    // Restart with only v2 deployed for the type: v1 exists only in the store.
    let t = t
        .restart(payment_registry(), RuntimeConfig::default())
        .await;
    t.runtime
        .deploy("payment", guest("guest-payment-reordered"))
        .await
        .unwrap();

    // The old execution resumes on v1 (its abandoned attempt times out and
    // is retried), so its commands keep v1's order.
    let outcome = t.runtime.result(&old).await.unwrap();
    assert!(
        matches!(outcome, WorkflowOutcome::Completed(_)),
        "{outcome:?}"
    );
    let history = t.runtime.history(&old).await.unwrap();
    assert_eq!(
        activity_order(&history),
        ["validate_account", "charge", "send_receipt"]
    );
    assert!(history.iter().any(|e| matches!(
        e.kind,
        EventKind::ActivityTimedOut {
            seq: 0,
            attempt: 1,
            ..
        }
    )));

    // A new execution of the same type runs v2.
    let new = t
        .start_guest("guest-payment-reordered", "payment", "new", input)
        .await;
    assert!(matches!(
        t.runtime.result(&new).await.unwrap(),
        WorkflowOutcome::Completed(_)
    ));
    let history = t.runtime.history(&new).await.unwrap();
    assert_eq!(activity_order(&history), ["charge", "validate_account"]);
    let pinned = |h: &[weft_core::Event]| match &h[0].kind {
        EventKind::ExecutionStarted { component, .. } => *component,
        _ => unreachable!(),
    };
    assert_ne!(
        pinned(&history),
        pinned(&t.runtime.history(&old).await.unwrap())
    );
}
