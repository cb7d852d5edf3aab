use weft_engine::EngineError;
use weft_store::StoreError;

/// Errors a runtime client can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// No component is deployed for this workflow type.
    #[error("unknown workflow type `{0}`: deploy its component first")]
    UnknownWorkflowType(String),
    /// No execution with this workflow id.
    #[error("no execution with workflow id `{0}`")]
    NotFound(String),
    /// The component was rejected.
    #[error(transparent)]
    InvalidComponent(#[from] EngineError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The execution has closed; the action needs a running one.
    #[error("execution `{0}` is not running")]
    NotRunning(String),
    /// The execution's code no longer replays its history: it waits for an
    /// operator, and will not close until one acts.
    #[error(
        "execution `{workflow_id}` is parked: {reason}\n\
         It waits for an operator: move it to a component that replays its history with \
         `weft workflow upgrade --type {workflow_type} --component <fixed.wasm>` (`weft upgrade` \
         offline), or end it with `weft workflow fail {workflow_id} --reason <why>`."
    )]
    Parked {
        /// The execution's workflow id.
        workflow_id: String,
        /// Its workflow type.
        workflow_type: String,
        /// The divergence that parked it.
        reason: String,
    },
    /// The caller may not do this (a forged or foreign task token).
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The execution's history has no room for the message.
    #[error("history full: {0}")]
    HistoryFull(String),
    /// The execution kept committing; try again.
    #[error("execution `{0}` is busy; try again")]
    Busy(String),
    /// A payload is over the configured limit.
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    /// The workflow's query handler answered with an error (an unknown
    /// query name, bad arguments, the handler's own failure).
    #[error("query failed: {0}")]
    QueryFailed(weft_core::Failure),
    /// The query could not be run against the workflow's state.
    #[error(transparent)]
    Query(#[from] weft_engine::QueryError),
    /// The workflow's validator rejected the update; nothing was recorded.
    #[error("update rejected: {0}")]
    UpdateRejected(weft_core::Failure),
    /// The workflow answered the update with an error (or closed without
    /// answering it).
    #[error("update failed: {0}")]
    UpdateFailed(weft_core::Failure),
    /// An activity task token names an attempt that is no longer current.
    #[error("{0}")]
    StaleTask(String),
    /// No such namespace.
    #[error("unknown namespace `{0}`: create it first")]
    UnknownNamespace(String),
    /// A request that makes no sense (a bad name, filter or argument).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The execution was erased: its payloads are gone, so its code cannot
    /// be run against its history again (a query, a reset, a replay).
    #[error(
        "execution `{0}` was erased (its data key was destroyed): its history shows its \
         skeleton only and cannot be replayed"
    )]
    Erased(String),
    /// The runtime is shutting down.
    #[error("the runtime is shutting down")]
    ShuttingDown,
    /// Something under the runtime failed that is neither the store nor
    /// the request (no OS randomness, a worker task that died); the source
    /// is kept.
    #[error("{what}: {source}")]
    Internal {
        /// What the runtime was doing.
        what: String,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl RuntimeError {
    /// An [`RuntimeError::Internal`] failure while doing `what`.
    pub(crate) fn internal(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> RuntimeError {
        RuntimeError::Internal {
            what: what.into(),
            source: source.into(),
        }
    }
}
