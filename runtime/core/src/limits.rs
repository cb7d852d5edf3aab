use crate::Failure;

/// Size limits that keep one execution from hurting the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload (workflow input or result, activity input or
    /// result), in bytes. Default 2 MiB, as Temporal's blob limit.
    pub max_payload_bytes: usize,
    /// History length at which a warning is logged. Default 10,240 events
    /// (Temporal's warning point): time to continue-as-new.
    pub history_warn_events: usize,
    /// History length at which the execution fails with
    /// `HistoryLimitExceeded`. Default 51,200 events (Temporal's limit).
    pub history_max_events: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload_bytes: 2 << 20,
            history_warn_events: 10_240,
            history_max_events: 51_200,
        }
    }
}

impl Limits {
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
