use serde::{Deserialize, Serialize};
use weft_core::{Event, Failure, InboxMessage, Payload, Timestamp};
// The execution and task models live in `weft-core`, beside the rules
// that derive them.
pub use weft_core::{
    ActivityTask, ExecKey, ExecutionRecord, ExecutionStatus, NewActivityTask, NewExecution,
    TaskState,
};

/// A reset: end run `old` and start `new` from a copy of a history prefix.
#[derive(Debug, Clone)]
pub struct Reset {
    /// The run to end (terminated, if it is running).
    pub old: ExecKey,
    /// Why, recorded in its history.
    pub reason: String,
    /// Who asked for the reset, recorded with the old run's termination.
    pub caller: Option<weft_core::Caller>,
    /// The new run; its `started` is the prefix's first event.
    pub new: NewExecution,
    /// The rest of the prefix.
    pub rest: Vec<Event>,
    /// Tasks for the prefix's unresolved activities.
    pub tasks: Vec<NewActivityTask>,
    /// Timers for the prefix's unresolved timers: (due, seq).
    pub timers: Vec<(Timestamp, u32)>,
    /// Messages for the new run's inbox (signals recorded after the prefix).
    pub reapply: Vec<InboxMessage>,
}

/// A namespace and its settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceRecord {
    /// Its name.
    pub name: String,
    /// Closed executions older than this are deleted; 0 keeps them.
    pub retention_seconds: u64,
    /// What it is for.
    pub description: String,
}

/// A task queue's load, for `describe task-queue`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Tasks waiting (due now or later, e.g. a retry).
    pub backlog: u64,
    /// Attempts leased to a worker.
    pub running: u64,
}

/// Which executions to list (all conditions must hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// In this namespace (`None`: any).
    pub namespace: Option<String>,
    /// Of this workflow type.
    pub workflow_type: Option<String>,
    /// In this status.
    pub status: Option<ExecutionStatus>,
    /// With these search attribute values.
    pub search_attributes: Vec<(String, String)>,
    /// Started at or after.
    pub started_after: Option<Timestamp>,
    /// Started before.
    pub started_before: Option<Timestamp>,
    /// Closed at or after (open executions do not match).
    pub closed_after: Option<Timestamp>,
    /// Closed before (open executions do not match).
    pub closed_before: Option<Timestamp>,
    /// At most this many (newest first); 0 means no limit.
    pub limit: usize,
    /// Only runs older than this one (by key): the cursor of the next page,
    /// from the last run of the previous one.
    pub before: Option<ExecKey>,
}

impl ListFilter {
    /// True if `record` passes the filter.
    pub fn matches(&self, record: &ExecutionRecord) -> bool {
        self.namespace
            .as_ref()
            .is_none_or(|ns| weft_core::namespace::namespace_of(&record.id.workflow_id) == ns)
            && self
                .workflow_type
                .as_ref()
                .is_none_or(|t| *t == record.workflow_type)
            && self.status.is_none_or(|s| s == record.status)
            && self.started_after.is_none_or(|t| record.started_at >= t)
            && self.started_before.is_none_or(|t| record.started_at < t)
            && self
                .closed_after
                .is_none_or(|t| record.closed_at.is_some_and(|c| c >= t))
            && self
                .closed_before
                .is_none_or(|t| record.closed_at.is_some_and(|c| c < t))
            && self
                .search_attributes
                .iter()
                .all(|(k, v)| record.search_attributes.get(k) == Some(v))
    }
}

/// A child workflow to start, from a `ChildStarted` event.
#[derive(Debug, Clone)]
pub struct NewChild {
    /// The parent's command sequence number.
    pub seq: u32,
    /// The child, or why it cannot start (an unknown type): the failure
    /// then goes to the parent's inbox.
    pub start: Result<NewExecution, Failure>,
}

/// What a commit did beyond the committing execution's own history.
#[derive(Debug, Clone, Default)]
pub struct Committed {
    /// Inbox entries written (a child's outcome for its parent, a failed
    /// child start, a cancellation request to a child): route them.
    pub delivered: Vec<InboxEntry>,
    /// Executions started (children, the next run of a continue-as-new).
    pub started: Vec<ExecKey>,
    /// Other executions closed (children terminated with their parent).
    pub closed: Vec<ExecKey>,
}

/// An execution as loaded for replay.
#[derive(Debug, Clone)]
pub struct LoadedExecution {
    /// Its record.
    pub record: ExecutionRecord,
    /// Full history.
    pub history: Vec<Event>,
    /// Inbox entries not yet moved into history, in order.
    pub inbox: Vec<InboxEntry>,
}

/// One inbox entry of one execution.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxEntry {
    /// The execution.
    pub key: ExecKey,
    /// Position in its inbox.
    pub seq: u64,
    /// The message.
    pub message: InboxMessage,
}

/// One workflow task's output, committed atomically.
#[derive(Debug, Clone, Default)]
pub struct Transition {
    /// The execution.
    pub key: ExecKey,
    /// History index of `events[0]`; must equal the stored length.
    pub first_index: u64,
    /// New events.
    pub events: Vec<Event>,
    /// Inbox entries with seq <= this were moved into `events`.
    pub consumed_inbox_through: Option<u64>,
    /// Activity tasks to enqueue.
    pub new_tasks: Vec<NewActivityTask>,
    /// Timers to arm: (due, seq).
    pub new_timers: Vec<(Timestamp, u32)>,
    /// Timers cancelled by this task: (due, seq), as they were armed.
    pub cancelled_timers: Vec<(Timestamp, u32)>,
    /// Set when the execution closes.
    pub close: Option<ExecutionStatus>,
    /// With `close: Some(ContinuedAsNew)`: the next run, started in the
    /// same transaction.
    pub continue_as_new: Option<NewExecution>,
    /// Child workflows to start.
    pub new_children: Vec<NewChild>,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatAck {
    /// The attempt is still the task's current one: go on. `false`: it
    /// timed out or its execution closed, so stop.
    pub current: bool,
    /// The execution was asked to cancel: stop and report a cancellation.
    pub cancel_requested: bool,
}

/// Result of [`crate::Store::poll_activities`].
#[derive(Debug, Clone, Default)]
pub struct Polled {
    /// Leased tasks (state `Running`).
    pub tasks: Vec<ActivityTask>,
    /// When the next not-yet-due task of the queue becomes due.
    pub next_due: Option<Timestamp>,
}

/// How a leased attempt ended, as a worker reports it.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    /// The execution.
    pub key: ExecKey,
    /// Command sequence number.
    pub seq: u32,
    /// The attempt that ran.
    pub attempt: u32,
    /// Value or failure.
    pub result: Result<Payload, Failure>,
}

/// Result of [`crate::Store::report_attempt`].
#[derive(Debug, Clone)]
pub struct Reported {
    /// The report, in the execution's inbox.
    pub entry: InboxEntry,
    /// The queue that got the task back, if the attempt is retried.
    pub requeued: Option<String>,
}

/// Result of [`crate::Store::fire_due`].
#[derive(Debug, Clone, Default)]
pub struct DueWork {
    /// Inbox entries written (fired timers, timed-out attempts).
    pub delivered: Vec<InboxEntry>,
    /// Queues that got a task back (a retry after a timeout).
    pub requeued: Vec<String>,
    /// Executions closed by their run or execution timeout.
    pub closed: Vec<ExecKey>,
    /// Running attempts that timed out, (execution, seq, attempt): stop
    /// them if they run here.
    pub timed_out: Vec<(ExecKey, u32, u32)>,
    /// When the next due item is.
    pub next_due: Option<Timestamp>,
}

/// An API key as stored: its hash, never the key. The key itself is shown
/// once, when it is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// Public id (the part of the key before its secret); names the key
    /// in listings, revocations and the audit log.
    pub id: String,
    /// What the key is for, as its creator named it.
    pub name: String,
    /// Keyed BLAKE3 hash of the key's secret.
    pub secret_hash: [u8; 32],
    /// Grants, as `namespace:role[:queue]` (see `weft-api`'s `auth`).
    pub roles: Vec<String>,
    /// When it was created.
    pub created: Timestamp,
    /// After this, the key is refused.
    pub expires: Option<Timestamp>,
    /// When it was revoked; a revoked key is refused.
    pub revoked: Option<Timestamp>,
}

/// One entry of the API's audit log: who called what on which target, and
/// how it ended. Never a payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When the call ended.
    pub at: Timestamp,
    /// Who called (an API key's `key:<id> (<name>)`, a JWT's subject, a
    /// certificate's name, or `anonymous` when authentication is off).
    pub identity: String,
    /// The namespace the call was about; empty for system-wide calls.
    pub namespace: String,
    /// The RPC, as the API names it (`TerminateWorkflow`).
    pub rpc: String,
    /// What it acted on: a workflow id, a task queue, a key id.
    pub target: String,
    /// `ok`, or the status code and message it was refused with.
    pub outcome: String,
}

/// Which audit entries to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only entries at or after this time; without it, the newest.
    pub since: Option<Timestamp>,
    /// Only this identity's entries.
    pub identity: Option<String>,
    /// At most this many (0: the store's default of 1000).
    pub limit: usize,
}

/// An execution's history as stored, with what proves it: what an auditor
/// verifies (`weft audit verify`).
#[derive(Debug, Clone)]
pub struct AuditedHistory {
    /// Its record (data key, chain origin and head).
    pub record: ExecutionRecord,
    /// Its events as stored, in order.
    pub stored: Vec<Vec<u8>>,
    /// The checkpoint that covers it: for a closed execution the one that
    /// signed its final head, for a running one the newest open checkpoint
    /// it is in. `None` if none covers it yet.
    pub checkpoint: Option<weft_protect::checkpoint::Checkpoint>,
}
