//! Guest time and randomness come from history: identical on replay.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

use serde_json::json;
use weft_core::{EventKind, ExecutionId};
use weft_server::{RuntimeConfig, WorkflowOutcome};
use weft_tests::{StartGuest, TEST_EPOCH, TestRuntime, completed_result, echo_activities};

const SLEEP_MS: u64 = 30 * 24 * 3600 * 1000; // 30 days, skipped by paused time

#[tokio::test(start_paused = true)]
async fn std_time_and_random_are_recorded_and_replayed() {
    let t = TestRuntime::new(echo_activities()).await;
    let id = t
        .start_guest("guest-clock-random", "clock", "clock-1", json!(SLEEP_MS))
        .await;
    assert!(matches!(
        t.runtime.result(&id).await.unwrap(),
        WorkflowOutcome::Completed(_)
    ));
    let history = t.runtime.history(&id).await.unwrap();
    let seen = completed_result(&history);

    let started_ns = u128::from(history[0].at.0) * 1_000_000;
    let fired = history
        .iter()
        .find(|e| matches!(e.kind, EventKind::TimerFired { .. }))
        .expect("timer fired");
    let fired_ns = u128::from(fired.at.0) * 1_000_000;
    let ns = |v: &serde_json::Value| v.as_u64().map(u128::from).unwrap();
    assert_eq!(ns(&seen["system_time_before_ns"]), started_ns);
    assert_eq!(ns(&seen["system_time_after_ns"]), fired_ns);
    assert_eq!(ns(&seen["sdk_now_ns"]), fired_ns);
    assert_eq!(ns(&seen["instant_elapsed_ns"]), fired_ns - started_ns);
    assert!(fired.at.0 - history[0].at.0 >= SLEEP_MS);
    assert!(history[0].at >= TEST_EPOCH);
    assert_ne!(seen["getrandom"], json!(vec![0; 16]));

    // Replay through the same component: the recorded result must come out
    // again bit for bit (replay compares it), so time, getrandom, the SDK
    // random and HashMap order all repeated.
    let report = t
        .engine
        .replay(ExecutionId::new("clock-1", "r"), history.clone())
        .await
        .unwrap();
    assert!(report.closed);

    // A second execution gets different randomness (a different seed).
    let other = t
        .start_guest("guest-clock-random", "clock", "clock-2", json!(1))
        .await;
    t.runtime.result(&other).await.unwrap();
    let seen2 = completed_result(&t.runtime.history(&other).await.unwrap());
    assert_ne!(seen["getrandom"], seen2["getrandom"]);
}

#[tokio::test(start_paused = true)]
async fn evicted_execution_is_rebuilt_by_replay_with_the_same_values() {
    // Cache of one: starting the second execution evicts the first while
    // it sleeps; its timer firing brings it back by replay.
    let config = RuntimeConfig {
        cache_capacity: 1,
        ..RuntimeConfig::default()
    };
    let t = TestRuntime::with_config(echo_activities(), config.clone()).await;
    let a = t
        .start_guest("guest-clock-random", "clock", "evict-a", json!(60_000))
        .await;
    let b = t
        .start_guest("guest-clock-random", "clock", "evict-b", json!(120_000))
        .await;
    for id in [&a, &b] {
        assert!(matches!(
            t.runtime.result(id).await.unwrap(),
            WorkflowOutcome::Completed(_)
        ));
    }
    let stats = t.runtime.stats();
    assert!(stats.cached <= 1, "{stats:?}");
    assert!(stats.evictions >= 1, "{stats:?}");
    assert!(stats.replays >= 1, "{stats:?}");
    for id in [&a, &b] {
        let history = t.runtime.history(id).await.unwrap();
        let seen = completed_result(&history);
        let started_ns = u128::from(history[0].at.0) * 1_000_000;
        // Values read before the eviction were replayed, not re-read.
        assert_eq!(
            seen["system_time_before_ns"].as_u64().map(u128::from),
            Some(started_ns)
        );
        t.engine
            .replay(ExecutionId::new(id.as_str(), "r"), history)
            .await
            .unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn sleeping_workflow_is_not_loaded_at_restart_until_its_timer_fires() {
    let t = TestRuntime::new(echo_activities()).await;
    let id = t
        .start_guest("guest-clock-random", "clock", "sleeper", json!(3_600_000))
        .await;
    // Await the commit of the timer: poll the durable history.
    for _ in 0..10_000 {
        let history = t.runtime.history(&id).await.unwrap();
        if history
            .iter()
            .any(|e| matches!(e.kind, EventKind::TimerStarted { .. }))
        {
            break;
        }
        tokio::task::yield_now().await;
    }
    let before = t.runtime.history(&id).await.unwrap();
    assert_eq!(before.last().unwrap().kind.name(), "TimerStarted");

    let t = t.restart(echo_activities(), RuntimeConfig::default()).await;
    // Blocked on a durable timer: nothing to do, nothing in memory.
    assert_eq!(t.runtime.stats().cached, 0);
    assert!(matches!(
        t.runtime.result(&id).await.unwrap(),
        WorkflowOutcome::Completed(_)
    ));
    assert_eq!(t.runtime.stats().replays, 1);
    let history = t.runtime.history(&id).await.unwrap();
    assert_eq!(&history[..before.len()], &before[..]);
    let seen = completed_result(&history);
    let started_ns = u128::from(history[0].at.0) * 1_000_000;
    assert_eq!(
        seen["system_time_before_ns"].as_u64().map(u128::from),
        Some(started_ns)
    );
}
