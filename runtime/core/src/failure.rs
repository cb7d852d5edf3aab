use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an activity attempt, an activity or a workflow failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// Human-readable reason.
    pub message: String,
    /// Application error type; retry policies match on it.
    pub error_type: String,
    /// When set, the failure is final regardless of the retry policy.
    pub non_retryable: bool,
    /// Optional structured details.
    pub details: Option<Vec<u8>>,
    /// For an activity failure: the delay the activity asks for before its
    /// next attempt, overriding the retry policy's backoff (e.g. a
    /// rate-limited API's retry-after). Attempt limits still apply.
    pub next_retry_delay_ms: Option<u64>,
}

impl Failure {
    /// A failure with the given type and message.
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            error_type: error_type.into(),
            non_retryable: false,
            details: None,
            next_retry_delay_ms: None,
        }
    }

    /// The failure recorded when an attempt exceeds a timeout.
    pub fn timeout(kind: TimeoutKind) -> Self {
        Failure::new("Timeout", format!("activity {kind} timeout exceeded"))
    }

    /// Mark as final.
    pub fn non_retryable(mut self) -> Self {
        self.non_retryable = true;
        self
    }

    /// Ask for the next attempt after `delay_ms` instead of the backoff.
    pub fn retry_after(mut self, delay_ms: u64) -> Self {
        self.next_retry_delay_ms = Some(delay_ms);
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

/// Which activity timeout fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeoutKind {
    /// One attempt ran longer than its start-to-close timeout.
    StartToClose,
    /// An attempt waited in its queue longer than its schedule-to-start
    /// timeout. Final.
    ScheduleToStart,
    /// The activity as a whole ran past its schedule-to-close timeout.
    /// Final.
    ScheduleToClose,
    /// A running attempt missed its heartbeat timeout.
    Heartbeat,
}

impl TimeoutKind {
    /// True for the timeouts that end the activity rather than the attempt.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TimeoutKind::ScheduleToStart | TimeoutKind::ScheduleToClose
        )
    }
}

impl fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutKind::StartToClose => "start-to-close",
            TimeoutKind::ScheduleToStart => "schedule-to-start",
            TimeoutKind::ScheduleToClose => "schedule-to-close",
            TimeoutKind::Heartbeat => "heartbeat",
        })
    }
}
