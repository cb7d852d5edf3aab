//! Masking policies of the node: kept by workflow type, from three
//! sources that only add to each other: the server's configuration
//! (`RuntimeConfig::masks`), deploys (`--mask` rules, stored), and the
//! rules a component declares in its `weft:mask` section (read at deploy,
//! stored). The API applies them to what it shows a caller without the
//! `unmask` permission; the node applies them to what it logs.

use crate::services::Services;
use crate::util::lock;
use crate::{Runtime, RuntimeError};
use weft_core::mask::{HistoryMask, MaskPolicy};
use weft_core::{Event, EventKind};
use weft_store::ExecutionRecord;

impl Services {
    /// The policy of `workflow_type` (qualified): configured and stored,
    /// merged.
    pub(crate) fn mask_policy(&self, workflow_type: &str) -> MaskPolicy {
        let mut policy = self
            .config
            .masks
            .get(workflow_type)
            .cloned()
            .unwrap_or_default();
        if let Some(stored) = lock(&self.mask_policies).get(workflow_type) {
            policy.merge(stored);
        }
        policy
    }

    /// The mask of `history` (a run of its first event's type).
    pub(crate) fn history_mask(&self, history: &[Event]) -> HistoryMask {
        let workflow_type = match history.first().map(|e| &e.kind) {
            Some(EventKind::ExecutionStarted { workflow_type, .. }) => workflow_type.as_str(),
            _ => "",
        };
        let policy = self.mask_policy(workflow_type);
        HistoryMask::new(
            policy,
            |child| Some(self.mask_policy(child)).filter(|p| !p.is_empty()),
            history,
        )
    }

    /// `text` (a guest's log line, a failure) with the values the
    /// execution's masking hides replaced, for a log.
    pub(crate) fn log_text(&self, history: &[Event], text: &str) -> String {
        let mask = self.history_mask(history);
        if mask.secrets().is_empty() {
            return text.to_owned();
        }
        mask.text(text)
    }
}

impl Runtime {
    /// Whether any workflow type has a masking policy: if none has, there
    /// is nothing to mask and no history to read for it.
    pub fn masks_anything(&self) -> bool {
        let services = &self.inner.services;
        services.config.masks.values().any(|p| !p.is_empty())
            || lock(&services.mask_policies)
                .values()
                .any(|p| !p.is_empty())
    }

    /// The masking policy of `workflow_type` (qualified), all sources
    /// merged.
    pub fn mask_policy(&self, workflow_type: &str) -> MaskPolicy {
        self.inner.services.mask_policy(workflow_type)
    }

    /// Add `policy` to the stored policy of `workflow_type` (durably), and
    /// return the type's policy now. Policies only grow: a deploy without
    /// rules keeps what earlier ones declared.
    pub async fn add_mask_policy(
        &self,
        workflow_type: &str,
        policy: &MaskPolicy,
    ) -> Result<MaskPolicy, RuntimeError> {
        if policy.is_empty() {
            return Ok(self.mask_policy(workflow_type));
        }
        let services = &self.inner.services;
        let mut stored = lock(&services.mask_policies)
            .get(workflow_type)
            .cloned()
            .unwrap_or_default();
        stored.merge(policy);
        services
            .store
            .put_mask_policy(workflow_type.to_owned(), stored.clone())
            .await?;
        lock(&services.mask_policies).insert(workflow_type.to_owned(), stored);
        Ok(self.mask_policy(workflow_type))
    }

    /// How to mask the latest run of `workflow_id` for a caller without
    /// `unmask` (built from its whole history).
    pub async fn history_mask(&self, workflow_id: &str) -> Result<HistoryMask, RuntimeError> {
        let history = self.history(workflow_id).await?;
        Ok(self.inner.services.history_mask(&history))
    }

    /// [`Runtime::history_mask`] of the run `record` names.
    pub async fn history_mask_of(
        &self,
        record: &ExecutionRecord,
    ) -> Result<HistoryMask, RuntimeError> {
        if self.mask_policy(&record.workflow_type).is_empty() {
            return Ok(HistoryMask::default());
        }
        let loaded = self.inner.services.store.load_execution(record.key).await?;
        Ok(self.inner.services.history_mask(&loaded.history))
    }
}
