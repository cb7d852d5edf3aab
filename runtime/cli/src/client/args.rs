//! The client commands' arguments, as clap parses them.

use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum ComponentCommand {
    /// Store a component and make it the current code of a workflow type.
    Deploy {
        /// Workflow type.
        #[arg(long = "type")]
        workflow_type: String,
        /// The component (.wasm).
        component: PathBuf,
        /// A sensitive field, masked for callers without `unmask`:
        /// `[target=]path` (repeat). A bare JSON path (`$.applicant`) is a
        /// field of the input; targets: input, result, signal, update,
        /// query. Added to the type's policy, which only grows.
        #[arg(long = "mask", value_name = "RULE")]
        mask: Vec<String>,
        /// A sensitive field of an activity's arguments, `name=path`
        /// (`screen=$[0].name`; repeat).
        #[arg(long = "mask-activity", value_name = "NAME=PATH")]
        mask_activity: Vec<String>,
        /// A sensitive field of an activity's result, `name=path` (repeat).
        #[arg(long = "mask-activity-result", value_name = "NAME=PATH")]
        mask_activity_result: Vec<String>,
    },
    /// Deployed workflow types and their components.
    List,
}

/// What to start (shared by `start` and `execute`).
#[derive(Args)]
pub struct StartArgs {
    /// Workflow type.
    #[arg(long = "type")]
    pub(super) workflow_type: String,
    /// Workflow id.
    #[arg(long)]
    pub(super) id: String,
    /// Input, JSON.
    #[arg(long, default_value = "null")]
    pub(super) input: String,
    /// Default task queue of its activities.
    #[arg(long, default_value = "default")]
    pub(super) task_queue: String,
    /// allow-duplicate, allow-duplicate-failed-only or reject-duplicate.
    #[arg(long, default_value = "allow-duplicate")]
    pub(super) id_reuse: String,
    /// Run timeout, seconds.
    #[arg(long)]
    pub(super) run_timeout: Option<u64>,
    /// Execution timeout (across continue-as-new), seconds.
    #[arg(long)]
    pub(super) execution_timeout: Option<u64>,
    /// Search attribute, `key=value` (repeat).
    #[arg(long = "search", value_parser = key_value)]
    pub(super) search_attributes: Vec<(String, String)>,
    /// Memo field, `key=value` (repeat).
    #[arg(long = "memo", value_parser = key_value)]
    pub(super) memo: Vec<(String, String)>,
}

/// Which executions (shared by `list` and `count`).
#[derive(Args)]
pub struct FilterArgs {
    /// Workflow type.
    #[arg(long = "type")]
    pub(super) workflow_type: Option<String>,
    /// Status: Running, Completed, Failed, Cancelled, Terminated,
    /// ContinuedAsNew, TimedOut.
    #[arg(long)]
    pub(super) status: Option<String>,
    /// Search attribute that must match, `key=value` (repeat).
    #[arg(long = "search", value_parser = key_value)]
    pub(super) search_attributes: Vec<(String, String)>,
    /// Started at or after, ms since the epoch.
    #[arg(long)]
    pub(super) started_after: Option<u64>,
    /// Started before, ms since the epoch.
    #[arg(long)]
    pub(super) started_before: Option<u64>,
    /// Closed at or after, ms since the epoch.
    #[arg(long)]
    pub(super) closed_after: Option<u64>,
    /// Closed before, ms since the epoch.
    #[arg(long)]
    pub(super) closed_before: Option<u64>,
    /// At most this many, newest first.
    #[arg(long, default_value_t = 0)]
    pub(super) limit: u32,
    /// The page after a previous list's last (it prints the token when
    /// its page was full).
    #[arg(long)]
    pub(super) page_token: Option<String>,
}

#[derive(Subcommand)]
pub enum WorkflowCommand {
    /// Start an execution and print its run id.
    Start(StartArgs),
    /// Start an execution, follow its history live, print its result.
    Execute(StartArgs),
    /// Status, pending activities (attempts, last failure), timers, children.
    Describe {
        /// Workflow id.
        id: String,
    },
    /// The history as a timeline (`--output json`: for `weft replay`).
    Show {
        /// Workflow id.
        id: String,
        /// Keep printing new events until the execution closes.
        #[arg(long, short)]
        follow: bool,
    },
    /// Executions matching a filter, newest first.
    List(FilterArgs),
    /// How many executions match a filter.
    Count(FilterArgs),
    /// Send a signal.
    Signal {
        /// Workflow id.
        id: String,
        /// Signal name.
        #[arg(long)]
        name: String,
        /// Payload, JSON.
        #[arg(long, default_value = "null")]
        input: String,
    },
    /// Ask a query (answered from the workflow's state, not recorded).
    Query {
        /// Workflow id.
        id: String,
        /// Query name.
        #[arg(long)]
        name: String,
        /// Arguments, JSON.
        #[arg(long, default_value = "null")]
        input: String,
    },
    /// Send an update and wait for the workflow's answer.
    Update {
        /// Workflow id.
        id: String,
        /// Update name.
        #[arg(long)]
        name: String,
        /// Arguments, JSON.
        #[arg(long, default_value = "null")]
        input: String,
    },
    /// Ask an execution to cancel (it may compensate first).
    Cancel {
        /// Workflow id.
        id: String,
        /// Why.
        #[arg(long, default_value = "cancelled by operator")]
        reason: String,
    },
    /// End an execution now; no workflow code runs.
    Terminate {
        /// Workflow id.
        id: String,
        /// Why, recorded in the history.
        #[arg(long, default_value = "terminated by operator")]
        reason: String,
    },
    /// End the latest run and start a new one from its history up to an
    /// event (inclusive); the workflow continues from there.
    Reset {
        /// Workflow id.
        id: String,
        /// Last event to keep (see `workflow show`).
        #[arg(long)]
        event: u64,
        /// Why, recorded in the old run's history.
        #[arg(long, default_value = "reset by operator")]
        reason: String,
    },
    /// Wait for an execution to close and print its result.
    Result {
        /// Workflow id.
        id: String,
    },
    /// Erase a closed execution's payloads for good (its data key is
    /// destroyed): the skeleton (event kinds, times, callers) and the
    /// chain stay and verify. Admin only; audited.
    Erase {
        /// Workflow id (its latest run).
        id: String,
        /// Why (recorded in the audit log), e.g. a GDPR request number.
        #[arg(long)]
        reason: String,
    },
    /// Fail a running (e.g. parked) execution; no workflow code runs.
    Fail {
        /// Workflow id.
        id: String,
        /// Why, recorded in the history.
        #[arg(long)]
        reason: String,
        /// Act on the database in `--data-dir` directly, with no server
        /// running (offline repair).
        #[arg(long)]
        offline: bool,
    },
    /// Move running executions of a workflow type to a new component:
    /// replay each one's history against it, and upgrade those that replay
    /// cleanly (parked ones resume). `weft upgrade` does it offline.
    Upgrade(UpgradeArgs),
}

/// What `weft workflow upgrade` (over the API) and `weft upgrade`
/// (offline) take.
#[derive(Args, Clone)]
pub struct UpgradeArgs {
    /// Workflow type.
    #[arg(long = "type")]
    pub workflow_type: String,
    /// The new component (.wasm).
    #[arg(long)]
    pub component: PathBuf,
    /// Only report what would happen.
    #[arg(long)]
    pub dry_run: bool,
    /// Upgrade even executions that do not replay (they will park).
    #[arg(long, conflicts_with = "dry_run")]
    pub force: bool,
    /// Why, recorded with each upgraded execution.
    #[arg(long, default_value = "")]
    pub reason: String,
}

#[derive(Subcommand)]
pub enum TaskQueueCommand {
    /// Backlog, running attempts and workers of a task queue.
    Describe {
        /// Task queue.
        queue: String,
    },
}

#[derive(Subcommand)]
pub enum NamespaceCommand {
    /// Create (or change) a namespace.
    Create {
        /// Name: a-z, 0-9, `.`, `_`, `-`.
        name: String,
        /// Delete closed executions after this many seconds (0: keep).
        #[arg(long, default_value_t = 0)]
        retention: u64,
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Every namespace.
    List,
    /// One namespace.
    Describe {
        /// Name.
        name: String,
    },
}

pub(super) fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{s}` is not key=value"))
}
