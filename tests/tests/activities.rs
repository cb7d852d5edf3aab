//! Activity options beyond retries (schedule-to-start, schedule-to-close
//! and heartbeat timeouts, jitter, retry-after), local activities and
//! queue rate limits, in virtual time: recorded times are exact.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use weft_core::{Event, EventKind, TimeoutKind};
use weft_server::{
    ActivityContext, ActivityError, ActivityRegistry, RuntimeConfig, WorkflowOutcome,
};
use weft_tests::{StartGuest, TestRuntime};

/// Milliseconds since the execution started.
fn rel(history: &[Event], e: &Event) -> u64 {
    e.at.0 - history[0].at.0
}

/// (attempt, kind, ms since start, retry delay) of each timed-out attempt.
fn timeouts(history: &[Event]) -> Vec<(u32, TimeoutKind, u64, Option<u64>)> {
    history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ActivityTimedOut {
                attempt,
                kind,
                retry_at,
                ..
            } => Some((
                *attempt,
                *kind,
                rel(history, e),
                retry_at.map(|t| t.0 - e.at.0),
            )),
            _ => None,
        })
        .collect()
}

/// Retry delays of failed attempts, in order.
fn retry_delays(history: &[Event]) -> Vec<Option<u64>> {
    history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ActivityFailed { retry_at, .. } => Some(retry_at.map(|t| t.0 - e.at.0)),
            _ => None,
        })
        .collect()
}

fn starts(history: &[Event]) -> Vec<u64> {
    history
        .iter()
        .filter(|e| matches!(e.kind, EventKind::ActivityStarted { .. }))
        .map(|e| rel(history, e))
        .collect()
}

async fn failed(t: &TestRuntime, id: &str) -> weft_core::Failure {
    match t.runtime.result(id).await.unwrap() {
        WorkflowOutcome::Failed(f) => f,
        other => panic!("expected a failure, got {other:?}"),
    }
}

async fn completed(t: &TestRuntime, id: &str) -> serde_json::Value {
    match t.runtime.result(id).await.unwrap() {
        WorkflowOutcome::Completed(v) => serde_json::from_slice(&v).unwrap(),
        other => panic!("expected a result, got {other:?}"),
    }
}

fn hanging() -> ActivityRegistry {
    let mut activities = ActivityRegistry::new();
    activities.register("hang", |_: ActivityContext, _: String| async move {
        std::future::pending::<()>().await;
        Ok::<(), ActivityError>(())
    });
    activities
}

#[tokio::test(start_paused = true)]
async fn schedule_to_start_fails_an_activity_no_worker_takes() {
    let t = TestRuntime::new(ActivityRegistry::new()).await;
    let call = json!({
        "activity": "anything", "input": null, "task_queue": "nobody-serves-this",
        "schedule_to_start_ms": 5000
    });
    let id = t.start_guest("guest-call", "call", "s2s", call).await;
    let failure = failed(&t, &id).await;
    assert_eq!(failure.error_type, "Timeout");
    assert!(failure.message.contains("schedule-to-start"), "{failure}");
    let history = t.runtime.history(&id).await.unwrap();
    assert_eq!(
        timeouts(&history),
        [(1, TimeoutKind::ScheduleToStart, 5000, None)]
    );
    assert!(starts(&history).is_empty(), "no attempt started");
}

#[tokio::test(start_paused = true)]
async fn schedule_to_close_bounds_the_activity_across_retries() {
    let t = TestRuntime::new(hanging()).await;
    let call = json!({
        "activity": "hang", "input": "x",
        "start_to_close_ms": 3000, "schedule_to_close_ms": 5000, "initial_interval_ms": 500
    });
    let id = t.start_guest("guest-call", "call", "s2c", call).await;
    let failure = failed(&t, &id).await;
    assert!(failure.message.contains("schedule-to-close"), "{failure}");
    let history = t.runtime.history(&id).await.unwrap();
    assert_eq!(
        timeouts(&history),
        [
            (1, TimeoutKind::StartToClose, 3000, Some(500)),
            // Attempt 2 started at 3.5 s; its 3 s limit is cut to the
            // activity's 5 s.
            (2, TimeoutKind::ScheduleToClose, 5000, None),
        ]
    );
    assert_eq!(starts(&history), [0, 3500]);
}

#[tokio::test(start_paused = true)]
async fn a_missed_heartbeat_times_out_and_the_retry_resumes_from_the_last_details() {
    let mut activities = ActivityRegistry::new();
    activities.register("batch", |ctx: ActivityContext, items: u32| async move {
        let mut done: u32 = ctx.last_heartbeat_details().unwrap_or(0);
        while done < items {
            done += 1;
            tokio::time::sleep(Duration::from_millis(500)).await;
            ctx.heartbeat_details(&done).await?;
            if ctx.attempt == 1 && done == 4 {
                // Stuck: no more heartbeats.
                std::future::pending::<()>().await;
            }
        }
        Ok::<_, ActivityError>(json!({"attempt": ctx.attempt, "done": done}))
    });
    let t = TestRuntime::new(activities).await;
    let call = json!({
        "activity": "batch", "input": 10, "start_to_close_ms": 600000,
        "heartbeat_ms": 2000, "initial_interval_ms": 100
    });
    let id = t.start_guest("guest-call", "call", "hb", call).await;
    assert_eq!(completed(&t, &id).await, json!({"attempt": 2, "done": 10}));
    let history = t.runtime.history(&id).await.unwrap();
    // The 4th beat at 2 s; the deadline 2 s later.
    assert_eq!(
        timeouts(&history),
        [(1, TimeoutKind::Heartbeat, 4000, Some(100))]
    );
}

#[tokio::test(start_paused = true)]
async fn plain_heartbeats_keep_a_long_attempt_alive() {
    let mut activities = ActivityRegistry::new();
    activities.register("long", |ctx: ActivityContext, secs: u64| async move {
        for _ in 0..secs {
            tokio::time::sleep(Duration::from_secs(1)).await;
            ctx.heartbeat()?;
        }
        Ok::<_, ActivityError>(ctx.attempt)
    });
    let t = TestRuntime::new(activities).await;
    let call = json!({"activity": "long", "input": 20, "heartbeat_ms": 3000});
    let id = t.start_guest("guest-call", "call", "alive", call).await;
    assert_eq!(
        completed(&t, &id).await,
        json!(1),
        "one attempt, never timed out"
    );
}

#[tokio::test(start_paused = true)]
async fn an_activity_can_ask_for_its_retry_delay() {
    let mut activities = ActivityRegistry::new();
    activities.register("limited", |ctx: ActivityContext, _: String| async move {
        if ctx.attempt < 3 {
            return Err(ActivityError::retryable("RateLimited", "429")
                .retry_after(Duration::from_secs(7 * ctx.attempt as u64)));
        }
        Ok(ctx.attempt)
    });
    let t = TestRuntime::new(activities).await;
    let call = json!({"activity": "limited", "input": "x", "initial_interval_ms": 100});
    let id = t
        .start_guest("guest-call", "call", "retry-after", call)
        .await;
    assert_eq!(completed(&t, &id).await, json!(3));
    let history = t.runtime.history(&id).await.unwrap();
    assert_eq!(retry_delays(&history), [Some(7000), Some(14000)]);
}

#[tokio::test(start_paused = true)]
async fn jitter_spreads_retry_delays_within_bounds() {
    let mut activities = ActivityRegistry::new();
    activities.register("busy", |_: ActivityContext, _: String| async move {
        Err::<(), _>(ActivityError::retryable("Busy", "busy"))
    });
    let t = TestRuntime::new(activities).await;
    let call = json!({
        "activity": "busy", "input": "x", "initial_interval_ms": 1000, "backoff": 1.0,
        "maximum_attempts": 6, "jitter": 0.5
    });
    let id = t.start_guest("guest-call", "call", "jitter", call).await;
    failed(&t, &id).await;
    let history = t.runtime.history(&id).await.unwrap();
    let delays: Vec<u64> = retry_delays(&history).into_iter().flatten().collect();
    assert_eq!(delays.len(), 5);
    assert!(
        delays.iter().all(|d| (500..=1500).contains(d)),
        "{delays:?}"
    );
    assert!(
        delays.iter().any(|d| *d != 1000),
        "jitter moved no delay: {delays:?}"
    );
}

fn flaky(fail_until: u32) -> (ActivityRegistry, Arc<AtomicU32>) {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let mut activities = ActivityRegistry::new();
    activities.register("flaky", move |ctx: ActivityContext, input: String| {
        counter.fetch_add(1, Ordering::SeqCst);
        async move {
            if ctx.attempt < fail_until {
                return Err(ActivityError::retryable("Busy", "busy"));
            }
            Ok(format!("{input} after {} attempts", ctx.attempt))
        }
    });
    (activities, calls)
}

#[tokio::test(start_paused = true)]
async fn a_local_activity_runs_without_a_queue_and_retries_in_place() {
    let (activities, calls) = flaky(3);
    let t = TestRuntime::new(activities).await;
    // No worker serves this queue: a queued activity would never run.
    let call = json!({
        "activity": "flaky", "input": "paid", "local": true,
        "task_queue": "nobody-serves-this", "initial_interval_ms": 200
    });
    let id = t.start_guest("guest-call", "call", "local", call).await;
    assert_eq!(completed(&t, &id).await, json!("paid after 3 attempts"));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let history = t.runtime.history(&id).await.unwrap();
    assert_eq!(retry_delays(&history), [Some(200), Some(400)]);
    assert_eq!(starts(&history), [0, 200, 600]);
    let kinds: Vec<&str> = history.iter().map(|e| e.kind.name()).collect();
    assert_eq!(
        kinds,
        [
            "ExecutionStarted",
            "ActivityScheduled",
            "ActivityStarted",
            "ActivityFailed",
            "ActivityStarted",
            "ActivityFailed",
            "ActivityStarted",
            "ActivityCompleted",
            "ExecutionCompleted"
        ]
    );
    // Everything is recorded before the workflow closes: replay agrees.
    let report = t
        .engine
        .replay(weft_core::ExecutionId::new(&id, "r"), history)
        .await
        .unwrap();
    assert!(report.closed);
}

#[tokio::test(start_paused = true)]
async fn a_local_activity_with_a_long_backoff_continues_on_its_queue() {
    let (activities, calls) = flaky(2);
    let config = RuntimeConfig {
        local_retry_threshold_ms: 5_000,
        ..RuntimeConfig::default()
    };
    let t = TestRuntime::with_config(activities, config).await;
    let call = json!({
        "activity": "flaky", "input": "paid", "local": true, "initial_interval_ms": 30000
    });
    let id = t.start_guest("guest-call", "call", "handoff", call).await;
    assert_eq!(completed(&t, &id).await, json!("paid after 2 attempts"));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let history = t.runtime.history(&id).await.unwrap();
    assert_eq!(retry_delays(&history), [Some(30000)]);
    // Attempt 2 ran from the queue when its retry was due.
    assert_eq!(starts(&history), [0, 30000]);
}

#[tokio::test(start_paused = true)]
async fn a_queue_rate_limit_spaces_dispatches() {
    let mut activities = ActivityRegistry::new();
    activities.register("stamp", |_: ActivityContext, _: String| async move {
        Ok::<_, ActivityError>(())
    });
    let mut config = RuntimeConfig::default();
    config.queue_rate_limits.insert("default".into(), 2.0);
    let t = TestRuntime::with_config(activities, config).await;
    let call = json!({"activity": "stamp", "input": "x", "copies": 6});
    let id = t.start_guest("guest-call", "call", "rate", call).await;
    completed(&t, &id).await;
    let history = t.runtime.history(&id).await.unwrap();
    let starts = starts(&history);
    assert_eq!(starts.len(), 6);
    // A burst of 2, then one every 500 ms.
    assert_eq!(&starts[..2], [0, 0]);
    for pair in starts[1..].windows(2) {
        assert!(pair[1] - pair[0] >= 499, "dispatched too soon: {starts:?}");
    }
    assert!(starts[5] >= 1999, "{starts:?}");
}
