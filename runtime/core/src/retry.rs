use crate::Failure;
use serde::{Deserialize, Serialize};

/// How failed activity attempts are retried (Temporal's semantics).
///
/// Zero fields mean "default": initial interval 1 s, backoff coefficient
/// 2.0, maximum interval 100 x initial interval, unlimited attempts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Delay before the first retry, in ms (0: 1000).
    pub initial_interval_ms: u64,
    /// Growth factor of the delay per retry (< 1.0: 2.0).
    pub backoff_coefficient: f64,
    /// Cap on the delay, in ms (0: 100 x initial).
    pub maximum_interval_ms: u64,
    /// Total attempts allowed, first included; 0 = unlimited.
    pub maximum_attempts: u32,
    /// Error types that are never retried.
    pub non_retryable_error_types: Vec<String>,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Run attempt `attempt + 1` after `delay_ms`.
    RetryAfter {
        /// Backoff before the next attempt.
        delay_ms: u64,
    },
    /// The failure is final.
    GiveUp,
}

impl RetryPolicy {
    /// Default initial interval.
    pub const DEFAULT_INITIAL_INTERVAL_MS: u64 = 1_000;
    /// Default backoff coefficient.
    pub const DEFAULT_BACKOFF: f64 = 2.0;

    fn initial(&self) -> u64 {
        if self.initial_interval_ms == 0 {
            Self::DEFAULT_INITIAL_INTERVAL_MS
        } else {
            self.initial_interval_ms
        }
    }

    fn backoff(&self) -> f64 {
        if self.backoff_coefficient >= 1.0 {
            self.backoff_coefficient
        } else {
            Self::DEFAULT_BACKOFF
        }
    }

    fn maximum(&self) -> u64 {
        if self.maximum_interval_ms == 0 {
            self.initial().saturating_mul(100)
        } else {
            self.maximum_interval_ms
        }
    }

    /// Delay before attempt `attempt + 1`, given that attempt `attempt`
    /// (1-based) failed: `initial * backoff^(attempt-1)`, capped.
    pub fn delay_after(&self, attempt: u32) -> u64 {
        let exp = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let raw = self.initial() as f64 * self.backoff().powi(exp);
        // `as` saturates for floats: huge or infinite delays become u64::MAX.
        (raw as u64).min(self.maximum())
    }

    /// Decide whether attempt `attempt` (1-based), which failed with
    /// `failure`, is retried.
    pub fn decide(&self, attempt: u32, failure: &Failure) -> RetryDecision {
        let exhausted = self.maximum_attempts != 0 && attempt >= self.maximum_attempts;
        let non_retryable =
            failure.non_retryable || self.non_retryable_error_types.contains(&failure.error_type);
        if exhausted || non_retryable {
            RetryDecision::GiveUp
        } else {
            RetryDecision::RetryAfter {
                delay_ms: self.delay_after(attempt),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_temporal() {
        let p = RetryPolicy::default();
        let delays: Vec<u64> = (1..=9).map(|a| p.delay_after(a)).collect();
        assert_eq!(
            delays,
            [
                1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 100_000, 100_000
            ]
        );
    }

    #[test]
    fn custom_backoff_is_capped() {
        let p = RetryPolicy {
            initial_interval_ms: 100,
            backoff_coefficient: 3.0,
            maximum_interval_ms: 1_000,
            ..Default::default()
        };
        assert_eq!(
            [
                p.delay_after(1),
                p.delay_after(2),
                p.delay_after(3),
                p.delay_after(4)
            ],
            [100, 300, 900, 1_000]
        );
        assert_eq!(p.delay_after(u32::MAX), 1_000);
    }

    #[test]
    fn gives_up_on_exhaustion_and_non_retryable_types() {
        let p = RetryPolicy {
            maximum_attempts: 3,
            non_retryable_error_types: vec!["Declined".into()],
            ..Default::default()
        };
        let transient = Failure::new("Busy", "try later");
        assert_eq!(
            p.decide(1, &transient),
            RetryDecision::RetryAfter { delay_ms: 1_000 }
        );
        assert_eq!(p.decide(3, &transient), RetryDecision::GiveUp);
        assert_eq!(
            p.decide(1, &Failure::new("Declined", "no")),
            RetryDecision::GiveUp
        );
        assert_eq!(
            p.decide(1, &transient.clone().non_retryable()),
            RetryDecision::GiveUp
        );
        let unlimited = RetryPolicy::default();
        assert!(matches!(
            unlimited.decide(10_000, &transient),
            RetryDecision::RetryAfter { .. }
        ));
    }
}
