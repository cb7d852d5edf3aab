//! WASI, virtualized: clocks answer workflow time, random answers the
//! execution's recorded random stream, and nothing else reaches the host.

use crate::host::HostState;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};
use weft_core::Failure;
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

/// The WASI interface whose sleeps are replaced (matches every 0.2.x).
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// Replace the monotonic clock's `subscribe-duration` and
/// `subscribe-instant`, through which `std::thread::sleep` and friends wait.
/// wasmtime-wasi backs them with real host timers: the wait would be
/// neither durable nor recorded, and every replay would wait again. The
/// guest fails with a pointer to the durable alternative instead.
pub(crate) fn forbid_real_sleeps(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    for name in ["subscribe-duration", "subscribe-instant"] {
        clock.func_wrap(name, |mut store, (_,): (u64,)| -> wasmtime::Result<(Resource<DynPollable>,)> {
            let message = "a workflow cannot sleep on the real clock (std::thread::sleep, a poll \
                           on the monotonic clock): that wait is not durable and would repeat \
                           on every replay; use ctx.sleep or ctx.timer";
            store.data_mut().guest_failure = Some(Failure::new("NonDurableSleep", message).non_retryable());
            Err(wasmtime::Error::msg(message))
        })?;
    }
    linker.allow_shadowing(false);
    Ok(())
}

/// The socket calls that open something: creating a socket and looking up
/// a name. Everything else needs a socket or a name first.
const NETWORK: &[(&str, &str)] = &[
    ("wasi:sockets/tcp-create-socket@0.2.12", "create-tcp-socket"),
    ("wasi:sockets/udp-create-socket@0.2.12", "create-udp-socket"),
    ("wasi:sockets/ip-name-lookup@0.2.12", "resolve-addresses"),
];

/// Replace the calls that open a socket or look up a name. Only components
/// of an interpreter may import the sockets interfaces at all (its runtime
/// links them whether or not the workflow uses them, see `validate.rs`);
/// a workflow that does use them fails, naming what it tried, instead of
/// getting an error code it might retry or ignore.
pub(crate) fn forbid_network(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    for (interface, name) in NETWORK {
        let mut instance = linker.instance(interface)?;
        let call = *name;
        instance.func_new(name, move |mut store, _, _, _| {
            let message = format!(
                "a workflow cannot do network I/O (it called `{call}`): network results are \
                 not recorded in history and would differ on replay; call an activity instead"
            );
            store.data_mut().guest_failure =
                Some(Failure::new("NetworkAccessDenied", message.clone()).non_retryable());
            Err(wasmtime::Error::msg(message))
        })?;
    }
    linker.allow_shadowing(false);
    Ok(())
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
