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
