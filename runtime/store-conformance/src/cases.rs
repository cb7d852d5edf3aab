//! The conformance cases: one function per behaviour every [`Store`]
//! backend must have. [`crate::suite!`] runs each as a test.

// Each case's name says what it checks.
#![allow(missing_docs)]

use crate::{
    Backend, T0, complete, new_execution, only_report, schedule, schedule_with, start,
    started_event,
};
use weft_core::{
    AttemptOutcome, ChildOptions, ComponentId, Event, EventKind, ExecutionId, Failure,
    InboxMessage, ParentClosePolicy, RetryPolicy, TimeoutKind,
};
use weft_store::{
    ActivityTimeouts, ApiKeyRecord, AttemptResult, AuditFilter, AuditRecord, ExecutionStatus,
    IdReusePolicy, ListFilter, NamespaceRecord, NewChild, NewExecution, Reset, Store, StoreError,
    TaskState, Transition,
};

pub async fn a_second_running_execution_with_the_same_id_is_refused<B: Backend>(backend: &B) {
    let store = backend.open().await;
    start(&store, "w").await;
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

pub async fn history_is_append_only_and_gap_free<B: Backend>(backend: &B) {
    let store = backend.open().await;
    let key = start(&store, "w").await;
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

pub async fn a_lease_times_out_and_the_retry_is_scheduled_by_policy<B: Backend>(backend: &B) {
    let store = backend.open().await;
    let key = start(&store, "w").await;
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

pub async fn closing_consumes_the_inbox_and_abandons_tasks<B: Backend>(backend: &B) {
    let store = backend.open().await;
    let key = start(&store, "w").await;
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

pub async fn everything_survives_a_reopen<B: Backend>(backend: &B) {
    let store = backend.open().await;
    let key = start(&store, "w").await;
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

    let store = backend.open().await;
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

pub async fn schedule_to_start_times_out_a_task_nobody_takes_and_is_final<B: Backend>(backend: &B) {
    let store = backend.open().await;
    let key = start(&store, "w").await;
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

pub async fn a_task_taken_in_time_does_not_time_out_schedule_to_start<B: Backend>(backend: &B) {
    let store = backend.open().await;
    let key = start(&store, "w").await;
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

pub async fn schedule_to_close_caps_the_attempt_and_stops_retries<B: Backend>(backend: &B) {
    let store = backend.open().await;
    let key = start(&store, "w").await;
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

pub async fn no_retry_is_scheduled_past_schedule_to_close<B: Backend>(backend: &B) {
    let store = backend.open().await;
    let key = start(&store, "w").await;
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

pub async fn a_missed_heartbeat_times_out_the_attempt_and_heartbeats_extend_it<B: Backend>(
    backend: &B,
) {
    let store = backend.open().await;
    let key = start(&store, "w").await;
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

pub async fn a_cancel_request_reaches_tasks_through_heartbeats_and_leases<B: Backend>(backend: &B) {
    let store = backend.open().await;
    let key = start(&store, "w").await;
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

pub async fn a_closed_history_reads_back_unchanged_after_a_reopen<B: Backend>(backend: &B) {
    let store = backend.open().await;
    let key = start(&store, "sealed").await;
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
        let mut new = NewExecution {
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

    // Both survive a reopen, and the first reads back the same.
    store.close().await;
    drop(store);
    let store = backend.open().await;
    assert_eq!(store.load_execution(key).await.unwrap().history, expected);
    assert_eq!(store.load_execution(key2).await.unwrap().history.len(), 2);
}

pub async fn a_history_range_is_the_slice_of_the_history_open_or_sealed<B: Backend>(backend: &B) {
    let store = backend.open().await;
    let key = start(&store, "ranged").await;
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

pub async fn id_reuse_policies_decide_whether_a_closed_id_starts_again<B: Backend>(backend: &B) {
    let store = backend.open().await;
    let key = start(&store, "ok").await;
    store.commit(complete(key, 1, T0)).await.unwrap();
    let failed = start(&store, "failed").await;
    let fail = Transition {
        key: failed,
        first_index: 1,
        events: vec![Event::new(
            T0,
            EventKind::ExecutionFailed {
                failure: Failure::new("Boom", "x"),
            },
        )],
        close: Some(ExecutionStatus::Failed),
        ..Transition::default()
    };
    store.commit(fail).await.unwrap();
    let again = |id: &str, policy| {
        let mut new = new_execution(id);
        new.id.run_id = format!("again-{id}");
        new.id_reuse = policy;
        new
    };
    let refused = store
        .start_execution(again("ok", IdReusePolicy::AllowDuplicateFailedOnly))
        .await;
    assert!(
        matches!(&refused, Err(StoreError::IdReuseRejected(id, _)) if id == "ok"),
        "{refused:?}"
    );
    let refused = store
        .start_execution(again("failed", IdReusePolicy::RejectDuplicate))
        .await;
    assert!(matches!(refused, Err(StoreError::IdReuseRejected(..))));
    // The refusals left the latest runs as they were.
    assert_eq!(store.find_execution("ok").await.unwrap().unwrap().key, key);
    let rerun = store
        .start_execution(again("failed", IdReusePolicy::AllowDuplicateFailedOnly))
        .await
        .unwrap();
    assert_ne!(rerun.key, failed);
    let latest = store.find_execution("failed").await.unwrap().unwrap();
    assert_eq!(
        (latest.key, latest.status),
        (rerun.key, ExecutionStatus::Running)
    );
    store
        .start_execution(again("ok", IdReusePolicy::AllowDuplicate))
        .await
        .unwrap();
}

pub async fn a_refused_commit_writes_nothing<B: Backend>(backend: &B) {
    let store = backend.open().await;
    let key = start(&store, "w").await;
    // A continue-as-new into another workflow id is invalid; the events,
    // tasks and the next run it carries are all refused with it.
    let mut bad = schedule(key, 1, 0, RetryPolicy::default(), 1_000);
    bad.close = Some(ExecutionStatus::ContinuedAsNew);
    bad.continue_as_new = Some(new_execution("elsewhere"));
    assert!(matches!(
        store.commit(bad).await,
        Err(StoreError::Invalid(_))
    ));
    let loaded = store.load_execution(key).await.unwrap();
    assert_eq!(loaded.record.status, ExecutionStatus::Running);
    assert_eq!(loaded.history.len(), 1);
    assert!(store.find_execution("elsewhere").await.unwrap().is_none());
    assert!(
        store
            .poll_activities("q", T0, 10)
            .await
            .unwrap()
            .tasks
            .is_empty()
    );
    // An unknown execution is not found.
    assert!(matches!(
        store.commit(complete(key + 1_000, 1, T0)).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn signal_with_start_starts_once<B: Backend>(backend: &B) {
    let store = backend.open().await;
    let signal = |n: u8| InboxMessage::Signal {
        name: "go".into(),
        payload: vec![n],
    };
    let (first, entry, started) = store
        .signal_with_start(new_execution("sws"), signal(1))
        .await
        .unwrap();
    assert!(started);
    assert_eq!((entry.key, entry.seq), (first.key, 0));
    let mut other = new_execution("sws");
    other.id.run_id = "second".into();
    let (second, entry, started) = store.signal_with_start(other, signal(2)).await.unwrap();
    assert!(!started, "the running run takes the signal");
    assert_eq!((second.key, entry.seq), (first.key, 1));
    let loaded = store.load_execution(first.key).await.unwrap();
    assert_eq!(
        loaded
            .inbox
            .iter()
            .map(|e| e.message.clone())
            .collect::<Vec<_>>(),
        [signal(1), signal(2)]
    );
    // A closed execution takes no more messages.
    store.commit(complete(first.key, 1, T0)).await.unwrap();
    assert!(store.send(first.key, signal(3)).await.unwrap().is_none());
}

fn child_started(seq: u32, workflow_id: &str, policy: ParentClosePolicy) -> Event {
    Event::new(
        T0,
        EventKind::ChildStarted {
            seq,
            workflow_type: "t".into(),
            workflow_id: workflow_id.into(),
            input: b"null".to_vec(),
            options: ChildOptions {
                task_queue: None,
                parent_close_policy: policy,
            },
        },
    )
}

/// A workflow task of `parent` that starts `(seq, workflow id, policy)`
/// children.
fn start_children(
    parent: u64,
    first_index: u64,
    children: &[(u32, &str, ParentClosePolicy)],
) -> Transition {
    Transition {
        key: parent,
        first_index,
        events: children
            .iter()
            .map(|(seq, id, policy)| child_started(*seq, id, *policy))
            .collect(),
        new_children: children
            .iter()
            .map(|(seq, id, _)| NewChild {
                seq: *seq,
                start: Ok(new_execution(id)),
            })
            .collect(),
        ..Transition::default()
    }
}

pub async fn children_start_with_their_commit_and_report_to_their_parent<B: Backend>(backend: &B) {
    let store = backend.open().await;
    let parent = start(&store, "parent").await;
    start(&store, "taken").await;
    let abandon = ParentClosePolicy::Abandon;
    let mut task = start_children(
        parent,
        1,
        &[
            (0, "kid", abandon),
            (1, "kid", abandon),
            (2, "taken", abandon),
        ],
    );
    task.new_children.push(NewChild {
        seq: 3,
        start: Err(Failure::new("UnknownType", "no such type").non_retryable()),
    });
    let done = store.commit(task).await.unwrap();
    assert_eq!(done.started.len(), 1, "{done:?}");
    let kid = store.find_execution("kid").await.unwrap().unwrap();
    assert_eq!(done.started, [kid.key]);
    assert_eq!(kid.parent, Some((parent, 0)));
    // The clashing ids and the unknown type fail to start, reported to
    // the parent's inbox.
    let failed: Vec<(u32, String)> = done
        .delivered
        .iter()
        .map(|e| match &e.message {
            InboxMessage::ChildClosed {
                seq,
                result: Err(failure),
            } => (*seq, failure.error_type.clone()),
            other => panic!("expected a failed child start, got {other:?}"),
        })
        .collect();
    assert_eq!(
        failed,
        [
            (1, "ChildAlreadyRunning".to_owned()),
            (2, "ChildAlreadyRunning".to_owned()),
            (3, "UnknownType".to_owned()),
        ]
    );
    // The child's result reaches its parent's inbox when it closes.
    let closed = store.commit(complete(kid.key, 1, T0)).await.unwrap();
    assert_eq!(closed.delivered.len(), 1);
    assert_eq!(closed.delivered[0].key, parent);
    assert_eq!(
        closed.delivered[0].message,
        InboxMessage::ChildClosed {
            seq: 0,
            result: Ok(b"\"done\"".to_vec()),
        }
    );
    assert_eq!(store.load_execution(parent).await.unwrap().inbox.len(), 4);
}

pub async fn a_closing_parent_applies_its_children_s_close_policies<B: Backend>(backend: &B) {
    let store = backend.open().await;
    let parent = start(&store, "parent").await;
    let task = start_children(
        parent,
        1,
        &[
            (0, "terminated", ParentClosePolicy::Terminate),
            (1, "cancelled", ParentClosePolicy::RequestCancel),
            (2, "abandoned", ParentClosePolicy::Abandon),
            (3, "finished", ParentClosePolicy::Terminate),
        ],
    );
    store.commit(task).await.unwrap();
    let key = |id: &'static str| {
        let store = &store;
        async move { store.find_execution(id).await.unwrap().unwrap().key }
    };
    let (terminated, cancelled, abandoned, finished) = (
        key("terminated").await,
        key("cancelled").await,
        key("abandoned").await,
        key("finished").await,
    );
    // One child finished first; its parent learnt of it.
    store.commit(complete(finished, 1, T0)).await.unwrap();
    let resolved = Transition {
        key: parent,
        first_index: 5,
        events: vec![Event::new(
            T0,
            EventKind::ChildCompleted {
                seq: 3,
                result: b"\"done\"".to_vec(),
            },
        )],
        consumed_inbox_through: Some(u64::MAX),
        ..Transition::default()
    };
    store.commit(resolved).await.unwrap();

    let done = store
        .commit(complete(parent, 6, T0.plus_ms(1)))
        .await
        .unwrap();
    assert_eq!(done.closed, [terminated], "{done:?}");
    let status = |k| {
        let store = &store;
        async move { store.load_execution(k).await.unwrap() }
    };
    let t = status(terminated).await;
    assert_eq!(t.record.status, ExecutionStatus::Terminated);
    assert!(matches!(
        &t.history.last().unwrap().kind,
        EventKind::ExecutionTerminated { reason } if reason.contains("parent")
    ));
    let c = status(cancelled).await;
    assert_eq!(c.record.status, ExecutionStatus::Running);
    assert!(matches!(
        c.inbox.as_slice(),
        [entry] if matches!(entry.message, InboxMessage::CancelRequested { .. })
    ));
    let a = status(abandoned).await;
    assert_eq!(a.record.status, ExecutionStatus::Running);
    assert!(a.inbox.is_empty());
    assert_eq!(
        status(finished).await.history.len(),
        2,
        "a closed child is left alone"
    );
}

pub async fn continue_as_new_starts_the_next_run_with_what_the_execution_owns<B: Backend>(
    backend: &B,
) {
    let store = backend.open().await;
    let mut first = new_execution("loop");
    first.run_timeout_ms = Some(60_000);
    first.memo.insert("m".into(), "1".into());
    let first = store.start_execution(first).await.unwrap();
    store
        .send(
            first.key,
            InboxMessage::Signal {
                name: "s".into(),
                payload: vec![],
            },
        )
        .await
        .unwrap();
    let mut next = new_execution("loop");
    next.id.run_id = "second".into();
    let task = Transition {
        key: first.key,
        first_index: 1,
        events: vec![
            Event::new(
                T0,
                EventKind::SearchAttributesUpserted {
                    seq: 0,
                    attributes: vec![("customer".into(), "ada".into())],
                },
            ),
            Event::new(
                T0,
                EventKind::ExecutionContinuedAsNew {
                    input: b"2".to_vec(),
                },
            ),
        ],
        consumed_inbox_through: Some(u64::MAX),
        close: Some(ExecutionStatus::ContinuedAsNew),
        continue_as_new: Some(next),
        ..Transition::default()
    };
    let done = store.commit(task).await.unwrap();
    assert_eq!(done.started.len(), 1);
    let closed = store.load_execution(first.key).await.unwrap();
    assert_eq!(closed.record.status, ExecutionStatus::ContinuedAsNew);
    assert!(closed.inbox.is_empty());
    let latest = store.find_execution("loop").await.unwrap().unwrap();
    assert_eq!(latest.key, done.started[0]);
    assert_eq!(latest.id.run_id, "second");
    assert_eq!(latest.status, ExecutionStatus::Running);
    assert_eq!(latest.run_timeout_ms, Some(60_000));
    assert_eq!(latest.memo.get("m").map(String::as_str), Some("1"));
    assert_eq!(
        latest.search_attributes.get("customer").map(String::as_str),
        Some("ada")
    );
}

pub async fn a_reset_ends_the_old_run_and_starts_from_the_prefix<B: Backend>(backend: &B) {
    let store = backend.open().await;
    let old = start(&store, "w").await;
    store
        .commit(schedule(old, 1, 0, RetryPolicy::default(), 1_000))
        .await
        .unwrap();
    let prefix = store.load_execution(old).await.unwrap().history;
    let mut new = new_execution("w");
    new.id.run_id = "reset".into();
    new.started = prefix[0].clone();
    let signal = InboxMessage::Signal {
        name: "again".into(),
        payload: vec![],
    };
    let reset = Reset {
        old,
        reason: "bad deploy".into(),
        caller: None,
        new,
        rest: prefix[1..].to_vec(),
        tasks: schedule(old, 1, 0, RetryPolicy::default(), 1_000).new_tasks,
        timers: Vec::new(),
        reapply: vec![signal.clone()],
    };
    let done = store.reset(reset).await.unwrap();
    let new_key = *done.started.last().unwrap();
    let ended = store.load_execution(old).await.unwrap();
    assert_eq!(ended.record.status, ExecutionStatus::Terminated);
    assert!(matches!(
        &ended.history.last().unwrap().kind,
        EventKind::ExecutionTerminated { reason } if reason == "bad deploy"
    ));
    let fresh = store.load_execution(new_key).await.unwrap();
    assert_eq!(fresh.record.id.run_id, "reset");
    assert_eq!(fresh.history, prefix);
    assert_eq!(fresh.inbox.len(), 1);
    assert_eq!(fresh.inbox[0].message, signal);
    // The prefix's open activity is queued for the new run only.
    let polled = store.poll_activities("q", T0, 10).await.unwrap();
    assert_eq!(
        polled.tasks.iter().map(|t| t.key).collect::<Vec<_>>(),
        [new_key]
    );
    // A reset must keep the workflow id.
    let mut elsewhere = new_execution("other");
    elsewhere.started = prefix[0].clone();
    let refused = store
        .reset(Reset {
            old: new_key,
            reason: "x".into(),
            caller: None,
            new: elsewhere,
            rest: Vec::new(),
            tasks: Vec::new(),
            timers: Vec::new(),
            reapply: Vec::new(),
        })
        .await;
    assert!(matches!(refused, Err(StoreError::Invalid(_))));
    assert_eq!(
        store.load_execution(new_key).await.unwrap().record.status,
        ExecutionStatus::Running
    );
}

pub async fn retention_purges_only_old_closed_runs_of_its_namespace<B: Backend>(backend: &B) {
    let store = backend.open().await;
    let mut keys = Vec::new();
    for (id, closed_at) in [("pay::old", 10), ("pay::new", 1_000), ("other::old", 10)] {
        let key = start(&store, id).await;
        store
            .commit(complete(key, 1, T0.plus_ms(closed_at)))
            .await
            .unwrap();
        keys.push(key);
    }
    let running = start(&store, "pay::running").await;
    let purged = store
        .purge_closed("pay".into(), T0.plus_ms(500), 100)
        .await
        .unwrap();
    assert_eq!(purged, 1);
    assert!(store.find_execution("pay::old").await.unwrap().is_none());
    assert!(store.load_execution(keys[0]).await.is_err());
    for id in ["pay::new", "other::old", "pay::running"] {
        assert!(store.find_execution(id).await.unwrap().is_some(), "{id}");
    }
    assert_eq!(
        store.load_execution(running).await.unwrap().history.len(),
        1
    );
    assert_eq!(
        store
            .purge_closed("pay".into(), T0.plus_ms(500), 100)
            .await
            .unwrap(),
        0
    );
}

pub async fn listing_filters_and_orders_newest_first<B: Backend>(backend: &B) {
    let store = backend.open().await;
    for (i, id) in ["pay::a", "pay::b", "loan::c", "pay::d"].iter().enumerate() {
        let mut new = new_execution(id);
        new.started = started_event(T0.plus_ms(i as u64 * 10));
        if *id == "loan::c" {
            new.workflow_type = "loan".into();
        }
        new.search_attributes.insert(
            "tier".into(),
            if i % 2 == 0 { "gold" } else { "basic" }.into(),
        );
        let key = store.start_execution(new).await.unwrap().key;
        if *id == "pay::b" {
            store
                .commit(complete(key, 1, T0.plus_ms(100)))
                .await
                .unwrap();
        }
    }
    let ids = |filter: ListFilter| {
        let store = &store;
        async move {
            store
                .list_executions(filter)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.id.workflow_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        ids(ListFilter::default()).await,
        ["pay::d", "loan::c", "pay::b", "pay::a"]
    );
    let ns = |ns: &str| ListFilter {
        namespace: Some(ns.into()),
        ..ListFilter::default()
    };
    assert_eq!(ids(ns("pay")).await, ["pay::d", "pay::b", "pay::a"]);
    assert_eq!(
        ids(ListFilter {
            status: Some(ExecutionStatus::Running),
            ..ns("pay")
        })
        .await,
        ["pay::d", "pay::a"]
    );
    assert_eq!(
        ids(ListFilter {
            workflow_type: Some("loan".into()),
            ..ListFilter::default()
        })
        .await,
        ["loan::c"]
    );
    assert_eq!(
        ids(ListFilter {
            search_attributes: vec![("tier".into(), "gold".into())],
            ..ListFilter::default()
        })
        .await,
        ["loan::c", "pay::a"]
    );
    assert_eq!(
        ids(ListFilter {
            started_after: Some(T0.plus_ms(10)),
            started_before: Some(T0.plus_ms(30)),
            ..ListFilter::default()
        })
        .await,
        ["loan::c", "pay::b"]
    );
    assert_eq!(
        ids(ListFilter {
            closed_after: Some(T0),
            ..ListFilter::default()
        })
        .await,
        ["pay::b"]
    );
    assert_eq!(
        ids(ListFilter {
            closed_before: Some(T0.plus_ms(100)),
            ..ListFilter::default()
        })
        .await,
        Vec::<String>::new()
    );
    assert_eq!(
        ids(ListFilter {
            limit: 2,
            ..ListFilter::default()
        })
        .await,
        ["pay::d", "loan::c"]
    );
    // Pages: each from below the last key of the one before.
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .list_executions(ListFilter {
                limit: 2,
                before,
                ..ns("pay")
            })
            .await
            .unwrap();
        before = page.last().map(|r| r.key);
        pages.push(
            page.into_iter()
                .map(|r| r.id.workflow_id)
                .collect::<Vec<_>>(),
        );
        if pages.last().unwrap().len() < 2 {
            break;
        }
    }
    assert_eq!(pages, [vec!["pay::d", "pay::b"], vec!["pay::a"]]);
    // Counts agree with lists, capped by a limit.
    let count = |filter: ListFilter| {
        let store = &store;
        async move { store.count_executions(filter).await.unwrap() }
    };
    assert_eq!(count(ListFilter::default()).await, 4);
    assert_eq!(count(ns("pay")).await, 3);
    let running = ListFilter {
        status: Some(ExecutionStatus::Running),
        ..ns("pay")
    };
    assert_eq!(count(running.clone()).await, 2);
    assert_eq!(
        count(ListFilter {
            limit: 1,
            ..running.clone()
        })
        .await,
        1
    );
    assert_eq!(
        count(ListFilter {
            search_attributes: vec![("tier".into(), "gold".into())],
            ..running
        })
        .await,
        1
    );
}

pub async fn components_namespaces_keys_and_audit_entries_are_kept<B: Backend>(backend: &B) {
    let store = backend.open().await;
    let bytes = b"\0asm component".to_vec();
    let id = ComponentId::of(&bytes);
    store
        .put_component(id, bytes.clone(), Some("payment".into()))
        .await
        .unwrap();
    // Idempotent; a second type may share the component.
    store
        .put_component(id, bytes.clone(), Some("refund".into()))
        .await
        .unwrap();
    let namespace = NamespaceRecord {
        name: "pay".into(),
        retention_seconds: 86_400,
        description: "payments".into(),
    };
    store.put_namespace(namespace.clone()).await.unwrap();
    let key = ApiKeyRecord {
        id: "0123456789ab".into(),
        name: "ci".into(),
        secret_hash: [7; 32],
        roles: vec!["pay:writer".into()],
        created: T0,
        expires: None,
        revoked: None,
    };
    store.put_api_key(key.clone()).await.unwrap();
    let audit = |at: u64, identity: &str| AuditRecord {
        at: T0.plus_ms(at),
        identity: identity.into(),
        namespace: "pay".into(),
        rpc: "StartWorkflow".into(),
        target: "pay::a".into(),
        outcome: "ok".into(),
    };
    store
        .append_audit(vec![audit(1, "ada"), audit(2, "bob")])
        .await
        .unwrap();
    store.append_audit(vec![audit(3, "ada")]).await.unwrap();

    store.close().await;
    drop(store);
    let store = backend.open().await;
    assert_eq!(store.get_component(id).await.unwrap(), Some(bytes));
    assert_eq!(
        store
            .get_component(ComponentId::of(b"other"))
            .await
            .unwrap(),
        None
    );
    let mut types = store.workflow_types().await.unwrap();
    types.sort();
    assert_eq!(
        types,
        [("payment".to_owned(), id), ("refund".to_owned(), id)]
    );
    assert_eq!(store.namespaces().await.unwrap(), [namespace]);
    let mut revoked = key.clone();
    revoked.revoked = Some(T0.plus_ms(5));
    store.put_api_key(revoked.clone()).await.unwrap();
    assert_eq!(store.api_keys().await.unwrap(), [revoked]);

    let all = store.audit_log(AuditFilter::default()).await.unwrap();
    assert_eq!(all, [audit(1, "ada"), audit(2, "bob"), audit(3, "ada")]);
    let ada = store
        .audit_log(AuditFilter {
            identity: Some("ada".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(ada, [audit(1, "ada"), audit(3, "ada")]);
    let since = store
        .audit_log(AuditFilter {
            since: Some(T0.plus_ms(2)),
            limit: 1,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(since, [audit(2, "bob")]);
    let newest = store
        .audit_log(AuditFilter {
            limit: 1,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(newest, [audit(3, "ada")], "without `since`, the newest");
}

pub async fn queue_stats_count_the_backlog_and_running_attempts<B: Backend>(backend: &B) {
    let store = backend.open().await;
    let key = start(&store, "w").await;
    let mut task = schedule(key, 1, 0, RetryPolicy::default(), 1_000);
    let second = schedule(key, 2, 1, RetryPolicy::default(), 1_000);
    task.events.extend(second.events);
    task.new_tasks.extend(second.new_tasks);
    store.commit(task).await.unwrap();
    let stats = store.queue_stats("q").await.unwrap();
    assert_eq!((stats.backlog, stats.running), (2, 0));
    store.poll_activities("q", T0, 1).await.unwrap();
    let stats = store.queue_stats("q").await.unwrap();
    assert_eq!((stats.backlog, stats.running), (1, 1));
    let other = store.queue_stats("other").await.unwrap();
    assert_eq!((other.backlog, other.running), (0, 0));
}

/// A run's chain as stored, checked against its record.
async fn chain_holds(store: &impl Store, key: weft_store::ExecKey) -> weft_core::ChainHash {
    let audited = store.audited_history(key).await.unwrap();
    let p = audited.record.protection.clone().expect("chained");
    weft_protect::verify::verify_run(
        p.origin(),
        audited.stored.iter().map(Vec::as_slice),
        p.head,
        "the record",
    )
    .unwrap();
    assert_eq!(audited.stored.len() as u64, audited.record.next_event);
    p.head
}

pub async fn histories_are_chained_across_continue_as_new_and_reset<B: Backend>(backend: &B) {
    let store = backend.open().await;
    let first = start(&store, "loop").await;
    let mut next = new_execution("loop");
    next.id.run_id = "second".into();
    let done = store
        .commit(Transition {
            key: first,
            first_index: 1,
            events: vec![Event::new(
                T0,
                EventKind::ExecutionContinuedAsNew {
                    input: b"2".to_vec(),
                },
            )],
            close: Some(ExecutionStatus::ContinuedAsNew),
            continue_as_new: Some(next),
            ..Transition::default()
        })
        .await
        .unwrap();
    let head = chain_holds(&store, first).await;
    let second = done.started[0];
    chain_holds(&store, second).await;
    let record = store.audited_history(second).await.unwrap().record;
    assert_eq!(
        record.protection.unwrap().origin(),
        head,
        "the chain goes on"
    );

    // A reset's new run starts from the old run's chain at the cut.
    store
        .commit(schedule(second, 1, 0, RetryPolicy::default(), 1_000))
        .await
        .unwrap();
    let old = store.audited_history(second).await.unwrap();
    let prefix = store.load_execution(second).await.unwrap().history;
    let p = old.record.protection.clone().unwrap();
    let (cut, _) =
        weft_protect::verify::chain(p.origin(), old.stored[..1].iter().map(Vec::as_slice)).unwrap();
    let mut new = new_execution("loop");
    new.id.run_id = "reset".into();
    new.started = prefix[0].clone();
    let done = store
        .reset(Reset {
            old: second,
            reason: "bad deploy".into(),
            caller: None,
            new,
            rest: Vec::new(),
            tasks: Vec::new(),
            timers: Vec::new(),
            reapply: Vec::new(),
        })
        .await
        .unwrap();
    let reset = *done.started.last().unwrap();
    chain_holds(&store, reset).await;
    chain_holds(&store, second).await;
    let record = store.audited_history(reset).await.unwrap().record;
    assert_eq!(record.protection.unwrap().origin(), cut);
    // Everything still holds after a reopen.
    store.close().await;
    drop(store);
    let store = backend.open().await;
    for key in [first, second, reset] {
        chain_holds(&store, key).await;
    }
}

pub async fn closed_heads_are_signed_once_in_a_checkpoint<B: Backend>(backend: &B) {
    let store = backend.open().await;
    let public_key = store.signing_public_key().expect("the suite's stores sign");
    assert!(
        store.checkpoint_closed(T0).await.unwrap().is_none(),
        "nothing closed"
    );
    let mut keys = Vec::new();
    for id in ["a", "b"] {
        let key = start(&store, id).await;
        store.commit(complete(key, 1, T0)).await.unwrap();
        keys.push(key);
    }
    let running = start(&store, "c").await;
    let signed = store
        .checkpoint_closed(T0.plus_ms(5))
        .await
        .unwrap()
        .expect("signed");
    assert_eq!(
        signed.leaves.iter().map(|l| l.key).collect::<Vec<_>>(),
        keys
    );
    for leaf in &signed.leaves {
        assert_eq!(leaf.head, chain_holds(&store, leaf.key).await);
        assert_eq!(leaf.events, 2);
    }
    let hashes: Vec<[u8; 32]> = signed.leaves.iter().map(|l| l.hash()).collect();
    assert_eq!(weft_protect::checkpoint::root(&hashes), signed.root);
    let message = weft_protect::checkpoint::message(
        signed.seq,
        signed.at,
        signed.kind,
        signed.leaves.len() as u64,
        &signed.root,
    );
    assert!(weft_protect::checkpoint::signature_holds(
        &public_key,
        &message,
        &signed.signature
    ));
    assert!(
        store
            .checkpoint_closed(T0.plus_ms(6))
            .await
            .unwrap()
            .is_none(),
        "signed once"
    );
    let covering = store
        .audited_history(keys[0])
        .await
        .unwrap()
        .checkpoint
        .unwrap();
    assert_eq!(covering.seq, signed.seq);
    // Running executions go into open checkpoints.
    let open = store
        .checkpoint_open(T0.plus_ms(7), 2)
        .await
        .unwrap()
        .expect("signed");
    assert_eq!(
        open.leaves.iter().map(|l| l.key).collect::<Vec<_>>(),
        [running]
    );
    assert_eq!(
        store
            .audited_history(running)
            .await
            .unwrap()
            .checkpoint
            .unwrap()
            .seq,
        open.seq
    );
}

pub async fn an_erased_execution_keeps_its_skeleton_and_chain<B: Backend>(backend: &B) {
    let store = backend.open().await;
    let key = start(&store, "w").await;
    assert!(
        matches!(store.erase(key, T0).await, Err(StoreError::Invalid(_))),
        "a running execution is not erased"
    );
    store
        .commit(Transition {
            key,
            first_index: 1,
            events: vec![Event::new(
                T0,
                EventKind::ExecutionCompleted {
                    result: b"\"Ada Lovelace\"".to_vec(),
                },
            )],
            close: Some(ExecutionStatus::Completed),
            ..Transition::default()
        })
        .await
        .unwrap();
    let head = chain_holds(&store, key).await;
    let erased = store.erase(key, T0.plus_ms(1)).await.unwrap();
    assert_eq!(erased.erased_at(), Some(T0.plus_ms(1)));
    let loaded = store.load_execution(key).await.unwrap();
    let kinds: Vec<&str> = loaded.history.iter().map(|e| e.kind.name()).collect();
    assert_eq!(kinds, ["ExecutionStarted", "ExecutionCompleted"]);
    assert!(matches!(
        &loaded.history[1].kind,
        EventKind::ExecutionCompleted { result } if result == weft_protect::ERASED
    ));
    assert_eq!(
        chain_holds(&store, key).await,
        head,
        "the chain is untouched"
    );
    store.close().await;
    drop(store);
    let store = backend.open().await;
    assert!(
        store
            .load_execution(key)
            .await
            .unwrap()
            .record
            .erased_at()
            .is_some()
    );
}

pub async fn mask_policies_are_kept_by_workflow_type<B: Backend>(backend: &B) {
    use weft_core::mask::MaskPolicy;
    let store = backend.open().await;
    assert_eq!(store.mask_policies().await.unwrap(), []);
    let loan = MaskPolicy::from_rules(&["$.applicant", "activity:screen=$[0].name"]).unwrap();
    let kyc = MaskPolicy::from_rules(&["result=$.ssn"]).unwrap();
    store
        .put_mask_policy("default::loan".into(), loan.clone())
        .await
        .unwrap();
    store
        .put_mask_policy("pay::kyc".into(), MaskPolicy::from_rules(&["$.x"]).unwrap())
        .await
        .unwrap();
    // Replaced, not merged: merging is the runtime's decision.
    store
        .put_mask_policy("pay::kyc".into(), kyc.clone())
        .await
        .unwrap();
    store
        .put_mask_policy("gone".into(), loan.clone())
        .await
        .unwrap();
    store
        .put_mask_policy("gone".into(), MaskPolicy::default())
        .await
        .unwrap();

    store.close().await;
    drop(store);
    let store = backend.open().await;
    let mut policies = store.mask_policies().await.unwrap();
    policies.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        policies,
        [
            ("default::loan".to_owned(), loan),
            ("pay::kyc".to_owned(), kyc)
        ]
    );
}
