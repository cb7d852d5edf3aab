use crate::RetryPolicy;
use serde::{Deserialize, Serialize};

/// Options of one activity command, as the guest gave them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ActivityOptions {
    /// Queue to dispatch to; `None` means the execution's queue.
    pub task_queue: Option<String>,
    /// Limit on one attempt, in ms; `None` means the runtime default
    /// (capped by the schedule-to-close timeout).
    pub start_to_close_timeout_ms: Option<u64>,
    /// Limit on how long each attempt may wait in its queue for a worker,
    /// in ms; exceeding it fails the activity for good (Temporal's rule:
    /// a retry would wait in the same queue). `None`: no limit.
    pub schedule_to_start_timeout_ms: Option<u64>,
    /// Limit on the whole activity, every attempt and backoff included, in
    /// ms; no retry starts past it. `None`: no limit.
    pub schedule_to_close_timeout_ms: Option<u64>,
    /// An attempt that goes this long without a heartbeat times out (and
    /// is retried), in ms. `None`: heartbeats are not required.
    pub heartbeat_timeout_ms: Option<u64>,
    /// Retry policy; `None` means the default policy.
    pub retry: Option<RetryPolicy>,
    /// Run in the workflow task's own process, without a queue round trip
    /// (a local activity). Meant for short work.
    pub local: bool,
}

/// What happens to a running child when its parent closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ParentClosePolicy {
    /// Terminate the child (Temporal's default).
    #[default]
    Terminate,
    /// Ask the child to cancel; it may compensate.
    RequestCancel,
    /// Leave the child running on its own.
    Abandon,
}

/// Options of a child workflow, as the guest gave them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChildOptions {
    /// The child's default activity queue; `None` means the parent's.
    pub task_queue: Option<String>,
    /// What happens to the child if the parent closes first.
    pub parent_close_policy: ParentClosePolicy,
}

/// What a guest asks the runtime to do. Each command gets the next sequence
/// number of its execution, which is also the guest's handle for it.
/// (`Serialize` only to measure a command against the history's byte limit;
/// commands are never stored as such.)
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Command {
    /// Run an activity.
    ScheduleActivity {
        /// Registered activity name.
        name: String,
        /// Encoded input.
        input: Vec<u8>,
        /// Timeouts, retries, queue.
        options: ActivityOptions,
    },
    /// Start a durable timer.
    StartTimer {
        /// How long until it fires.
        duration_ms: u64,
    },
    /// Record a value the workflow computed (a side effect).
    RecordValue {
        /// The value.
        value: Vec<u8>,
    },
    /// Record that the code took the new branch of a patch.
    Patch {
        /// The patch's change id.
        change_id: String,
    },
    /// Wait for the next signal named `name`.
    AwaitSignal {
        /// Signal name.
        name: String,
    },
    /// Start a child workflow.
    StartChild {
        /// Its workflow type.
        workflow_type: String,
        /// Its workflow id.
        workflow_id: String,
        /// Its input.
        input: Vec<u8>,
        /// Queue and parent-close policy.
        options: ChildOptions,
    },
    /// Wait for the next update request named `name`.
    AwaitUpdate {
        /// Update name.
        name: String,
    },
    /// Answer an update request.
    CompleteUpdate {
        /// The handle that received the request.
        request: u32,
        /// The request's id.
        update_id: String,
        /// The answer.
        result: Result<Vec<u8>, crate::Failure>,
    },
    /// Set search attributes.
    UpsertSearchAttributes {
        /// (name, value) pairs.
        attributes: Vec<(String, String)>,
    },
    /// Set memo fields.
    UpsertMemo {
        /// (name, value) pairs.
        memo: Vec<(String, String)>,
    },
    /// Cancel a timer this execution started.
    CancelTimer {
        /// The timer's sequence number (its handle).
        timer: u32,
    },
}

/// How the workflow's `run` ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Exit {
    /// Returned a value.
    Completed(Vec<u8>),
    /// Returned an error, or trapped.
    Failed(crate::Failure),
    /// Asked to continue as a new run with this input.
    ContinueAsNew(Vec<u8>),
}
