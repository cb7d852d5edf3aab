use crate::{Failure, Payload, TimeoutKind, Timestamp};
use serde::{Deserialize, Serialize};

/// How failed activity attempts are retried (Temporal's semantics).
///
/// Zero fields mean "default": initial interval 1 s, backoff coefficient
/// 2.0, maximum interval 100 x initial interval, unlimited attempts, no
/// jitter.
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
    /// Spread of each delay, as a fraction: a delay `d` becomes a value in
    /// `[d * (1 - jitter), d * (1 + jitter)]` (clamped to 0..=1), so that
    /// many activities failing together do not retry together. The draw is
    /// a hash of the activity's idempotency key and attempt, so a given
    /// attempt's delay is reproducible (and recorded in history).
    pub jitter: f64,
}

/// Result of one attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AttemptOutcome {
    /// Returned a value.
    Completed(Payload),
    /// Returned an error.
    Failed(Failure),
    /// Exceeded a timeout.
    TimedOut(TimeoutKind),
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

    /// `delay` spread by the jitter, drawn from `(salt, attempt)`.
    fn jittered(&self, delay: u64, salt: &str, attempt: u32) -> u64 {
        let jitter = self.jitter.clamp(0.0, 1.0);
        if jitter == 0.0 || delay == 0 {
            return delay;
        }
        let mut hasher = blake3::Hasher::new();
        hasher.update(salt.as_bytes());
        hasher.update(&attempt.to_le_bytes());
        let mut draw = [0u8; 8];
        draw.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
        // Uniform in [-1, 1).
        let unit = (u64::from_le_bytes(draw) >> 11) as f64 / (1u64 << 52) as f64 - 1.0;
        (delay as f64 * (1.0 + jitter * unit)) as u64
    }

    /// Decide whether attempt `attempt` (1-based), which failed with
    /// `failure`, is retried. The failure's own `next_retry_delay_ms`
    /// replaces the backoff (no jitter: it was asked for); `salt` (the
    /// activity's idempotency key) seeds the jitter.
    pub fn decide(&self, attempt: u32, failure: &Failure, salt: &str) -> RetryDecision {
        let exhausted = self.maximum_attempts != 0 && attempt >= self.maximum_attempts;
        let non_retryable =
            failure.non_retryable || self.non_retryable_error_types.contains(&failure.error_type);
        if exhausted || non_retryable {
            return RetryDecision::GiveUp;
        }
        let delay_ms = match failure.next_retry_delay_ms {
            Some(asked) => asked,
            None => self.jittered(self.delay_after(attempt), salt, attempt),
        };
        RetryDecision::RetryAfter { delay_ms }
    }
}

impl RetryPolicy {
    /// When the attempt after attempt `attempt` of an activity is due,
    /// given that `attempt` ended with `outcome` at `now`; `None` if there
    /// is none (it completed, the failure is final, or the next attempt
    /// would start past the activity's schedule-to-close `close_deadline`).
    pub fn next_attempt_at(
        &self,
        attempt: u32,
        outcome: &AttemptOutcome,
        salt: &str,
        now: Timestamp,
        close_deadline: Option<Timestamp>,
    ) -> Option<Timestamp> {
        let decision = match outcome {
            AttemptOutcome::Completed(_) => RetryDecision::GiveUp,
            AttemptOutcome::TimedOut(kind) if kind.is_final() => RetryDecision::GiveUp,
            AttemptOutcome::TimedOut(kind) => self.decide(attempt, &Failure::timeout(*kind), salt),
            AttemptOutcome::Failed(failure) => self.decide(attempt, failure, salt),
        };
        match decision {
            RetryDecision::RetryAfter { delay_ms } => Some(now.plus_ms(delay_ms))
                .filter(|at| close_deadline.is_none_or(|close| *at < close)),
            RetryDecision::GiveUp => None,
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
            p.decide(1, &transient, "k"),
            RetryDecision::RetryAfter { delay_ms: 1_000 }
        );
        assert_eq!(p.decide(3, &transient, "k"), RetryDecision::GiveUp);
        assert_eq!(
            p.decide(1, &Failure::new("Declined", "no"), "k"),
            RetryDecision::GiveUp
        );
        assert_eq!(
            p.decide(1, &transient.clone().non_retryable(), "k"),
            RetryDecision::GiveUp
        );
        let unlimited = RetryPolicy::default();
        assert!(matches!(
            unlimited.decide(10_000, &transient, "k"),
            RetryDecision::RetryAfter { .. }
        ));
    }

    #[test]
    fn retry_after_overrides_the_backoff() {
        let p = RetryPolicy {
            maximum_attempts: 2,
            ..Default::default()
        };
        let limited = Failure::new("RateLimited", "slow down").retry_after(30_000);
        assert_eq!(
            p.decide(1, &limited, "k"),
            RetryDecision::RetryAfter { delay_ms: 30_000 }
        );
        // Attempt limits still apply.
        assert_eq!(p.decide(2, &limited, "k"), RetryDecision::GiveUp);
    }

    #[test]
    fn jitter_spreads_within_bounds_and_is_reproducible() {
        let p = RetryPolicy {
            initial_interval_ms: 1_000,
            jitter: 0.2,
            ..Default::default()
        };
        let failure = Failure::new("Busy", "x");
        let delay = |salt: &str| match p.decide(1, &failure, salt) {
            RetryDecision::RetryAfter { delay_ms } => delay_ms,
            RetryDecision::GiveUp => panic!("gave up"),
        };
        let delays: Vec<u64> = (0..200).map(|i| delay(&format!("wf/{i}"))).collect();
        assert!(
            delays.iter().all(|d| (800..=1_200).contains(d)),
            "{delays:?}"
        );
        let distinct: std::collections::BTreeSet<_> = delays.iter().collect();
        assert!(distinct.len() > 100, "jitter must spread: {distinct:?}");
        assert_eq!(delay("wf/7"), delays[7], "same key and attempt, same delay");
        assert_eq!(
            p.decide(1, &failure.clone().retry_after(5), "k"),
            RetryDecision::RetryAfter { delay_ms: 5 }
        );
    }
}
