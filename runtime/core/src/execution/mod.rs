//! The replay matcher: answers a guest's host calls from history.
//!
//! An [`ExecutionState`] holds one execution's history (durable prefix plus
//! events not yet committed) and the guest's position in it. The engine
//! calls [`ExecutionState::command`] for every command the guest issues and
//! [`ExecutionState::poll_wait`] for every `wait-any`; the runtime appends
//! inbox messages with [`ExecutionState::deliver`] and commits
//! [`ExecutionState::pending`].
//!
//! Determinism argument, kept here because every method relies on it:
//! `poll_wait` returns, among the awaited handles, the one whose resolving
//! event has the lowest index in history. Live, the history only grows at
//! the end, so the handle returned is the lowest-indexed resolution the
//! awaited set will ever have. Replay sees the complete history and so
//! picks the same handle. Workflow time only moves when the guest wakes on
//! an event (to that event's recorded time), so it replays identically too.

use crate::codec::encoded_len;
use crate::{
    Command, ComponentId, Event, EventKind, ExecutionId, Failure, Limits, Payload, Timestamp,
};
use std::collections::{BTreeMap, VecDeque};

/// Which kind of named message a wait takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Channel {
    Signal,
    Update,
}

/// How an awaited handle resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The activity returned a value.
    Completed(Payload),
    /// The activity failed for good.
    Failed(Failure),
    /// The timer fired.
    Fired,
    /// The timer was cancelled.
    Cancelled,
    /// The execution was asked to cancel: returned once, by the first wait
    /// after the request, for the first awaited handle.
    CancelRequested,
}

/// A resolved handle, as `wait-any` returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Wake {
    /// The handle (command sequence number).
    pub handle: u32,
    /// How it resolved.
    pub outcome: Outcome,
}

/// Where in history a handle resolved. The outcome is read from that event
/// when a wait returns it, so a payload is held once, in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolution {
    /// Index of the resolving event.
    pub index: usize,
}

/// The workflow code did something other than what history records.
///
/// Not a runtime failure: the code changed (or reads something
/// nondeterministic). The execution is parked until an operator acts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "nondeterminism at command #{seq}: history recorded {recorded}, but the workflow code now {actual}{}",
    location.as_deref().map(|l| format!("\nwhere the workflow code made that call:\n{l}")).unwrap_or_default()
)]
pub struct Nondeterminism {
    /// Sequence number of the diverging command.
    pub seq: u32,
    /// What history holds at that point.
    pub recorded: String,
    /// What the code did instead.
    pub actual: String,
    /// Where in the guest the diverging call was made (a wasm backtrace
    /// naming the guest's functions); set by the engine.
    pub location: Option<String>,
}

/// Why a `wait-any` cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    /// The guest passed no handles.
    #[error("wait-any called with no handles")]
    Empty,
    /// The guest passed a handle it never received.
    #[error("wait-any called with unknown handle {0}")]
    UnknownHandle(u32),
    /// The guest blocks where history says it went on to issue commands.
    #[error(transparent)]
    Nondeterminism(#[from] Nondeterminism),
}

/// One execution's history and the guest's position in it.
#[derive(Debug)]
pub struct ExecutionState {
    id: ExecutionId,
    history: Vec<Event>,
    /// Events `[..durable]` are committed.
    durable: usize,
    /// History length when loaded: resolutions at or after it are new.
    loaded: usize,
    /// False while the guest re-executes what it did before (logs muted).
    live: bool,
    /// For each recorded command (by seq), the index of its event.
    commands: Vec<usize>,
    next_seq: u32,
    resolutions: BTreeMap<u32, Resolution>,
    time: Timestamp,
    closed: bool,
    /// The component this history runs on (changed by upgrades).
    component: ComponentId,
    /// Signals not yet taken by a `SignalAwaited`, by name: their event
    /// indexes, oldest first.
    signals: BTreeMap<(Channel, String), VecDeque<usize>>,
    /// `SignalAwaited` commands still waiting for a signal, by name.
    signal_waiters: BTreeMap<(Channel, String), VecDeque<u32>>,
    /// Index of the `CancelRequested` event, if any.
    cancel_requested: Option<usize>,
    /// True once a `wait-any` has returned the cancellation.
    cancel_delivered: bool,
    /// Size of `history[..bytes_counted]` as stored (sum of `encoded_len`),
    /// counted when a limit check first needs it: a replay that never goes
    /// live (a query, a dry-run upgrade) never pays for it.
    bytes: u64,
    bytes_counted: usize,
    /// The history limits every append is held to.
    limits: Limits,
}

use crate::limits::HISTORY_CLOSING_RESERVE as CLOSING_RESERVE;

/// A history no execution state can be built from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// It has no events.
    #[error("history of {0} is empty")]
    Empty(ExecutionId),
    /// Its first event is not `ExecutionStarted`.
    #[error("history of {execution} begins with {first}, not ExecutionStarted")]
    NoStart {
        /// Whose history.
        execution: ExecutionId,
        /// What it begins with.
        first: &'static str,
    },
}

impl ExecutionState {
    /// Rebuild the state of an execution from its history. The first event
    /// must be `ExecutionStarted`.
    pub fn from_history(id: ExecutionId, history: Vec<Event>) -> Result<Self, HistoryError> {
        let Some(first) = history.first() else {
            return Err(HistoryError::Empty(id));
        };
        if !matches!(first.kind, EventKind::ExecutionStarted { .. }) {
            return Err(HistoryError::NoStart {
                first: first.kind.name(),
                execution: id,
            });
        }
        let mut state = ExecutionState {
            id,
            time: first.at,
            durable: history.len(),
            loaded: history.len(),
            live: history.len() == 1,
            commands: Vec::new(),
            next_seq: 0,
            resolutions: BTreeMap::new(),
            // Grown as events come (an event is ~220 bytes, and a cached
            // execution keeps its history).
            history: Vec::with_capacity(history.len()),
            closed: false,
            component: ComponentId::default(),
            signals: BTreeMap::new(),
            signal_waiters: BTreeMap::new(),
            cancel_requested: None,
            cancel_delivered: false,
            bytes: 0,
            bytes_counted: 0,
            limits: Limits::default(),
        };
        for event in history {
            state.push(event);
        }
        Ok(state)
    }

    /// Hold every later append to `limits` (the engine's; the default
    /// until set).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// The history's size as stored, in bytes.
    pub fn history_bytes(&mut self) -> u64 {
        let more: u64 = self.history[self.bytes_counted..]
            .iter()
            .map(encoded_len)
            .sum();
        self.bytes += more;
        self.bytes_counted = self.history.len();
        self.bytes
    }

    /// Events and bytes of the history before its closing event (all of it
    /// while it is open). A limit check made where the history ends live
    /// uses these, so a replay of the closed history, which sees the
    /// closing event too, decides the same.
    fn size_before_close(&mut self) -> (usize, u64) {
        let bytes = self.history_bytes();
        match self.history.last() {
            Some(last) if last.kind.is_terminal() => {
                (self.history.len() - 1, bytes - encoded_len(last))
            }
            _ => (self.history.len(), bytes),
        }
    }

    /// Why the guest's next command, `cmd`, may not be recorded (the
    /// history would leave no room to close), or `None` if it may.
    pub fn command_room(&mut self, cmd: &Command) -> Option<String> {
        // The command's encoding stands for its event's: the same fields,
        // plus a sequence number and a time.
        let body = postcard::serialize_with_flavor(cmd, postcard::ser_flavors::Size::default());
        let estimate = body.map_or(0, |n: usize| n as u64) + 16;
        let size = self.size_before_close();
        self.limits
            .history_room(size, (1, estimate), CLOSING_RESERVE)
    }

    /// The execution's id.
    pub fn id(&self) -> &ExecutionId {
        &self.id
    }

    /// The whole history, durable and pending.
    pub fn history(&self) -> &[Event] {
        &self.history
    }

    /// Workflow time: the time of the latest event the guest woke on.
    pub fn time(&self) -> Timestamp {
        self.time
    }

    /// True once the guest has moved past what history recorded.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// True if the guest's next command is beyond what history recorded.
    pub fn next_command_is_new(&self) -> bool {
        self.next_seq as usize >= self.commands.len()
    }

    /// How many commands the guest has issued (or re-issued) so far.
    pub fn commands_issued(&self) -> u32 {
        self.next_seq
    }

    /// True once a terminal event is in history.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// True if command `handle` has resolved (fired, completed, failed
    /// for good, cancelled).
    pub fn is_resolved(&self, handle: u32) -> bool {
        self.resolutions.contains_key(&handle)
    }

    /// True if `handle` is a timer this execution started.
    pub fn is_timer(&self, handle: u32) -> bool {
        handle < self.next_seq
            && self
                .commands
                .get(handle as usize)
                .is_some_and(|&i| matches!(self.history[i].kind, EventKind::TimerStarted { .. }))
    }

    /// Children started and not yet closed (as far as history knows), with
    /// what should happen to them when this execution closes.
    pub fn open_children(&self) -> Vec<(String, crate::ParentClosePolicy)> {
        self.commands
            .iter()
            .filter_map(|&i| match &self.history[i].kind {
                EventKind::ChildStarted {
                    seq,
                    workflow_id,
                    options,
                    ..
                } if !self.resolutions.contains_key(seq) => {
                    Some((workflow_id.clone(), options.parent_close_policy))
                }
                _ => None,
            })
            .collect()
    }

    /// True if a cancellation was requested (whether or not the guest has
    /// seen it yet). For the runtime; the guest learns it from `wait-any`.
    pub fn cancel_requested(&self) -> bool {
        self.cancel_requested.is_some()
    }

    /// The workflow's input and the seed of its random stream, from
    /// `ExecutionStarted`. (The component to run is [`Self::component`]:
    /// the started one may since have been upgraded.)
    pub fn input_and_seed(&self) -> (&[u8], &[u8; 32]) {
        match &self.history[0].kind {
            EventKind::ExecutionStarted {
                input, random_seed, ..
            } => (input, random_seed),
            // `from_history` refuses any other first event.
            _ => unreachable!("history starts with ExecutionStarted"),
        }
    }

    /// The component to run: the one the execution started with, or the
    /// last it was upgraded to.
    pub fn component(&self) -> ComponentId {
        self.component
    }

    /// Events not yet committed, and the index of the first of them.
    pub fn pending(&self) -> (usize, &[Event]) {
        (self.durable, &self.history[self.durable..])
    }

    /// Record that every event so far is committed.
    pub fn mark_durable(&mut self) {
        self.durable = self.history.len();
    }

    fn push(&mut self, event: Event) {
        let index = self.history.len();
        match &event.kind {
            EventKind::ActivityScheduled { .. }
            | EventKind::TimerStarted { .. }
            | EventKind::SideEffectRecorded { .. }
            | EventKind::PatchMarker { .. }
            | EventKind::ChildStarted { .. } => {
                self.commands.push(index);
            }
            EventKind::ChildCompleted { seq, .. } | EventKind::ChildFailed { seq, .. } => {
                self.resolve(*seq, index);
            }
            EventKind::SignalAwaited { seq, name } => {
                self.commands.push(index);
                self.await_message((Channel::Signal, name.clone()), *seq);
            }
            EventKind::UpdateAwaited { seq, name } => {
                self.commands.push(index);
                self.await_message((Channel::Update, name.clone()), *seq);
            }
            EventKind::UpdateCompleted { .. }
            | EventKind::SearchAttributesUpserted { .. }
            | EventKind::MemoUpserted { .. } => self.commands.push(index),
            EventKind::SignalReceived { name, .. } => {
                self.receive_message((Channel::Signal, name.clone()), index);
            }
            EventKind::UpdateAccepted { name, .. } => {
                self.receive_message((Channel::Update, name.clone()), index);
            }
            EventKind::TimerCanceled { timer, .. } => {
                self.commands.push(index);
                self.resolve(*timer, index);
            }
            EventKind::CancelRequested { .. } => {
                self.cancel_requested.get_or_insert(index);
            }
            EventKind::ActivityCompleted { seq, .. }
            | EventKind::ActivityFailed {
                seq,
                retry_at: None,
                ..
            }
            | EventKind::ActivityTimedOut {
                seq,
                retry_at: None,
                ..
            }
            | EventKind::TimerFired { seq } => self.resolve(*seq, index),
            EventKind::ExecutionStarted { component, .. } => self.component = *component,
            EventKind::ComponentUpgraded { to, .. } => self.component = *to,
            EventKind::ExecutionCompleted { .. }
            | EventKind::ExecutionFailed { .. }
            | EventKind::ExecutionTerminated { .. }
            | EventKind::ExecutionContinuedAsNew { .. }
            | EventKind::ExecutionTimedOut { .. } => self.closed = true,
            EventKind::ActivityStarted { .. }
            | EventKind::ExecutionParked { .. }
            | EventKind::ActivityFailed { .. }
            | EventKind::ActivityTimedOut { .. } => {}
        }
        self.history.push(event);
    }

    /// A wait for the next message of `key`: resolved at once by the
    /// oldest one not yet taken, or queued until one arrives.
    fn await_message(&mut self, key: (Channel, String), seq: u32) {
        match self.signals.get_mut(&key).and_then(VecDeque::pop_front) {
            Some(message) => self.resolve(seq, message),
            None => self.signal_waiters.entry(key).or_default().push_back(seq),
        }
    }

    /// A message of `key` at `index`: resolves the oldest waiting wait, or
    /// is kept for the next one.
    fn receive_message(&mut self, key: (Channel, String), index: usize) {
        match self
            .signal_waiters
            .get_mut(&key)
            .and_then(VecDeque::pop_front)
        {
            Some(seq) => self.resolve(seq, index),
            None => self.signals.entry(key).or_default().push_back(index),
        }
    }

    /// The id of the update request that resolved `handle` (an
    /// `UpdateAwaited` command), if it has resolved.
    pub fn update_id(&self, handle: u32) -> Option<&str> {
        let resolution = self.resolutions.get(&handle)?;
        match &self.history[resolution.index].kind {
            EventKind::UpdateAccepted { update_id, .. } => Some(update_id),
            _ => None,
        }
    }

    fn resolve(&mut self, seq: u32, index: usize) {
        self.resolutions.entry(seq).or_insert(Resolution { index });
    }

    /// The outcome the resolving event at `index` gives its handle.
    fn outcome_at(&self, index: usize) -> Outcome {
        match &self.history[index].kind {
            EventKind::ActivityCompleted { result, .. }
            | EventKind::ChildCompleted { result, .. } => Outcome::Completed(result.clone()),
            EventKind::SignalReceived { payload, .. } => Outcome::Completed(payload.clone()),
            EventKind::UpdateAccepted { args, .. } => Outcome::Completed(args.clone()),
            EventKind::ActivityFailed { failure, .. } | EventKind::ChildFailed { failure, .. } => {
                Outcome::Failed(failure.clone())
            }
            EventKind::ActivityTimedOut { kind, .. } => Outcome::Failed(Failure::timeout(*kind)),
            EventKind::TimerFired { .. } => Outcome::Fired,
            EventKind::TimerCanceled { .. } => Outcome::Cancelled,
            EventKind::CancelRequested { .. } => Outcome::CancelRequested,
            // `push` resolves handles only at the events above.
            other => Outcome::Failed(Failure::new(
                "InternalError",
                format!("a handle resolved at a {} event", other.name()),
            )),
        }
    }
}

mod commands;
mod describe;
mod waits;

#[cfg(test)]
mod tests;
