//! The runtime's tasks that keep histories provable: signing checkpoints
//! as runs close (and periodically over the running ones), and
//! re-wrapping old data keys with the current one.

use crate::shared::Shared;
use std::sync::Arc;
use std::time::Duration;

/// Start the runtime's checkpoint and re-wrap tasks, as configured.
pub(crate) fn start(inner: &Arc<Shared>) {
    let services = &inner.services;
    if services.store.signing_public_key().is_some() {
        if let Some(ms) = services.config.checkpoint_delay_ms {
            services.spawn(sign_closed(inner.clone(), Duration::from_millis(ms)));
        }
        if let Some(ms) = services.config.open_checkpoint_ms {
            services.spawn(sign_open(inner.clone(), Duration::from_millis(ms.max(1))));
        }
    }
    if let Some(ms) = services.config.rewrap_sweep_ms {
        services.spawn(rewrap(inner.clone(), Duration::from_millis(ms.max(1))));
    }
}

/// Sign closed checkpoints: at start (closes a crash left unsigned), then
/// `delay` after each close, for every close in that window at once, and
/// a last time at shutdown.
async fn sign_closed(inner: Arc<Shared>, delay: Duration) {
    let services = &inner.services;
    let mut shutdown = services.shutdown.clone();
    let sign = || async {
        match services.store.checkpoint_closed(services.clock.now()).await {
            Ok(Some(c)) => tracing::debug!(
                "signed closed checkpoint {} over {} execution(s)",
                c.seq,
                c.leaves.len()
            ),
            Ok(None) => {}
            Err(e) => tracing::error!("signing a closed checkpoint failed: {e}"),
        }
    };
    loop {
        sign().await;
        tokio::select! {
            _ = inner.registry.closes.notified() => {}
            _ = shutdown.wait_for(|s| *s) => break,
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.wait_for(|s| *s) => break,
        }
    }
    sign().await;
}

/// Sign an open checkpoint every `every`.
async fn sign_open(inner: Arc<Shared>, every: Duration) {
    let shutdown = inner.services.shutdown.clone();
    crate::util::every(shutdown, every, || async {
        let services = &inner.services;
        let keep = services.config.open_checkpoints_kept;
        if let Err(e) = services
            .store
            .checkpoint_open(services.clock.now(), keep)
            .await
        {
            tracing::error!("signing an open checkpoint failed: {e}");
        }
    })
    .await;
}

/// Re-wrap a batch of old data keys every `every`.
async fn rewrap(inner: Arc<Shared>, every: Duration) {
    let shutdown = inner.services.shutdown.clone();
    crate::util::every(shutdown, every, || async {
        match inner.services.store.rewrap(1_000).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("re-wrapped the data keys of {n} execution(s)"),
            Err(e) => tracing::error!("re-wrapping data keys failed: {e}"),
        }
    })
    .await;
}
