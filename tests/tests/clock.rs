//! The runtime runs on the clock it is given: due times wait on that
//! clock's `sleep_until`, not on tokio's timer, so a clock the test moves
//! by hand moves every timer while real time barely passes. (Under the old
//! design the timer service slept on tokio's clock, and this test would
//! wait a real day.)

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

use serde_json::json;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use weft_core::{Clock, EventKind, Timestamp};
use weft_engine::{EngineConfig, WorkflowEngine};
use weft_server::{Runtime, RuntimeConfig, StartWorkflow, WorkflowOutcome};
use weft_store::RedbStore;
use weft_tests::{TEST_EPOCH, echo_activities, guest};

/// A clock that moves only when told to.
struct ManualClock {
    now: Arc<AtomicU64>,
    moved: Arc<Notify>,
}

impl ManualClock {
    fn advance(&self, ms: u64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
        self.moved.notify_waiters();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.now.load(Ordering::SeqCst))
    }

    fn sleep_until(&self, at: Timestamp) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let (now, moved) = (self.now.clone(), self.moved.clone());
        Box::pin(async move {
            loop {
                // Registered before the check, so an advance in between
                // is not missed.
                let notified = moved.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if now.load(Ordering::SeqCst) >= at.0 {
                    return;
                }
                notified.await;
            }
        })
    }
}

#[tokio::test]
async fn a_day_long_timer_fires_when_the_injected_clock_moves_a_day() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        RedbStore::open(
            dir.path().join("weft.redb"),
            weft_testkit::data_dir_protector(dir.path()),
        )
        .unwrap(),
    );
    let engine = Arc::new(WorkflowEngine::new(EngineConfig::default()).unwrap());
    let clock = Arc::new(ManualClock {
        now: Arc::new(AtomicU64::new(TEST_EPOCH.0)),
        moved: Arc::new(Notify::new()),
    });
    let runtime = Runtime::start(
        store,
        engine,
        echo_activities(),
        clock.clone(),
        RuntimeConfig::default(),
    )
    .await
    .unwrap();
    runtime
        .deploy("messages", guest("guest-messages"))
        .await
        .unwrap();
    runtime
        .start_workflow(StartWorkflow {
            workflow_id: "sleeper".into(),
            workflow_type: "messages".into(),
            input: serde_json::to_vec(&json!({"mode": "sleep", "days": 1})).unwrap(),
            ..Default::default()
        })
        .await
        .unwrap();
    // Follow the history (a long-poll woken by each commit) until the
    // timer is recorded.
    let mut from = 0;
    let fire_at = loop {
        let page = runtime
            .history_page("sleeper", from, 0, Some(Duration::from_secs(30)))
            .await
            .unwrap();
        from = page.first_index + page.events.len() as u64;
        let started = page.events.iter().find_map(|e| match e.kind {
            EventKind::TimerStarted { fire_at, .. } => Some(fire_at),
            _ => None,
        });
        if let Some(at) = started {
            break at;
        }
        assert!(!page.closed, "closed before its timer started");
    };
    assert_eq!(fire_at, TEST_EPOCH.plus_ms(24 * 3_600_000));
    clock.advance(24 * 3_600_000);
    let woke = tokio::time::timeout(Duration::from_secs(60), runtime.result("sleeper"))
        .await
        .expect("the timer fires on the injected clock, not after a real day")
        .unwrap();
    let WorkflowOutcome::Completed(result) = woke else {
        panic!("{woke:?}")
    };
    let result: serde_json::Value = serde_json::from_slice(&result).unwrap();
    assert_eq!(result["woke_at_ms"], json!(fire_at.0));
    runtime.shutdown().await;
}
