//! WASI, virtualized: clocks answer workflow time, random answers the
//! execution's recorded random stream, and nothing else reaches the host.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};
use weft_core::RandomStream;

/// Workflow time in ns since the epoch, shared by the host import `now`
/// and the WASI clocks. Written only from history (see `ExecutionState`).
#[derive(Clone, Default)]
pub(crate) struct WorkflowTime(pub(crate) Arc<AtomicU64>);

impl WorkflowTime {
    pub(crate) fn set_ms(&self, ms: u64) {
        self.0
            .store(ms.saturating_mul(1_000_000), Ordering::Relaxed);
    }
    fn nanos(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

pub(crate) struct WallClock(pub(crate) WorkflowTime);

impl HostWallClock for WallClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }
    fn now(&self) -> Duration {
        Duration::from_nanos(self.0.nanos())
    }
}

/// Monotonic time: workflow time since the execution started.
pub(crate) struct MonotonicClock {
    pub(crate) time: WorkflowTime,
    pub(crate) start_ns: u64,
}

impl HostMonotonicClock for MonotonicClock {
    fn resolution(&self) -> u64 {
        1_000_000
    }
    fn now(&self) -> u64 {
        self.time.nanos().saturating_sub(self.start_ns)
    }
}

/// The execution's random stream, shared by every random source the guest
/// can reach so all draws interleave in call order.
#[derive(Clone)]
pub(crate) struct SharedRandom(pub(crate) Arc<Mutex<RandomStream>>);

impl SharedRandom {
    pub(crate) fn fill(&self, out: &mut [u8]) {
        self.lock().fill(out);
    }

    /// The stream's current position, to go back to with `restore`.
    pub(crate) fn snapshot(&self) -> RandomStream {
        self.lock().clone()
    }

    pub(crate) fn restore(&self, stream: RandomStream) {
        *self.lock() = stream;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RandomStream> {
        // A poisoned lock only means another draw panicked mid-fill; the
        // stream itself is still valid.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl rand::TryRng for SharedRandom {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.fill(&mut b);
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.fill(dst);
        Ok(())
    }
}
