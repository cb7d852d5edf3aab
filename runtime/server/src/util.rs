//! Small helpers every part of the runtime uses.

use crate::RuntimeError;
use std::sync::{Mutex, MutexGuard};

/// `N` bytes of OS randomness, for `what` (named in the error).
pub(crate) fn os_random<const N: usize>(what: &str) -> Result<[u8; N], RuntimeError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| RuntimeError::internal(format!("no OS randomness for {what}"), e))?;
    Ok(bytes)
}

/// `N` random bytes in hex: run ids, update ids.
pub(crate) fn random_hex<const N: usize>(what: &str) -> Result<String, RuntimeError> {
    Ok(os_random::<N>(what)?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section below leaves its map consistent, so a panic in
    // another holder does not invalidate the data.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Run `tick` every `every`, until `shutdown` turns true (a periodic task
/// of the runtime's: retention, open checkpoints, re-wraps).
pub(crate) async fn every<F, Fut>(
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    every: std::time::Duration,
    mut tick: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        tick().await;
    }
}
