//! The execution actor: one task per cached execution.
//!
//! It loads the history, replays it through the guest (the engine answers
//! recorded calls from history) and keeps running live. Each time the guest
//! blocks, [`ActorDriver::block`] commits the workflow task (new events,
//! consumed inbox entries, new activity tasks and timers) in one
//! transaction, and only then makes the tasks and timers visible.

use crate::runtime::{Inner, StartWorkflow, WorkflowOutcome};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use weft_core::{Event, EventKind, ExecutionState, Failure, InboxMessage, RetryPolicy, Timestamp};
use weft_engine::{Driver, DriverStop, RunEnd};
use weft_store::{
    ActivityTimeouts, ExecKey, ExecutionStatus, InboxEntry, NewActivityTask, NewChild, StoreError,
    Transition,
};

/// What the runtime tells an actor.
pub(crate) enum ActorMsg {
    /// A committed inbox entry of this execution. Boxed: a channel
    /// allocates its slots up front (32 at a time), and every cached
    /// execution has one.
    Inbox(Box<InboxEntry>),
    /// Leave the cache: stop at the next wait point without committing.
    Evict,
}

/// How an actor's run ended, when it did not fail.
enum Exit {
    /// Nothing more for now: closed, parked, evicted, or waiting for its
    /// inbox in a later actor.
    Done,
    /// Another writer moved the history on: load it again.
    Reload,
}

pub(crate) async fn run(
    inner: Arc<Inner>,
    key: ExecKey,
    generation: u64,
    rx: mpsc::UnboundedReceiver<ActorMsg>,
) {
    let outcome = run_once(&inner, key, rx).await;
    inner.actor_exited(key, generation);
    match outcome {
        Ok(Exit::Done) => inner.clear_backoff(key),
        // Another actor committed to this history first (an eviction
        // race): start over from what is durable.
        Ok(Exit::Reload) => inner.activate(key),
        // The store or the engine failed (a full disk, say). Nothing
        // committed is lost, but the deliveries that would wake this
        // execution may depend on the write that failed: try again later.
        Err(e) => {
            let delay = inner.next_backoff(key);
            tracing::error!(key, "execution stopped: {e}; retrying in {delay:?}");
            let inner2 = inner.clone();
            inner.spawn(async move {
                let mut shutdown = inner2.shutdown.clone();
                tokio::select! {
                    _ = tokio::time::sleep(delay) => inner2.activate(key),
                    _ = shutdown.wait_for(|s| *s) => {}
                }
            });
        }
    }
}

/// Load and run the execution. `Ok(Exit::Reload)` asks for a reload.
async fn run_once(
    inner: &Arc<Inner>,
    key: ExecKey,
    rx: mpsc::UnboundedReceiver<ActorMsg>,
) -> Result<Exit, String> {
    let loaded = inner
        .store
        .load_execution(key)
        .await
        .map_err(|e| e.to_string())?;
    if loaded.record.status != ExecutionStatus::Running {
        inner.closed(key, None);
        return Ok(Exit::Done);
    }
    let id = loaded.record.id.clone();
    if loaded.record.parked.is_some() {
        // Waits for an operator: upgrade to a fixed component, or fail it.
        return Ok(Exit::Done);
    }
    inner
        .ensure_component(loaded.record.component)
        .await
        .map_err(|e| format!("{id}: {e}"))?;
    if loaded.history.len() > 1 {
        inner
            .stats
            .replays
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    let mut state =
        ExecutionState::from_history(id.clone(), loaded.history).map_err(|e| e.to_string())?;
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
    state.set_limits(inner.engine.config().limits);
    // Inbox entries that arrived while the execution was not in memory go
    // into history before the guest runs.
    driver.drain(&mut state);

    let (state, end) = if state.is_closed() {
        // One of them would have passed the history limits, and terminated
        // the execution: there is nothing left for the guest to do.
        (state, RunEnd::Closed)
    } else {
        inner
            .engine
            .clone()
            .run(state, Box::new(driver))
            .await
            .map_err(|e| format!("{id}: {e}"))?
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
            transition.new_children = new_children(inner, &state, state.pending().1);
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
                    .new_execution_or(req, Some(state.component()))
                    .map_err(|e| format!("{id}: cannot continue as new: {e}"))?;
                transition.continue_as_new = Some(next);
            }
            let events = transition.events.clone();
            match inner.store.commit(transition).await {
                Ok(done) => {
                    tracing::debug!(execution = %id, ?status, "execution closed");
                    inner.updates_answered(key, &events);
                    let outcome = events.last().and_then(|e| WorkflowOutcome::of(&e.kind));
                    inner.closed(key, outcome.flatten());
                    inner.committed(done);
                    Ok(Exit::Done)
                }
                Err(StoreError::Conflict { .. }) => Ok(Exit::Reload),
                Err(e) => Err(format!("{id}: closing commit failed: {e}")),
            }
        }
        RunEnd::Nondeterminism(n) => {
            tracing::error!(execution = %id, "execution parked: {n}");
            // Record the parking in history, after the durable prefix only:
            // nothing the diverged code did is kept.
            let (first, _) = state.pending();
            let park = Transition {
                key,
                first_index: first as u64,
                events: vec![Event::new(
                    inner.clock.now(),
                    EventKind::ExecutionParked {
                        reason: n.to_string(),
                    },
                )],
                ..Transition::default()
            };
            match inner.store.commit(park).await {
                Ok(_) => {
                    inner.parked(key);
                    Ok(Exit::Done)
                }
                Err(StoreError::Conflict { .. }) => Ok(Exit::Reload),
                Err(e) => Err(format!("{id}: cannot record parking: {e}")),
            }
        }
        RunEnd::Stopped(DriverStop::Evicted) => Ok(Exit::Done),
        RunEnd::Stopped(DriverStop::Superseded) => {
            tracing::warn!(execution = %id, "history moved on under this actor; reloading");
            Ok(Exit::Reload)
        }
        // Queries run on their own replays, never on an actor's instance.
        RunEnd::QueryFault(m) => Err(format!("{id}: unexpected query fault: {m}")),
        RunEnd::Stopped(stop) => Err(format!("{id}: {stop}")),
    }
}

struct ActorDriver {
    inner: Arc<Inner>,
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
            delivered |= state.deliver(&message, self.inner.clock.now());
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
            let Some((task, true)) = new_task(&self.inner, &self.default_queue, event) else {
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
            new_tasks: new_tasks(&self.inner, &self.default_queue, events, false)
                .into_iter()
                .chain(self.handed_off.drain(..))
                .collect(),
            new_timers: new_timers(events),
            cancelled_timers: cancelled_timers(state.history(), events),
            new_children: new_children(&self.inner, state, events),
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
        let done = match self.inner.store.commit(transition).await {
            Ok(done) => done,
            Err(StoreError::Conflict { .. }) => return Err(DriverStop::Superseded),
            Err(e) => return Err(DriverStop::Storage(e.to_string())),
        };
        self.inner.committed(done);
        self.inner.updates_answered(self.key, state.pending().1);
        state.mark_durable();
        let bytes = state.history_bytes();
        crate::runtime::lock(&self.inner.history_bytes).insert(self.key, bytes);
        // Their events are durable now: never pending again.
        self.locals_run.clear();
        // Output commit rule: workers and timers see the work only now.
        for queue in queues {
            self.inner.wake_queue(&queue);
        }
        if timers {
            self.inner.timers_changed.notify_one();
        }
        Ok(())
    }
}

#[async_trait]
impl Driver for ActorDriver {
    fn now(&self) -> Timestamp {
        self.inner.clock.now()
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

fn final_transition(key: ExecKey, state: &ExecutionState, status: ExecutionStatus) -> Transition {
    let (first, events) = state.pending();
    Transition {
        key,
        first_index: first as u64,
        events: events.to_vec(),
        // Closing deletes the whole inbox: nothing more will be consumed.
        consumed_inbox_through: Some(u64::MAX),
        // Activities scheduled but never awaited are abandoned with the
        // execution, so no task is created for them.
        close: Some(status),
        ..Transition::default()
    }
}

/// Activity tasks for the `ActivityScheduled` events among `events`; local
/// activities only with `include_local` (they run in the workflow task,
/// and get a task only if their retries are handed to the queue).
pub(crate) fn new_tasks(
    inner: &Inner,
    default_queue: &str,
    events: &[Event],
    include_local: bool,
) -> Vec<NewActivityTask> {
    events
        .iter()
        .filter_map(|e| new_task(inner, default_queue, e))
        .filter(|(_, local)| include_local || !local)
        .map(|(task, _)| task)
        .collect()
}

/// The task of an `ActivityScheduled` event (and whether it is local).
pub(crate) fn new_task(
    inner: &Inner,
    default_queue: &str,
    event: &Event,
) -> Option<(NewActivityTask, bool)> {
    let EventKind::ActivityScheduled {
        seq,
        name,
        input,
        options,
    } = &event.kind
    else {
        return None;
    };
    let task = NewActivityTask {
        seq: *seq,
        // A queue the workflow names is in its own namespace.
        queue: options.task_queue.as_deref().map_or_else(
            || default_queue.to_owned(),
            |q| weft_core::namespace::same_namespace(default_queue, q),
        ),
        name: name.clone(),
        input: input.clone(),
        retry: options.retry.clone().unwrap_or_else(RetryPolicy::default),
        timeouts: ActivityTimeouts {
            start_to_close_ms: options
                .start_to_close_timeout_ms
                .unwrap_or(inner.config.default_start_to_close_ms),
            schedule_to_start_ms: options.schedule_to_start_timeout_ms,
            schedule_to_close_ms: options.schedule_to_close_timeout_ms,
            heartbeat_ms: options.heartbeat_timeout_ms,
        },
        scheduled_at: event.at,
        attempt: 1,
        due: event.at,
    };
    Some((task, options.local))
}

/// Timers for the `TimerStarted` events among `events`.
pub(crate) fn new_timers(events: &[Event]) -> Vec<(Timestamp, u32)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::TimerStarted { seq, fire_at, .. } => Some((*fire_at, *seq)),
            _ => None,
        })
        .collect()
}

/// The armed timers that the `TimerCanceled` events among `events` cancel:
/// (due, seq), looked up in `history`.
fn cancelled_timers(history: &[Event], events: &[Event]) -> Vec<(Timestamp, u32)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::TimerCanceled { timer, .. } => history.iter().find_map(|h| match &h.kind {
                EventKind::TimerStarted { seq, fire_at, .. } if seq == timer => {
                    Some((*fire_at, *seq))
                }
                _ => None,
            }),
            _ => None,
        })
        .collect()
}

/// Children to start for the `ChildStarted` events among `events`: on the
/// type's current component, with the parent's queue unless one is given.
fn new_children(inner: &Inner, state: &ExecutionState, events: &[Event]) -> Vec<NewChild> {
    let parent_queue = match &state.history()[0].kind {
        EventKind::ExecutionStarted { task_queue, .. } => task_queue.clone(),
        _ => crate::runtime::DEFAULT_QUEUE.to_owned(),
    };
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ChildStarted {
                seq,
                workflow_type,
                workflow_id,
                input,
                options,
            } => {
                let req = StartWorkflow {
                    workflow_id: workflow_id.clone(),
                    // The type the guest named, as deployed in its
                    // parent's namespace (the id already is in it).
                    workflow_type: weft_core::namespace::same_namespace(workflow_id, workflow_type),
                    input: input.clone(),
                    task_queue: Some(options.task_queue.as_deref().map_or_else(
                        || parent_queue.clone(),
                        |q| weft_core::namespace::same_namespace(&parent_queue, q),
                    )),
                    ..Default::default()
                };
                let start = inner.new_execution(req).map_err(|e| {
                    Failure::new("ChildStartFailed", format!("cannot start child: {e}"))
                        .non_retryable()
                });
                Some(NewChild { seq: *seq, start })
            }
            _ => None,
        })
        .collect()
}
