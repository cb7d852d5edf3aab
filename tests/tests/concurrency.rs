//! Several commands in flight at once.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

use serde_json::json;
use std::sync::Arc;
use tokio::sync::Barrier;
use weft_core::EventKind;
use weft_server::{ActivityError, ActivityRegistry, WorkflowOutcome};
use weft_tests::{StartGuest, TestRuntime, completed_result};

#[tokio::test(start_paused = true)]
async fn two_activities_run_at_the_same_time() {
    // Each of the two first `echo` calls waits at a barrier for the other:
    // the workflow can only finish if both attempts run concurrently.
    let barrier = Arc::new(Barrier::new(2));
    let mut activities = ActivityRegistry::new();
    activities.register("echo", move |_ctx, input: String| {
        let barrier = barrier.clone();
        async move {
            if input != "fast" {
                barrier.wait().await;
            }
            Ok::<_, ActivityError>(input)
        }
    });
    let t = TestRuntime::new(activities).await;
    let id = t
        .start_guest(
            "guest-concurrent",
            "concurrent",
            "conc-1",
            json!(["left", "right"]),
        )
        .await;
    assert!(matches!(
        t.runtime.result(&id).await.unwrap(),
        WorkflowOutcome::Completed(_)
    ));

    let history = t.runtime.history(&id).await.unwrap();
    let result = completed_result(&history);
    assert_eq!(result["both"], json!(["left", "right"]));
    // The activity resolved first, so the select picked it over the timer.
    assert_eq!(result["race_winner"], "fast");
    // Both activities were scheduled in one workflow task, before either ran.
    let kinds: Vec<_> = history.iter().map(|e| e.kind.name()).collect();
    assert_eq!(&kinds[1..3], ["ActivityScheduled", "ActivityScheduled"]);
    // The losing timer was started but never fired.
    assert!(
        history
            .iter()
            .any(|e| matches!(e.kind, EventKind::TimerStarted { .. }))
    );
    assert!(
        !history
            .iter()
            .any(|e| matches!(e.kind, EventKind::TimerFired { .. }))
    );
}

#[tokio::test(start_paused = true)]
async fn a_queue_limited_to_one_never_runs_two_attempts_at_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut registry = weft_server::ActivityRegistry::new();
    let (r, m) = (running.clone(), most.clone());
    registry
        .register_on("serial", "echo", move |_ctx, input: String| {
            let (running, most) = (r.clone(), m.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                // Hold the slot across a (virtual) pause, so overlapping
                // attempts would be seen.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, weft_server::ActivityError>(input)
            }
        })
        .set_concurrency("serial", 1);
    let t = TestRuntime::new(registry).await;
    // `guest-concurrent` starts its activities at once and joins them.
    let ids: Vec<String> = (0..4).map(|i| format!("serial-{i}")).collect();
    for id in &ids {
        t.runtime
            .deploy("concurrent", weft_tests::guest("guest-concurrent"))
            .await
            .unwrap();
        t.runtime
            .start_workflow(weft_server::StartWorkflow {
                workflow_id: id.clone(),
                workflow_type: "concurrent".into(),
                input: serde_json::to_vec(&serde_json::json!(["a", "b"])).unwrap(),
                task_queue: Some("serial".into()),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    for id in &ids {
        assert!(matches!(
            t.runtime.result(id).await.unwrap(),
            weft_server::WorkflowOutcome::Completed(_)
        ));
    }
    assert_eq!(most.load(Ordering::SeqCst), 1, "two attempts overlapped");
}
