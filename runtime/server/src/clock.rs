//! The clocks a runtime runs on: the wall clock, and tokio's (for tests
//! under paused time). The `Clock` trait is `weft-core`'s.

use std::future::Future;
use std::pin::Pin;
use std::time::{SystemTime, UNIX_EPOCH};
pub use weft_core::Clock;
use weft_core::Timestamp;

/// A sleep on tokio's timer until `clock` reads `at`.
fn tokio_sleep(clock: &dyn Clock, at: Timestamp) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(tokio::time::sleep(until(clock.now(), at)))
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        Timestamp(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    fn sleep_until(&self, at: Timestamp) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        tokio_sleep(self, at)
    }
}

/// A clock driven by tokio's time: under `tokio::time::pause` it moves only
/// when tokio auto-advances, so tests skip over timers and backoffs.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    base: Timestamp,
    origin: tokio::time::Instant,
}

impl TokioClock {
    /// A clock that reads `base` now.
    pub fn starting_at(base: Timestamp) -> Self {
        TokioClock {
            base,
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        let elapsed = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.base.plus_ms(elapsed)
    }

    fn sleep_until(&self, at: Timestamp) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        tokio_sleep(self, at)
    }
}

/// How long from `now` until `at` (zero if past).
pub(crate) fn until(now: Timestamp, at: Timestamp) -> std::time::Duration {
    std::time::Duration::from_millis(at.0.saturating_sub(now.0))
}
