//! Replay a recorded history against a component, checking every command.
//! The same check the runtime makes on every rebuild, exposed so authors
//! can put replay tests of their workflows in their own CI.

use crate::{Driver, DriverStop, EngineError, RunEnd, WorkflowEngine};
use async_trait::async_trait;
use std::sync::{Arc, Mutex};
use weft_core::{Event, ExecutionId, ExecutionState, Failure, Nondeterminism, Payload, Timestamp};

/// Why a replay did not reproduce its history.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The history itself is unusable (empty, wrong first event).
    #[error("invalid history: {0}")]
    InvalidHistory(#[from] weft_core::HistoryError),
    /// The component could not run.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The code does something other than what the history records.
    #[error(transparent)]
    Nondeterminism(#[from] Nondeterminism),
}

/// What a successful replay covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    /// Commands re-issued and matched.
    pub commands: u32,
    /// Whether the history (and the replay) reached the end of the execution.
    pub closed: bool,
}

/// Why a query got no answer from the workflow.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The history itself is unusable.
    #[error("invalid history: {0}")]
    InvalidHistory(#[from] weft_core::HistoryError),
    /// The component could not run.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The code no longer replays this history.
    #[error(transparent)]
    Nondeterminism(#[from] Nondeterminism),
    /// The query handler trapped or tried to do something other than read.
    #[error("query failed: {0}")]
    Fault(String),
    /// The workflow's state cannot be rebuilt to a point where it can
    /// answer (it ended in a trap, or continued as new).
    #[error("{0}")]
    Unavailable(String),
}

/// Feeds the guest nothing beyond its history: when it blocks, the history
/// is used up. With a query, answers it at the first block first.
pub(crate) struct ReplayDriver {
    now: Timestamp,
    query: Option<(String, Vec<u8>)>,
    answer: Arc<Mutex<Option<Result<Payload, Failure>>>>,
}

impl ReplayDriver {
    /// Events it creates are stamped `now`; no query.
    pub(crate) fn new(now: Timestamp) -> Self {
        ReplayDriver {
            now,
            query: None,
            answer: Arc::default(),
        }
    }
}

#[async_trait]
impl Driver for ReplayDriver {
    fn now(&self) -> Timestamp {
        self.now
    }

    async fn block(&mut self, _state: &mut ExecutionState) -> Result<(), DriverStop> {
        Err(DriverStop::HistoryExhausted)
    }

    fn take_query(&mut self) -> Option<(String, Vec<u8>)> {
        self.query.take()
    }

    fn answer_query(&mut self, answer: Result<Payload, Failure>) {
        *self.answer.lock().unwrap_or_else(|p| p.into_inner()) = Some(answer);
    }
}

impl WorkflowEngine {
    /// Create the store and instance an activation of `exec` starts from,
    /// and drop them, running no guest code: what every new or rebuilt
    /// execution pays before its first instruction (`weft bench`).
    pub async fn instantiate(&self, exec: ExecutionState) -> Result<(), EngineError> {
        let driver = crate::replay::ReplayDriver::new(exec.time());
        let (pre, mut store) = self.store(exec, Box::new(driver))?;
        pre.instantiate_async(&mut store)
            .await
            .map(drop)
            .map_err(|e| EngineError::Engine(format!("{e:#}")))
    }

    /// Answer query `name` from the state `history` leads to: replay it
    /// through its component (which must be loaded), then ask the guest
    /// where it blocks (a running execution) or after it returns (a closed
    /// one). Nothing is recorded. `Ok(Err(_))` is the handler's own error
    /// (an unknown query name, say).
    pub async fn query(
        &self,
        id: ExecutionId,
        history: Vec<Event>,
        name: &str,
        args: Vec<u8>,
    ) -> Result<Result<Payload, Failure>, QueryError> {
        let now = history.last().map_or(Timestamp(0), |e| e.at);
        let state =
            ExecutionState::from_history(id, history).map_err(QueryError::InvalidHistory)?;
        let answer = Arc::new(Mutex::new(None));
        let driver = ReplayDriver {
            now,
            query: Some((name.to_owned(), args.clone())),
            answer: answer.clone(),
        };
        let closed_query = Some((name.to_owned(), args));
        let (state, end) = self
            .run_then_query(state, Box::new(driver), closed_query)
            .await?;
        if let Some(answer) = answer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Ok(answer);
        }
        match end {
            RunEnd::QueryFault(m) => Err(QueryError::Fault(m)),
            RunEnd::Nondeterminism(n) => Err(n.into()),
            _ => {
                let last = state.history().last().map_or("nothing", |e| e.kind.name());
                Err(QueryError::Unavailable(format!(
                    "the workflow's state cannot be queried: its history ends with {last}, \
                     and its code did not reach a point where it can answer"
                )))
            }
        }
    }

    /// Replay `history` through its component (which must be loaded) and
    /// check that the code issues exactly the recorded commands and, if the
    /// history is closed, ends the same way.
    pub async fn replay(
        &self,
        id: ExecutionId,
        history: Vec<Event>,
    ) -> Result<ReplayReport, ReplayError> {
        let recorded_close = history
            .iter()
            .rev()
            .find(|e| e.kind.is_terminal())
            .map(|e| (e.kind.name(), e.kind.is_closed_from_outside()));
        let now = history.last().map_or(Timestamp(0), |e| e.at);
        let state =
            ExecutionState::from_history(id, history).map_err(ReplayError::InvalidHistory)?;
        let (state, end) = self.run(state, Box::new(ReplayDriver::new(now))).await?;
        let seq = state.commands_issued();
        match (end, recorded_close) {
            (RunEnd::Closed, Some(_)) => Ok(ReplayReport {
                commands: seq,
                closed: true,
            }),
            (RunEnd::Stopped(DriverStop::HistoryExhausted), None) => Ok(ReplayReport {
                commands: seq,
                closed: false,
            }),
            (RunEnd::Nondeterminism(n), _) => Err(n.into()),
            (RunEnd::Closed, None) => Err(Nondeterminism {
                seq,
                recorded: "the workflow still waiting".into(),
                actual: "returned".into(),
                location: None,
            }
            .into()),
            // Closed while the workflow waited (terminated, timed out,
            // failed by an operator, or over the history limits): the code
            // waits there too, having issued every recorded command.
            (RunEnd::Stopped(DriverStop::HistoryExhausted), Some((_, true)))
                if state.next_command_is_new() =>
            {
                Ok(ReplayReport {
                    commands: seq,
                    closed: true,
                })
            }
            (RunEnd::Stopped(DriverStop::HistoryExhausted), Some((close, _))) => {
                Err(Nondeterminism {
                    seq,
                    recorded: close.to_owned(),
                    actual: "waits for something history never resolves".into(),
                    location: None,
                }
                .into())
            }
            (RunEnd::QueryFault(m), _) => Err(EngineError::Engine(m).into()),
            (RunEnd::Stopped(other), _) => {
                Err(EngineError::Engine(format!("replay stopped: {other}")).into())
            }
        }
    }
}
