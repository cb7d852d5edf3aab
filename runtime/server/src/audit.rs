//! What keeps histories provable, as the runtime's API: a history with
//! its proofs, signing now, the signer's key, erasing an execution and
//! re-wrapping old data keys (the periodic tasks are `checkpointer.rs`).

use crate::{Runtime, RuntimeError};
use weft_store::AuditedHistory;

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
