//! A store that fails on demand, for fault-injection tests.

use async_trait::async_trait;
use std::sync::atomic::{AtomicUsize, Ordering};
use weft_core::{ComponentId, InboxMessage, Timestamp};
use weft_store::{
    ApiKeyRecord, AttemptResult, AuditFilter, AuditRecord, Committed, DueWork, ExecKey,
    ExecutionRecord, InboxEntry, ListFilter, LoadedExecution, NamespaceRecord, NewExecution,
    Polled, QueueStats, RedbStore, Store, StoreError, Transition,
};

/// Delegates to a [`RedbStore`], but fails the next `fail_commits`
/// workflow-task commits as a full disk would.
pub struct FaultyStore {
    /// The real store.
    pub inner: RedbStore,
    /// Commits still to fail.
    pub fail_commits: AtomicUsize,
    /// Commits that failed so far.
    pub failed: AtomicUsize,
}

impl FaultyStore {
    /// Wrap `inner`; no faults until `fail_commits` is set.
    pub fn new(inner: RedbStore) -> Self {
        FaultyStore {
            inner,
            fail_commits: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl Store for FaultyStore {
    async fn put_component(
        &self,
        id: ComponentId,
        bytes: Vec<u8>,
        workflow_type: Option<String>,
    ) -> Result<(), StoreError> {
        self.inner.put_component(id, bytes, workflow_type).await
    }
    async fn workflow_types(&self) -> Result<Vec<(String, ComponentId)>, StoreError> {
        self.inner.workflow_types().await
    }
    async fn get_component(&self, id: ComponentId) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get_component(id).await
    }
    async fn start_execution(&self, new: NewExecution) -> Result<ExecutionRecord, StoreError> {
        self.inner.start_execution(new).await
    }
    async fn find_execution(
        &self,
        workflow_id: &str,
    ) -> Result<Option<ExecutionRecord>, StoreError> {
        self.inner.find_execution(workflow_id).await
    }
    async fn load_execution(&self, key: ExecKey) -> Result<LoadedExecution, StoreError> {
        self.inner.load_execution(key).await
    }
    async fn list_executions(
        &self,
        filter: ListFilter,
    ) -> Result<Vec<ExecutionRecord>, StoreError> {
        self.inner.list_executions(filter).await
    }
    async fn count_executions(&self, filter: ListFilter) -> Result<u64, StoreError> {
        self.inner.count_executions(filter).await
    }
    async fn reset(&self, reset: weft_store::Reset) -> Result<Committed, StoreError> {
        self.inner.reset(reset).await
    }
    async fn put_namespace(&self, namespace: NamespaceRecord) -> Result<(), StoreError> {
        self.inner.put_namespace(namespace).await
    }
    async fn namespaces(&self) -> Result<Vec<NamespaceRecord>, StoreError> {
        self.inner.namespaces().await
    }
    async fn history_range(
        &self,
        key: ExecKey,
        from: u64,
        max: usize,
    ) -> Result<Vec<weft_core::Event>, StoreError> {
        self.inner.history_range(key, from, max).await
    }
    async fn put_api_key(&self, key: ApiKeyRecord) -> Result<(), StoreError> {
        self.inner.put_api_key(key).await
    }
    async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.inner.api_keys().await
    }
    async fn put_mask_policy(
        &self,
        workflow_type: String,
        policy: weft_core::mask::MaskPolicy,
    ) -> Result<(), StoreError> {
        self.inner.put_mask_policy(workflow_type, policy).await
    }
    async fn mask_policies(
        &self,
    ) -> Result<Vec<(String, weft_core::mask::MaskPolicy)>, StoreError> {
        self.inner.mask_policies().await
    }
    async fn append_audit(&self, entries: Vec<AuditRecord>) -> Result<(), StoreError> {
        self.inner.append_audit(entries).await
    }
    async fn audit_log(&self, filter: AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        self.inner.audit_log(filter).await
    }
    fn signing_public_key(&self) -> Option<[u8; 32]> {
        self.inner.signing_public_key()
    }
    async fn checkpoint_closed(
        &self,
        now: Timestamp,
    ) -> Result<Option<weft_protect::checkpoint::Checkpoint>, StoreError> {
        self.inner.checkpoint_closed(now).await
    }
    async fn checkpoint_open(
        &self,
        now: Timestamp,
        keep: usize,
    ) -> Result<Option<weft_protect::checkpoint::Checkpoint>, StoreError> {
        self.inner.checkpoint_open(now, keep).await
    }
    async fn audited_history(
        &self,
        key: ExecKey,
    ) -> Result<weft_store::AuditedHistory, StoreError> {
        self.inner.audited_history(key).await
    }
    async fn erase(&self, key: ExecKey, at: Timestamp) -> Result<ExecutionRecord, StoreError> {
        self.inner.erase(key, at).await
    }
    async fn rewrap(&self, max: usize) -> Result<usize, StoreError> {
        self.inner.rewrap(max).await
    }
    async fn purge_closed(
        &self,
        namespace: String,
        closed_before: Timestamp,
        max: usize,
    ) -> Result<usize, StoreError> {
        self.inner.purge_closed(namespace, closed_before, max).await
    }
    async fn queue_stats(&self, queue: &str) -> Result<QueueStats, StoreError> {
        self.inner.queue_stats(queue).await
    }
    async fn running_executions(&self) -> Result<Vec<ExecutionRecord>, StoreError> {
        self.inner.running_executions().await
    }
    async fn commit(&self, transition: Transition) -> Result<Committed, StoreError> {
        let failing = self
            .fail_commits
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if failing.is_ok() {
            self.failed.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Storage(
                "No space left on device (os error 28) [simulated]".into(),
            ));
        }
        self.inner.commit(transition).await
    }
    async fn send(
        &self,
        key: ExecKey,
        message: InboxMessage,
    ) -> Result<Option<InboxEntry>, StoreError> {
        self.inner.send(key, message).await
    }
    async fn signal_with_start(
        &self,
        new: NewExecution,
        message: InboxMessage,
    ) -> Result<(ExecutionRecord, InboxEntry, bool), StoreError> {
        self.inner.signal_with_start(new, message).await
    }
    async fn poll_activities(
        &self,
        queue: &str,
        now: Timestamp,
        max: usize,
    ) -> Result<Polled, StoreError> {
        self.inner.poll_activities(queue, now, max).await
    }
    async fn report_attempt(
        &self,
        result: AttemptResult,
        now: Timestamp,
    ) -> Result<Option<weft_store::Reported>, StoreError> {
        self.inner.report_attempt(result, now).await
    }
    async fn record_heartbeat(
        &self,
        key: ExecKey,
        seq: u32,
        attempt: u32,
        details: Option<Vec<u8>>,
        now: Timestamp,
    ) -> Result<weft_store::HeartbeatAck, StoreError> {
        self.inner
            .record_heartbeat(key, seq, attempt, details, now)
            .await
    }
    async fn close(&self) {
        self.inner.close().await
    }
    async fn fire_due(&self, now: Timestamp, max: usize) -> Result<DueWork, StoreError> {
        self.inner.fire_due(now, max).await
    }
}
