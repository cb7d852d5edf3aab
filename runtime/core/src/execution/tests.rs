use super::*;
use crate::{ActivityReport, AttemptOutcome};
use crate::{Exit, InboxMessage};

#[test]
fn a_history_without_its_start_is_refused_by_kind() {
    let id = ExecutionId::new("w", "r");
    let e = ExecutionState::from_history(id.clone(), vec![]).err();
    assert_eq!(e, Some(HistoryError::Empty(id.clone())));
    let fired = Event::new(Timestamp(1), EventKind::TimerFired { seq: 0 });
    let e = ExecutionState::from_history(id.clone(), vec![fired]).err();
    assert_eq!(
        e,
        Some(HistoryError::NoStart {
            execution: id,
            first: "TimerFired"
        })
    );
}

fn started() -> Event {
    Event::new(
        Timestamp(1_000),
        EventKind::ExecutionStarted {
            workflow_type: "t".into(),
            component: ComponentId::default(),
            input: vec![],
            random_seed: [0; 32],
            task_queue: "q".into(),
        },
    )
}

fn activity(name: &str) -> Command {
    Command::ScheduleActivity {
        name: name.into(),
        input: b"1".to_vec(),
        options: Default::default(),
    }
}

fn completed(seq: u32, result: &[u8]) -> InboxMessage {
    InboxMessage::Activity(ActivityReport {
        seq,
        attempt: 1,
        started_at: Some(Timestamp(1_500)),
        outcome: AttemptOutcome::Completed(result.to_vec()),
        retry_at: None,
    })
}

fn fresh() -> ExecutionState {
    ExecutionState::from_history(ExecutionId::new("w", "r"), vec![started()]).unwrap()
}

#[test]
fn every_append_is_held_to_the_history_limits() {
    let limits = Limits {
        history_max_events: 6,
        history_max_bytes: 4_096,
        ..Limits::default()
    };
    let mut s = fresh();
    s.set_limits(limits);
    let a = s.command(activity("a"), Timestamp(1)).unwrap();
    assert_eq!(s.command_room(&activity("b")), None);
    // Deliveries: the activity's result (two events with its start)
    // fits, a signal fits, the next one would leave no room to close.
    assert!(s.deliver(&completed(a, b"A"), Timestamp(2)));
    assert!(s.deliver(&signal("s", b"1"), Timestamp(3)));
    assert_eq!(s.history().len(), 5);
    assert!(s.command_room(&activity("b")).is_some());
    assert!(s.deliver(&signal("s", b"2"), Timestamp(4)));
    assert!(s.is_closed());
    let EventKind::ExecutionTerminated { reason } = &s.history()[5].kind else {
        panic!("terminated: {:?}", s.history()[5])
    };
    assert!(reason.starts_with("HistoryLimitExceeded: history reached its limit of 6 events"));
    assert!(reason.contains("signal `s`"), "{reason}");
    assert!(!s.deliver(&signal("s", b"3"), Timestamp(5)), "closed");

    // Bytes: a closing result that does not fit becomes a failure, and
    // a replay of that history (at another time) decides the same.
    let mut s = fresh();
    s.set_limits(limits);
    let big = vec![b'x'; 8_000];
    s.close(Exit::Completed(big.clone()), Timestamp(7)).unwrap();
    let EventKind::ExecutionFailed { failure } = &s.history()[1].kind else {
        panic!("failed: {:?}", s.history()[1])
    };
    assert_eq!(failure.error_type, "HistoryLimitExceeded");
    assert!(
        failure.message.contains("limit of 4096 bytes"),
        "{failure:?}"
    );
    let mut r = ExecutionState::from_history(s.id().clone(), s.history().to_vec()).unwrap();
    r.set_limits(limits);
    r.close(Exit::Completed(big), Timestamp(99)).unwrap();
    let mut r = ExecutionState::from_history(s.id().clone(), s.history().to_vec()).unwrap();
    r.set_limits(limits);
    assert!(
        r.close(Exit::Completed(b"small".to_vec()), Timestamp(99))
            .is_err()
    );
}

#[test]
fn wait_any_returns_first_recorded_and_replays_the_same() {
    let mut s = fresh();
    let a = s.command(activity("a"), Timestamp(1_000)).unwrap();
    let b = s.command(activity("b"), Timestamp(1_000)).unwrap();
    assert_eq!(s.poll_wait(&[a, b]).unwrap(), None);
    assert!(s.deliver(&completed(b, b"B"), Timestamp(2_000)));
    assert!(s.deliver(&completed(a, b"A"), Timestamp(3_000)));
    let first = s.poll_wait(&[a, b]).unwrap().unwrap();
    assert_eq!(first.handle, b);
    assert_eq!(s.time(), Timestamp(2_000));
    s.close(Exit::Completed(b"done".to_vec()), Timestamp(3_000))
        .unwrap();

    // Replay the full history: same handles, same wake, same time.
    let mut r = ExecutionState::from_history(s.id().clone(), s.history().to_vec()).unwrap();
    assert!(!r.is_live());
    assert_eq!(r.command(activity("a"), Timestamp(9)).unwrap(), a);
    assert_eq!(r.command(activity("b"), Timestamp(9)).unwrap(), b);
    assert_eq!(r.poll_wait(&[a, b]).unwrap(), Some(first));
    assert_eq!(r.time(), Timestamp(2_000));
    r.close(Exit::Completed(b"done".to_vec()), Timestamp(9))
        .unwrap();
    assert_eq!(r.history(), s.history());
    assert!(!r.is_live());
}

#[test]
fn diverging_command_names_the_step() {
    let mut s = fresh();
    s.command(activity("validate"), Timestamp(1_000)).unwrap();
    let mut r = ExecutionState::from_history(s.id().clone(), s.history().to_vec()).unwrap();
    let err = r.command(activity("charge"), Timestamp(1_000)).unwrap_err();
    assert_eq!(err.seq, 0);
    assert!(err.recorded.contains("validate"), "{err}");
    assert!(err.actual.contains("charge"), "{err}");
}

#[test]
fn changed_input_and_missing_commands_are_divergences() {
    let mut s = fresh();
    s.command(activity("a"), Timestamp(1_000)).unwrap();
    let history = s.history().to_vec();
    let mut r = ExecutionState::from_history(s.id().clone(), history.clone()).unwrap();
    let other_input = Command::ScheduleActivity {
        name: "a".into(),
        input: b"2".to_vec(),
        options: Default::default(),
    };
    assert!(r.command(other_input, Timestamp(1)).is_err());
    let mut r = ExecutionState::from_history(s.id().clone(), history).unwrap();
    let err = r.close(Exit::Completed(vec![]), Timestamp(1)).unwrap_err();
    assert!(err.actual.starts_with("returned"), "{err}");
}

#[test]
fn failed_attempt_with_retry_does_not_resolve() {
    let mut s = fresh();
    let a = s.command(activity("charge"), Timestamp(1_000)).unwrap();
    let failed = InboxMessage::Activity(ActivityReport {
        seq: a,
        attempt: 1,
        started_at: Some(Timestamp(1_100)),
        outcome: AttemptOutcome::Failed(Failure::new("Busy", "later")),
        retry_at: Some(Timestamp(2_100)),
    });
    assert!(s.deliver(&failed, Timestamp(1_200)));
    assert_eq!(s.poll_wait(&[a]).unwrap(), None);
    assert!(s.deliver(&completed(a, b"ok"), Timestamp(2_200)));
    assert_eq!(
        s.poll_wait(&[a]).unwrap().unwrap().outcome,
        Outcome::Completed(b"ok".to_vec())
    );
    // A redelivered completion is ignored.
    assert!(!s.deliver(&completed(a, b"ok"), Timestamp(2_300)));
    let names: Vec<_> = s.history().iter().map(|e| e.kind.name()).collect();
    assert_eq!(
        names,
        [
            "ExecutionStarted",
            "ActivityScheduled",
            "ActivityStarted",
            "ActivityFailed",
            "ActivityStarted",
            "ActivityCompleted"
        ]
    );
}

#[test]
fn bad_waits_are_reported() {
    let mut s = fresh();
    assert_eq!(s.poll_wait(&[]), Err(WaitError::Empty));
    assert_eq!(s.poll_wait(&[0]), Err(WaitError::UnknownHandle(0)));
}

#[test]
fn blocking_where_history_continues_is_a_divergence() {
    // Old code: start `a`, start a timer, wait for the timer, then `b`.
    let mut s = fresh();
    s.command(activity("a"), Timestamp(1_000)).unwrap();
    let t = s
        .command(Command::StartTimer { duration_ms: 10 }, Timestamp(1_000))
        .unwrap();
    assert!(s.deliver(&InboxMessage::TimerFired { seq: t }, Timestamp(1_010)));
    assert!(s.poll_wait(&[t]).unwrap().is_some());
    s.command(activity("b"), Timestamp(1_010)).unwrap();

    // New code waits for `a` instead, which history never resolves.
    let mut r = ExecutionState::from_history(s.id().clone(), s.history().to_vec()).unwrap();
    let a = r.command(activity("a"), Timestamp(1)).unwrap();
    r.command(Command::StartTimer { duration_ms: 10 }, Timestamp(1))
        .unwrap();
    match r.poll_wait(&[a]) {
        Err(WaitError::Nondeterminism(n)) => {
            assert_eq!(n.seq, 2);
            assert!(n.recorded.contains("`b`"), "{n}");
        }
        other => panic!("expected a divergence, got {other:?}"),
    }
}

#[test]
fn patched_is_true_live_recorded_on_replay_and_false_for_old_histories() {
    // Old code: a, then b. Its history has no marker.
    let mut old = fresh();
    old.command(activity("a"), Timestamp(1)).unwrap();
    old.command(activity("b"), Timestamp(1)).unwrap();
    let old_history = old.history().to_vec();

    // New code `a; if patched("x") { c } else { b }` on the old history:
    let mut r = ExecutionState::from_history(old.id().clone(), old_history).unwrap();
    r.command(activity("a"), Timestamp(1)).unwrap();
    assert!(!r.patched("x", Timestamp(1)).unwrap());
    r.command(activity("b"), Timestamp(1)).unwrap();

    // ...and live, on a new execution: true, and a marker is recorded.
    let mut new = fresh();
    new.command(activity("a"), Timestamp(1)).unwrap();
    assert!(new.patched("x", Timestamp(1)).unwrap());
    new.command(activity("c"), Timestamp(1)).unwrap();
    assert_eq!(new.history()[2].kind.name(), "PatchMarker");

    // Replaying the new history takes the new branch again.
    let mut r = ExecutionState::from_history(new.id().clone(), new.history().to_vec()).unwrap();
    r.command(activity("a"), Timestamp(1)).unwrap();
    assert!(r.patched("x", Timestamp(1)).unwrap());
    r.command(activity("c"), Timestamp(1)).unwrap();

    // Once the patch call is removed, its marker is skipped.
    let mut r = ExecutionState::from_history(new.id().clone(), new.history().to_vec()).unwrap();
    r.command(activity("a"), Timestamp(1)).unwrap();
    r.command(activity("c"), Timestamp(1)).unwrap();
}

#[test]
fn side_effect_values_come_back_on_replay() {
    let record = |value: &[u8]| Command::RecordValue {
        value: value.to_vec(),
    };
    let mut s = fresh();
    assert_eq!(s.recorded_value(), None);
    s.command(record(b"uuid-1"), Timestamp(1)).unwrap();
    let mut r = ExecutionState::from_history(s.id().clone(), s.history().to_vec()).unwrap();
    // A look does not consume: the replayed side effect's own command
    // (its value is not compared) does.
    assert_eq!(r.recorded_value(), Some(&b"uuid-1"[..]));
    assert_eq!(r.recorded_value(), Some(&b"uuid-1"[..]));
    r.command(record(b"uuid-2"), Timestamp(1)).unwrap();
    assert_eq!(r.recorded_value(), None);
    // Code that records a value where history has an activity diverges.
    let mut a = fresh();
    a.command(activity("a"), Timestamp(1)).unwrap();
    let mut r = ExecutionState::from_history(a.id().clone(), a.history().to_vec()).unwrap();
    assert_eq!(r.recorded_value(), None);
    assert!(r.command(record(b"v"), Timestamp(1)).is_err());
}

fn signal(name: &str, payload: &[u8]) -> InboxMessage {
    InboxMessage::Signal {
        name: name.into(),
        payload: payload.to_vec(),
    }
}

fn await_signal(name: &str) -> Command {
    Command::AwaitSignal { name: name.into() }
}

#[test]
fn signals_match_waits_in_order_whether_buffered_or_awaited() {
    let mut s = fresh();
    // One signal arrives before anyone waits: it is buffered.
    assert!(s.deliver(&signal("approve", b"1"), Timestamp(1_100)));
    let a = s
        .command(await_signal("approve"), Timestamp(1_200))
        .unwrap();
    let b = s
        .command(await_signal("approve"), Timestamp(1_200))
        .unwrap();
    let other = s.command(await_signal("reject"), Timestamp(1_200)).unwrap();
    assert_eq!(
        s.poll_wait(&[a]).unwrap().unwrap().outcome,
        Outcome::Completed(b"1".to_vec())
    );
    assert_eq!(s.poll_wait(&[b, other]).unwrap(), None);
    assert!(s.deliver(&signal("approve", b"2"), Timestamp(1_300)));
    let wake = s.poll_wait(&[b, other]).unwrap().unwrap();
    assert_eq!(
        (wake.handle, wake.outcome),
        (b, Outcome::Completed(b"2".to_vec()))
    );
    assert_eq!(s.time(), Timestamp(1_300));

    // Replay matches the same signals to the same waits.
    let mut r = ExecutionState::from_history(s.id().clone(), s.history().to_vec()).unwrap();
    assert_eq!(r.command(await_signal("approve"), Timestamp(9)).unwrap(), a);
    assert_eq!(r.command(await_signal("approve"), Timestamp(9)).unwrap(), b);
    r.command(await_signal("reject"), Timestamp(9)).unwrap();
    assert_eq!(
        r.poll_wait(&[a]).unwrap().unwrap().outcome,
        Outcome::Completed(b"1".to_vec())
    );
    assert_eq!(r.poll_wait(&[b, other]).unwrap().unwrap().handle, b);
    // Waiting on another name where history waited on `approve` diverges.
    let mut r = ExecutionState::from_history(s.id().clone(), s.history().to_vec()).unwrap();
    assert!(r.command(await_signal("reject"), Timestamp(9)).is_err());
}

#[test]
fn cancellation_wakes_one_wait_then_waits_work_again() {
    let mut s = fresh();
    let a = s.command(activity("charge"), Timestamp(1_000)).unwrap();
    let t = s
        .command(Command::StartTimer { duration_ms: 50 }, Timestamp(1_000))
        .unwrap();
    assert_eq!(s.poll_wait(&[a, t]).unwrap(), None);
    let cancel = InboxMessage::CancelRequested {
        reason: "customer".into(),
    };
    assert!(s.deliver(&cancel, Timestamp(1_010)));
    assert!(
        !s.deliver(&cancel, Timestamp(1_011)),
        "second request ignored"
    );
    let wake = s.poll_wait(&[a, t]).unwrap().unwrap();
    assert_eq!((wake.handle, wake.outcome), (a, Outcome::CancelRequested));
    // Compensation: a new activity can be awaited normally afterwards.
    let refund = s.command(activity("refund"), Timestamp(1_010)).unwrap();
    assert_eq!(s.poll_wait(&[refund]).unwrap(), None);
    assert!(s.deliver(&completed(refund, b"ok"), Timestamp(1_020)));
    assert_eq!(
        s.poll_wait(&[refund]).unwrap().unwrap().outcome,
        Outcome::Completed(b"ok".to_vec())
    );
    // Cancelling the timer resolves it as cancelled; its firing is then
    // ignored.
    let c = s
        .command(Command::CancelTimer { timer: t }, Timestamp(1_020))
        .unwrap();
    assert_eq!(c, 3);
    assert_eq!(
        s.poll_wait(&[t]).unwrap().unwrap().outcome,
        Outcome::Cancelled
    );
    assert!(!s.deliver(&InboxMessage::TimerFired { seq: t }, Timestamp(1_050)));
    s.close(
        Exit::Failed(Failure::new("Cancelled", "by customer")),
        Timestamp(1_030),
    )
    .unwrap();
    assert!(!s.deliver(&signal("late", b""), Timestamp(1_040)));

    // Replay delivers the cancellation at the same wait.
    let mut r = ExecutionState::from_history(s.id().clone(), s.history().to_vec()).unwrap();
    r.command(activity("charge"), Timestamp(9)).unwrap();
    r.command(Command::StartTimer { duration_ms: 50 }, Timestamp(9))
        .unwrap();
    assert_eq!(
        r.poll_wait(&[a, t]).unwrap().unwrap().outcome,
        Outcome::CancelRequested
    );
    r.command(activity("refund"), Timestamp(9)).unwrap();
    assert!(matches!(
        r.poll_wait(&[refund]).unwrap().unwrap().outcome,
        Outcome::Completed(_)
    ));
    r.command(Command::CancelTimer { timer: t }, Timestamp(9))
        .unwrap();
    r.close(
        Exit::Failed(Failure::new("Cancelled", "by customer")),
        Timestamp(9),
    )
    .unwrap();
    assert!(!r.is_live());
}

#[test]
fn continue_as_new_closes_the_run() {
    let mut s = fresh();
    s.close(Exit::ContinueAsNew(b"next".to_vec()), Timestamp(2))
        .unwrap();
    assert!(s.is_closed());
    let mut r = ExecutionState::from_history(s.id().clone(), s.history().to_vec()).unwrap();
    assert!(
        r.close(Exit::ContinueAsNew(b"other".to_vec()), Timestamp(3))
            .is_err()
    );
}
