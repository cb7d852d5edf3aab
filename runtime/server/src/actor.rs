//! The execution actor: one task per cached execution.
//!
//! It loads the history, replays it through the guest (the engine answers
//! recorded calls from history) and keeps running live. Each time the guest
//! blocks, [`ActorDriver::block`] commits the workflow task (new events,
//! consumed inbox entries, new activity tasks and timers) in one
//! transaction, and only then makes the tasks and timers visible.

use crate::config::{StartWorkflow, WorkflowOutcome};
use crate::registry::ActorMsg;
use crate::shared::Shared;
use crate::transition::{cancelled_timers, final_transition, new_children, new_tasks, new_timers};
use crate::util::lock;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use weft_core::{Event, EventKind, ExecutionId, ExecutionState, InboxMessage, Timestamp};
use weft_engine::{Driver, DriverStop, RunEnd};
use weft_store::{ExecKey, ExecutionStatus, NewActivityTask, StoreError, Transition};

/// How an actor's run ended, when it did not fail.
pub(crate) enum Exit {
    /// Nothing more for now: closed, parked, evicted, or waiting for its
    /// inbox in a later actor.
    Done,
    /// Another writer moved the history on: load it again.
    Reload,
}

/// Why an actor stopped without finishing its work: a runtime failure,
/// never the workflow's (nothing of it is recorded; the node retries the
/// execution after a backoff, from what is durable).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ActorError {
    /// Its record, history or inbox could not be read.
    #[error("execution key {key}: loading it failed: {source}")]
    Load { key: ExecKey, source: StoreError },
    /// Its stored history is not one an execution can start from.
    #[error(transparent)]
    History(#[from] weft_core::HistoryError),
    /// Its pinned component could not be loaded or compiled.
    #[error("{id}: its component could not be loaded: {source}")]
    Component {
        id: ExecutionId,
        source: crate::RuntimeError,
    },
    /// The engine could not run it.
    #[error("{id}: {source}")]
    Engine {
        id: ExecutionId,
        source: weft_engine::EngineError,
    },
    /// Its continue-as-new could not be prepared.
    #[error("{id}: cannot continue as new: {source}")]
    ContinueAsNew {
        id: ExecutionId,
        source: crate::RuntimeError,
    },
    /// A commit of its own (closing, parking) failed.
    #[error("{id}: {what} failed: {source}")]
    Commit {
        id: ExecutionId,
        what: &'static str,
        source: StoreError,
    },
    /// Its driver stopped it (a storage failure mid-run).
    #[error("{id}: {stop}")]
    Stopped { id: ExecutionId, stop: DriverStop },
    /// A query fault on an actor's instance (queries run on replays of
    /// their own, so this is a bug).
    #[error("{id}: unexpected query fault: {message}")]
    QueryFault { id: ExecutionId, message: String },
}

/// Load and run the execution until it closes, parks, is evicted or has
/// nothing to do; `Ok(Exit::Reload)` asks for a reload. Supervised by the
/// node (`node.rs`), which acts on how it ended.
pub(crate) async fn run(
    inner: &Arc<Shared>,
    key: ExecKey,
    rx: mpsc::UnboundedReceiver<ActorMsg>,
) -> Result<Exit, ActorError> {
    let loaded = inner
        .services
        .store
        .load_execution(key)
        .await
        .map_err(|source| ActorError::Load { key, source })?;
    if loaded.record.status != ExecutionStatus::Running {
        inner.registry.closed(key, None);
        return Ok(Exit::Done);
    }
    let id = loaded.record.id.clone();
    if loaded.record.parked.is_some() {
        // Waits for an operator: upgrade to a fixed component, or fail it.
        return Ok(Exit::Done);
    }
    inner
        .services
        .ensure_component(loaded.record.component)
        .await
        .map_err(|source| ActorError::Component {
            id: id.clone(),
            source,
        })?;
    if loaded.history.len() > 1 {
        inner
            .registry
            .stats
            .replays
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    let mut state = ExecutionState::from_history(id.clone(), loaded.history)?;
    let mut driver = ActorDriver {
        inner: inner.clone(),
        key,
        rx,
        next_inbox: loaded
            .inbox
            .first()
            .map_or(loaded.record.next_inbox, |e| e.seq),
        buffered: BTreeMap::new(),
        consumed_through: None,
        default_queue: loaded.record.task_queue.clone(),
        locals_run: Default::default(),
        handed_off: Vec::new(),
    };
    for entry in loaded.inbox {
        driver.buffered.insert(entry.seq, entry.message);
    }
    state.set_limits(inner.services.engine.config().limits);
    // Inbox entries that arrived while the execution was not in memory go
    // into history before the guest runs.
    driver.drain(&mut state);

    let (state, end) = if state.is_closed() {
        // One of them would have passed the history limits, and terminated
        // the execution: there is nothing left for the guest to do.
        (state, RunEnd::Closed)
    } else {
        inner
            .services
            .engine
            .clone()
            .run(state, Box::new(driver))
            .await
            .map_err(|source| ActorError::Engine {
                id: id.clone(),
                source,
            })?
    };
    match end {
        RunEnd::Closed => {
            let end = state.history().last().map(|e| &e.kind);
            let status = end.map_or(ExecutionStatus::Failed, |end| {
                ExecutionStatus::closing(end, state.cancel_requested())
            });
            let next_input = match end {
                Some(EventKind::ExecutionContinuedAsNew { input }) => Some(input.clone()),
                _ => None,
            };
            let mut transition = final_transition(key, &state, status);
            // Children started in this last task still start: an abandoned
            // one runs on, the others get their parent-close policy at once.
            transition.new_children = new_children(&inner.services, &state, state.pending().1);
            if let Some(input) = next_input {
                // The next run: same id, type and queue, on the type's
                // current code (this run's if none is deployed here).
                let req = StartWorkflow {
                    workflow_id: id.workflow_id.clone(),
                    workflow_type: loaded.record.workflow_type.clone(),
                    input,
                    task_queue: Some(loaded.record.task_queue.clone()),
                    ..StartWorkflow::default()
                };
                let next = inner
                    .services
                    .new_execution_or(req, Some(state.component()))
                    .map_err(|source| ActorError::ContinueAsNew {
                        id: id.clone(),
                        source,
                    })?;
                transition.continue_as_new = Some(next);
            }
            let events = transition.events.clone();
            match inner.services.store.commit(transition).await {
                Ok(done) => {
                    tracing::debug!(execution = %id, ?status, "execution closed");
                    inner.registry.updates_answered(key, &events);
                    let outcome = events.last().and_then(|e| WorkflowOutcome::of(&e.kind));
                    inner.registry.closed(key, outcome.flatten());
                    inner.committed(done);
                    Ok(Exit::Done)
                }
                Err(StoreError::Conflict { .. }) => Ok(Exit::Reload),
                Err(source) => Err(ActorError::Commit {
                    id,
                    what: "the closing commit",
                    source,
                }),
            }
        }
        RunEnd::Nondeterminism(n) => {
            // The divergence can quote a failure, which can quote a value.
            // (The history records it as it is.)
            let shown = inner.services.log_text(state.history(), &n.to_string());
            tracing::error!(execution = %id, "execution parked: {shown}");
            // Record the parking in history, after the durable prefix only:
            // nothing the diverged code did is kept.
            let (first, _) = state.pending();
            let park = Transition {
                key,
                first_index: first as u64,
                events: vec![Event::new(
                    inner.services.clock.now(),
                    EventKind::ExecutionParked {
                        reason: n.to_string(),
                    },
                )],
                ..Transition::default()
            };
            match inner.services.store.commit(park).await {
                Ok(_) => {
                    inner.registry.parked(key);
                    Ok(Exit::Done)
                }
                Err(StoreError::Conflict { .. }) => Ok(Exit::Reload),
                Err(source) => Err(ActorError::Commit {
                    id,
                    what: "recording the parking",
                    source,
                }),
            }
        }
        RunEnd::Stopped(DriverStop::Evicted) => Ok(Exit::Done),
        RunEnd::Stopped(DriverStop::Superseded) => {
            tracing::warn!(execution = %id, "history moved on under this actor; reloading");
            Ok(Exit::Reload)
        }
        // Queries run on their own replays, never on an actor's instance.
        RunEnd::QueryFault(message) => Err(ActorError::QueryFault { id, message }),
        RunEnd::Stopped(stop) => Err(ActorError::Stopped { id, stop }),
    }
}

struct ActorDriver {
    inner: Arc<Shared>,
    key: ExecKey,
    rx: mpsc::UnboundedReceiver<ActorMsg>,
    /// Next inbox seq to move into history.
    next_inbox: u64,
    /// Entries received out of order (or loaded), by seq.
    buffered: BTreeMap<u64, InboxMessage>,
    /// Highest inbox seq moved into pending events.
    consumed_through: Option<u64>,
    default_queue: String,
    /// Local activities of this workflow task already run (by seq).
    locals_run: std::collections::BTreeSet<u32>,
    /// Local activities whose retries go to their queue, for the commit.
    handed_off: Vec<NewActivityTask>,
}

impl ActorDriver {
    /// Move buffered inbox entries, in order, into history. True if any
    /// produced an event.
    fn drain(&mut self, state: &mut ExecutionState) -> bool {
        let mut delivered = false;
        while let Some(message) = self.buffered.remove(&self.next_inbox) {
            delivered |= state.deliver(&message, self.inner.services.clock.now());
            self.consumed_through = Some(self.next_inbox);
            self.next_inbox += 1;
        }
        delivered
    }

    /// Run the local activities scheduled since the last wait, all at
    /// once, and move their attempts into history. False if there were
    /// none.
    async fn run_local_activities(&mut self, state: &mut ExecutionState) -> bool {
        let (_, pending) = state.pending();
        let mut running = tokio::task::JoinSet::new();
        for event in pending {
            let Some((task, true)) =
                crate::transition::new_task(&self.inner.services, &self.default_queue, event)
            else {
                continue;
            };
            if !self.locals_run.insert(task.seq) {
                continue;
            }
            let inner = self.inner.clone();
            let (key, id) = (self.key, state.id().clone());
            running.spawn(async move { crate::local::run(inner, key, id, task).await });
        }
        if running.is_empty() {
            return false;
        }
        // Into history in the order the attempts ended, each at its time
        // (live history only: replay reads the order back).
        let mut reports = Vec::new();
        for local in running.join_all().await {
            reports.extend(local.reports);
            self.handed_off.extend(local.handoff);
        }
        reports.sort_by_key(|(ended, report)| (*ended, report.seq, report.attempt));
        for (ended, report) in reports {
            state.deliver(&InboxMessage::Activity(report), ended);
        }
        true
    }

    async fn commit(&mut self, state: &mut ExecutionState) -> Result<(), DriverStop> {
        let (first, events) = state.pending();
        if events.is_empty() && self.consumed_through.is_none() {
            return Ok(());
        }
        let transition = Transition {
            key: self.key,
            first_index: first as u64,
            events: events.to_vec(),
            consumed_inbox_through: self.consumed_through.take(),
            new_tasks: new_tasks(&self.inner.services, &self.default_queue, events, false)
                .into_iter()
                .chain(self.handed_off.drain(..))
                .collect(),
            new_timers: new_timers(events),
            cancelled_timers: cancelled_timers(state.history(), events),
            new_children: new_children(&self.inner.services, state, events),
            ..Transition::default()
        };
        let queues: Vec<String> = transition
            .new_tasks
            .iter()
            .map(|t| t.queue.clone())
            .collect();
        // Task timeouts are due items too.
        let timers = !transition.new_timers.is_empty()
            || transition.new_tasks.iter().any(|t| t.timeouts.arms_due());
        let done = match self.inner.services.store.commit(transition).await {
            Ok(done) => done,
            Err(StoreError::Conflict { .. }) => return Err(DriverStop::Superseded),
            Err(e) => return Err(DriverStop::Storage(e.to_string())),
        };
        self.inner.committed(done);
        self.inner
            .registry
            .updates_answered(self.key, state.pending().1);
        state.mark_durable();
        let bytes = state.history_bytes();
        lock(&self.inner.registry.history_bytes).insert(self.key, bytes);
        // Their events are durable now: never pending again.
        self.locals_run.clear();
        // Output commit rule: workers and timers see the work only now.
        for queue in queues {
            self.inner.dispatch.wake_queue(&queue);
        }
        if timers {
            self.inner.dispatch.timers_changed.notify_one();
        }
        Ok(())
    }
}

#[async_trait]
impl Driver for ActorDriver {
    fn now(&self) -> Timestamp {
        self.inner.services.clock.now()
    }

    fn log_line(&self, state: &ExecutionState, message: String) -> String {
        self.inner.services.log_text(state.history(), &message)
    }

    async fn block(&mut self, state: &mut ExecutionState) -> Result<(), DriverStop> {
        // Local activities run before the commit, which then records them
        // with their results; the guest may be waiting on one.
        if self.run_local_activities(state).await {
            return Ok(());
        }
        self.commit(state).await?;
        loop {
            if self.drain(state) {
                return Ok(());
            }
            match self.rx.recv().await {
                Some(ActorMsg::Inbox(entry)) if entry.seq >= self.next_inbox => {
                    let entry = *entry;
                    self.buffered.insert(entry.seq, entry.message);
                }
                Some(ActorMsg::Inbox(_)) => {} // already loaded from the store
                Some(ActorMsg::Evict) | None => return Err(DriverStop::Evicted),
            }
        }
    }
}
