use crate::bindings::weft::workflow::types as wit;
use std::fmt;

/// Error type of cancellations.
pub const CANCELLED: &str = "Cancelled";

/// Why an activity or a workflow failed.
///
/// `error_type` is what a retry policy's non-retryable list matches against;
/// `non_retryable` stops retries regardless of the policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// Human-readable reason.
    pub message: String,
    /// Application error type, e.g. `"CardDeclined"`.
    pub error_type: String,
    /// When set, no retry is attempted.
    pub non_retryable: bool,
    /// Optional structured details (JSON).
    pub details: Option<Vec<u8>>,
}

impl Failure {
    /// A failure with a message and the generic error type `"Error"`.
    pub fn new(message: impl Into<String>) -> Self {
        Self::typed("Error", message)
    }

    /// A failure with an application error type.
    pub fn typed(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            error_type: error_type.into(),
            non_retryable: false,
            details: None,
        }
    }

    /// The failure a wait returns once the execution was asked to cancel
    /// (and the one to return from a workflow that gives up because of
    /// it): error type `"Cancelled"`.
    pub fn cancelled(message: impl Into<String>) -> Self {
        Failure::typed(CANCELLED, message).non_retryable()
    }

    /// True if this is a cancellation (see [`Failure::cancelled`]).
    pub fn is_cancelled(&self) -> bool {
        self.error_type == CANCELLED
    }

    /// Mark this failure as not worth retrying.
    pub fn non_retryable(mut self) -> Self {
        self.non_retryable = true;
        self
    }

    pub(crate) fn from_wit(f: wit::Failure) -> Self {
        Failure {
            message: f.message,
            error_type: f.error_type,
            non_retryable: f.non_retryable,
            details: f.details,
        }
    }

    pub(crate) fn into_wit(self) -> wit::Failure {
        wit::Failure {
            message: self.message,
            error_type: self.error_type,
            non_retryable: self.non_retryable,
            details: self.details,
        }
    }

    pub(crate) fn codec(what: &str, err: serde_json::Error) -> Self {
        Failure::typed("PayloadError", format!("{what}: {err}")).non_retryable()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

impl std::error::Error for Failure {}
