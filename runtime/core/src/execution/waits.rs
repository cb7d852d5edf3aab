//! Waits and deliveries: which awaited handle resolves first, and how an
//! inbox message enters history.

use super::describe::describe_event;
use super::{CLOSING_RESERVE, ExecutionState, Nondeterminism, WaitError, Wake};
use crate::AttemptOutcome;
use crate::codec::encoded_len;
use crate::{Event, EventKind, InboxMessage, Timestamp};

impl ExecutionState {
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
}
