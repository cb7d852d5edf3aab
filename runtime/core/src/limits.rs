use crate::Failure;

/// Bytes a history keeps free for the event that closes it when it is over
/// its limits (the termination or failure that says so, ~300 bytes).
pub const HISTORY_CLOSING_RESERVE: u64 = 1_024;

/// Size limits that keep one execution from hurting the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload (workflow input or result, activity input or
    /// result), in bytes. Default 2 MiB, as Temporal's blob limit.
    pub max_payload_bytes: usize,
    /// History length at which a warning is logged. Default 10,240 events
    /// (Temporal's warning point): time to continue-as-new.
    pub history_warn_events: usize,
    /// Most events a history may hold, its closing event included. A
    /// command past it fails the execution with `HistoryLimitExceeded`; a
    /// delivery past it (an activity result, a timer, a signal) terminates
    /// it with that reason. Default 51,200 events (Temporal's limit).
    pub history_max_events: usize,
    /// History size (stored encoding) at which a warning is logged.
    /// Default 10 MiB (Temporal's warning point).
    pub history_warn_bytes: u64,
    /// Most bytes a history may take, counted as stored, on every append,
    /// with the same consequences as `history_max_events`. Default 50 MiB
    /// (Temporal's limit).
    pub history_max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload_bytes: 2 << 20,
            history_warn_events: 10_240,
            history_max_events: 51_200,
            history_warn_bytes: 10 << 20,
            history_max_bytes: 50 << 20,
        }
    }
}

impl Limits {
    /// Why a history of `events` events and `bytes` bytes may not grow by
    /// `more_events` events of `more_bytes` bytes and still close (one more
    /// event, of `closing_bytes`), or `None` if it may.
    pub fn history_room(
        &self,
        (events, bytes): (usize, u64),
        (more_events, more_bytes): (usize, u64),
        closing_bytes: u64,
    ) -> Option<String> {
        let (events_after, bytes_after) = (events + more_events, bytes + more_bytes);
        if events_after + 1 > self.history_max_events {
            return Some(format!(
                "history reached its limit of {} events (it has {events}); \
                 use continue-as-new for long-running workflows",
                self.history_max_events
            ));
        }
        if bytes_after + closing_bytes > self.history_max_bytes {
            return Some(format!(
                "history reached its limit of {} bytes (it has {bytes} bytes, and {more_bytes} \
                 more were to be added); use continue-as-new for long-running workflows, and \
                 keep large values out of history (pass a reference)",
                self.history_max_bytes
            ));
        }
        None
    }

    /// `failure` itself if within the payload limit, else a
    /// `PayloadTooLarge` failure that keeps its type and the start of its
    /// message, so a huge error cannot bloat a history.
    pub fn bound_failure(&self, what: &str, failure: Failure) -> Failure {
        let size = failure.message.len() + failure.details.as_ref().map_or(0, Vec::len);
        if size <= self.max_payload_bytes {
            return failure;
        }
        const KEEP: usize = 1_024;
        let cut = (0..=KEEP.min(failure.message.len()))
            .rev()
            .find(|i| failure.message.is_char_boundary(*i));
        let start = &failure.message[..cut.unwrap_or(0)];
        Failure::new(
            "PayloadTooLarge",
            format!(
                "{what} ({}) is {size} bytes; the limit is {} bytes. It began: {start}",
                failure.error_type, self.max_payload_bytes
            ),
        )
        .non_retryable()
    }

    /// An activity attempt's outcome within the limits: an oversized result
    /// becomes a final `PayloadTooLarge` failure (every attempt would fail
    /// the same way), an oversized failure is bounded. `result_what` and
    /// `failure_what` name them in the messages.
    pub fn bound_attempt(
        &self,
        result_what: &str,
        failure_what: &str,
        result: Result<Vec<u8>, Failure>,
    ) -> Result<Vec<u8>, Failure> {
        match result {
            Ok(value) => match self.check_payload(result_what, &value) {
                Ok(()) => Ok(value),
                Err(reason) => Err(Failure::new("PayloadTooLarge", reason).non_retryable()),
            },
            Err(failure) => Err(self.bound_failure(failure_what, failure)),
        }
    }

    /// `Err` with a readable reason if `payload` is over the limit.
    pub fn check_payload(&self, what: &str, payload: &[u8]) -> Result<(), String> {
        if payload.len() > self.max_payload_bytes {
            return Err(format!(
                "{what} is {} bytes; the limit is {} bytes",
                payload.len(),
                self.max_payload_bytes
            ));
        }
        Ok(())
    }
}
