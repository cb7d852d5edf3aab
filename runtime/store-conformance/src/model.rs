//! Model-based test: random operation sequences run against a store and
//! against a plain in-memory model side by side, with the store closed and
//! reopened between steps; after every step the store must agree with the
//! model (in the style of redb's own fuzzer against a `BTreeMap`).
//!
//! The model is deliberately small: executions of three workflow ids that
//! start, schedule activities (one attempt each, so no retries), take
//! signals and complete; workers lease attempts, report them, or let them
//! time out. What it checks is exact: every run's status, history length
//! and unconsumed inbox, the set of running executions, the running
//! attempts, and which operations are refused.

use crate::{Backend, T0, complete, new_execution, schedule};
use proptest::prelude::*;
use std::collections::BTreeMap;
use weft_core::{Failure, InboxMessage, RetryPolicy, Timestamp};
use weft_store::{AttemptResult, ExecKey, ExecutionStatus, ListFilter, Store, StoreError};

/// One step of a sequence. Numbers pick among what exists (modulo its
/// count), so every sequence is meaningful.
#[derive(Debug, Clone)]
pub enum Op {
    /// Start workflow id `w{n % 3}`.
    Start(u8),
    /// A workflow task of a running run that schedules one activity.
    Schedule(u8),
    /// A workflow task with a stale first index: refused.
    StaleCommit(u8),
    /// Lease up to `1 + n % 3` attempts.
    Poll(u8),
    /// Report a leased attempt (or, with none leased, a queued one, which
    /// is refused as stale): success or failure.
    Report(u8, bool),
    /// Signal a run (a closed one drops it).
    Signal(u8),
    /// A workflow task that completes a running run.
    Complete(u8),
    /// Let every running attempt pass its deadline.
    TimeOut,
    /// Close and reopen the store.
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => any::<u8>().prop_map(Op::Start),
        3 => any::<u8>().prop_map(Op::Schedule),
        1 => any::<u8>().prop_map(Op::StaleCommit),
        3 => any::<u8>().prop_map(Op::Poll),
        3 => (any::<u8>(), any::<bool>()).prop_map(|(n, ok)| Op::Report(n, ok)),
        2 => any::<u8>().prop_map(Op::Signal),
        1 => any::<u8>().prop_map(Op::Complete),
        1 => Just(Op::TimeOut),
        1 => Just(Op::Reopen),
    ]
}

/// Run random sequences against backend `B`.
pub fn check<B: Backend>() {
    let config = ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in proptest::collection::vec(op(), 1..40))| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(run::<B>(ops));
    });
}

#[derive(Debug)]
struct Run {
    key: ExecKey,
    workflow_id: String,
    running: bool,
    history: u64,
    inbox: usize,
    next_seq: u32,
}

#[derive(Debug, Default)]
struct Model {
    runs: Vec<Run>,
    /// Tasks of running runs: (key, seq) -> leased.
    tasks: BTreeMap<(ExecKey, u32), bool>,
    now: Timestamp,
}

impl Model {
    fn running(&self, n: u8) -> Option<usize> {
        let running: Vec<usize> = (0..self.runs.len())
            .filter(|&i| self.runs[i].running)
            .collect();
        (!running.is_empty()).then(|| running[usize::from(n) % running.len()])
    }

    fn run_of(&mut self, key: ExecKey) -> &mut Run {
        self.runs.iter_mut().find(|r| r.key == key).unwrap()
    }
}

/// Apply `ops` to a fresh store and to the model, checking after each.
pub async fn run<B: Backend>(ops: Vec<Op>) {
    let backend = B::fresh().await;
    let mut store = backend.open().await;
    let mut model = Model {
        now: T0,
        ..Model::default()
    };
    let once = RetryPolicy {
        maximum_attempts: 1,
        ..RetryPolicy::default()
    };
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Start(n) => {
                let workflow_id = format!("w{}", n % 3);
                let mut new = new_execution(&workflow_id);
                new.id.run_id = format!("run-{step}");
                let taken = model
                    .runs
                    .iter()
                    .any(|r| r.running && r.workflow_id == workflow_id);
                match store.start_execution(new).await {
                    Ok(record) => {
                        assert!(!taken, "step {step}: {workflow_id} started twice");
                        model.runs.push(Run {
                            key: record.key,
                            workflow_id,
                            running: true,
                            history: 1,
                            inbox: 0,
                            next_seq: 0,
                        });
                    }
                    Err(StoreError::AlreadyRunning(_)) => assert!(taken, "step {step}"),
                    Err(e) => panic!("step {step}: {e}"),
                }
            }
            Op::Schedule(n) => {
                let Some(i) = model.running(*n) else { continue };
                let run = &mut model.runs[i];
                let task = schedule(run.key, run.history, run.next_seq, once.clone(), 1_000);
                store.commit(task).await.unwrap();
                model.tasks.insert((run.key, run.next_seq), false);
                run.history += 1;
                run.next_seq += 1;
            }
            Op::StaleCommit(n) => {
                let Some(i) = model.running(*n) else { continue };
                let run = &model.runs[i];
                let task = schedule(run.key, run.history - 1, run.next_seq, once.clone(), 1_000);
                assert!(
                    matches!(store.commit(task).await, Err(StoreError::Conflict { .. })),
                    "step {step}"
                );
            }
            Op::Poll(n) => {
                let max = 1 + usize::from(n % 3);
                let ready: Vec<(ExecKey, u32)> = model
                    .tasks
                    .iter()
                    .filter(|(_, leased)| !**leased)
                    .map(|(k, _)| *k)
                    .collect();
                let polled = store.poll_activities("q", model.now, max).await.unwrap();
                let got: Vec<(ExecKey, u32)> =
                    polled.tasks.iter().map(|t| (t.key, t.seq)).collect();
                // Queued tasks go out in order; a store may hand out fewer
                // (it swept abandoned ones), but then says more is due now.
                assert!(got.len() <= max, "step {step}");
                assert_eq!(got, ready[..got.len()], "step {step}");
                if got.len() < max.min(ready.len()) {
                    assert_eq!(polled.next_due, Some(model.now), "step {step}");
                }
                for task in got {
                    model.tasks.insert(task, true);
                }
            }
            Op::Report(n, ok) => {
                let leased: Vec<(ExecKey, u32)> = model
                    .tasks
                    .iter()
                    .filter(|(_, leased)| **leased)
                    .map(|(k, _)| *k)
                    .collect();
                let (pick, stale) = match (leased.is_empty(), model.tasks.keys().next()) {
                    (false, _) => (leased[usize::from(*n) % leased.len()], false),
                    (true, Some(queued)) => (*queued, true),
                    (true, None) => continue,
                };
                let result = AttemptResult {
                    key: pick.0,
                    seq: pick.1,
                    attempt: 1,
                    result: if *ok {
                        Ok(b"1".to_vec())
                    } else {
                        Err(Failure::new("Declined", "no"))
                    },
                };
                let reported = store.report_attempt(result, model.now).await.unwrap();
                if stale {
                    assert!(reported.is_none(), "step {step}: a queued attempt reported");
                } else {
                    let reported = reported.expect("a leased attempt's report");
                    assert_eq!(reported.requeued, None, "step {step}: one attempt only");
                    assert_eq!(reported.entry.key, pick.0);
                    model.tasks.remove(&pick);
                    model.run_of(pick.0).inbox += 1;
                }
            }
            Op::Signal(n) => {
                if model.runs.is_empty() {
                    continue;
                }
                let i = usize::from(*n) % model.runs.len();
                let message = InboxMessage::Signal {
                    name: "s".into(),
                    payload: vec![*n],
                };
                let sent = store.send(model.runs[i].key, message).await.unwrap();
                assert_eq!(sent.is_some(), model.runs[i].running, "step {step}");
                if sent.is_some() {
                    model.runs[i].inbox += 1;
                }
            }
            Op::Complete(n) => {
                let Some(i) = model.running(*n) else { continue };
                let run = &mut model.runs[i];
                store
                    .commit(complete(run.key, run.history, model.now))
                    .await
                    .unwrap();
                run.history += 1;
                run.running = false;
                run.inbox = 0;
                let key = run.key;
                model.tasks.retain(|(k, _), _| *k != key);
            }
            Op::TimeOut => {
                model.now = model.now.plus_ms(10_000);
                let due = store.fire_due(model.now, 10_000).await.unwrap();
                let mut expected: Vec<(ExecKey, u32, u32)> = model
                    .tasks
                    .iter()
                    .filter(|(_, leased)| **leased)
                    .map(|((k, s), _)| (*k, *s, 1))
                    .collect();
                let mut timed_out = due.timed_out.clone();
                timed_out.sort_unstable();
                expected.sort_unstable();
                assert_eq!(timed_out, expected, "step {step}");
                assert_eq!(due.delivered.len(), expected.len(), "step {step}");
                assert!(due.requeued.is_empty(), "step {step}");
                for (key, seq, _) in expected {
                    model.tasks.remove(&(key, seq));
                    model.run_of(key).inbox += 1;
                }
            }
            Op::Reopen => {
                store.close().await;
                drop(store);
                store = backend.open().await;
            }
        }
        agree(&store, &model, step, op).await;
    }
}

/// The store agrees with the model.
async fn agree(store: &impl Store, model: &Model, step: usize, op: &Op) {
    for run in &model.runs {
        let loaded = store.load_execution(run.key).await.unwrap();
        let status = if run.running {
            ExecutionStatus::Running
        } else {
            ExecutionStatus::Completed
        };
        let got = (
            loaded.record.status,
            loaded.history.len() as u64,
            loaded.record.next_event,
            loaded.inbox.len(),
        );
        assert_eq!(
            got,
            (status, run.history, run.history, run.inbox),
            "step {step} ({op:?}): run {} (status, history, next event, inbox)",
            run.key
        );
    }
    let mut running: Vec<ExecKey> = store
        .running_executions()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.key)
        .collect();
    running.sort_unstable();
    let expected: Vec<ExecKey> = model
        .runs
        .iter()
        .filter(|r| r.running)
        .map(|r| r.key)
        .collect();
    assert_eq!(
        running, expected,
        "step {step} ({op:?}): running executions"
    );
    let filter = ListFilter {
        namespace: Some("default".into()),
        status: Some(ExecutionStatus::Running),
        ..ListFilter::default()
    };
    let mut listed: Vec<ExecKey> = store
        .list_executions(filter.clone())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.key)
        .collect();
    listed.reverse();
    assert_eq!(listed, expected, "step {step} ({op:?}): listed as running");
    let counted = store.count_executions(filter).await.unwrap();
    assert_eq!(
        counted,
        expected.len() as u64,
        "step {step} ({op:?}): count"
    );
    let leased = model.tasks.values().filter(|l| **l).count() as u64;
    let stats = store.queue_stats("q").await.unwrap();
    assert_eq!(
        stats.running, leased,
        "step {step} ({op:?}): running attempts"
    );
}
