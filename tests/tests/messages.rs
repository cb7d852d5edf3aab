//! Signals, queries, durable timers, cancellation, termination,
//! continue-as-new and child workflows, end to end on the runtime, in
//! virtual time (tokio's paused clock skips ahead whenever every execution
//! is blocked, so a 30-day timer takes milliseconds).

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

use serde_json::{Value, json};
use std::sync::Arc;
use weft_core::{EventKind, Failure, InboxMessage};
use weft_server::{
    ActivityContext, ActivityError, ActivityRegistry, RuntimeConfig, RuntimeError, StartWorkflow,
    WorkflowOutcome,
};
use weft_server::{IdReusePolicy, ListFilter};
use weft_store::{ExecutionStatus, RedbStore, Store, StoreError};
use weft_tests::{
    StartGuest, TEST_EPOCH, TestRuntime, echo_activities, event_names, guest, history_with,
};

const DAY_MS: u64 = 24 * 3600 * 1000;

async fn start(t: &TestRuntime, id: &str, input: Value) -> String {
    t.start_guest("guest-messages", "messages", id, input).await
}

async fn json_result(t: &TestRuntime, id: &str) -> Value {
    match t.runtime.result(id).await.unwrap() {
        WorkflowOutcome::Completed(bytes) => serde_json::from_slice(&bytes).unwrap(),
        other => panic!("{id} did not complete: {other:?}"),
    }
}

async fn query(t: &TestRuntime, id: &str, name: &str) -> Result<Value, RuntimeError> {
    let answer = t.runtime.query(id, name, Vec::new()).await?;
    Ok(serde_json::from_slice(&answer).unwrap())
}

fn text(s: &str) -> Vec<u8> {
    serde_json::to_vec(s).unwrap()
}

#[tokio::test(start_paused = true)]
async fn signals_arrive_in_order_and_are_recorded() {
    let t = TestRuntime::new(echo_activities()).await;
    let id = start(&t, "orders", json!({"mode": "signals", "count": 3})).await;
    // One signal before the workflow waits (buffered), two after.
    t.runtime.signal(&id, "item", text("a")).await.unwrap();
    history_with(&t.runtime, &id, "SignalAwaited").await;
    t.runtime.signal(&id, "item", text("b")).await.unwrap();
    t.runtime
        .signal(&id, "other", text("ignored"))
        .await
        .unwrap();
    t.runtime.signal(&id, "item", text("c")).await.unwrap();
    assert_eq!(json_result(&t, &id).await, json!(["a", "b", "c"]));
    let history = t.runtime.history(&id).await.unwrap();
    let received: Vec<_> = history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::SignalReceived { name, payload } => {
                Some((name.clone(), String::from_utf8(payload.clone()).unwrap()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(received.len(), 4, "{received:?}");
    assert_eq!(received[0], ("item".into(), "\"a\"".into()));
    // The history replays cleanly.
    let component = t.runtime.describe(&id).await.unwrap().component;
    assert_eq!(
        component,
        weft_core::ComponentId::of(&guest("guest-messages"))
    );
    let report = t
        .engine
        .replay(t.runtime.describe(&id).await.unwrap().id, history)
        .await
        .unwrap();
    assert!(report.closed);
    // A closed execution takes no more signals.
    assert!(matches!(
        t.runtime.signal(&id, "item", text("late")).await,
        Err(RuntimeError::NotRunning(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn signals_survive_restarts_including_one_written_while_stopped() {
    let t = TestRuntime::new(echo_activities()).await;
    let id = start(
        &t,
        "durable-signals",
        json!({"mode": "signals", "count": 2}),
    )
    .await;
    history_with(&t.runtime, &id, "SignalAwaited").await;
    // Accepted, then the runtime stops at once: the workflow may or may not
    // have seen it; either way it must not be lost.
    t.runtime
        .signal(&id, "item", text("before-stop"))
        .await
        .unwrap();
    let key = t.runtime.describe(&id).await.unwrap().key;
    let (dir, clock) = t.stop().await;

    // While no runtime runs, a signal lands in the execution's inbox (as a
    // front end sharing the store would write it).
    {
        let store = RedbStore::open(
            TestRuntime::db_path(&dir),
            weft_testkit::data_dir_protector(dir.path()),
        )
        .unwrap();
        let message = InboxMessage::Signal {
            name: "item".into(),
            payload: text("while-stopped"),
        };
        assert!(store.send(key, message).await.unwrap().is_some());
        store.close().await;
    }

    let t = TestRuntime::on_dir(
        dir,
        clock,
        echo_activities(),
        RuntimeConfig::default(),
        Default::default(),
    )
    .await;
    t.runtime
        .deploy("messages", guest("guest-messages"))
        .await
        .unwrap();
    assert_eq!(
        json_result(&t, &id).await,
        json!(["before-stop", "while-stopped"])
    );
}

#[tokio::test(start_paused = true)]
async fn signal_with_start_starts_once_then_signals() {
    let t = TestRuntime::new(echo_activities()).await;
    t.runtime
        .deploy("messages", guest("guest-messages"))
        .await
        .unwrap();
    let req = || StartWorkflow {
        workflow_id: "sws".into(),
        workflow_type: "messages".into(),
        input: serde_json::to_vec(&json!({"mode": "signals", "count": 2})).unwrap(),
        task_queue: None,
        ..Default::default()
    };
    let (first, started) = t
        .runtime
        .signal_with_start(req(), "item", text("one"))
        .await
        .unwrap();
    assert!(started);
    let (second, started) = t
        .runtime
        .signal_with_start(req(), "item", text("two"))
        .await
        .unwrap();
    assert!(
        !started,
        "the running execution is signalled, not restarted"
    );
    assert_eq!(first, second);
    assert_eq!(json_result(&t, "sws").await, json!(["one", "two"]));
    // Closed now: the next signal-with-start begins a new run.
    let (third, started) = t
        .runtime
        .signal_with_start(req(), "item", text("x"))
        .await
        .unwrap();
    assert!(started);
    assert_ne!(third.run_id, first.run_id);
}

#[tokio::test(start_paused = true)]
async fn queries_answer_from_state_without_recording_even_when_evicted() {
    let config = RuntimeConfig {
        cache_capacity: 1,
        ..RuntimeConfig::default()
    };
    let t = TestRuntime::with_config(echo_activities(), config).await;
    let id = start(&t, "queried", json!({"mode": "signals", "count": 3})).await;
    t.runtime.signal(&id, "item", text("a")).await.unwrap();
    t.runtime.signal(&id, "item", text("b")).await.unwrap();
    history_with(&t.runtime, &id, "SignalAwaited").await;
    // Wait until both signals are in history and the third wait is issued.
    while t
        .runtime
        .history(&id)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.kind.name() == "SignalAwaited")
        .count()
        < 3
    {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    // Another execution takes the only cache slot: `queried` is evicted.
    let other = start(&t, "other", json!({"mode": "signals", "count": 1})).await;
    history_with(&t.runtime, &other, "SignalAwaited").await;
    assert!(t.runtime.stats().evictions >= 1);

    let before = t.runtime.history(&id).await.unwrap().len();
    assert_eq!(query(&t, &id, "items").await.unwrap(), json!(["a", "b"]));
    assert_eq!(
        t.runtime.history(&id).await.unwrap().len(),
        before,
        "queries are not recorded"
    );

    // Unknown query names are the handler's error, with the names it has.
    match query(&t, &id, "nope").await {
        Err(RuntimeError::QueryFailed(f)) => {
            assert_eq!(f.error_type, "UnknownQuery");
            assert!(f.message.contains("items"), "{f}");
        }
        other => panic!("expected UnknownQuery, got {other:?}"),
    }

    // Completed executions answer too, from their final state.
    t.runtime.signal(&id, "item", text("c")).await.unwrap();
    assert_eq!(json_result(&t, &id).await, json!(["a", "b", "c"]));
    assert_eq!(
        query(&t, &id, "items").await.unwrap(),
        json!(["a", "b", "c"])
    );
}

#[tokio::test(start_paused = true)]
async fn a_query_handler_cannot_issue_commands_and_cannot_shift_randomness() {
    let t = TestRuntime::new(echo_activities()).await;
    let id = start(&t, "bad-query", json!({"mode": "bad-query"})).await;
    history_with(&t.runtime, &id, "SignalAwaited").await;
    let err = query(&t, &id, "sneaky").await.unwrap_err();
    let message = format!("{err}");
    assert!(
        message.contains("query handler `sneaky` called schedule-activity")
            && message.contains("read-only"),
        "{message}"
    );
    // The same state gives the same draws: the replay reaches the same
    // point of the random stream every time.
    let r1 = query(&t, &id, "random").await.unwrap();
    let r2 = query(&t, &id, "random").await.unwrap();
    assert_eq!(r1, r2);
    // The execution is unharmed and finishes normally.
    t.runtime.signal(&id, "go", text("now")).await.unwrap();
    let result = json_result(&t, &id).await;
    assert_eq!(result["first"], json!("now"));
    let history = t.runtime.history(&id).await.unwrap();
    assert!(!event_names(&history).contains(&"ActivityScheduled"));
}

#[tokio::test(start_paused = true)]
async fn a_thirty_day_timer_fires_in_virtual_time_even_when_evicted() {
    // One cache slot: the first sleeper is evicted (holds no memory) while
    // it sleeps, and its timer brings it back by replay.
    let config = RuntimeConfig {
        cache_capacity: 1,
        ..RuntimeConfig::default()
    };
    let t = TestRuntime::with_config(echo_activities(), config).await;
    let id = start(&t, "month", json!({"mode": "sleep", "days": 30})).await;
    history_with(&t.runtime, &id, "TimerStarted").await;
    let other = start(&t, "fortnight", json!({"mode": "sleep", "days": 14})).await;
    history_with(&t.runtime, &other, "TimerStarted").await;
    assert_eq!(t.runtime.stats().evictions, 1);
    assert_eq!(t.runtime.stats().cached, 1);

    let result = json_result(&t, &id).await;
    let started = t.runtime.history(&id).await.unwrap()[0].at.0;
    assert_eq!(started, TEST_EPOCH.0);
    assert_eq!(
        result["woke_at_ms"].as_u64().unwrap() - started,
        30 * DAY_MS
    );
    assert_eq!(
        event_names(&t.runtime.history(&id).await.unwrap()),
        [
            "ExecutionStarted",
            "TimerStarted",
            "TimerFired",
            "ExecutionCompleted"
        ]
    );
    assert!(
        t.runtime.stats().replays >= 1,
        "the evicted sleeper was replayed"
    );
    let result = json_result(&t, &other).await;
    let started = t.runtime.history(&other).await.unwrap()[0].at.0;
    assert_eq!(
        result["woke_at_ms"].as_u64().unwrap() - started,
        14 * DAY_MS
    );
}

#[tokio::test(start_paused = true)]
async fn a_five_year_timer_fires_on_the_day() {
    // Longer than tokio's timer wheel reaches (about 2.2 years): the timer
    // service wakes early, finds nothing due, and sleeps again.
    let t = TestRuntime::new(echo_activities()).await;
    let days = 5 * 365 + 1;
    let id = start(&t, "years", json!({"mode": "sleep", "days": days})).await;
    let result = json_result(&t, &id).await;
    assert_eq!(
        result["woke_at_ms"].as_u64().unwrap() - TEST_EPOCH.0,
        days * DAY_MS
    );
}

#[tokio::test(start_paused = true)]
async fn timers_fire_after_a_restart() {
    let t = TestRuntime::new(echo_activities()).await;
    let id = start(&t, "nap", json!({"mode": "sleep", "days": 2})).await;
    history_with(&t.runtime, &id, "TimerStarted").await;
    let t = t.restart(echo_activities(), RuntimeConfig::default()).await;
    t.runtime
        .deploy("messages", guest("guest-messages"))
        .await
        .unwrap();
    let result = json_result(&t, &id).await;
    assert_eq!(
        result["woke_at_ms"].as_u64().unwrap(),
        TEST_EPOCH.0 + 2 * DAY_MS
    );
}

#[tokio::test(start_paused = true)]
async fn approval_or_timeout_and_timer_cancellation() {
    let t = TestRuntime::new(echo_activities()).await;
    // Nobody approves: the one-day timer wins.
    let slow = start(&t, "no-answer", json!({"mode": "approval", "days": 1})).await;
    let result = json_result(&t, &slow).await;
    assert_eq!(
        result,
        json!({"timed_out": true, "at_ms": TEST_EPOCH.0 + DAY_MS})
    );

    // Approved first: the timer is cancelled, recorded, and never fires.
    let fast = start(&t, "answered", json!({"mode": "approval", "days": 1})).await;
    history_with(&t.runtime, &fast, "TimerStarted").await;
    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    t.runtime
        .signal(&fast, "approve", b"true".to_vec())
        .await
        .unwrap();
    let result = json_result(&t, &fast).await;
    assert_eq!(result["approved"], json!(true));
    assert_eq!(result["timer"], json!("Cancelled"));
    let history = t.runtime.history(&fast).await.unwrap();
    let names = event_names(&history);
    assert!(names.contains(&"TimerCanceled"), "{names:?}");
    assert!(!names.contains(&"TimerFired"), "{names:?}");
}

/// `long` heartbeats until cancelled and reports when it saw it.
fn heartbeat_activities() -> (
    ActivityRegistry,
    Arc<tokio::sync::Notify>,
    tokio::sync::mpsc::UnboundedReceiver<()>,
) {
    let started = Arc::new(tokio::sync::Notify::new());
    let (seen_tx, seen) = tokio::sync::mpsc::unbounded_channel();
    let mut registry = echo_activities();
    let s = started.clone();
    registry.register("long", move |ctx: ActivityContext, (): ()| {
        let started = s.clone();
        let seen = seen_tx.clone();
        async move {
            started.notify_one();
            loop {
                if let Err(e) = ctx.heartbeat() {
                    let _ = seen.send(());
                    return Err::<(), ActivityError>(e);
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    });
    (registry, started, seen)
}

#[tokio::test(start_paused = true)]
async fn cancel_reaches_a_heartbeating_activity_and_the_workflow_compensates() {
    let (activities, started, mut seen) = heartbeat_activities();
    let t = TestRuntime::new(activities).await;
    let id = start(&t, "to-cancel", json!({"mode": "heartbeat"})).await;
    started.notified().await;
    t.runtime.cancel(&id, "customer asked").await.unwrap();
    seen.recv()
        .await
        .expect("the activity saw the cancellation");
    match t.runtime.result(&id).await.unwrap() {
        WorkflowOutcome::Failed(f) => {
            assert_eq!(f.error_type, "Cancelled");
            assert!(f.message.contains("refund"), "compensation ran: {f}");
        }
        other => panic!("expected a cancellation, got {other:?}"),
    }
    assert_eq!(
        t.runtime.describe(&id).await.unwrap().status,
        ExecutionStatus::Cancelled
    );
    let history = t.runtime.history(&id).await.unwrap();
    assert!(event_names(&history).contains(&"CancelRequested"));
}

#[tokio::test(start_paused = true)]
async fn terminate_closes_at_once_without_running_workflow_code() {
    let t = TestRuntime::new(echo_activities()).await;
    let id = start(&t, "to-terminate", json!({"mode": "signals", "count": 1})).await;
    history_with(&t.runtime, &id, "SignalAwaited").await;
    t.runtime.terminate(&id, "operator: stuck").await.unwrap();
    assert_eq!(
        t.runtime.result(&id).await.unwrap(),
        WorkflowOutcome::Terminated("operator: stuck".into())
    );
    let record = t.runtime.describe(&id).await.unwrap();
    assert_eq!(record.status, ExecutionStatus::Terminated);
    let history = t.runtime.history(&id).await.unwrap();
    assert_eq!(history.last().unwrap().kind.name(), "ExecutionTerminated");
    assert!(matches!(
        t.runtime.terminate(&id, "again").await,
        Err(RuntimeError::NotRunning(_))
    ));
    assert!(matches!(
        t.runtime.signal(&id, "item", text("x")).await,
        Err(RuntimeError::NotRunning(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn continue_as_new_keeps_the_id_and_starts_a_fresh_history() {
    let t = TestRuntime::new(echo_activities()).await;
    t.runtime
        .deploy("messages", guest("guest-messages"))
        .await
        .unwrap();
    let first = t
        .runtime
        .start_workflow(StartWorkflow {
            workflow_id: "counter".into(),
            workflow_type: "messages".into(),
            input: serde_json::to_vec(&json!({"mode": "counter", "count": 0, "until": 3})).unwrap(),
            task_queue: None,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(json_result(&t, "counter").await, json!({"count": 3}));
    let last = t.runtime.describe("counter").await.unwrap();
    assert_ne!(last.id.run_id, first.run_id);
    assert_eq!(last.id.workflow_id, "counter");
    let history = t.runtime.history("counter").await.unwrap();
    assert_eq!(
        event_names(&history),
        [
            "ExecutionStarted",
            "TimerStarted",
            "TimerFired",
            "ExecutionCompleted"
        ],
        "the last run's history starts over"
    );
    match &history[0].kind {
        EventKind::ExecutionStarted { input, .. } => {
            let input: Value = serde_json::from_slice(input).unwrap();
            assert_eq!(input["count"], json!(3));
        }
        other => panic!("unexpected first event {other:?}"),
    }
    // Three one-second runs before this one.
    assert_eq!(history[0].at.0, TEST_EPOCH.0 + 3_000);
}

#[tokio::test(start_paused = true)]
async fn children_results_and_failures_flow_back_and_survive_a_restart() {
    let t = TestRuntime::new(echo_activities()).await;
    let id = start(&t, "parent", json!({"mode": "parent"})).await;
    history_with(&t.runtime, "parent/child-1", "TimerStarted").await;
    let t = t.restart(echo_activities(), RuntimeConfig::default()).await;
    t.runtime
        .deploy("messages", guest("guest-messages"))
        .await
        .unwrap();
    let result = json_result(&t, &id).await;
    assert_eq!(result["child"]["woke_at_ms"], json!(TEST_EPOCH.0 + DAY_MS));
    assert_eq!(result["failed"], json!("BadMode"));
    let names = event_names(&t.runtime.history(&id).await.unwrap());
    assert_eq!(
        names,
        [
            "ExecutionStarted",
            "ChildStarted",
            "ChildCompleted",
            "ChildStarted",
            "ChildFailed",
            "ExecutionCompleted"
        ]
    );
    let child = t.runtime.describe("the-failing-child").await.unwrap();
    assert_eq!(child.status, ExecutionStatus::Failed);
}

#[tokio::test(start_paused = true)]
async fn parent_close_policies_terminate_cancel_or_abandon_children() {
    let t = TestRuntime::new(echo_activities()).await;
    for mode in [
        "terminating-parent",
        "cancelling-parent",
        "abandoning-parent",
    ] {
        let id = start(&t, mode, json!({"mode": mode})).await;
        assert_eq!(json_result(&t, &id).await, json!("parent done"));
    }
    let child = |mode: &str| format!("{mode}-child");
    assert_eq!(
        t.runtime
            .result(&child("terminating-parent"))
            .await
            .unwrap(),
        WorkflowOutcome::Terminated(
            "parent terminating-parent".to_owned()
                + &run_suffix(&t, "terminating-parent").await
                + " closed"
        )
    );
    match t.runtime.result(&child("cancelling-parent")).await.unwrap() {
        WorkflowOutcome::Failed(f) => assert_eq!(f.error_type, "Cancelled"),
        other => panic!("expected the child to cancel, got {other:?}"),
    }
    let abandoned = child("abandoning-parent");
    assert_eq!(
        t.runtime.describe(&abandoned).await.unwrap().status,
        ExecutionStatus::Running
    );
    t.runtime
        .signal(&abandoned, "item", text("still here"))
        .await
        .unwrap();
    assert_eq!(json_result(&t, &abandoned).await, json!(["still here"]));
}

/// `/<run id>` of the latest run of `id`, as execution ids display.
async fn run_suffix(t: &TestRuntime, id: &str) -> String {
    format!("/{}", t.runtime.describe(id).await.unwrap().id.run_id)
}

#[tokio::test(start_paused = true)]
async fn bad_messages_get_clear_errors() {
    let t = TestRuntime::new(echo_activities()).await;
    assert!(matches!(
        t.runtime.signal("nobody", "x", vec![]).await,
        Err(RuntimeError::NotFound(_))
    ));
    assert!(matches!(
        t.runtime.cancel("nobody", "x").await,
        Err(RuntimeError::NotFound(_))
    ));
    let id = start(&t, "big", json!({"mode": "signals", "count": 1})).await;
    let huge = vec![b'x'; 3 * 1024 * 1024];
    assert!(matches!(
        t.runtime.signal(&id, "item", huge).await,
        Err(RuntimeError::PayloadTooLarge(_))
    ));
    // A signal the workflow cannot decode fails the wait, not the runtime.
    t.runtime
        .signal(&id, "item", b"not json".to_vec())
        .await
        .unwrap();
    match t.runtime.result(&id).await.unwrap() {
        WorkflowOutcome::Failed(Failure { error_type, .. }) => {
            assert_eq!(error_type, "PayloadError")
        }
        other => panic!("expected a decode failure, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn updates_are_validated_recorded_and_answered() {
    let t = TestRuntime::new(echo_activities()).await;
    let id = start(&t, "cart", json!({"mode": "cart", "count": 2})).await;
    assert_eq!(
        t.runtime.update(&id, "add", text("apple")).await.unwrap(),
        b"1"
    );
    // Recorded updates survive a restart (the cart still holds "apple").
    let t = t.restart(echo_activities(), RuntimeConfig::default()).await;
    t.runtime
        .deploy("messages", guest("guest-messages"))
        .await
        .unwrap();
    let add = |item: &str| t.runtime.update(&id, "add", text(item));

    // Rejected by the validator: nothing enters history.
    let before = t.runtime.history(&id).await.unwrap().len();
    match add("").await {
        Err(RuntimeError::UpdateRejected(f)) => assert_eq!(f.error_type, "EmptyItem"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(t.runtime.history(&id).await.unwrap().len(), before);

    // Accepted, but the handler answers with an error: recorded.
    match add("boom").await {
        Err(RuntimeError::UpdateFailed(f)) => assert_eq!(f.error_type, "Boom"),
        other => panic!("expected the workflow's error, got {other:?}"),
    }
    assert_eq!(add("pear").await.unwrap(), b"2");
    match add("plum").await {
        Err(RuntimeError::UpdateRejected(f)) => assert_eq!(f.error_type, "CartFull"),
        other => panic!("expected a full cart, got {other:?}"),
    }

    t.runtime
        .signal(&id, "checkout", b"null".to_vec())
        .await
        .unwrap();
    assert_eq!(json_result(&t, &id).await, json!(["apple", "pear"]));
    let history = t.runtime.history(&id).await.unwrap();
    let names = event_names(&history);
    let count = |n: &str| names.iter().filter(|x| **x == n).count();
    assert_eq!((count("UpdateAccepted"), count("UpdateCompleted")), (3, 3));
    let report = t
        .engine
        .replay(t.runtime.describe(&id).await.unwrap().id, history)
        .await
        .unwrap();
    assert!(report.closed);
    assert!(matches!(
        add("late").await,
        Err(RuntimeError::NotRunning(_))
    ));
}

fn start_req(id: &str, input: Value) -> StartWorkflow {
    StartWorkflow {
        workflow_id: id.into(),
        workflow_type: "messages".into(),
        input: serde_json::to_vec(&input).unwrap(),
        ..Default::default()
    }
}

#[tokio::test(start_paused = true)]
async fn id_reuse_policies_decide_whether_a_closed_id_starts_again() {
    let t = TestRuntime::new(echo_activities()).await;
    t.runtime
        .deploy("messages", guest("guest-messages"))
        .await
        .unwrap();
    let sleep = json!({"mode": "sleep", "days": 0});
    let bad = json!({"mode": "no-such-mode"});
    let with = |id: &str, input: &Value, policy| StartWorkflow {
        id_reuse: policy,
        ..start_req(id, input.clone())
    };

    // Running: never, whatever the policy.
    t.runtime
        .start_workflow(start_req("ok", json!({"mode": "signals", "count": 1})))
        .await
        .unwrap();
    assert!(matches!(
        t.runtime
            .start_workflow(start_req("ok", sleep.clone()))
            .await,
        Err(RuntimeError::Store(StoreError::AlreadyRunning(_)))
    ));
    t.runtime.terminate("ok", "done with it").await.unwrap();

    // Completed: allowed by default, refused by FailedOnly and Reject.
    t.runtime
        .start_workflow(start_req("done", sleep.clone()))
        .await
        .unwrap();
    json_result(&t, "done").await;
    for policy in [
        IdReusePolicy::AllowDuplicateFailedOnly,
        IdReusePolicy::RejectDuplicate,
    ] {
        match t.runtime.start_workflow(with("done", &sleep, policy)).await {
            Err(RuntimeError::Store(StoreError::IdReuseRejected(id, why))) => {
                assert_eq!(id, "done");
                assert!(why.contains("policy"), "{why}");
            }
            other => panic!("{policy:?}: expected a refusal, got {other:?}"),
        }
    }
    t.runtime
        .start_workflow(with("done", &sleep, IdReusePolicy::AllowDuplicate))
        .await
        .unwrap();

    // Failed: FailedOnly allows it.
    t.runtime
        .start_workflow(start_req("failed", bad.clone()))
        .await
        .unwrap();
    assert!(matches!(
        t.runtime.result("failed").await.unwrap(),
        WorkflowOutcome::Failed(_)
    ));
    t.runtime
        .start_workflow(with(
            "failed",
            &sleep,
            IdReusePolicy::AllowDuplicateFailedOnly,
        ))
        .await
        .unwrap();
    json_result(&t, "failed").await;
}

#[tokio::test(start_paused = true)]
async fn run_and_execution_timeouts_close_the_execution() {
    let t = TestRuntime::new(echo_activities()).await;
    t.runtime
        .deploy("messages", guest("guest-messages"))
        .await
        .unwrap();
    let run_limited = StartWorkflow {
        run_timeout_ms: Some(DAY_MS),
        ..start_req("slow-run", json!({"mode": "sleep", "days": 2}))
    };
    t.runtime.start_workflow(run_limited).await.unwrap();
    match t.runtime.result("slow-run").await.unwrap() {
        WorkflowOutcome::Failed(f) => {
            assert_eq!(f.error_type, "Timeout");
            assert!(f.message.contains("run"), "{f}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    let record = t.runtime.describe("slow-run").await.unwrap();
    assert_eq!(record.status, ExecutionStatus::TimedOut);
    let history = t.runtime.history("slow-run").await.unwrap();
    let last = history.last().unwrap();
    assert_eq!(last.kind.name(), "ExecutionTimedOut");
    assert_eq!(last.at.0 - history[0].at.0, DAY_MS);

    // The execution timeout spans continue-as-new runs: five one-second
    // runs do not fit in 3.5 seconds, though each run is short.
    let chained = StartWorkflow {
        execution_timeout_ms: Some(3_500),
        run_timeout_ms: Some(2_000),
        ..start_req("chain", json!({"mode": "counter", "count": 0, "until": 5}))
    };
    t.runtime.start_workflow(chained).await.unwrap();
    match t.runtime.result("chain").await.unwrap() {
        WorkflowOutcome::Failed(f) => assert!(f.message.contains("execution"), "{f}"),
        other => panic!("expected an execution timeout, got {other:?}"),
    }
    let history = t.runtime.history("chain").await.unwrap();
    match &history[0].kind {
        EventKind::ExecutionStarted { input, .. } => {
            assert_eq!(
                serde_json::from_slice::<Value>(input).unwrap()["count"],
                json!(3)
            );
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn search_attributes_and_memo_are_upserted_and_listed() {
    let t = TestRuntime::new(echo_activities()).await;
    t.runtime
        .deploy("messages", guest("guest-messages"))
        .await
        .unwrap();
    for (id, n) in [("v1", 1), ("v2", 2), ("v3", 1)] {
        let mut req = start_req(id, json!({"mode": "visible", "count": n}));
        req.search_attributes.insert("region".into(), "eu".into());
        t.runtime.start_workflow(req).await.unwrap();
        history_with(&t.runtime, id, "SignalAwaited").await;
    }
    let by = |pairs: &[(&str, &str)]| ListFilter {
        search_attributes: pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        ..ListFilter::default()
    };
    let ids = |records: Vec<weft_server::ExecutionRecord>| -> Vec<String> {
        records.into_iter().map(|r| r.id.workflow_id).collect()
    };
    assert_eq!(
        ids(t.runtime.list(by(&[("customer", "c-1")])).await.unwrap()),
        ["v3", "v1"]
    );
    assert_eq!(
        ids(t
            .runtime
            .list(by(&[("customer", "c-1"), ("region", "eu")]))
            .await
            .unwrap()),
        ["v3", "v1"]
    );
    let v1 = t.runtime.describe("v1").await.unwrap();
    assert_eq!(
        v1.memo.get("note").map(String::as_str),
        Some("waits for `go`")
    );

    t.runtime
        .signal("v1", "go", b"null".to_vec())
        .await
        .unwrap();
    json_result(&t, "v1").await;
    assert_eq!(
        ids(t.runtime.list(by(&[("stage", "done")])).await.unwrap()),
        ["v1"]
    );
    assert!(
        t.runtime.describe("v1").await.unwrap().memo.is_empty(),
        "empty value removes"
    );
    let running = ListFilter {
        status: Some(ExecutionStatus::Running),
        workflow_type: Some("messages".into()),
        ..ListFilter::default()
    };
    assert_eq!(ids(t.runtime.list(running).await.unwrap()), ["v3", "v2"]);
    let limited = ListFilter {
        limit: 1,
        ..ListFilter::default()
    };
    assert_eq!(t.runtime.list(limited).await.unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn cancel_propagates_to_children_and_terminate_applies_close_policies() {
    let t = TestRuntime::new(echo_activities()).await;
    // Cancel reaches the child even though its policy is Abandon, and the
    // child's cancellation flows back to the parent as its failure.
    let id = start(&t, "cancel-parent", json!({"mode": "parent-of-waiter"})).await;
    history_with(&t.runtime, "waiting-child", "SignalAwaited").await;
    t.runtime.cancel(&id, "stop everything").await.unwrap();
    match t.runtime.result("waiting-child").await.unwrap() {
        WorkflowOutcome::Failed(f) => assert_eq!(f.error_type, "Cancelled"),
        other => panic!("expected the child to cancel, got {other:?}"),
    }
    assert!(matches!(
        t.runtime.result(&id).await.unwrap(),
        WorkflowOutcome::Failed(_)
    ));

    // Terminating a parent terminates its Terminate-policy child.
    let id = start(
        &t,
        "terminating-parent",
        json!({"mode": "terminating-parent"}),
    )
    .await;
    history_with(&t.runtime, "terminating-parent-child", "SignalAwaited").await;
    t.runtime.terminate(&id, "operator").await.unwrap();
    assert!(matches!(
        t.runtime.result("terminating-parent-child").await.unwrap(),
        WorkflowOutcome::Terminated(_)
    ));
}

#[tokio::test(start_paused = true)]
async fn reset_reruns_from_an_event_and_reapplies_later_signals() {
    let t = TestRuntime::new(echo_activities()).await;
    let id = start(&t, "to-reset", json!({"mode": "signals", "count": 2})).await;
    history_with(&t.runtime, &id, "SignalAwaited").await;
    t.runtime.signal(&id, "item", text("a")).await.unwrap();
    t.runtime.signal(&id, "item", text("b")).await.unwrap();
    assert_eq!(json_result(&t, &id).await, json!(["a", "b"]));
    let old = t.runtime.describe(&id).await.unwrap();
    let history = t.runtime.history(&id).await.unwrap();
    // Keep everything before the second signal arrived.
    let second = history
        .iter()
        .enumerate()
        .filter(|(_, e)| e.kind.name() == "SignalReceived")
        .nth(1)
        .map(|(i, _)| i)
        .unwrap();
    let new = t
        .runtime
        .reset(&id, second as u64 - 1, "redo the second item")
        .await
        .unwrap();
    assert_ne!(new.run_id, old.id.run_id);
    // The new run replays the prefix, gets `b` again (reapplied), and ends
    // the same way; the old run keeps its own history.
    assert_eq!(json_result(&t, &id).await, json!(["a", "b"]));
    let rerun = t.runtime.history(&id).await.unwrap();
    assert_eq!(&rerun[..second], &history[..second]);
    assert_eq!(t.runtime.describe(&id).await.unwrap().id, new);

    // Out of range: a clear error, nothing changes.
    let end = rerun.len() as u64;
    match t.runtime.reset(&id, end, "too far").await {
        Err(RuntimeError::Invalid(m)) => assert!(m.contains("choose an event from 0"), "{m}"),
        other => panic!("expected an invalid reset, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn namespaces_isolate_and_retention_deletes_closed_executions() {
    let t = TestRuntime::new(echo_activities()).await;
    t.runtime
        .deploy("messages", guest("guest-messages"))
        .await
        .unwrap();
    t.runtime
        .create_namespace(weft_server::NamespaceRecord {
            name: "short".into(),
            retention_seconds: 60,
            description: "keeps closed executions a minute".into(),
        })
        .await
        .unwrap();
    assert!(matches!(
        t.runtime
            .create_namespace(weft_server::NamespaceRecord {
                name: "Bad Name".into(),
                retention_seconds: 0,
                description: String::new(),
            })
            .await,
        Err(RuntimeError::Invalid(_))
    ));
    // The same workflow id in two namespaces: two executions.
    let sleep = json!({"mode": "sleep", "days": 0});
    let short = weft_core::namespace::qualify("short", "workflow id", "same").unwrap();
    t.runtime
        .start_workflow(start_req(&short, sleep.clone()))
        .await
        .unwrap();
    t.runtime
        .start_workflow(start_req("same", sleep))
        .await
        .unwrap();
    json_result(&t, &short).await;
    json_result(&t, "same").await;
    let in_short = ListFilter {
        namespace: Some("short".into()),
        ..ListFilter::default()
    };
    assert_eq!(t.runtime.list(in_short.clone()).await.unwrap().len(), 1);
    let closed_now = ListFilter {
        closed_after: Some(TEST_EPOCH),
        ..in_short.clone()
    };
    assert_eq!(t.runtime.list(closed_now).await.unwrap().len(), 1);

    // Nothing is old enough yet; two minutes later the short one goes.
    assert_eq!(t.runtime.purge_expired().await.unwrap(), 0);
    tokio::time::sleep(std::time::Duration::from_secs(120)).await;
    assert_eq!(t.runtime.purge_expired().await.unwrap(), 1);
    assert!(matches!(
        t.runtime.describe(&short).await,
        Err(RuntimeError::NotFound(_))
    ));
    assert!(t.runtime.list(in_short).await.unwrap().is_empty());
    // The default namespace keeps everything.
    assert_eq!(
        t.runtime.describe("same").await.unwrap().status,
        ExecutionStatus::Completed
    );
}

#[tokio::test(start_paused = true)]
async fn the_runtime_sweeps_expired_executions_itself_and_stops_with_it() {
    let config = weft_server::RuntimeConfig {
        retention_sweep_ms: Some(10_000),
        ..weft_server::RuntimeConfig::default()
    };
    let t = TestRuntime::with_config(echo_activities(), config).await;
    t.runtime
        .deploy("messages", guest("guest-messages"))
        .await
        .unwrap();
    t.runtime
        .create_namespace(weft_server::NamespaceRecord {
            name: "short".into(),
            retention_seconds: 60,
            description: String::new(),
        })
        .await
        .unwrap();
    let short = weft_core::namespace::qualify("short", "workflow id", "swept").unwrap();
    let sleep = json!({"mode": "sleep", "days": 0});
    t.runtime
        .start_workflow(start_req(&short, sleep))
        .await
        .unwrap();
    json_result(&t, &short).await;
    // Virtual time: the sweeps at 10 s intervals run while this sleeps;
    // the first one past the minute of retention deletes it.
    tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    assert!(t.runtime.describe(&short).await.is_ok(), "kept a minute");
    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    assert!(matches!(
        t.runtime.describe(&short).await,
        Err(RuntimeError::NotFound(_))
    ));
    // The sweeper is the runtime's task: shutdown waits for it to stop.
    t.runtime.clone().shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_child_started_in_the_parents_last_task_still_starts() {
    let t = TestRuntime::new(echo_activities()).await;
    // `days: 1` makes the parent return right after starting its child.
    let input = json!({"mode": "abandoning-parent", "days": 1});
    let id = start(&t, "abandoning-parent", input).await;
    assert_eq!(json_result(&t, &id).await, json!("parent done"));
    let abandoned = "abandoning-parent-child";
    history_with(&t.runtime, abandoned, "SignalAwaited").await;
    t.runtime
        .signal(abandoned, "item", text("orphan"))
        .await
        .unwrap();
    assert_eq!(json_result(&t, abandoned).await, json!(["orphan"]));

    let input = json!({"mode": "terminating-parent", "days": 1});
    let id = start(&t, "terminating-parent", input).await;
    assert_eq!(json_result(&t, &id).await, json!("parent done"));
    assert!(matches!(
        t.runtime.result("terminating-parent-child").await.unwrap(),
        WorkflowOutcome::Terminated(_)
    ));
}

#[tokio::test(start_paused = true)]
async fn start_and_watch_answers_from_the_closing_run_and_follows_continue_as_new() {
    let t = TestRuntime::new(echo_activities()).await;
    t.runtime
        .deploy("messages", guest("guest-messages"))
        .await
        .unwrap();
    let req = |id: &str, input: Value| StartWorkflow {
        workflow_id: id.into(),
        workflow_type: "messages".into(),
        input: serde_json::to_vec(&input).unwrap(),
        ..Default::default()
    };

    // Continue-as-new: the wait follows the id to the run that completes.
    let closed = t
        .runtime
        .start_and_watch(req(
            "watched-counter",
            json!({"mode": "counter", "count": 0, "until": 2}),
        ))
        .await
        .unwrap();
    let (run, outcome) = closed.await.unwrap();
    let WorkflowOutcome::Completed(bytes) = outcome else {
        panic!("expected completion, got {outcome:?}")
    };
    assert_eq!(
        serde_json::from_slice::<Value>(&bytes).unwrap(),
        json!({"count": 2})
    );
    assert_eq!(run, t.runtime.describe("watched-counter").await.unwrap().id);

    // Terminated while watched: the terminate call hands over its reason.
    let closed = t
        .runtime
        .start_and_watch(req(
            "watched-signals",
            json!({"mode": "signals", "count": 1}),
        ))
        .await
        .unwrap();
    let closed = tokio::spawn(closed);
    history_with(&t.runtime, "watched-signals", "SignalAwaited").await;
    t.runtime
        .terminate("watched-signals", "operator: stop")
        .await
        .unwrap();
    let (run, outcome) = closed.await.unwrap().unwrap();
    assert_eq!(
        outcome,
        WorkflowOutcome::Terminated("operator: stop".into())
    );
    assert_eq!(run, t.runtime.describe("watched-signals").await.unwrap().id);

    // The closing actor hands over the result, the same one the store has.
    let closed = t
        .runtime
        .start_and_watch(req(
            "watched-signal",
            json!({"mode": "signals", "count": 1}),
        ))
        .await
        .unwrap();
    let closed = tokio::spawn(closed);
    history_with(&t.runtime, "watched-signal", "SignalAwaited").await;
    t.runtime
        .signal("watched-signal", "item", text("x"))
        .await
        .unwrap();
    let (_, outcome) = closed.await.unwrap().unwrap();
    assert_eq!(outcome, t.runtime.result("watched-signal").await.unwrap());
    assert_eq!(json_result(&t, "watched-signal").await, json!(["x"]));
}
