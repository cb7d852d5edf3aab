//! Replay: a recorded history replays to identical commands; changed code
//! is caught as nondeterminism that names the step.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

use serde_json::json;
use weft_core::ExecutionId;
use weft_engine::ReplayError;
use weft_server::ActivityRegistry;
use weft_tests::{StartGuest, TestRuntime, guest, repin};

async fn completed_payment() -> (TestRuntime, Vec<weft_core::Event>) {
    let mut activities = ActivityRegistry::new();
    payment_activities::register(&mut activities, payment_activities::Processor::default());
    let t = TestRuntime::new(activities).await;
    let input = json!({"account": "acct-1", "amount_cents": 100, "currency": "USD"});
    let id = t
        .start_guest("payment-workflow", "payment", "pay-replay", input)
        .await;
    t.runtime.result(&id).await.unwrap();
    let history = t.runtime.history(&id).await.unwrap();
    (t, history)
}

#[tokio::test(start_paused = true)]
async fn completed_history_replays_with_identical_commands() {
    let (t, history) = completed_payment().await;
    let report = t
        .engine
        .replay(ExecutionId::new("pay-replay", "r"), history.clone())
        .await
        .unwrap();
    assert_eq!(report.commands, 3);
    assert!(report.closed);

    // Every prefix that ends where the workflow was blocked replays too.
    for cut in [2, 6, 9] {
        let report = t
            .engine
            .replay(ExecutionId::new("p", "r"), history[..cut].to_vec())
            .await
            .unwrap();
        assert!(!report.closed, "prefix {cut}");
    }
}

#[tokio::test(start_paused = true)]
async fn reordered_activities_are_reported_as_nondeterminism_at_the_step() {
    let (t, history) = completed_payment().await;
    let reordered = t.engine.load(&guest("guest-payment-reordered")).unwrap();
    // Pin the recorded history to the changed component, as a redeploy
    // under a running execution would.
    let mut history = history;
    repin(&mut history, reordered);
    let err = t
        .engine
        .replay(ExecutionId::new("pay-replay", "r"), history)
        .await
        .unwrap_err();
    let ReplayError::Nondeterminism(n) = err else {
        panic!("expected nondeterminism, got {err}")
    };
    assert_eq!(n.seq, 0);
    assert!(n.recorded.contains("`validate_account`"), "{n}");
    assert!(n.actual.contains("`charge`"), "{n}");
    assert!(
        n.to_string().contains("nondeterminism at command #0"),
        "{n}"
    );
}

#[tokio::test(start_paused = true)]
async fn tampered_result_is_caught_at_the_end() {
    let (t, mut history) = completed_payment().await;
    let last = history.len() - 1;
    history[last].kind = weft_core::EventKind::ExecutionCompleted {
        result: b"{\"forged\":true}".to_vec(),
    };
    let err = t
        .engine
        .replay(ExecutionId::new("p", "r"), history)
        .await
        .unwrap_err();
    assert!(matches!(err, ReplayError::Nondeterminism(_)), "{err}");
}

#[tokio::test(start_paused = true)]
async fn divergence_names_the_guest_functions_and_survives_a_json_round_trip() {
    let (t, history) = completed_payment().await;
    // Export as `weft workflow show --output json` does, and read it back.
    let json = serde_json::to_string_pretty(&history).unwrap();
    let mut imported: Vec<weft_core::Event> = serde_json::from_str(&json).unwrap();
    assert_eq!(imported, history);
    t.engine
        .replay(ExecutionId::new("p", "r"), imported.clone())
        .await
        .unwrap();

    let reordered = t.engine.load(&guest("guest-payment-reordered")).unwrap();
    repin(&mut imported, reordered);
    let err = t
        .engine
        .replay(ExecutionId::new("p", "r"), imported)
        .await
        .unwrap_err();
    let ReplayError::Nondeterminism(n) = err else {
        panic!("expected nondeterminism, got {err}")
    };
    let location = n
        .location
        .clone()
        .expect("divergence carries a guest location");
    // The guest's functions on the stack are named (from the name section;
    // the workflow function itself is inlined into `run`): here, the
    // activity call that diverged.
    assert!(
        location.contains("guest_payment_reordered.wasm!run"),
        "{location}"
    );
    assert!(location.contains("ActivityBuilder"), "{location}");
    // And each frame carries its source line, read from the component's
    // line tables only now that a divergence is reported: the workflow's
    // own call site among them.
    assert!(
        location.contains("tests/guests/payment-reordered/src/lib.rs:"),
        "{location}"
    );
    assert!(
        n.to_string()
            .contains("where the workflow code made that call"),
        "{n}"
    );
}
