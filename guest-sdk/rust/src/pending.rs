use crate::bindings::weft::workflow::types::{Handle, Outcome};
use crate::{Failure, wait};
use serde::de::DeserializeOwned;
use std::marker::PhantomData;

/// A command in flight: an activity, a timer or a signal wait that has not
/// been awaited.
///
/// Start several, then [`Ctx::join_all`], [`Ctx::select`] or
/// [`Pending::result`] them; they run concurrently.
#[must_use = "a pending command does nothing until you wait for it"]
pub struct Pending<T> {
    pub(crate) handle: Handle,
    _out: PhantomData<fn() -> T>,
}

/// Which of the handles given to [`Ctx::select`] resolved first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selected(pub usize);

impl<T: DeserializeOwned> Pending<T> {
    pub(crate) fn new(handle: Handle) -> Self {
        Pending {
            handle,
            _out: PhantomData,
        }
    }

    /// The raw sequence number of this command (for logs and select).
    pub fn handle(&self) -> u32 {
        self.handle
    }

    /// Block until this command resolves and decode its result.
    pub fn result(self) -> Result<T, Failure> {
        decode(wait::take_outcome(self.handle))
    }
}

pub(crate) fn decode_payload<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, Failure> {
    serde_json::from_slice(bytes).map_err(|e| Failure::codec(what, e))
}

pub(crate) fn decode<T: DeserializeOwned>(outcome: Outcome) -> Result<T, Failure> {
    // A timer's result is `()`, which JSON spells `null`.
    let bytes = match outcome {
        Outcome::Fired => b"null".to_vec(),
        other => completed_bytes(other)?,
    };
    decode_payload(&bytes, "result")
}

/// The payload of a completed outcome; any other outcome as a failure.
pub(crate) fn completed_bytes(outcome: Outcome) -> Result<Vec<u8>, Failure> {
    match outcome {
        Outcome::Completed(bytes) => Ok(bytes),
        Outcome::Failed(f) => Err(Failure::from_wit(f)),
        Outcome::Fired => {
            Err(Failure::typed("UnexpectedOutcome", "a timer fired here").non_retryable())
        }
        Outcome::Cancelled => Err(Failure::cancelled("timer cancelled")),
        Outcome::CancelRequested => Err(Failure::cancelled("the execution was asked to cancel")),
    }
}
