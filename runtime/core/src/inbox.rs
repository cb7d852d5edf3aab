use crate::{AttemptOutcome, Caller, Failure, Payload, Timestamp};
use serde::{Deserialize, Serialize};

/// Something that happened outside the execution and must enter its
/// history. Stored durably in the execution's inbox first, then moved into
/// history by the execution's next workflow task, in inbox order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InboxMessage {
    /// An activity attempt ended.
    Activity(ActivityReport),
    /// A timer is due.
    TimerFired {
        /// The timer command's sequence number.
        seq: u32,
    },
    /// A client sent a signal.
    Signal {
        /// Signal name.
        name: String,
        /// Its payload.
        payload: Payload,
    },
    /// A client asked the execution to cancel.
    CancelRequested {
        /// Why.
        reason: String,
    },
    /// A client's update request, accepted by the workflow's validator.
    Update {
        /// Id the client waits on for the answer.
        update_id: String,
        /// Update name.
        name: String,
        /// Its arguments.
        args: Payload,
    },
    /// A child workflow closed (or could not start).
    ChildClosed {
        /// The child command's sequence number.
        seq: u32,
        /// Its result, or why it failed.
        result: Result<Payload, Failure>,
    },
    /// A client's message (a signal, update or cancellation request), with
    /// who sent it: the events it becomes carry the caller.
    From {
        /// Who sent it.
        caller: Caller,
        /// The message.
        message: Box<InboxMessage>,
    },
}

/// How one activity attempt ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityReport {
    /// The activity command's sequence number.
    pub seq: u32,
    /// 1-based attempt.
    pub attempt: u32,
    /// When the worker started the attempt; `None` if it never started
    /// (it timed out waiting in its queue).
    pub started_at: Option<Timestamp>,
    /// What came of it.
    pub outcome: AttemptOutcome,
    /// For failures: when the next attempt is due, or `None` if final.
    pub retry_at: Option<Timestamp>,
}

impl InboxMessage {
    /// `message`, sent by `caller` if there is one.
    pub fn from_caller(caller: Option<&Caller>, message: InboxMessage) -> InboxMessage {
        match caller {
            Some(caller) => InboxMessage::From {
                caller: caller.clone(),
                message: Box::new(message),
            },
            None => message,
        }
    }

    /// The message itself, and who sent it (for a client's message).
    pub fn parts(&self) -> (&InboxMessage, Option<&Caller>) {
        match self {
            InboxMessage::From { caller, message } => (message.parts().0, Some(caller)),
            message => (message, None),
        }
    }

    /// What the message is, for an operator: "the result of activity #3
    /// (attempt 1)", "signal `approve`".
    pub fn describe(&self) -> String {
        match self {
            InboxMessage::Activity(r) => {
                format!("the outcome of activity #{} (attempt {})", r.seq, r.attempt)
            }
            InboxMessage::TimerFired { seq } => format!("the firing of timer #{seq}"),
            InboxMessage::Signal { name, .. } => format!("signal `{name}`"),
            InboxMessage::CancelRequested { .. } => "a cancellation request".to_owned(),
            InboxMessage::Update { name, .. } => format!("update `{name}`"),
            InboxMessage::ChildClosed { seq, .. } => format!("the outcome of child #{seq}"),
            InboxMessage::From { message, .. } => message.describe(),
        }
    }
}
