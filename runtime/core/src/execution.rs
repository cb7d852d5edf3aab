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

use crate::AttemptOutcome;
use crate::codec::{encoded_len, encoded_parts_len};
use crate::{
    Command, ComponentId, Event, EventKind, ExecutionId, Exit, Failure, InboxMessage, Limits,
    Payload, Timestamp,
};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;

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

    /// The guest issued `cmd`. Returns its handle, or the divergence from
    /// the recorded command with the same sequence number.
    pub fn command(&mut self, cmd: Command, now: Timestamp) -> Result<u32, Nondeterminism> {
        if !matches!(cmd, Command::Patch { .. }) {
            self.skip_markers(None);
        }
        let seq = self.next_seq;
        if let Some(&index) = self.commands.get(seq as usize) {
            check_same(seq, &self.history[index].kind, &cmd)?;
            self.next_seq += 1;
            return Ok(seq);
        }
        if self.closed {
            return Err(Nondeterminism {
                seq,
                recorded: "the end of the execution".into(),
                actual: format!("issued {}", describe_command(&cmd)),
                location: None,
            });
        }
        self.live = true;
        self.next_seq += 1;
        let kind = command_event(seq, cmd, now);
        self.push(Event::new(now, kind));
        Ok(seq)
    }

    /// Skip recorded patch markers the code no longer asks about (other
    /// than `keep`): removing a `patched` call once no execution needs its
    /// old branch must not break the histories that recorded it.
    fn skip_markers(&mut self, keep: Option<&str>) {
        while let Some(&index) = self.commands.get(self.next_seq as usize) {
            match &self.history[index].kind {
                EventKind::PatchMarker { change_id, .. } if Some(change_id.as_str()) != keep => {
                    self.next_seq += 1;
                }
                _ => break,
            }
        }
    }

    /// `patched(change_id)`: true if the history recorded this patch here,
    /// or if the guest is live (new code meeting new history, so a marker
    /// is recorded); false while replaying a history made without it.
    pub fn patched(&mut self, change_id: &str, now: Timestamp) -> Result<bool, Nondeterminism> {
        self.skip_markers(Some(change_id));
        if let Some(&index) = self.commands.get(self.next_seq as usize) {
            let here = matches!(&self.history[index].kind,
                EventKind::PatchMarker { change_id: c, .. } if c == change_id);
            if here {
                self.next_seq += 1;
            }
            return Ok(here);
        }
        if !self.live || self.closed {
            return Ok(false);
        }
        self.command(
            Command::Patch {
                change_id: change_id.to_owned(),
            },
            now,
        )?;
        Ok(true)
    }

    /// The side-effect value recorded at this point, if history has one.
    /// Only a look: the guest runs the side effect's code either way, and
    /// its `RecordValue` command, matched like any other, takes the
    /// sequence number. A different recorded command here is not an error
    /// yet (a side effect whose code raised records nothing); the next
    /// command finds any divergence.
    pub fn recorded_value(&mut self) -> Option<&[u8]> {
        self.skip_markers(None);
        let &index = self.commands.get(self.next_seq as usize)?;
        match &self.history[index].kind {
            EventKind::SideEffectRecorded { value, .. } => Some(value),
            _ => None,
        }
    }

    /// Answer a `wait-any`: the awaited handle whose resolution comes first
    /// in history, or `None` if none has resolved (the guest must block).
    pub fn poll_wait(&mut self, handles: &[u32]) -> Result<Option<Wake>, WaitError> {
        if handles.is_empty() {
            return Err(WaitError::Empty);
        }
        if let Some(&unknown) = handles.iter().find(|h| **h >= self.next_seq) {
            return Err(WaitError::UnknownHandle(unknown));
        }
        let first = handles
            .iter()
            .filter_map(|h| self.resolutions.get(h).map(|r| (r.index, *h)))
            .min_by_key(|(index, _)| *index);
        // A cancellation request is a resolution of every wait until one
        // wait has returned it; the same earliest-index rule applies.
        let cancel = self
            .cancel_requested
            .filter(|_| !self.cancel_delivered)
            .map(|index| (index, handles[0]));
        let first = match (first, cancel) {
            (Some(f), Some(c)) => Some(if c.0 < f.0 { c } else { f }),
            (f, c) => f.or(c),
        };
        let Some((index, handle)) = first else {
            if let Some(&recorded) = self.commands.get(self.next_seq as usize) {
                return Err(WaitError::Nondeterminism(Nondeterminism {
                    seq: self.next_seq,
                    recorded: describe_event(&self.history[recorded].kind),
                    actual: format!(
                        "waits on {handles:?}, which history never resolves before that command"
                    ),
                    location: None,
                }));
            }
            self.live = true;
            return Ok(None);
        };
        let wake = Wake {
            handle,
            outcome: self.outcome_at(index),
        };
        if Some(index) == self.cancel_requested {
            self.cancel_delivered = true;
        }
        if index >= self.loaded {
            self.live = true;
        }
        self.time = self.time.max(self.history[index].at);
        Ok(Some(wake))
    }

    /// Append an inbox message to history. Returns false (and appends
    /// nothing) for a message about a handle that is already resolved or
    /// unknown, which a redelivery after a crash can produce.
    ///
    /// A message whose events would leave the history no room to close
    /// (see [`Limits`]) terminates the execution instead, with the reason:
    /// the limit holds for every append, and the decision is in history,
    /// so replays read it rather than make it again.
    pub fn deliver(&mut self, message: &InboxMessage, now: Timestamp) -> bool {
        if self.closed {
            return false;
        }
        let Some(events) = self.delivery_events(message, now) else {
            return false;
        };
        let more = events.iter().map(encoded_len).sum();
        let size = self.size_before_close();
        let room = self
            .limits
            .history_room(size, (events.len(), more), CLOSING_RESERVE);
        if let Some(reason) = room {
            let reason = format!(
                "HistoryLimitExceeded: {reason} (a delivery, {}, would have passed the limit)",
                message.describe()
            );
            self.push(Event::new(now, EventKind::ExecutionTerminated { reason }));
            return true;
        }
        for event in events {
            self.push(event);
        }
        true
    }

    /// The events `message` appends, or `None` if it appends nothing.
    fn delivery_events(&self, message: &InboxMessage, now: Timestamp) -> Option<Vec<Event>> {
        let (message, caller) = message.parts();
        let mut events = self.delivery_events_of(message, now)?;
        for event in &mut events {
            event.caller = caller.cloned();
        }
        Some(events)
    }

    /// [`Self::delivery_events`] of a message with its caller taken off.
    fn delivery_events_of(&self, message: &InboxMessage, now: Timestamp) -> Option<Vec<Event>> {
        let seq = match message {
            // Taken off by the caller.
            InboxMessage::From { .. } => return None,
            InboxMessage::Activity(report) => report.seq,
            InboxMessage::TimerFired { seq } | InboxMessage::ChildClosed { seq, .. } => *seq,
            InboxMessage::Signal { name, payload } => {
                let kind = EventKind::SignalReceived {
                    name: name.clone(),
                    payload: payload.clone(),
                };
                return Some(vec![Event::new(now, kind)]);
            }
            InboxMessage::Update {
                update_id,
                name,
                args,
            } => {
                let kind = EventKind::UpdateAccepted {
                    update_id: update_id.clone(),
                    name: name.clone(),
                    args: args.clone(),
                };
                return Some(vec![Event::new(now, kind)]);
            }
            InboxMessage::CancelRequested { reason } => {
                if self.cancel_requested.is_some() {
                    return None;
                }
                let kind = EventKind::CancelRequested {
                    reason: reason.clone(),
                };
                return Some(vec![Event::new(now, kind)]);
            }
        };
        let expected = self
            .commands
            .get(seq as usize)
            .map(|&i| &self.history[i].kind);
        let matches_kind = matches!(
            (message, expected),
            (
                InboxMessage::Activity(_),
                Some(EventKind::ActivityScheduled { .. })
            ) | (
                InboxMessage::TimerFired { .. },
                Some(EventKind::TimerStarted { .. })
            ) | (
                InboxMessage::ChildClosed { .. },
                Some(EventKind::ChildStarted { .. })
            )
        );
        if !matches_kind || self.resolutions.contains_key(&seq) {
            return None;
        }
        let mut events = Vec::with_capacity(2);
        match message {
            InboxMessage::Signal { .. }
            | InboxMessage::Update { .. }
            | InboxMessage::CancelRequested { .. }
            | InboxMessage::From { .. } => {}
            InboxMessage::ChildClosed { seq, result } => {
                let kind = match result {
                    Ok(result) => EventKind::ChildCompleted {
                        seq: *seq,
                        result: result.clone(),
                    },
                    Err(failure) => EventKind::ChildFailed {
                        seq: *seq,
                        failure: failure.clone(),
                    },
                };
                events.push(Event::new(now, kind));
            }
            InboxMessage::TimerFired { seq } => {
                events.push(Event::new(now, EventKind::TimerFired { seq: *seq }))
            }
            InboxMessage::Activity(r) => {
                let (seq, attempt, retry_at) = (r.seq, r.attempt, r.retry_at);
                if let Some(started_at) = r.started_at {
                    events.push(Event::new(
                        started_at,
                        EventKind::ActivityStarted { seq, attempt },
                    ));
                }
                let kind = match &r.outcome {
                    AttemptOutcome::Completed(result) => EventKind::ActivityCompleted {
                        seq,
                        attempt,
                        result: result.clone(),
                    },
                    AttemptOutcome::Failed(failure) => EventKind::ActivityFailed {
                        seq,
                        attempt,
                        failure: failure.clone(),
                        retry_at,
                    },
                    AttemptOutcome::TimedOut(kind) => EventKind::ActivityTimedOut {
                        seq,
                        attempt,
                        kind: *kind,
                        retry_at,
                    },
                };
                events.push(Event::new(now, kind));
            }
        }
        Some(events)
    }

    /// The guest returned (or trapped). Appends the terminal event, or,
    /// when replaying a closed history, checks that it matches.
    pub fn close(&mut self, exit: Exit, now: Timestamp) -> Result<(), Nondeterminism> {
        if let Some(&recorded) = self.commands.get(self.next_seq as usize) {
            return Err(Nondeterminism {
                seq: self.next_seq,
                recorded: describe_event(&self.history[recorded].kind),
                actual: format!("returned ({})", describe_exit(&exit)),
                location: None,
            });
        }
        let kind = match exit {
            Exit::Completed(result) => EventKind::ExecutionCompleted { result },
            Exit::Failed(failure) => EventKind::ExecutionFailed { failure },
            Exit::ContinueAsNew(input) => EventKind::ExecutionContinuedAsNew { input },
        };
        let recorded = self.history.iter().rposition(|e| e.kind.is_terminal());
        match recorded {
            // The run ended as recorded: it fitted then, whatever the limits.
            Some(index) if self.history[index].kind == kind => Ok(()),
            Some(index) => {
                // Live may have replaced a closing event that did not fit:
                // decide as it did, on the history before the close.
                let kind = self.fitted_close(kind);
                let recorded = &self.history[index].kind;
                if *recorded == kind {
                    return Ok(());
                }
                Err(Nondeterminism {
                    seq: self.next_seq,
                    recorded: describe_event(recorded),
                    actual: format!("ends with {}", describe_event(&kind)),
                    location: None,
                })
            }
            None => {
                let kind = self.fitted_close(kind);
                self.push(Event::new(now, kind));
                Ok(())
            }
        }
    }

    /// The closing event `kind`, or, if it would take the history past its
    /// limits, a `HistoryLimitExceeded` failure in its place. Sized with the
    /// widest timestamp, so the decision does not depend on the time.
    fn fitted_close(&mut self, kind: EventKind) -> EventKind {
        let size = encoded_parts_len(Timestamp(u64::MAX), &kind);
        let before = self.size_before_close();
        let Some(reason) = self.limits.history_room(before, (0, 0), size) else {
            return kind;
        };
        let failure = Failure::new(
            "HistoryLimitExceeded",
            format!("the workflow's closing event ({size} bytes) does not fit: {reason}"),
        );
        EventKind::ExecutionFailed {
            failure: failure.non_retryable(),
        }
    }
}

fn check_same(seq: u32, recorded: &EventKind, cmd: &Command) -> Result<(), Nondeterminism> {
    // Compared: kind, activity name, input digest. Not compared: options and
    // timer durations, so that tuning a timeout does not break running
    // executions (their recorded values stay in force).
    let same = match (recorded, cmd) {
        (
            EventKind::ActivityScheduled { name, input, .. },
            Command::ScheduleActivity {
                name: n, input: i, ..
            },
        ) => name == n && input == i,
        (EventKind::TimerStarted { .. }, Command::StartTimer { .. }) => true,
        (EventKind::SideEffectRecorded { .. }, Command::RecordValue { .. }) => true,
        (EventKind::PatchMarker { change_id, .. }, Command::Patch { change_id: c }) => {
            change_id == c
        }
        (EventKind::SignalAwaited { name, .. }, Command::AwaitSignal { name: n }) => name == n,
        (EventKind::UpdateAwaited { name, .. }, Command::AwaitUpdate { name: n }) => name == n,
        (
            EventKind::SearchAttributesUpserted { attributes, .. },
            Command::UpsertSearchAttributes { attributes: a },
        ) => attributes == a,
        (EventKind::MemoUpserted { memo, .. }, Command::UpsertMemo { memo: m }) => memo == m,
        (
            EventKind::UpdateCompleted {
                request, update_id, ..
            },
            Command::CompleteUpdate {
                request: r,
                update_id: u,
                ..
            },
        ) => request == r && update_id == u,
        (EventKind::TimerCanceled { timer, .. }, Command::CancelTimer { timer: t }) => timer == t,
        (
            EventKind::ChildStarted {
                workflow_type,
                workflow_id,
                input,
                ..
            },
            Command::StartChild {
                workflow_type: t,
                workflow_id: w,
                input: i,
                ..
            },
        ) => workflow_type == t && workflow_id == w && input == i,
        _ => false,
    };
    if same {
        Ok(())
    } else {
        Err(Nondeterminism {
            seq,
            recorded: describe_event(recorded),
            actual: format!("issued {}", describe_command(cmd)),
            location: None,
        })
    }
}

fn digest(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex()[..12].to_owned()
}

/// The history event that records command `cmd` as command `seq`.
fn command_event(seq: u32, cmd: Command, now: Timestamp) -> EventKind {
    match cmd {
        Command::ScheduleActivity {
            name,
            input,
            options,
        } => EventKind::ActivityScheduled {
            seq,
            name,
            input,
            options,
        },
        Command::StartTimer { duration_ms } => EventKind::TimerStarted {
            seq,
            duration_ms,
            fire_at: now.plus_ms(duration_ms),
        },
        Command::RecordValue { value } => EventKind::SideEffectRecorded { seq, value },
        Command::Patch { change_id } => EventKind::PatchMarker { seq, change_id },
        Command::AwaitSignal { name } => EventKind::SignalAwaited { seq, name },
        Command::AwaitUpdate { name } => EventKind::UpdateAwaited { seq, name },
        Command::UpsertSearchAttributes { attributes } => {
            EventKind::SearchAttributesUpserted { seq, attributes }
        }
        Command::UpsertMemo { memo } => EventKind::MemoUpserted { seq, memo },
        Command::CompleteUpdate {
            request,
            update_id,
            result,
        } => EventKind::UpdateCompleted {
            seq,
            request,
            update_id,
            result,
        },
        Command::CancelTimer { timer } => EventKind::TimerCanceled { seq, timer },
        Command::StartChild {
            workflow_type,
            workflow_id,
            input,
            options,
        } => EventKind::ChildStarted {
            seq,
            workflow_type,
            workflow_id,
            input,
            options,
        },
    }
}

fn describe_command(cmd: &Command) -> String {
    // Only on the divergence path: the clone is not on the hot path.
    describe_event(&command_event(0, cmd.clone(), Timestamp(0)))
}

fn describe_event(kind: &EventKind) -> String {
    match kind {
        EventKind::ActivityScheduled { name, input, .. } => {
            format!("ScheduleActivity `{name}` (input digest {})", digest(input))
        }
        EventKind::TimerStarted { duration_ms, .. } => format!("StartTimer {duration_ms} ms"),
        EventKind::ExecutionCompleted { result } => {
            format!("ExecutionCompleted (result digest {})", digest(result))
        }
        EventKind::ExecutionFailed { failure } => format!("ExecutionFailed ({failure})"),
        EventKind::SideEffectRecorded { .. } => "a side-effect value".to_owned(),
        EventKind::PatchMarker { change_id, .. } => format!("patch marker `{change_id}`"),
        EventKind::SignalAwaited { name, .. } => format!("AwaitSignal `{name}`"),
        EventKind::UpdateAwaited { name, .. } => format!("AwaitUpdate `{name}`"),
        EventKind::SearchAttributesUpserted { attributes, .. } => {
            format!("UpsertSearchAttributes {attributes:?}")
        }
        EventKind::MemoUpserted { memo, .. } => format!("UpsertMemo {memo:?}"),
        EventKind::UpdateCompleted { update_id, .. } => format!("CompleteUpdate `{update_id}`"),
        EventKind::TimerCanceled { timer, .. } => format!("CancelTimer #{timer}"),
        EventKind::ChildStarted {
            workflow_type,
            workflow_id,
            input,
            ..
        } => format!(
            "StartChild `{workflow_type}` id `{workflow_id}` (input digest {})",
            digest(input)
        ),
        EventKind::ExecutionContinuedAsNew { input } => {
            format!("ContinueAsNew (input digest {})", digest(input))
        }
        other => other.name().to_owned(),
    }
}

fn describe_exit(exit: &Exit) -> String {
    match exit {
        Exit::Completed(p) => format!("a result, digest {}", digest(p)),
        Exit::Failed(f) => format!("failure {f}"),
        Exit::ContinueAsNew(input) => format!("continue-as-new, input digest {}", digest(input)),
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Completed(p) => write!(f, "completed ({} bytes)", p.len()),
            Outcome::Failed(failure) => write!(f, "failed ({failure})"),
            Outcome::Fired => f.write_str("fired"),
            Outcome::Cancelled => f.write_str("cancelled"),
            Outcome::CancelRequested => f.write_str("cancel requested"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ActivityReport, AttemptOutcome};

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
}
