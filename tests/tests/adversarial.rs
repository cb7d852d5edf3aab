//! Hostile or buggy guests fail alone, with a clear reason; the runtime
//! keeps serving, and the failure reproduces exactly on replay.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

use serde_json::json;
use weft_core::{EventKind, ExecutionId, Failure};
use weft_engine::EngineConfig;
use weft_server::{RuntimeConfig, RuntimeError, WorkflowOutcome};
use weft_tests::{StartGuest, TestRuntime, echo_activities};

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
    // The recorded trap names the source line of the recursing function
    // (and replays to the same text: `misbehave` checked).
    assert!(
        failure.message.contains("source lines, innermost first:")
            && failure
                .message
                .contains("tests/guests/adversarial/src/lib.rs:"),
        "{}",
        &failure.message[failure.message.len().saturating_sub(3_000)..]
    );
}

#[tokio::test(start_paused = true)]
async fn oversized_payloads_fail_with_a_clear_error() {
    let failure = misbehave("big-input", EngineConfig::default()).await;
    assert_eq!(failure.error_type, "PayloadTooLarge");
    assert!(
        failure
            .message
            .contains("input of activity `echo` is 3145730 bytes; the limit is 2097152"),
        "{}",
        failure.message
    );

    // A failure is a payload too: a 3 MiB error is not stored as such.
    let failure = misbehave("big-result", EngineConfig::default()).await;
    assert_eq!(failure.error_type, "PayloadTooLarge");
    assert!(
        failure
            .message
            .starts_with("workflow failure (Error) is 3145728 bytes"),
        "{}",
        &failure.message[..200]
    );
    assert!(failure.message.len() < 2_048);
}

#[tokio::test(start_paused = true)]
async fn endless_commands_hit_the_history_limit() {
    let limits = weft_core::Limits {
        history_warn_events: 50,
        history_max_events: 100,
        ..Default::default()
    };
    let failure = misbehave(
        "history-bomb",
        EngineConfig {
            limits,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(failure.error_type, "HistoryLimitExceeded");
    assert!(
        failure.message.contains("limit of 100 events"),
        "{}",
        failure.message
    );
}

#[tokio::test(start_paused = true)]
async fn oversized_workflow_input_is_refused_at_start() {
    let t = TestRuntime::new(echo_activities()).await;
    t.runtime
        .deploy("adversarial", weft_tests::guest("guest-adversarial"))
        .await
        .unwrap();
    let err = t
        .runtime
        .start_workflow(weft_server::StartWorkflow {
            workflow_id: "huge".into(),
            workflow_type: "adversarial".into(),
            input: vec![b'1'; 3 << 20],
            task_queue: None,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("workflow input is 3145728 bytes; the limit is 2097152"),
        "{err}"
    );
    assert!(
        t.runtime.history("huge").await.is_err(),
        "nothing was recorded"
    );
}

#[tokio::test(start_paused = true)]
async fn nan_bits_are_canonical_and_identical_across_runs() {
    let t = TestRuntime::new(echo_activities()).await;
    let mut bits = Vec::new();
    for id in ["nan-1", "nan-2"] {
        t.start_guest("guest-adversarial", "adversarial", id, json!("nan"))
            .await;
        let WorkflowOutcome::Completed(result) = t.runtime.result(id).await.unwrap() else {
            panic!("nan failed")
        };
        bits.push(serde_json::from_slice::<u64>(&result).unwrap());
        let history = t.runtime.history(id).await.unwrap();
        t.engine
            .replay(ExecutionId::new(id, "r"), history)
            .await
            .unwrap();
    }
    assert_eq!(bits, [0x7ff8_0000_0000_0000; 2], "{bits:x?}");
}

#[tokio::test]
async fn real_time_sleep_is_refused_with_a_pointer_to_ctx_sleep() {
    // Real time (no paused clock): were the sleep honoured, this would hang
    // for an hour and nextest would kill it.
    let failure = misbehave("thread-sleep", EngineConfig::default()).await;
    assert_eq!(failure.error_type, "NonDurableSleep");
    assert!(
        failure.message.contains("use ctx.sleep"),
        "{}",
        failure.message
    );
}

#[tokio::test(start_paused = true)]
async fn side_effects_that_draw_randomness_replay_identically() {
    let t = TestRuntime::new(echo_activities()).await;
    let id = t
        .start_guest(
            "guest-adversarial",
            "adversarial",
            "se-random",
            json!("side-effect-random"),
        )
        .await;
    let outcome = t.runtime.result(&id).await.unwrap();
    assert!(
        matches!(outcome, WorkflowOutcome::Completed(_)),
        "{outcome:?}"
    );
    // A rebuild (after a restart or an eviction) replays the history: the
    // side effect's code runs again on its own stream, so the activity
    // input and the result drawn after it come out the same.
    let history = t.runtime.history(&id).await.unwrap();
    let report = t
        .engine
        .replay(ExecutionId::new(&id, "r"), history)
        .await
        .unwrap();
    assert!(report.closed);
    assert_eq!(report.commands, 3, "echo, the side effect, echo");
}

#[tokio::test(start_paused = true)]
async fn a_command_inside_a_side_effect_fails_the_execution() {
    let failure = misbehave("side-effect-command", EngineConfig::default()).await;
    assert_eq!(failure.error_type, "InvalidSideEffect");
    assert!(
        failure
            .message
            .contains("a side effect's code called start-timer"),
        "{}",
        failure.message
    );
}

fn small_history(max_events: usize, max_bytes: u64) -> EngineConfig {
    EngineConfig {
        limits: weft_core::Limits {
            history_warn_events: max_events / 2,
            history_max_events: max_events,
            history_warn_bytes: max_bytes / 2,
            history_max_bytes: max_bytes,
            ..Default::default()
        },
        ..Default::default()
    }
}

async fn small_runtime(engine: &EngineConfig) -> TestRuntime {
    TestRuntime::with_engine(echo_activities(), RuntimeConfig::default(), engine.clone()).await
}

/// The reason the execution of `id` was terminated.
async fn terminated(t: &TestRuntime, id: &str) -> String {
    match t.runtime.result(id).await.unwrap() {
        WorkflowOutcome::Terminated(reason) => reason,
        other => panic!("expected termination, got {other:?}"),
    }
}

/// The execution's terminal event, after checking that its history stayed
/// within the limits of `engine` and replays to the same end.
async fn over_the_limit(t: &TestRuntime, id: &str, engine: &EngineConfig) -> EventKind {
    let history = t.runtime.history(id).await.unwrap();
    let limits = engine.limits;
    assert!(
        history.len() <= limits.history_max_events,
        "{} events",
        history.len()
    );
    let bytes: usize = history
        .iter()
        .map(|e| weft_core::encode_event(e).unwrap().len())
        .sum();
    assert!(bytes as u64 <= limits.history_max_bytes, "{bytes} bytes");
    let report = t
        .engine
        .replay(ExecutionId::new(id, "r"), history.clone())
        .await
        .unwrap();
    assert!(report.closed);
    history.last().unwrap().kind.clone()
}

#[tokio::test(start_paused = true)]
async fn deliveries_cannot_carry_a_history_past_its_event_limit() {
    let engine = small_history(100, 50 << 20);
    let t = small_runtime(&engine).await;
    let id = t
        .start_guest(
            "guest-adversarial",
            "adversarial",
            "fan",
            json!("timer-fan"),
        )
        .await;
    let reason = terminated(&t, &id).await;
    assert!(
        reason.starts_with("HistoryLimitExceeded: history reached its limit of 100 events"),
        "{reason}"
    );
    assert!(reason.contains("the firing of timer"), "{reason}");
    let last = over_the_limit(&t, &id, &engine).await;
    assert_eq!(last.name(), "ExecutionTerminated");
}

#[tokio::test(start_paused = true)]
async fn signals_to_a_full_history_are_refused_and_big_ones_terminate_it() {
    // By count: the signal that would leave no room is refused, the
    // execution runs on.
    let engine = small_history(20, 3 << 20);
    let t = small_runtime(&engine).await;
    let id = t
        .start_guest(
            "guest-adversarial",
            "adversarial",
            "full",
            json!("await-signal"),
        )
        .await;
    let mut refused = None;
    for n in 0..40 {
        match t.runtime.signal(&id, "other", b"\"x\"".to_vec()).await {
            Ok(()) => {}
            Err(e) => {
                refused = Some((n, e));
                break;
            }
        }
    }
    let (n, e) = refused.expect("a full history refuses signals");
    assert!(matches!(e, RuntimeError::HistoryFull(_)), "{e}");
    assert!(e.to_string().contains("limit of 20 events"), "{e}");
    assert!(n > 5, "refused only when full: after {n}");
    assert_eq!(
        t.runtime.describe(&id).await.unwrap().status,
        weft_store::ExecutionStatus::Running
    );

    // By bytes: 1 MiB signals fit the count. Once two are in the history,
    // a third would pass the 3 MiB limit: refused, naming bytes.
    let big = serde_json::to_vec(&"s".repeat(1 << 20)).unwrap();
    let id = t
        .start_guest(
            "guest-adversarial",
            "adversarial",
            "heavy",
            json!("await-signal"),
        )
        .await;
    for n in 1..=2 {
        t.runtime.signal(&id, "other", big.clone()).await.unwrap();
        received(&t, &id, n).await;
    }
    let e = t
        .runtime
        .signal(&id, "other", big.clone())
        .await
        .unwrap_err();
    assert!(matches!(e, RuntimeError::HistoryFull(_)), "{e}");
    assert!(e.to_string().contains("limit of 3145728 bytes"), "{e}");

    // After a restart the size is not known until the execution runs: the
    // signal is taken, and its delivery terminates the execution instead.
    let (dir, clock) = t.stop().await;
    let t = TestRuntime::on_dir(
        dir,
        clock,
        echo_activities(),
        RuntimeConfig::default(),
        engine.clone(),
    )
    .await;
    t.runtime.signal(&id, "other", big.clone()).await.unwrap();
    let reason = terminated(&t, &id).await;
    assert!(
        reason.contains("limit of 3145728 bytes") && reason.contains("signal `other`"),
        "{reason}"
    );
    over_the_limit(&t, &id, &engine).await;
    let late = t.runtime.signal(&id, "other", b"1".to_vec()).await;
    assert!(matches!(late, Err(RuntimeError::NotRunning(_))), "{late:?}");
}

/// Wait until `n` signals are in the history of `id` (tokio's paused clock
/// moves a millisecond per look).
async fn received(t: &TestRuntime, id: &str, n: usize) {
    for _ in 0..10_000 {
        let history = t.runtime.history(id).await.unwrap();
        let count = history
            .iter()
            .filter(|e| e.kind.name() == "SignalReceived")
            .count();
        if count >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    panic!("{id} never received {n} signals");
}

#[tokio::test(start_paused = true)]
async fn commands_cannot_carry_a_history_past_its_byte_limit() {
    let engine = small_history(51_200, 5 << 20);
    let failure = misbehave("value-bomb", engine.clone()).await;
    assert_eq!(failure.error_type, "HistoryLimitExceeded");
    assert!(
        failure.message.contains("limit of 5242880 bytes"),
        "{}",
        failure.message
    );
}
