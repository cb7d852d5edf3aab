//! What a workflow may not do: the WASI calls the engine's linker
//! replaces with a failure that says why (real sleeps, network I/O).

use crate::host::HostState;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::p2::DynPollable;
use weft_core::Failure;

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
