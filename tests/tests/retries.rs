//! Retry policies and start-to-close timeouts, in virtual time: the
//! recorded schedule must match the policy to the millisecond.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use weft_core::{Event, EventKind, TimeoutKind};
use weft_server::{ActivityContext, ActivityError, ActivityRegistry, WorkflowOutcome};
use weft_tests::{StartGuest, TestRuntime};

/// (attempt, retry delay in ms or None if final) of each failed attempt.
fn failed_attempts(history: &[Event]) -> Vec<(u32, Option<u64>)> {
    history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ActivityFailed {
                attempt, retry_at, ..
            }
            | EventKind::ActivityTimedOut {
                attempt, retry_at, ..
            } => Some((*attempt, retry_at.map(|t| t.0 - e.at.0))),
            _ => None,
        })
        .collect()
}

fn always_failing() -> (ActivityRegistry, Arc<AtomicU32>) {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let mut registry = ActivityRegistry::new();
    registry.register("flaky", move |ctx: ActivityContext, kind: String| {
        counter.fetch_add(1, Ordering::SeqCst);
        async move {
            Err::<(), _>(if ctx.attempt >= 2 && kind == "declined" {
                ActivityError::retryable("Declined", "card declined")
            } else {
                ActivityError::retryable("Busy", format!("attempt {} busy", ctx.attempt))
            })
        }
    });
    (registry, calls)
}

#[tokio::test(start_paused = true)]
async fn backoff_follows_the_policy_exactly() {
    let (activities, calls) = always_failing();
    let t = TestRuntime::new(activities).await;
    let call = json!({
        "activity": "flaky", "input": "busy",
        "initial_interval_ms": 1000, "backoff": 3.0, "maximum_interval_ms": 5000, "maximum_attempts": 5
    });
    let id = t.start_guest("guest-call", "call", "backoff", call).await;
    let WorkflowOutcome::Failed(failure) = t.runtime.result(&id).await.unwrap() else {
        panic!("must fail after 5 attempts")
    };
    assert_eq!(failure.error_type, "Busy");
    assert_eq!(failure.message, "attempt 5 busy");
    let history = t.runtime.history(&id).await.unwrap();
    assert_eq!(
        failed_attempts(&history),
        [
            (1, Some(1000)),
            (2, Some(3000)),
            (3, Some(5000)),
            (4, Some(5000)),
            (5, None)
        ]
    );
    // Each attempt started when its retry was due, not before.
    let starts: Vec<u64> = history
        .iter()
        .filter(|e| matches!(e.kind, EventKind::ActivityStarted { .. }))
        .map(|e| e.at.0 - history[0].at.0)
        .collect();
    assert_eq!(starts, [0, 1000, 4000, 9000, 14000]);
    assert_eq!(calls.load(Ordering::SeqCst), 5);
}

#[tokio::test(start_paused = true)]
async fn non_retryable_error_types_stop_retries() {
    let (activities, calls) = always_failing();
    let t = TestRuntime::new(activities).await;
    let call = json!({
        "activity": "flaky", "input": "declined", "initial_interval_ms": 10, "non_retryable": ["Declined"]
    });
    let id = t.start_guest("guest-call", "call", "declined", call).await;
    let WorkflowOutcome::Failed(failure) = t.runtime.result(&id).await.unwrap() else {
        panic!("must fail")
    };
    assert_eq!(failure.error_type, "Declined");
    let history = t.runtime.history(&id).await.unwrap();
    assert_eq!(failed_attempts(&history), [(1, Some(10)), (2, None)]);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn start_to_close_timeout_is_recorded_and_retried() {
    let mut activities = ActivityRegistry::new();
    activities.register(
        "hang-once",
        |ctx: ActivityContext, input: String| async move {
            if ctx.attempt == 1 {
                std::future::pending::<()>().await;
            }
            Ok::<_, ActivityError>(format!("{input} on attempt {}", ctx.attempt))
        },
    );
    let t = TestRuntime::new(activities).await;
    let call = json!({"activity": "hang-once", "input": "done", "start_to_close_ms": 30000, "initial_interval_ms": 500});
    let id = t.start_guest("guest-call", "call", "timeout", call).await;
    let WorkflowOutcome::Completed(result) = t.runtime.result(&id).await.unwrap() else {
        panic!("must complete")
    };
    assert_eq!(result, br#""done on attempt 2""#);
    let history = t.runtime.history(&id).await.unwrap();
    let timed_out = history
        .iter()
        .find_map(|e| match e.kind {
            EventKind::ActivityTimedOut {
                attempt: 1,
                kind,
                retry_at,
                ..
            } => Some((e.at.0 - history[0].at.0, kind, retry_at)),
            _ => None,
        })
        .expect("attempt 1 timed out");
    assert_eq!(timed_out.0, 30000);
    assert_eq!(timed_out.1, TimeoutKind::StartToClose);
    assert_eq!(failed_attempts(&history), [(1, Some(500))]);
}

#[tokio::test(start_paused = true)]
async fn attempts_carry_a_stable_idempotency_key() {
    let keys = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = keys.clone();
    let mut activities = ActivityRegistry::new();
    activities.register("keyed", move |ctx: ActivityContext, _: String| {
        seen.lock()
            .unwrap()
            .push((ctx.attempt, ctx.idempotency_key.clone()));
        async move {
            if ctx.attempt < 3 {
                return Err(ActivityError::retryable("Busy", "again"));
            }
            Ok(ctx.idempotency_key)
        }
    });
    let t = TestRuntime::new(activities).await;
    let call = json!({"activity": "keyed", "input": "x", "initial_interval_ms": 10});
    let id = t.start_guest("guest-call", "call", "keyed-wf", call).await;
    let WorkflowOutcome::Completed(result) = t.runtime.result(&id).await.unwrap() else {
        panic!("must complete")
    };
    let keys = keys.lock().unwrap().clone();
    assert_eq!(keys.iter().map(|(a, _)| *a).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(keys.iter().all(|(_, k)| *k == keys[0].1));
    assert!(
        keys[0].1.starts_with("keyed-wf/") && keys[0].1.ends_with("/0"),
        "{}",
        keys[0].1
    );
    assert_eq!(
        serde_json::from_slice::<String>(&result).unwrap(),
        keys[0].1
    );
}

#[tokio::test(start_paused = true)]
async fn heartbeat_details_survive_a_retry() {
    let mut registry = ActivityRegistry::new();
    registry.register("resumable", |ctx: ActivityContext, total: u32| async move {
        // Resume after the last checkpoint an earlier attempt reported.
        let start = ctx
            .last_heartbeat_details::<u32>()
            .map_or(0, |done| done + 1);
        let mut processed = Vec::new();
        for item in start..total {
            processed.push(item);
            ctx.heartbeat_details(&item).await?;
            if ctx.attempt == 1 && item == 4 {
                return Err(ActivityError::retryable("Crash", "died after item 4"));
            }
        }
        Ok(json!({"attempt": ctx.attempt, "processed": processed}))
    });
    let t = TestRuntime::new(registry).await;
    let call = json!({
        "activity": "resumable", "input": 10, "initial_interval_ms": 1000, "maximum_attempts": 3
    });
    let id = t.start_guest("guest-call", "call", "resume", call).await;
    match t.runtime.result(&id).await.unwrap() {
        WorkflowOutcome::Completed(bytes) => {
            let result: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(result, json!({"attempt": 2, "processed": [5, 6, 7, 8, 9]}));
        }
        other => panic!("expected completion, got {other:?}"),
    }
}
