//! The clock a runtime reads and sleeps on. Only the trait lives here
//! (core does no IO); the server implements it on the wall clock and on
//! tokio's clock, and a test can implement it on anything.

use crate::Timestamp;
use std::future::Future;
use std::pin::Pin;

/// Where a runtime reads the time for new events and due items, and waits
/// for a due time: timers, activity deadlines, retry backoffs and rate
/// limits all go through one clock, so a test that controls it controls
/// them all. The replay path never reads it: replay takes time from
/// history.
pub trait Clock: Send + Sync + 'static {
    /// Now, in ms since the epoch.
    fn now(&self) -> Timestamp;

    /// Resolve once this clock reads `at` or later (at once if it does).
    fn sleep_until(&self, at: Timestamp) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>>;
}
