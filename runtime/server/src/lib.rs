//! weft's tokio services.
//!
//! A [`Runtime`] owns the store, the wasm engine and four kinds of tasks:
//! - one **execution actor** per cached execution (`actor.rs`): runs the
//!   guest, and whenever the guest blocks commits the workflow task and
//!   waits for its inbox;
//! - one **activity worker** per task queue (`worker.rs`): leases due tasks
//!   and runs registered native activities;
//! - the **timer service** (`timers.rs`): fires durable timers and times out
//!   activity attempts;
//! - the store's group-commit writer (in `weft-store`).
//!
//! Output commit rule: an activity task becomes visible to workers, and a
//! result to clients, only after the commit that recorded it.

mod activity;
mod actor;
mod attempt;
mod audit;
mod checkpointer;
mod clock;
mod config;
mod dispatch;
mod error;
mod local;
mod masking;
mod messages;
mod node;
mod operator;
mod registry;
mod remote;
mod runtime;
mod security;
mod services;
mod shared;
mod task_token;
mod timers;
mod transition;
mod util;
mod visibility;
mod worker;

pub use activity::{ActivityContext, ActivityError, ActivityRegistry};
pub use clock::{Clock, SystemClock, TokioClock};
pub use config::{DEFAULT_QUEUE, RuntimeConfig, StartWorkflow, WorkflowOutcome};
pub use error::RuntimeError;
pub use operator::UpgradeCheck;
pub use registry::RuntimeStats;
pub use remote::RemoteTask;
pub use runtime::Runtime;
pub use task_token::TokenKey;
pub use visibility::{
    ChildState, ExecutionDescription, HistoryPage, PendingActivity, PendingTimer,
};
pub use weft_store::{
    ApiKeyRecord, AuditFilter, AuditRecord, ExecutionRecord, ExecutionStatus, IdReusePolicy,
    ListFilter, NamespaceRecord, QueueStats,
};
