//! The contract between the engine and whatever runs the world around a
//! guest (the server's execution actor, a replayer).

use async_trait::async_trait;
use weft_core::{ExecutionState, Failure, Nondeterminism, Timestamp};

/// What runs the world around a guest: commits its progress and feeds it
/// new events. The server's execution loop is one; a replayer is another.
#[async_trait]
pub trait Driver: Send + 'static {
    /// Time stamped on events the guest creates now.
    fn now(&self) -> Timestamp;

    /// The guest waits on handles none of which has resolved. Make the
    /// state's pending events durable, then return once at least one new
    /// event has been delivered into `state`, or stop the execution.
    async fn block(&mut self, state: &mut ExecutionState) -> Result<(), DriverStop>;

    /// A query to answer now, if one is waiting. Asked whenever the guest
    /// blocks, before [`Driver::block`].
    fn take_query(&mut self) -> Option<(String, Vec<u8>)> {
        None
    }

    /// The guest's answer to the query [`Driver::take_query`] gave it.
    fn answer_query(&mut self, _answer: Result<Vec<u8>, Failure>) {}

    /// A guest's log line as it may be written to the host's log: a
    /// workflow logs its real values, and the server hides the ones its
    /// masking policy names. Unchanged by default.
    fn log_line(&self, _state: &ExecutionState, message: String) -> String {
        message
    }
}

/// Why a driver stopped an execution. None of these is the workflow's
/// fault, so none is recorded in its history.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverStop {
    /// Replay used up the recorded history; the execution would block here.
    #[error("replay reached the end of the recorded history")]
    HistoryExhausted,
    /// The runtime evicted the execution from its cache (or is shutting down).
    #[error("execution evicted from the cache")]
    Evicted,
    /// Another writer extended the history first: reload and run again.
    #[error("history was extended by another writer")]
    Superseded,
    /// Committing failed; nothing after the last commit happened.
    #[error("storage failure: {0}")]
    Storage(String),
}

/// How one call of [`WorkflowEngine::run`] ended.
#[derive(Debug)]
pub enum RunEnd {
    /// The guest returned or trapped: the terminal event is in the state
    /// (pending if new, or checked against history on replay). Also: the
    /// driver closed the history while the guest waited (its terminal
    /// event is pending).
    Closed,
    /// The guest diverged from its history; park the execution.
    Nondeterminism(Nondeterminism),
    /// The driver stopped the guest.
    Stopped(DriverStop),
    /// A query handler trapped or broke the read-only rule. The execution
    /// is unharmed (nothing was recorded), but this instance is unusable.
    QueryFault(String),
}
