//! Hostile or buggy guests fail alone, with a clear reason; the runtime
//! keeps serving, and the failure reproduces exactly on replay.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

use serde_json::json;
use weft_core::{ExecutionId, Failure};
use weft_engine::EngineConfig;
use weft_server::{RuntimeConfig, WorkflowOutcome};
use weft_tests::{TestRuntime, echo_activities};

/// Run guest `adversarial` in `mode` next to a well-behaved workflow;
/// return the adversarial execution's failure after checking the other
/// completed and the failure replays identically.
async fn misbehave(mode: &str, engine: EngineConfig) -> Failure {
    let t = TestRuntime::with_engine(echo_activities(), RuntimeConfig::default(), engine).await;
    let bad = t
        .start_guest("guest-adversarial", "adversarial", mode, json!(mode))
        .await;
    let good = t
        .start_guest("guest-concurrent", "concurrent", "good", json!(["a", "b"]))
        .await;
    let WorkflowOutcome::Failed(failure) = t.runtime.result(&bad).await.unwrap() else {
        panic!("{mode}: the guest must fail")
    };
    assert!(
        matches!(
            t.runtime.result(&good).await.unwrap(),
            WorkflowOutcome::Completed(_)
        ),
        "{mode}"
    );
    let history = t.runtime.history(&bad).await.unwrap();
    assert_eq!(history.last().unwrap().kind.name(), "ExecutionFailed");
    // Replay runs the guest into the same wall and compares the recorded
    // failure with the new one: it must match exactly.
    t.engine
        .replay(ExecutionId::new(mode, "r"), history)
        .await
        .unwrap();
    failure
}

#[tokio::test(start_paused = true)]
async fn endless_loop_times_out_its_workflow_task() {
    let engine = EngineConfig {
        fuel_per_step: 20_000_000,
        fuel_yield_interval: 1_000_000,
        ..Default::default()
    };
    let failure = misbehave("loop", engine).await;
    assert_eq!(failure.error_type, "WorkflowTaskTimeout");
    assert!(
        failure
            .message
            .contains("20000000 instructions without waiting"),
        "{}",
        failure.message
    );
}

#[tokio::test(start_paused = true)]
async fn memory_bomb_hits_the_memory_limit() {
    let engine = EngineConfig {
        max_memory_bytes: 32 << 20,
        ..Default::default()
    };
    let failure = misbehave("alloc", engine).await;
    assert_eq!(
        failure.error_type, "MemoryLimitExceeded",
        "{}",
        failure.message
    );
}

#[tokio::test(start_paused = true)]
async fn unbounded_recursion_is_a_stack_overflow() {
    let failure = misbehave("recurse", EngineConfig::default()).await;
    assert_eq!(failure.error_type, "StackOverflow", "{}", failure.message);
}
