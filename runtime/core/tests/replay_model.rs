//! Model-based check of the replay matcher: a random guest (commands and
//! waits) runs live against random deliveries (activity results and
//! failures, timer firings, signals, some for names nobody awaits); then
//! the same guest replays the history it made. Replay must hand out the
//! same handles and return the same wake at every wait, and block where
//! the live run was left blocked.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

use proptest::prelude::*;
use weft_core::{
    ActivityReport, AttemptOutcome, Command, ComponentId, Event, EventKind, ExecutionId,
    ExecutionState, Failure, InboxMessage, Timestamp, Wake,
};

const SIGNALS: [&str; 3] = ["a", "b", "c"];

#[derive(Debug, Clone)]
enum Step {
    Activity(u8),
    Timer,
    AwaitSignal(u8),
    SideEffect(u8),
    /// Wait on the open handles this mask picks (all of them if none).
    Wait(u16),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => any::<u8>().prop_map(Step::Activity),
        2 => Just(Step::Timer),
        2 => any::<u8>().prop_map(Step::AwaitSignal),
        1 => any::<u8>().prop_map(Step::SideEffect),
        4 => any::<u16>().prop_map(Step::Wait),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Activity,
    Timer,
    Signal,
}

fn started() -> Event {
    Event::new(
        Timestamp(1_000),
        EventKind::ExecutionStarted {
            workflow_type: "model".into(),
            component: ComponentId::default(),
            input: Vec::new(),
            random_seed: [7; 32],
            task_queue: "q".into(),
        },
    )
}

fn command(step: &Step) -> Option<(Command, Kind)> {
    Some(match step {
        Step::Activity(n) => (
            Command::ScheduleActivity {
                name: format!("act-{}", n % 4),
                input: vec![*n],
                options: Default::default(),
            },
            Kind::Activity,
        ),
        Step::Timer => (Command::StartTimer { duration_ms: 1_000 }, Kind::Timer),
        Step::AwaitSignal(n) => (
            Command::AwaitSignal {
                name: SIGNALS[usize::from(*n) % SIGNALS.len()].into(),
            },
            Kind::Signal,
        ),
        Step::SideEffect(n) => (
            Command::RecordValue { value: vec![*n] },
            Kind::Activity, // never waited on: filtered below
        ),
        Step::Wait(_) => return None,
    })
}

/// The handles a wait with `mask` takes among the open ones.
fn wait_set(open: &[u32], mask: u16) -> Vec<u32> {
    let picked: Vec<u32> = open
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << (i % 16)) != 0)
        .map(|(_, h)| *h)
        .collect();
    if picked.is_empty() {
        open.to_vec()
    } else {
        picked
    }
}

/// One message for the live run to deliver, chosen by `choice` among the
/// deliveries still possible (a result for an open activity or timer, or
/// a signal of any name).
fn delivery(choice: u8, open: &[(u32, Kind)], at: u64) -> InboxMessage {
    let pending: Vec<&(u32, Kind)> = open.iter().filter(|(_, k)| *k != Kind::Signal).collect();
    let n = pending.len() + SIGNALS.len();
    let pick = usize::from(choice) % n;
    if pick >= pending.len() {
        return InboxMessage::Signal {
            name: SIGNALS[pick - pending.len()].into(),
            payload: vec![choice],
        };
    }
    let (seq, kind) = *pending[pick];
    match kind {
        Kind::Timer => InboxMessage::TimerFired { seq },
        _ => InboxMessage::Activity(ActivityReport {
            seq,
            attempt: 1,
            started_at: Some(Timestamp(at)),
            outcome: if choice.is_multiple_of(3) {
                AttemptOutcome::Failed(Failure::new("Declined", "no"))
            } else {
                AttemptOutcome::Completed(vec![choice])
            },
            retry_at: None,
        }),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn live_and_replay_agree(
        script in prop::collection::vec(step(), 0..40),
        choices in prop::collection::vec(any::<u8>(), 0..120),
    ) {
        let id = ExecutionId::new("model", "r");
        let mut live = ExecutionState::from_history(id.clone(), vec![started()]).unwrap();
        let mut choices = choices.into_iter();
        let mut open: Vec<(u32, Kind)> = Vec::new();
        let mut handles = Vec::new();
        // `Some(wake)` per wait that returned; `None` where it stayed blocked.
        let mut waits: Vec<Option<Wake>> = Vec::new();
        let mut clock = 2_000;
        'script: for step in &script {
            if let Some((cmd, kind)) = command(step) {
                let handle = live.command(cmd, Timestamp(clock)).unwrap();
                handles.push(handle);
                if !matches!(step, Step::SideEffect(_)) {
                    open.push((handle, kind));
                }
                continue;
            }
            let Step::Wait(mask) = step else { unreachable!() };
            if open.is_empty() {
                continue;
            }
            let set = wait_set(&open.iter().map(|(h, _)| *h).collect::<Vec<_>>(), *mask);
            loop {
                if let Some(wake) = live.poll_wait(&set).unwrap() {
                    open.retain(|(h, _)| *h != wake.handle);
                    waits.push(Some(wake));
                    break;
                }
                let Some(choice) = choices.next() else {
                    // No more deliveries: the run is left blocked here.
                    waits.push(None);
                    break 'script;
                };
                clock += 10;
                live.deliver(&delivery(choice, &open, clock), Timestamp(clock));
            }
        }

        // Replay the same guest against the history it made.
        let mut replay = ExecutionState::from_history(id, live.history().to_vec()).unwrap();
        let mut open: Vec<u32> = Vec::new();
        let mut replayed_handles = Vec::new();
        let mut waits = waits.into_iter();
        for step in &script {
            if let Some((cmd, _)) = command(step) {
                let handle = replay.command(cmd, Timestamp(99)).unwrap();
                replayed_handles.push(handle);
                if !matches!(step, Step::SideEffect(_)) {
                    open.push(handle);
                }
                continue;
            }
            let Step::Wait(mask) = step else { unreachable!() };
            if open.is_empty() {
                continue;
            }
            let Some(expected) = waits.next() else { break };
            let set = wait_set(&open, *mask);
            let got = replay.poll_wait(&set).unwrap();
            prop_assert_eq!(&got, &expected);
            match got {
                Some(wake) => open.retain(|h| *h != wake.handle),
                None => break,
            }
        }
        prop_assert_eq!(&replayed_handles[..], &handles[..replayed_handles.len()]);
        prop_assert!(waits.next().is_none(), "replay stopped early");
    }
}
