//! Which fields of the stored model are secret: the payloads and the
//! failure texts a store encrypts, and masking hides.
//!
//! Everything else stays readable, because scheduling, listing and audit
//! need it without a key: ids, types, queue and activity names, sequence
//! numbers, attempts, times and deadlines, retry and timeout options,
//! search attributes (they exist to be filtered on), failure *types*
//! (retry policies match on them), callers and reasons of client and
//! operator calls, parked reasons and component hashes. The list is the
//! code below; ARCHITECTURE.md repeats it for auditors.

use crate::{
    ActivityTask, AttemptOutcome, Event, EventKind, ExecutionRecord, Failure, InboxMessage,
};

/// One secret field.
pub enum Secret<'a> {
    /// A payload.
    Bytes(&'a mut Vec<u8>),
    /// Free text that may quote a payload (a failure's message).
    Text(&'a mut String),
}

/// A value with secret fields, visited in a fixed order (the order is part
/// of the stored format: sealing takes them out in it and opening puts
/// them back in it).
pub trait HasSecrets {
    /// Call `f` on each secret field, in order.
    fn visit_secrets(&mut self, f: &mut dyn FnMut(Secret<'_>));

    /// Take every secret field out (leaving them empty), in order. Empty
    /// when the value has no secret or all of them are empty.
    fn take_secrets(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut any = false;
        self.visit_secrets(&mut |s| {
            let taken = match s {
                Secret::Bytes(b) => std::mem::take(b),
                Secret::Text(t) => std::mem::take(t).into_bytes(),
            };
            any |= !taken.is_empty();
            out.push(taken);
        });
        if any { out } else { Vec::new() }
    }

    /// Put back what [`HasSecrets::take_secrets`] took.
    fn put_secrets(&mut self, secrets: Vec<Vec<u8>>) -> Result<(), SecretsMismatch> {
        let mut secrets = secrets.into_iter();
        let mut error = None;
        self.visit_secrets(&mut |s| {
            let Some(value) = secrets.next() else {
                error.get_or_insert(SecretsMismatch("fewer secrets than fields"));
                return;
            };
            match s {
                Secret::Bytes(b) => *b = value,
                Secret::Text(t) => match String::from_utf8(value) {
                    Ok(v) => *t = v,
                    Err(_) => {
                        error.get_or_insert(SecretsMismatch("a text field is not UTF-8"));
                    }
                },
            }
        });
        if secrets.next().is_some() {
            error.get_or_insert(SecretsMismatch("more secrets than fields"));
        }
        error.map_or(Ok(()), Err)
    }
}

/// Opened secrets do not fit the value they were taken from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sealed fields do not match the value: {0}")]
pub struct SecretsMismatch(&'static str);

impl HasSecrets for Failure {
    fn visit_secrets(&mut self, f: &mut dyn FnMut(Secret<'_>)) {
        f(Secret::Text(&mut self.message));
        if let Some(details) = &mut self.details {
            f(Secret::Bytes(details));
        }
    }
}

impl HasSecrets for Event {
    fn visit_secrets(&mut self, f: &mut dyn FnMut(Secret<'_>)) {
        self.kind.visit_secrets(f)
    }
}

impl HasSecrets for EventKind {
    fn visit_secrets(&mut self, f: &mut dyn FnMut(Secret<'_>)) {
        use EventKind::*;
        match self {
            ExecutionStarted { input, .. }
            | ActivityScheduled { input, .. }
            | ExecutionContinuedAsNew { input }
            | ChildStarted { input, .. } => f(Secret::Bytes(input)),
            ActivityCompleted { result, .. }
            | ExecutionCompleted { result }
            | ChildCompleted { result, .. } => f(Secret::Bytes(result)),
            SideEffectRecorded { value, .. } => f(Secret::Bytes(value)),
            SignalReceived { payload, .. } => f(Secret::Bytes(payload)),
            UpdateAccepted { args, .. } => f(Secret::Bytes(args)),
            ActivityFailed { failure, .. }
            | ExecutionFailed { failure }
            | ChildFailed { failure, .. } => failure.visit_secrets(f),
            UpdateCompleted { result, .. } => match result {
                Ok(value) => f(Secret::Bytes(value)),
                Err(failure) => failure.visit_secrets(f),
            },
            MemoUpserted { memo, .. } => {
                for (_, value) in memo {
                    f(Secret::Text(value));
                }
            }
            ActivityStarted { .. }
            | ActivityTimedOut { .. }
            | TimerStarted { .. }
            | TimerFired { .. }
            | PatchMarker { .. }
            | ExecutionParked { .. }
            | ComponentUpgraded { .. }
            | SignalAwaited { .. }
            | TimerCanceled { .. }
            | CancelRequested { .. }
            | ExecutionTerminated { .. }
            | UpdateAwaited { .. }
            | SearchAttributesUpserted { .. }
            | ExecutionTimedOut { .. } => {}
        }
    }
}

impl HasSecrets for InboxMessage {
    fn visit_secrets(&mut self, f: &mut dyn FnMut(Secret<'_>)) {
        match self {
            InboxMessage::Activity(report) => match &mut report.outcome {
                AttemptOutcome::Completed(value) => f(Secret::Bytes(value)),
                AttemptOutcome::Failed(failure) => failure.visit_secrets(f),
                AttemptOutcome::TimedOut(_) => {}
            },
            InboxMessage::Signal { payload, .. } => f(Secret::Bytes(payload)),
            InboxMessage::Update { args, .. } => f(Secret::Bytes(args)),
            InboxMessage::ChildClosed { result, .. } => match result {
                Ok(value) => f(Secret::Bytes(value)),
                Err(failure) => failure.visit_secrets(f),
            },
            InboxMessage::From { message, .. } => message.visit_secrets(f),
            InboxMessage::TimerFired { .. } | InboxMessage::CancelRequested { .. } => {}
        }
    }
}

impl HasSecrets for ExecutionRecord {
    fn visit_secrets(&mut self, f: &mut dyn FnMut(Secret<'_>)) {
        for value in self.memo.values_mut() {
            f(Secret::Text(value));
        }
    }
}

impl HasSecrets for ActivityTask {
    fn visit_secrets(&mut self, f: &mut dyn FnMut(Secret<'_>)) {
        f(Secret::Bytes(&mut self.input));
        if let Some(details) = &mut self.heartbeat_details {
            f(Secret::Bytes(details));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;

    #[test]
    fn take_and_put_round_trip() {
        let original = Event::new(
            Timestamp(1),
            EventKind::UpdateCompleted {
                seq: 1,
                request: 2,
                update_id: "u".into(),
                result: Err(Failure {
                    details: Some(b"details".to_vec()),
                    ..Failure::new("Declined", "card of Ada declined")
                }),
            },
        );
        let mut event = original.clone();
        let secrets = event.take_secrets();
        assert_eq!(
            secrets,
            vec![b"card of Ada declined".to_vec(), b"details".to_vec()]
        );
        assert_ne!(event, original);
        event.put_secrets(secrets).unwrap();
        assert_eq!(event, original);
    }

    #[test]
    fn no_secrets_gives_an_empty_list_and_mismatches_are_errors() {
        let mut fired = Event::new(Timestamp(1), EventKind::TimerFired { seq: 0 });
        assert!(fired.take_secrets().is_empty());
        let mut done = Event::new(
            Timestamp(1),
            EventKind::ExecutionCompleted { result: vec![] },
        );
        assert!(done.take_secrets().is_empty(), "all empty: nothing to seal");
        assert!(done.put_secrets(vec![]).is_err());
        assert!(done.put_secrets(vec![vec![1], vec![2]]).is_err());
        let mut failed = Event::new(
            Timestamp(1),
            EventKind::ExecutionFailed {
                failure: Failure::new("E", "m"),
            },
        );
        assert!(failed.put_secrets(vec![vec![0xff]]).is_err(), "not UTF-8");
    }
}
