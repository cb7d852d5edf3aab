//! The store's invariants, checked directly against `RedbStore`.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

use weft_core::{
    ActivityOptions, AttemptOutcome, ComponentId, Event, EventKind, ExecutionId, Failure,
    InboxMessage, RetryPolicy, TimeoutKind, Timestamp,
};
use weft_store::{
    ActivityTimeouts, AttemptResult, ExecutionStatus, NewActivityTask, NewExecution, RedbStore,
    Store, StoreError, TaskState, Transition,
};

const T0: Timestamp = Timestamp(1_000_000);

async fn store_with_execution(dir: &tempfile::TempDir, id: &str) -> (RedbStore, u64) {
    let store = RedbStore::open(dir.path().join("weft.redb")).unwrap();
    let started = Event::new(
        T0,
        EventKind::ExecutionStarted {
            workflow_type: "t".into(),
            component: ComponentId::default(),
            input: b"null".to_vec(),
            random_seed: [0; 32],
            task_queue: "q".into(),
        },
    );
    let new = NewExecution {
        id: ExecutionId::new(id, "run"),
        workflow_type: "t".into(),
        component: ComponentId::default(),
        task_queue: "q".into(),
        started,
        parent: None,
        id_reuse: Default::default(),
        run_timeout_ms: None,
        execution_deadline: None,
        search_attributes: Default::default(),
        memo: Default::default(),
    };
    let record = store.start_execution(new).await.unwrap();
    (store, record.key)
}

fn schedule(key: u64, first_index: u64, seq: u32, retry: RetryPolicy, stc_ms: u64) -> Transition {
    let timeouts = ActivityTimeouts {
        start_to_close_ms: stc_ms,
        ..ActivityTimeouts::default()
    };
    schedule_with(key, first_index, seq, retry, timeouts)
}

fn schedule_with(
    key: u64,
    first_index: u64,
    seq: u32,
    retry: RetryPolicy,
    timeouts: ActivityTimeouts,
) -> Transition {
    Transition {
        key,
        first_index,
        events: vec![Event::new(
            T0,
            EventKind::ActivityScheduled {
                seq,
                name: "a".into(),
                input: b"1".to_vec(),
                options: ActivityOptions::default(),
            },
        )],
        consumed_inbox_through: None,
        new_tasks: vec![NewActivityTask {
            seq,
            queue: "q".into(),
            name: "a".into(),
            input: b"1".to_vec(),
            retry,
            timeouts,
            scheduled_at: T0,
            attempt: 1,
            due: T0,
        }],
        new_timers: Vec::new(),
        close: None,
        ..Transition::default()
    }
}

#[tokio::test]
async fn a_second_running_execution_with_the_same_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = store_with_execution(&dir, "w").await;
    let again = NewExecution {
        id: ExecutionId::new("w", "other-run"),
        workflow_type: "t".into(),
        component: ComponentId::default(),
        task_queue: "q".into(),
        started: Event::new(T0, EventKind::ExecutionCompleted { result: vec![] }),
        parent: None,
        id_reuse: Default::default(),
        run_timeout_ms: None,
        execution_deadline: None,
        search_attributes: Default::default(),
        memo: Default::default(),
    };
    assert!(
        matches!(store.start_execution(again).await, Err(StoreError::AlreadyRunning(id)) if id == "w")
    );
}

#[tokio::test]
async fn history_is_append_only_and_gap_free() {
    let dir = tempfile::tempdir().unwrap();
    let (store, key) = store_with_execution(&dir, "w").await;
    store
        .commit(schedule(key, 1, 0, RetryPolicy::default(), 1_000))
        .await
        .unwrap();
    // A writer that did not see that commit is refused, and leaves nothing.
    let stale = store
        .commit(schedule(key, 1, 1, RetryPolicy::default(), 1_000))
        .await;
    assert!(
        matches!(
            stale,
            Err(StoreError::Conflict {
                expected: 2,
                got: 1,
                ..
            })
        ),
        "{stale:?}"
    );
    let gap = store
        .commit(schedule(key, 5, 1, RetryPolicy::default(), 1_000))
        .await;
    assert!(matches!(gap, Err(StoreError::Conflict { .. })));
    let loaded = store.load_execution(key).await.unwrap();
    assert_eq!(loaded.history.len(), 2);
    assert_eq!(loaded.record.next_event, 2);
}

#[tokio::test]
async fn a_lease_times_out_and_the_retry_is_scheduled_by_policy() {
    let dir = tempfile::tempdir().unwrap();
    let (store, key) = store_with_execution(&dir, "w").await;
    let retry = RetryPolicy {
        initial_interval_ms: 300,
        ..Default::default()
    };
    store
        .commit(schedule(key, 1, 0, retry, 1_000))
        .await
        .unwrap();

    // Not due for another queue; due for ours.
    assert!(
        store
            .poll_activities("other", T0, 10)
            .await
            .unwrap()
            .tasks
            .is_empty()
    );
    let polled = store.poll_activities("q", T0, 10).await.unwrap();
    assert_eq!(polled.tasks.len(), 1);
    assert!(
        matches!(polled.tasks[0].state, TaskState::Running { deadline, .. } if deadline == T0.plus_ms(1_000))
    );
    // Leased: not handed out twice.
    assert!(
        store
            .poll_activities("q", T0, 10)
            .await
            .unwrap()
            .tasks
            .is_empty()
    );

    // Nothing is due before the deadline; at it, the attempt times out.
    assert!(
        store
            .fire_due(T0.plus_ms(999), 10)
            .await
            .unwrap()
            .delivered
            .is_empty()
    );
    let due = store.fire_due(T0.plus_ms(1_000), 10).await.unwrap();
    assert_eq!(due.requeued, ["q"]);
    let InboxMessage::Activity(report) = &due.delivered[0].message else {
        panic!("expected an activity report")
    };
    assert_eq!(report.attempt, 1);
    assert_eq!(
        report.outcome,
        AttemptOutcome::TimedOut(TimeoutKind::StartToClose)
    );
    assert_eq!(report.retry_at, Some(T0.plus_ms(1_300)));

    // The late report of the timed-out attempt is stale and ignored.
    let late = AttemptResult {
        key,
        seq: 0,
        attempt: 1,
        result: Ok(b"late".to_vec()),
    };
    assert!(
        store
            .report_attempt(late, T0.plus_ms(1_001))
            .await
            .unwrap()
            .is_none()
    );

    // Attempt 2 becomes due at the retry time, and its success is final.
    assert!(
        store
            .poll_activities("q", T0.plus_ms(1_299), 10)
            .await
            .unwrap()
            .tasks
            .is_empty()
    );
    let polled = store
        .poll_activities("q", T0.plus_ms(1_300), 10)
        .await
        .unwrap();
    assert_eq!(polled.tasks[0].attempt, 2);
    let done = AttemptResult {
        key,
        seq: 0,
        attempt: 2,
        result: Ok(b"ok".to_vec()),
    };
    let entry = store
        .report_attempt(done, T0.plus_ms(1_400))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.entry.seq, 1, "second inbox entry of this execution");
    assert_eq!(entry.requeued, None, "a success is final");
    assert!(
        store
            .poll_activities("q", T0.plus_ms(10_000), 10)
            .await
            .unwrap()
            .tasks
            .is_empty()
    );
    assert_eq!(store.load_execution(key).await.unwrap().inbox.len(), 2);
}

#[tokio::test]
async fn closing_consumes_the_inbox_and_abandons_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let (store, key) = store_with_execution(&dir, "w").await;
    store
        .commit(schedule(key, 1, 0, RetryPolicy::default(), 1_000))
        .await
        .unwrap();
    let polled = store.poll_activities("q", T0, 10).await.unwrap();
    assert_eq!(polled.tasks.len(), 1);
    let failed = AttemptResult {
        key,
        seq: 0,
        attempt: 1,
        result: Err(Failure::new("Busy", "x")),
    };
    store.report_attempt(failed, T0).await.unwrap().unwrap();

    let close = Transition {
        key,
        first_index: 2,
        events: vec![Event::new(
            T0,
            EventKind::ExecutionCompleted {
                result: b"1".to_vec(),
            },
        )],
        consumed_inbox_through: Some(u64::MAX),
        new_tasks: Vec::new(),
        new_timers: Vec::new(),
        close: Some(ExecutionStatus::Completed),
        ..Transition::default()
    };
    store.commit(close).await.unwrap();
    let loaded = store.load_execution(key).await.unwrap();
    assert_eq!(loaded.record.status, ExecutionStatus::Completed);
    assert!(loaded.inbox.is_empty());
    assert!(store.running_executions().await.unwrap().is_empty());
    // The retry that was queued is abandoned with the execution.
    assert!(
        store
            .poll_activities("q", T0.plus_ms(1_000_000), 10)
            .await
            .unwrap()
            .tasks
            .is_empty()
    );
    // Reports and timers for a closed execution go nowhere.
    let late = AttemptResult {
        key,
        seq: 0,
        attempt: 2,
        result: Ok(vec![]),
    };
    assert!(store.report_attempt(late, T0).await.unwrap().is_none());
}

#[tokio::test]
async fn everything_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (store, key) = store_with_execution(&dir, "w").await;
    let timer = Transition {
        key,
        first_index: 1,
        events: vec![Event::new(
            T0,
            EventKind::TimerStarted {
                seq: 0,
                duration_ms: 5,
                fire_at: T0.plus_ms(5),
            },
        )],
        consumed_inbox_through: None,
        new_tasks: Vec::new(),
        new_timers: vec![(T0.plus_ms(5), 0)],
        close: None,
        ..Transition::default()
    };
    store.commit(timer).await.unwrap();
    store.close().await;
    drop(store);

    let store = RedbStore::open(dir.path().join("weft.redb")).unwrap();
    let record = store.find_execution("w").await.unwrap().unwrap();
    assert_eq!(record.next_event, 2);
    assert!(
        !record.needs_workflow_task(),
        "blocked on a timer: nothing to do yet"
    );
    let due = store.fire_due(T0.plus_ms(5), 10).await.unwrap();
    assert_eq!(due.delivered.len(), 1);
    assert_eq!(
        due.delivered[0].message,
        InboxMessage::TimerFired { seq: 0 }
    );
    assert!(
        store
            .find_execution("w")
            .await
            .unwrap()
            .unwrap()
            .needs_workflow_task()
    );
}

/// The single activity report in `work`.
fn only_report(delivered: &[weft_store::InboxEntry]) -> weft_core::ActivityReport {
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    match &delivered[0].message {
        InboxMessage::Activity(report) => report.clone(),
        other => panic!("expected an activity report, got {other:?}"),
    }
}

#[tokio::test]
async fn schedule_to_start_times_out_a_task_nobody_takes_and_is_final() {
    let dir = tempfile::tempdir().unwrap();
    let (store, key) = store_with_execution(&dir, "w").await;
    let timeouts = ActivityTimeouts {
        start_to_close_ms: 1_000,
        schedule_to_start_ms: Some(500),
        ..ActivityTimeouts::default()
    };
    store
        .commit(schedule_with(key, 1, 0, RetryPolicy::default(), timeouts))
        .await
        .unwrap();
    assert!(
        store
            .fire_due(T0.plus_ms(499), 10)
            .await
            .unwrap()
            .delivered
            .is_empty()
    );
    let due = store.fire_due(T0.plus_ms(500), 10).await.unwrap();
    let report = only_report(&due.delivered);
    assert_eq!(
        report.outcome,
        AttemptOutcome::TimedOut(TimeoutKind::ScheduleToStart)
    );
    assert_eq!(report.started_at, None, "the attempt never started");
    assert_eq!(report.retry_at, None, "schedule-to-start is final");
    assert!(due.requeued.is_empty());
    // Gone from the queue.
    let polled = store
        .poll_activities("q", T0.plus_ms(600), 10)
        .await
        .unwrap();
    assert!(polled.tasks.is_empty());
}

#[tokio::test]
async fn a_task_taken_in_time_does_not_time_out_schedule_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let (store, key) = store_with_execution(&dir, "w").await;
    let timeouts = ActivityTimeouts {
        start_to_close_ms: 1_000,
        schedule_to_start_ms: Some(500),
        ..ActivityTimeouts::default()
    };
    store
        .commit(schedule_with(key, 1, 0, RetryPolicy::default(), timeouts))
        .await
        .unwrap();
    let polled = store
        .poll_activities("q", T0.plus_ms(100), 10)
        .await
        .unwrap();
    assert_eq!(polled.tasks.len(), 1);
    // Its schedule-to-start deadline was cleared with the lease.
    assert!(
        store
            .fire_due(T0.plus_ms(600), 10)
            .await
            .unwrap()
            .delivered
            .is_empty()
    );
}

#[tokio::test]
async fn schedule_to_close_caps_the_attempt_and_stops_retries() {
    let dir = tempfile::tempdir().unwrap();
    let (store, key) = store_with_execution(&dir, "w").await;
    let retry = RetryPolicy {
        initial_interval_ms: 100,
        backoff_coefficient: 1.0,
        ..Default::default()
    };
    let timeouts = ActivityTimeouts {
        start_to_close_ms: 1_000,
        schedule_to_close_ms: Some(1_500),
        ..ActivityTimeouts::default()
    };
    store
        .commit(schedule_with(key, 1, 0, retry, timeouts))
        .await
        .unwrap();
    // Attempt 1 times out start-to-close at +1000 and retries at +1100.
    store.poll_activities("q", T0, 10).await.unwrap();
    let due = store.fire_due(T0.plus_ms(1_000), 10).await.unwrap();
    let report = only_report(&due.delivered);
    assert_eq!(
        report.outcome,
        AttemptOutcome::TimedOut(TimeoutKind::StartToClose)
    );
    assert_eq!(report.retry_at, Some(T0.plus_ms(1_100)));
    // Attempt 2's deadline is cut to the activity's: +1500, not +2100.
    let polled = store
        .poll_activities("q", T0.plus_ms(1_100), 10)
        .await
        .unwrap();
    assert!(matches!(
        polled.tasks[0].state,
        TaskState::Running { deadline, .. } if deadline == T0.plus_ms(1_500)
    ));
    let due = store.fire_due(T0.plus_ms(1_500), 10).await.unwrap();
    let report = only_report(&due.delivered);
    assert_eq!(report.attempt, 2);
    assert_eq!(
        report.outcome,
        AttemptOutcome::TimedOut(TimeoutKind::ScheduleToClose)
    );
    assert_eq!(report.retry_at, None);
    assert_eq!(due.timed_out, [(key, 0, 2)]);
    assert!(
        store
            .fire_due(T0.plus_ms(100_000), 10)
            .await
            .unwrap()
            .delivered
            .is_empty()
    );
}

#[tokio::test]
async fn no_retry_is_scheduled_past_schedule_to_close() {
    let dir = tempfile::tempdir().unwrap();
    let (store, key) = store_with_execution(&dir, "w").await;
    let retry = RetryPolicy {
        initial_interval_ms: 1_000,
        ..Default::default()
    };
    let timeouts = ActivityTimeouts {
        start_to_close_ms: 10_000,
        schedule_to_close_ms: Some(5_000),
        ..ActivityTimeouts::default()
    };
    store
        .commit(schedule_with(key, 1, 0, retry, timeouts))
        .await
        .unwrap();
    store.poll_activities("q", T0, 10).await.unwrap();
    // Fails at +4500: the retry would start at +5500, past the deadline.
    let failed = AttemptResult {
        key,
        seq: 0,
        attempt: 1,
        result: Err(Failure::new("Busy", "later")),
    };
    let reported = store
        .report_attempt(failed, T0.plus_ms(4_500))
        .await
        .unwrap()
        .unwrap();
    let InboxMessage::Activity(report) = &reported.entry.message else {
        panic!()
    };
    assert_eq!(report.retry_at, None);
    assert_eq!(reported.requeued, None);
}

#[tokio::test]
async fn a_missed_heartbeat_times_out_the_attempt_and_heartbeats_extend_it() {
    let dir = tempfile::tempdir().unwrap();
    let (store, key) = store_with_execution(&dir, "w").await;
    let retry = RetryPolicy {
        initial_interval_ms: 100,
        ..Default::default()
    };
    let timeouts = ActivityTimeouts {
        start_to_close_ms: 60_000,
        heartbeat_ms: Some(1_000),
        ..ActivityTimeouts::default()
    };
    store
        .commit(schedule_with(key, 1, 0, retry, timeouts))
        .await
        .unwrap();
    store.poll_activities("q", T0, 10).await.unwrap();
    // Beats at +800 and +1600 move the deadline to +2600.
    for at in [800, 1_600] {
        let ack = store
            .record_heartbeat(key, 0, 1, Some(b"{}".to_vec()), T0.plus_ms(at))
            .await
            .unwrap();
        assert!(ack.current && !ack.cancel_requested);
    }
    assert!(
        store
            .fire_due(T0.plus_ms(2_599), 10)
            .await
            .unwrap()
            .delivered
            .is_empty()
    );
    let due = store.fire_due(T0.plus_ms(2_600), 10).await.unwrap();
    let report = only_report(&due.delivered);
    assert_eq!(
        report.outcome,
        AttemptOutcome::TimedOut(TimeoutKind::Heartbeat)
    );
    assert_eq!(report.started_at, Some(T0));
    assert_eq!(
        report.retry_at,
        Some(T0.plus_ms(2_700)),
        "a heartbeat timeout retries"
    );
    assert_eq!(due.timed_out, [(key, 0, 1)]);
    // The dead attempt's heartbeat is refused.
    let ack = store
        .record_heartbeat(key, 0, 1, None, T0.plus_ms(2_650))
        .await
        .unwrap();
    assert!(!ack.current);
    // The next attempt sees the last details.
    let polled = store
        .poll_activities("q", T0.plus_ms(2_700), 10)
        .await
        .unwrap();
    assert_eq!(polled.tasks[0].attempt, 2);
    assert_eq!(
        polled.tasks[0].heartbeat_details.as_deref(),
        Some(&b"{}"[..])
    );
}

#[tokio::test]
async fn a_cancel_request_reaches_tasks_through_heartbeats_and_leases() {
    let dir = tempfile::tempdir().unwrap();
    let (store, key) = store_with_execution(&dir, "w").await;
    store
        .commit(schedule(key, 1, 0, RetryPolicy::default(), 1_000))
        .await
        .unwrap();
    store
        .send(
            key,
            InboxMessage::CancelRequested {
                reason: "stop".into(),
            },
        )
        .await
        .unwrap();
    let polled = store.poll_activities("q", T0, 10).await.unwrap();
    assert!(polled.tasks[0].cancel_requested, "leased after the request");
    let ack = store.record_heartbeat(key, 0, 1, None, T0).await.unwrap();
    assert!(ack.current && ack.cancel_requested);
}

#[tokio::test]
async fn a_closed_history_is_sealed_and_reads_back_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let (store, key) = store_with_execution(&dir, "sealed").await;
    store
        .commit(schedule(key, 1, 0, RetryPolicy::default(), 1_000))
        .await
        .unwrap();
    let open = store.load_execution(key).await.unwrap().history;
    assert_eq!(open.len(), 2);
    let completed = Event::new(
        T0.plus_ms(5),
        EventKind::ExecutionCompleted {
            result: b"\"done\"".to_vec(),
        },
    );
    let close = |first_index| Transition {
        key,
        first_index,
        events: vec![completed.clone()],
        close: Some(ExecutionStatus::Completed),
        ..Transition::default()
    };
    // A closing commit that missed an event is refused, as any other.
    assert!(matches!(
        store.commit(close(1)).await,
        Err(StoreError::Conflict { .. })
    ));
    store.commit(close(2)).await.unwrap();
    let mut expected = open.clone();
    expected.push(completed.clone());
    assert_eq!(store.load_execution(key).await.unwrap().history, expected);

    // Closed from outside (its execution deadline passes): sealed in the
    // closing transaction instead.
    let key2 = {
        let mut new = weft_store::NewExecution {
            id: ExecutionId::new("deadline", "run"),
            workflow_type: "t".into(),
            component: ComponentId::default(),
            task_queue: "q".into(),
            started: expected[0].clone(),
            parent: None,
            id_reuse: Default::default(),
            run_timeout_ms: None,
            execution_deadline: Some(T0.plus_ms(10)),
            search_attributes: Default::default(),
            memo: Default::default(),
        };
        new.started.at = T0;
        store.start_execution(new).await.unwrap().key
    };
    let due = store.fire_due(T0.plus_ms(10), 10).await.unwrap();
    assert_eq!(due.closed, vec![key2]);
    let timed_out = store.load_execution(key2).await.unwrap();
    assert_eq!(timed_out.record.status, ExecutionStatus::TimedOut);
    assert_eq!(
        timed_out
            .history
            .iter()
            .map(|e| e.kind.name())
            .collect::<Vec<_>>(),
        ["ExecutionStarted", "ExecutionTimedOut"]
    );

    // Both closed runs left their rows for one sealed row each.
    store.close().await;
    drop(store);
    let usage = RedbStore::table_usage(dir.path().join("weft.redb")).unwrap();
    let rows = |name: &str| usage.iter().find(|t| t.name == name).unwrap().rows;
    assert_eq!(rows("history"), 0, "{usage:?}");
    assert_eq!(rows("sealed_history"), 2, "{usage:?}");
    // Both survive a reopen, and the first reads back the same.
    let store = RedbStore::open(dir.path().join("weft.redb")).unwrap();
    assert_eq!(store.load_execution(key).await.unwrap().history, expected);
    assert_eq!(store.load_execution(key2).await.unwrap().history.len(), 2);
}

#[tokio::test]
async fn a_history_range_is_the_slice_of_the_history_open_or_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let (store, key) = store_with_execution(&dir, "ranged").await;
    for seq in 0..4 {
        store
            .commit(schedule(
                key,
                1 + u64::from(seq),
                seq,
                RetryPolicy::default(),
                1_000,
            ))
            .await
            .unwrap();
    }
    let check = |history: Vec<Event>| {
        let store = &store;
        async move {
            for (from, max) in [(0, 0), (0, 2), (2, 2), (3, 0), (4, 9), (5, 0), (99, 3)] {
                let want: Vec<Event> = history
                    .iter()
                    .skip(from as usize)
                    .take(if max == 0 { usize::MAX } else { max })
                    .cloned()
                    .collect();
                let got = store.history_range(key, from, max).await.unwrap();
                assert_eq!(got, want, "from {from}, max {max}");
            }
        }
    };
    let open = store.load_execution(key).await.unwrap().history;
    assert_eq!(open.len(), 5);
    check(open).await;
    store
        .commit(Transition {
            key,
            first_index: 5,
            events: vec![Event::new(
                T0.plus_ms(9),
                EventKind::ExecutionCompleted {
                    result: b"1".to_vec(),
                },
            )],
            close: Some(ExecutionStatus::Completed),
            ..Transition::default()
        })
        .await
        .unwrap();
    let sealed = store.load_execution(key).await.unwrap().history;
    assert_eq!(sealed.len(), 6);
    check(sealed).await;
}
