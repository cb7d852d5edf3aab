//! Code versioning with `patched`, and side effects.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

use serde_json::json;
use weft_core::{EventKind, ExecutionId};
use weft_engine::ReplayError;
use weft_server::WorkflowOutcome;
use weft_tests::{StartGuest, TestRuntime, completed_result, echo_activities, guest, repin};

#[tokio::test(start_paused = true)]
async fn patched_code_replays_old_histories_on_the_old_branch_and_runs_new_ones_on_the_new() {
    let t = TestRuntime::new(echo_activities()).await;
    let old = t
        .start_guest("guest-versioned-v1", "versioned", "old", json!(null))
        .await;
    assert!(matches!(
        t.runtime.result(&old).await.unwrap(),
        WorkflowOutcome::Completed(_)
    ));
    let old_history = t.runtime.history(&old).await.unwrap();

    let new = t
        .start_guest("guest-versioned-v2", "versioned", "new", json!(null))
        .await;
    assert!(matches!(
        t.runtime.result(&new).await.unwrap(),
        WorkflowOutcome::Completed(_)
    ));
    let new_history = t.runtime.history(&new).await.unwrap();
    let result = completed_result(&new_history);
    assert!(
        result[1].as_str().unwrap().starts_with("c for order-"),
        "{result}"
    );
    let kinds: Vec<_> = new_history.iter().map(|e| e.kind.name()).collect();
    assert!(
        kinds.contains(&"PatchMarker") && kinds.contains(&"SideEffectRecorded"),
        "{kinds:?}"
    );

    let v2 = t.engine.load(&guest("guest-versioned-v2")).unwrap();
    // v2 replays v1's history: `patched` is false there, so it calls `b`.
    let mut h = old_history.clone();
    repin(&mut h, v2);
    assert!(
        t.engine
            .replay(ExecutionId::new("old", "r"), h)
            .await
            .unwrap()
            .closed
    );
    // v2 replays its own history: the marker and the side effect come back
    // (the order id is read from history, and the result matches it).
    assert!(
        t.engine
            .replay(ExecutionId::new("new", "r"), new_history.clone())
            .await
            .unwrap()
            .closed
    );

    // v1 cannot replay v2's history. v1 looks like v2 with the `patched`
    // call removed, so the marker is skipped (the deprecation path) and the
    // divergence shows at the next command: v1 calls `b` where v2 recorded
    // its side effect.
    let v1 = t.engine.load(&guest("guest-versioned-v1")).unwrap();
    let mut h = new_history;
    repin(&mut h, v1);
    let err = t
        .engine
        .replay(ExecutionId::new("new", "r"), h)
        .await
        .unwrap_err();
    let ReplayError::Nondeterminism(n) = err else {
        panic!("expected nondeterminism, got {err}")
    };
    assert_eq!(n.seq, 3, "{n}");
    assert!(n.recorded.contains("side-effect value"), "{n}");
    assert!(n.actual.contains("ScheduleActivity `echo`"), "{n}");
}

#[tokio::test(start_paused = true)]
async fn side_effect_is_not_recomputed_on_replay() {
    let t = TestRuntime::new(echo_activities()).await;
    let id = t
        .start_guest("guest-versioned-v2", "versioned", "se", json!(null))
        .await;
    t.runtime.result(&id).await.unwrap();
    let mut history = t.runtime.history(&id).await.unwrap();
    // Change the recorded value: replay must return the recorded one (and
    // then pass it to `echo`, whose recorded input no longer matches).
    for e in &mut history {
        if let EventKind::SideEffectRecorded { value, .. } = &mut e.kind {
            *value = serde_json::to_vec("order-forged").unwrap();
        }
    }
    let ReplayError::Nondeterminism(n) = t
        .engine
        .replay(ExecutionId::new("se", "r"), history)
        .await
        .unwrap_err()
    else {
        panic!("expected nondeterminism")
    };
    assert!(n.actual.contains("ScheduleActivity `echo`"), "{n}");
}
