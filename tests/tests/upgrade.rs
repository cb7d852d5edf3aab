//! Operators move running executions to new code: dry run, upgrade the
//! ones that replay cleanly, and deal with parked ones (fix or fail).

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

use serde_json::json;
use weft_core::EventKind;
use weft_server::{RuntimeConfig, RuntimeError, WorkflowOutcome};
use weft_tests::{StartGuest, TestRuntime, completed_result, echo_activities, guest, history_with};

#[tokio::test(start_paused = true)]
async fn dry_run_then_upgrade_moves_a_sleeping_execution_to_patched_code() {
    let t = TestRuntime::new(echo_activities()).await;
    let id = t
        .start_guest("guest-versioned-v1", "versioned", "sleeper", json!(null))
        .await;
    history_with(&t.runtime, &id, "TimerStarted").await;

    // An incompatible version is reported, with the step.
    let checks = t
        .runtime
        .dry_run_upgrade("versioned", guest("guest-concurrent"))
        .await
        .unwrap();
    assert_eq!(checks.len(), 1);
    let divergence = checks[0].outcome.clone().unwrap_err();
    assert!(
        divergence.contains("nondeterminism at command #0"),
        "{divergence}"
    );

    // v2 replays the history: upgrade moves the execution to it.
    let checks = t
        .runtime
        .dry_run_upgrade("versioned", guest("guest-versioned-v2"))
        .await
        .unwrap();
    assert!(checks[0].outcome.is_ok(), "{checks:?}");
    let checks = t
        .runtime
        .upgrade("versioned", guest("guest-versioned-v2"), false)
        .await
        .unwrap();
    assert!(checks[0].upgraded);

    // The timer fires under v2, which never ran this point before, so it
    // takes the patched branch.
    assert!(matches!(
        t.runtime.result(&id).await.unwrap(),
        WorkflowOutcome::Completed(_)
    ));
    let history = t.runtime.history(&id).await.unwrap();
    let result = completed_result(&history);
    assert_eq!(result[0], "a");
    assert!(
        result[1].as_str().unwrap().starts_with("c for order-"),
        "{result}"
    );
    assert!(
        history
            .iter()
            .any(|e| matches!(e.kind, EventKind::ComponentUpgraded { .. }))
    );
}

#[tokio::test(start_paused = true)]
async fn a_bad_forced_upgrade_parks_executions_until_fixed_or_failed() {
    let t = TestRuntime::new(echo_activities()).await;
    let fixed = t
        .start_guest("guest-versioned-v1", "versioned", "to-fix", json!(null))
        .await;
    let failed = t
        .start_guest("guest-versioned-v1", "versioned", "to-fail", json!(null))
        .await;
    for id in [&fixed, &failed] {
        history_with(&t.runtime, id, "TimerStarted").await;
    }

    // Forced onto incompatible code: both replay, diverge and park.
    let checks = t
        .runtime
        .upgrade("versioned", guest("guest-concurrent"), true)
        .await
        .unwrap();
    assert!(
        checks.iter().all(|c| c.upgraded && c.outcome.is_err()),
        "{checks:?}"
    );
    for id in [&fixed, &failed] {
        let history = history_with(&t.runtime, id, "ExecutionParked").await;
        assert_eq!(history.last().unwrap().kind.name(), "ExecutionParked");
        let reason = t.runtime.parked_reason(id).await.unwrap().expect("parked");
        assert!(reason.contains("nondeterminism at command #0"), "{reason}");
        // Parked executions stay put, even when their timer is due.
        assert!(matches!(
            t.runtime.describe(id).await.unwrap().status,
            weft_store::ExecutionStatus::Running
        ));
    }

    // The operator fails one...
    t.runtime
        .fail(&failed, "bad deploy, refunded by hand")
        .await
        .unwrap();
    let WorkflowOutcome::Failed(failure) = t.runtime.result(&failed).await.unwrap() else {
        panic!("must fail")
    };
    assert_eq!(failure.error_type, "FailedByOperator");
    assert!(
        t.runtime.fail(&failed, "again").await.is_err(),
        "closed executions cannot be failed"
    );

    // ...and deploys a fix (v1 again) for the other, which resumes.
    let checks = t
        .runtime
        .upgrade("versioned", guest("guest-versioned-v1"), false)
        .await
        .unwrap();
    assert_eq!(checks.len(), 1);
    assert!(checks[0].upgraded, "{checks:?}");
    assert!(matches!(
        t.runtime.result(&fixed).await.unwrap(),
        WorkflowOutcome::Completed(_)
    ));
    assert_eq!(t.runtime.parked_reason(&fixed).await.unwrap(), None);
    assert_eq!(
        completed_result(&t.runtime.history(&fixed).await.unwrap()),
        json!(["a", "b"])
    );
}

#[tokio::test(start_paused = true)]
async fn clients_waiting_on_a_parked_execution_are_told_why_and_what_to_do() {
    let t = TestRuntime::new(echo_activities()).await;
    let id = t
        .start_guest("guest-versioned-v1", "versioned", "waited-on", json!(null))
        .await;
    history_with(&t.runtime, &id, "TimerStarted").await;
    // A client waits for the result before the execution parks...
    let runtime = t.runtime.clone();
    let waiter = tokio::spawn({
        let id = id.clone();
        async move { runtime.result(&id).await }
    });
    t.runtime
        .upgrade("versioned", guest("guest-concurrent"), true)
        .await
        .unwrap();
    let check = |e: RuntimeError| {
        let RuntimeError::Parked {
            workflow_id,
            workflow_type,
            reason,
        } = &e
        else {
            panic!("expected Parked, got {e}")
        };
        assert_eq!(workflow_id, "waited-on");
        assert_eq!(workflow_type, "versioned");
        assert!(reason.contains("nondeterminism at command #0"), "{reason}");
        let message = e.to_string();
        assert!(
            message.contains("weft workflow upgrade --type versioned"),
            "{message}"
        );
        assert!(
            message.contains("weft workflow fail waited-on"),
            "{message}"
        );
    };
    // ...and is woken by the parking, with the divergence.
    check(waiter.await.unwrap().unwrap_err());
    // After a restart, a new wait (what `weft run` and `workflow result`
    // do) reports the parked state at once instead of blocking.
    let t = t.restart(echo_activities(), RuntimeConfig::default()).await;
    check(t.runtime.result(&id).await.unwrap_err());
}
