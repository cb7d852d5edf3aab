//! Durable storage for weft.
//!
//! The [`Store`] trait is everything the runtime persists: components,
//! executions and their histories, each execution's inbox, activity task
//! queues, and due times (timers and activity deadlines). [`RedbStore`] is
//! the embedded backend. It knows nothing of wasm.
//!
//! Invariants every backend keeps:
//! - A [`Transition`] (one workflow task's output) commits atomically: its
//!   events, the inbox entries it consumed, its new activity tasks and
//!   timers, and the execution's new status.
//! - History is append-only and gap-free; a transition whose first index
//!   is not the stored history length is refused ([`StoreError::Conflict`]),
//!   so two writers can never interleave one history.
//! - Anything that must enter a history from outside (an activity result, a
//!   fired timer) is first written to the execution's inbox, atomically with
//!   the change that produced it (the task's deletion, the timer's removal).
//! - Durability: `start_execution`, `commit`, `put_component` and
//!   `poll_activities` are on disk when they return (a lease is durable so
//!   that every attempt that ran is accounted for: if its report is lost,
//!   the attempt times out and is recorded as such). `report_attempt` and
//!   `fire_due` may return before their write reaches the disk; it becomes
//!   durable with the next durable write, which is the workflow task that
//!   moves it into history. A crash in between loses only the report (the
//!   attempt then times out and retries, under the same idempotency key)
//!   or the firing (the timer fires again); nothing in a history is lost.

mod error;
mod model;
mod protection;
mod redb;

pub use crate::redb::{RedbStore, TableUsage};
pub use error::StoreError;
pub use model::{
    ApiKeyRecord, AttemptResult, AuditFilter, AuditRecord, AuditedHistory, Committed, DueWork,
    HeartbeatAck, InboxEntry, ListFilter, LoadedExecution, NamespaceRecord, NewChild, Polled,
    QueueStats, Reported, Reset, Transition,
};
/// The execution and task models live in `weft-core` with the rules that
/// derive them; they are re-exported here for the store's callers.
pub use weft_core::{
    ActivityTask, ActivityTimeouts, ExecKey, ExecutionRecord, ExecutionStatus, IdReusePolicy,
    NewActivityTask, NewExecution, TaskState,
};

use async_trait::async_trait;
use weft_core::{ComponentId, InboxMessage, Timestamp};

/// What the runtime needs from durable storage.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Store a component's bytes under its content hash (idempotent) and,
    /// with `workflow_type`, make it that type's current component.
    async fn put_component(
        &self,
        id: ComponentId,
        bytes: Vec<u8>,
        workflow_type: Option<String>,
    ) -> Result<(), StoreError>;

    /// Every deployed workflow type and its current component.
    async fn workflow_types(&self) -> Result<Vec<(String, ComponentId)>, StoreError>;

    /// A stored component.
    async fn get_component(&self, id: ComponentId) -> Result<Option<Vec<u8>>, StoreError>;

    /// Create an execution with its `ExecutionStarted` event. Fails with
    /// [`StoreError::AlreadyRunning`] if the workflow id has a running run.
    async fn start_execution(&self, new: NewExecution) -> Result<ExecutionRecord, StoreError>;

    /// The latest run of a workflow id.
    async fn find_execution(
        &self,
        workflow_id: &str,
    ) -> Result<Option<ExecutionRecord>, StoreError>;

    /// An execution's record, full history and unconsumed inbox.
    async fn load_execution(&self, key: ExecKey) -> Result<LoadedExecution, StoreError>;

    /// Executions (every run, newest first) that pass `filter`, at most its
    /// limit. Walks an index of namespace, status and type rather than
    /// every execution; the next page is `filter.before` = the last key.
    async fn list_executions(&self, filter: ListFilter)
    -> Result<Vec<ExecutionRecord>, StoreError>;

    /// How many executions pass `filter` (at most its limit, if it has one).
    async fn count_executions(&self, filter: ListFilter) -> Result<u64, StoreError>;

    /// Reset, in one transaction: close `old` as terminated (if it is
    /// running) and start `new` with the prefix as its history, its open
    /// tasks and timers armed, and the reapplied messages in its inbox.
    /// `Committed::started` holds the new run's key.
    async fn reset(&self, reset: Reset) -> Result<Committed, StoreError>;

    /// Create or change a namespace.
    async fn put_namespace(&self, namespace: NamespaceRecord) -> Result<(), StoreError>;

    /// Every namespace created with `put_namespace`.
    async fn namespaces(&self) -> Result<Vec<NamespaceRecord>, StoreError>;

    /// Delete up to `max` executions of `namespace` that closed before
    /// `closed_before`: record, history, inbox (retention). Returns how
    /// many were deleted.
    async fn purge_closed(
        &self,
        namespace: String,
        closed_before: Timestamp,
        max: usize,
    ) -> Result<usize, StoreError>;

    /// Backlog and running attempts of a task queue.
    async fn queue_stats(&self, queue: &str) -> Result<QueueStats, StoreError>;

    /// Every execution that has not closed.
    async fn running_executions(&self) -> Result<Vec<ExecutionRecord>, StoreError>;

    /// Commit one workflow task's output atomically (with the children it
    /// starts or closes and the messages it sends them or its parent).
    async fn commit(&self, transition: Transition) -> Result<Committed, StoreError>;

    /// Append `message` (a signal, a cancellation request) to the inbox of
    /// running execution `key`; durable on return. `None` if the execution
    /// has closed.
    async fn send(
        &self,
        key: ExecKey,
        message: InboxMessage,
    ) -> Result<Option<InboxEntry>, StoreError>;

    /// Atomically: start `new` unless its workflow id has a running run,
    /// then append `message` to the running run's inbox. Returns that run's
    /// record, the entry, and whether it was started by this call.
    async fn signal_with_start(
        &self,
        new: NewExecution,
        message: InboxMessage,
    ) -> Result<(ExecutionRecord, InboxEntry, bool), StoreError>;

    /// Lease up to `max` activity tasks of `queue` that are due at `now`.
    /// Each leased task runs until its start-to-close deadline (or misses
    /// its heartbeat deadline), after which [`Store::fire_due`] times it
    /// out.
    async fn poll_activities(
        &self,
        queue: &str,
        now: Timestamp,
        max: usize,
    ) -> Result<Polled, StoreError>;

    /// Record how a leased attempt ended: decides the retry, and writes the
    /// report to the execution's inbox. `None` if the attempt is stale (it
    /// already timed out, or the execution closed).
    async fn report_attempt(
        &self,
        result: AttemptResult,
        now: Timestamp,
    ) -> Result<Option<Reported>, StoreError>;

    /// A heartbeat of attempt `attempt` of task `(key, seq)` at `now`:
    /// moves its heartbeat deadline, and keeps progress `details` (if
    /// given) for the next attempt. Like `report_attempt`, durable with the
    /// next durable write.
    async fn record_heartbeat(
        &self,
        key: ExecKey,
        seq: u32,
        attempt: u32,
        details: Option<Vec<u8>>,
        now: Timestamp,
    ) -> Result<HeartbeatAck, StoreError>;

    /// Finish queued writes and stop accepting new ones (they fail with
    /// [`StoreError::Closed`]). Reads still work until the store is dropped.
    async fn close(&self);

    /// Fire timers, time out activity attempts and activities, and close
    /// executions past their timeouts, due at `now`.
    async fn fire_due(&self, now: Timestamp, max: usize) -> Result<DueWork, StoreError>;

    /// Events `from..from + max` of execution `key`'s history (to its end
    /// with `max` 0): what following a history reads per poll, instead of
    /// all of it. Empty past the end.
    async fn history_range(
        &self,
        key: ExecKey,
        from: u64,
        max: usize,
    ) -> Result<Vec<weft_core::Event>, StoreError>;

    /// Create or replace an API key (by id); durable on return.
    async fn put_api_key(&self, key: ApiKeyRecord) -> Result<(), StoreError>;

    /// Every API key, revoked and expired ones included.
    async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError>;

    /// Replace the masking policy of `workflow_type` (an empty policy
    /// removes it); durable on return.
    async fn put_mask_policy(
        &self,
        workflow_type: String,
        policy: weft_core::mask::MaskPolicy,
    ) -> Result<(), StoreError>;

    /// Every workflow type's stored masking policy.
    async fn mask_policies(&self)
    -> Result<Vec<(String, weft_core::mask::MaskPolicy)>, StoreError>;

    /// Append entries to the audit log; durable on return (they share the
    /// group commit of whatever else is being written).
    async fn append_audit(&self, entries: Vec<AuditRecord>) -> Result<(), StoreError>;

    /// Audit entries in time order, per `filter`.
    async fn audit_log(&self, filter: AuditFilter) -> Result<Vec<AuditRecord>, StoreError>;

    /// The public key this store's checkpoints are signed with; `None` if
    /// nothing signs (no keyring).
    fn signing_public_key(&self) -> Option<[u8; 32]>;

    /// Sign a closed checkpoint over the final heads of the executions that
    /// closed since the last one. `None` if none did, or nothing signs
    /// (no keyring).
    async fn checkpoint_closed(
        &self,
        now: Timestamp,
    ) -> Result<Option<weft_protect::checkpoint::Checkpoint>, StoreError>;

    /// Sign an open checkpoint over the heads of the running executions,
    /// keeping the newest `keep` open checkpoints. `None` if nothing signs.
    async fn checkpoint_open(
        &self,
        now: Timestamp,
        keep: usize,
    ) -> Result<Option<weft_protect::checkpoint::Checkpoint>, StoreError>;

    /// Execution `key`'s history as stored, and the checkpoint covering it.
    async fn audited_history(&self, key: ExecKey) -> Result<AuditedHistory, StoreError>;

    /// Erase closed execution `key`: destroy its data key, so its payloads
    /// can never be read again; its skeleton and chain stay and verify.
    async fn erase(&self, key: ExecKey, at: Timestamp) -> Result<ExecutionRecord, StoreError>;

    /// Re-wrap the data keys of up to `max` executions wrapped by a key
    /// other than the current one with the current one (their ciphertexts
    /// and chain hashes do not change). How many were re-wrapped.
    async fn rewrap(&self, max: usize) -> Result<usize, StoreError>;
}
