//! What keeps histories provable at run time: signing checkpoints as runs
//! close (and periodically over the running ones), re-wrapping old data
//! keys, erasing an execution, and reading a history with its proofs.

use crate::{Runtime, RuntimeError};
use std::time::Duration;
use weft_store::AuditedHistory;

/// Start the runtime's checkpoint and re-wrap tasks, as configured.
pub(crate) fn start(runtime: &Runtime) {
    let services = &runtime.inner.services;
    if services.store.signing_public_key().is_some() {
        if let Some(ms) = services.config.checkpoint_delay_ms {
            services.spawn(sign_closed(runtime.clone(), Duration::from_millis(ms)));
        }
        if let Some(ms) = services.config.open_checkpoint_ms {
            services.spawn(sign_open(runtime.clone(), Duration::from_millis(ms.max(1))));
        }
    }
    if let Some(ms) = services.config.rewrap_sweep_ms {
        services.spawn(rewrap(runtime.clone(), Duration::from_millis(ms.max(1))));
    }
}

/// Sign closed checkpoints: at start (closes a crash left unsigned), then
/// `delay` after each close, for every close in that window at once, and
/// a last time at shutdown.
async fn sign_closed(runtime: Runtime, delay: Duration) {
    let services = &runtime.inner.services;
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
            _ = runtime.inner.registry.closes.notified() => {}
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
async fn sign_open(runtime: Runtime, every: Duration) {
    let services = &runtime.inner.services;
    let mut shutdown = services.shutdown.clone();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let keep = services.config.open_checkpoints_kept;
        if let Err(e) = services
            .store
            .checkpoint_open(services.clock.now(), keep)
            .await
        {
            tracing::error!("signing an open checkpoint failed: {e}");
        }
    }
}

/// Re-wrap a batch of old data keys every `every`.
async fn rewrap(runtime: Runtime, every: Duration) {
    let services = &runtime.inner.services;
    let mut shutdown = services.shutdown.clone();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        match services.store.rewrap(1_000).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("re-wrapped the data keys of {n} execution(s)"),
            Err(e) => tracing::error!("re-wrapping data keys failed: {e}"),
        }
    }
}

impl Runtime {
    /// The latest run of `workflow_id` as stored, with the checkpoint that
    /// covers it: what `weft audit verify` checks.
    pub async fn audited_history(&self, workflow_id: &str) -> Result<AuditedHistory, RuntimeError> {
        let record = self.describe(workflow_id).await?;
        Ok(self
            .inner
            .services
            .store
            .audited_history(record.key)
            .await?)
    }

    /// Sign a closed checkpoint now over every close not yet signed (the
    /// checkpointer does this shortly after each close).
    pub async fn sign_checkpoint(
        &self,
    ) -> Result<Option<weft_protect::checkpoint::Checkpoint>, RuntimeError> {
        let services = &self.inner.services;
        Ok(services
            .store
            .checkpoint_closed(services.clock.now())
            .await?)
    }

    /// Sign an open checkpoint now over the running executions' heads.
    pub async fn sign_open_checkpoint(
        &self,
    ) -> Result<Option<weft_protect::checkpoint::Checkpoint>, RuntimeError> {
        let services = &self.inner.services;
        let keep = services.config.open_checkpoints_kept;
        Ok(services
            .store
            .checkpoint_open(services.clock.now(), keep)
            .await?)
    }

    /// The public key checkpoints are signed with (`weft audit pubkey`).
    pub fn checkpoint_public_key(&self) -> Option<[u8; 32]> {
        self.inner.services.store.signing_public_key()
    }

    /// Erase the latest run of `workflow_id` (closed): destroy its data
    /// key. Its payloads read as erased from now on; its skeleton and
    /// chain stay, and verify.
    pub async fn erase(
        &self,
        workflow_id: &str,
    ) -> Result<weft_store::ExecutionRecord, RuntimeError> {
        let record = self.describe(workflow_id).await?;
        let services = &self.inner.services;
        let erased = services
            .store
            .erase(record.key, services.clock.now())
            .await?;
        self.inner.registry.evict(record.key);
        tracing::info!("erased the payloads of {}", erased.id);
        Ok(erased)
    }

    /// Re-wrap up to `max` old data keys with the current key now.
    pub async fn rewrap(&self, max: usize) -> Result<usize, RuntimeError> {
        Ok(self.inner.services.store.rewrap(max).await?)
    }
}
