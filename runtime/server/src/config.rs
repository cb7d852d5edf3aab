//! What a runtime is configured with, and the requests and outcomes of
//! its API that every part of the runtime shares.

use std::collections::BTreeMap;
use weft_core::{EventKind, Failure, Payload};
use weft_store::IdReusePolicy;

/// The queue used when neither the workflow nor the activity names one.
pub const DEFAULT_QUEUE: &str = "default";

/// Tunables of a runtime.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Start-to-close timeout for activities that set none, in ms.
    pub default_start_to_close_ms: u64,
    /// Most executions kept in memory as suspended instances. Beyond it the
    /// least recently used is evicted and later rebuilt by replay.
    pub cache_capacity: usize,
    /// Most activities one queue's worker runs at once.
    pub worker_concurrency: usize,
    /// On shutdown, how long running activity attempts may take to finish
    /// and report, in ms, before they are abandoned (and retried after
    /// their deadlines).
    pub shutdown_grace_ms: u64,
    /// A local activity retries in place when its backoff is at most this
    /// long (ms); a longer backoff hands the next attempt to its queue.
    pub local_retry_threshold_ms: u64,
    /// Most activity tasks per second dispatched from a queue (by queue
    /// name, in every namespace), to workers here and remote ones alike.
    pub queue_rate_limits: BTreeMap<String, f64>,
    /// Longest a remote worker's poll waits for a task, ms.
    pub max_poll_wait_ms: u64,
    /// The key remote workers' task tokens are signed with; `None` draws a
    /// random one at start (tokens then die with the process: a report
    /// after a restart is refused and the attempt retries on its timeout).
    /// Nodes sharing a store must share it.
    pub task_token_key: Option<crate::TokenKey>,
    /// How long past its start-to-close deadline a task token is accepted,
    /// ms (a report that late finds the attempt timed out anyway).
    pub task_token_grace_ms: u64,
    /// How often to delete closed executions past their namespace's
    /// retention, ms; `None` (the default): never, from this runtime.
    pub retention_sweep_ms: Option<u64>,
    /// How long after an execution closes its final head is signed in a
    /// closed checkpoint (closes in that window share one signature), ms;
    /// `None`: never, from this runtime.
    pub checkpoint_delay_ms: Option<u64>,
    /// How often to sign an open checkpoint over the running executions'
    /// heads, ms; `None` (the default): never, from this runtime.
    pub open_checkpoint_ms: Option<u64>,
    /// Open checkpoints kept (older ones are deleted).
    pub open_checkpoints_kept: usize,
    /// How often to re-wrap data keys wrapped by an old key with the
    /// current one (a batch each time), ms; `None` (the default): never.
    pub rewrap_sweep_ms: Option<u64>,
    /// Masking policies by workflow type (qualified), from the server's
    /// configuration; merged with the stored ones (deploys and the
    /// components' own declarations), never replacing them.
    pub masks: BTreeMap<String, weft_core::mask::MaskPolicy>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            default_start_to_close_ms: 60_000,
            cache_capacity: 4_096,
            worker_concurrency: 64,
            shutdown_grace_ms: 10_000,
            local_retry_threshold_ms: 5_000,
            queue_rate_limits: BTreeMap::new(),
            max_poll_wait_ms: 60_000,
            task_token_key: None,
            task_token_grace_ms: 60_000,
            retention_sweep_ms: None,
            checkpoint_delay_ms: Some(1_000),
            open_checkpoint_ms: None,
            open_checkpoints_kept: 100,
            rewrap_sweep_ms: None,
            masks: BTreeMap::new(),
        }
    }
}

/// A request to start an execution.
#[derive(Debug, Clone, Default)]
pub struct StartWorkflow {
    /// Business id, unique among running executions.
    pub workflow_id: String,
    /// Deployed workflow type.
    pub workflow_type: String,
    /// Encoded input (JSON for the SDKs).
    pub input: Payload,
    /// Default queue of its activities.
    pub task_queue: Option<String>,
    /// Whether the id may start again after earlier runs closed.
    pub id_reuse: IdReusePolicy,
    /// Limit on each run (continue-as-new starts the clock again); when it
    /// passes, the execution closes as timed out.
    pub run_timeout_ms: Option<u64>,
    /// Limit on the whole execution, across continue-as-new runs.
    pub execution_timeout_ms: Option<u64>,
    /// Initial search attributes (indexed, for listing).
    pub search_attributes: BTreeMap<String, String>,
    /// Initial memo (shown, not indexed).
    pub memo: BTreeMap<String, String>,
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkflowOutcome {
    /// Returned a value.
    Completed(Payload),
    /// Failed (returned an error or trapped), or was cancelled (then the
    /// failure's type is `Cancelled`).
    Failed(Failure),
    /// Terminated by a client or operator, for this reason.
    Terminated(String),
}

impl WorkflowOutcome {
    /// The outcome a terminal event records: `Some(None)` for a run that
    /// continued as new, `None` for an event that does not close a run.
    pub(crate) fn of(kind: &EventKind) -> Option<Option<WorkflowOutcome>> {
        Some(match kind {
            EventKind::ExecutionCompleted { result } => {
                Some(WorkflowOutcome::Completed(result.clone()))
            }
            EventKind::ExecutionFailed { failure } => {
                Some(WorkflowOutcome::Failed(failure.clone()))
            }
            EventKind::ExecutionTerminated { reason } => {
                Some(WorkflowOutcome::Terminated(reason.clone()))
            }
            EventKind::ExecutionContinuedAsNew { .. } => None,
            EventKind::ExecutionTimedOut { timeout } => Some(WorkflowOutcome::Failed(
                Failure::new("Timeout", format!("the {timeout} timeout passed")).non_retryable(),
            )),
            _ => return None,
        })
    }
}
