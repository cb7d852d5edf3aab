//! Replay a recorded history against a component, checking every command.
//! The same check the runtime makes on every rebuild, exposed so authors
//! can put replay tests of their workflows in their own CI.

use crate::{Driver, DriverStop, EngineError, RunEnd, WorkflowEngine};
use async_trait::async_trait;
use weft_core::{Event, ExecutionId, ExecutionState, Nondeterminism, Timestamp};

/// Why a replay did not reproduce its history.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The history itself is unusable (empty, wrong first event).
    #[error("invalid history: {0}")]
    InvalidHistory(String),
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

/// Answers nothing: when the guest blocks, the recorded history is used up.
struct ReplayDriver {
    now: Timestamp,
}

#[async_trait]
impl Driver for ReplayDriver {
    fn now(&self) -> Timestamp {
        self.now
    }

    async fn block(&mut self, _state: &mut ExecutionState) -> Result<(), DriverStop> {
        Err(DriverStop::HistoryExhausted)
    }
}

impl WorkflowEngine {
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
            .map(|e| e.kind.name());
        let now = history.last().map_or(Timestamp(0), |e| e.at);
        let state =
            ExecutionState::from_history(id, history).map_err(ReplayError::InvalidHistory)?;
        let (state, end) = self.run(state, Box::new(ReplayDriver { now })).await?;
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
            (RunEnd::Stopped(DriverStop::HistoryExhausted), Some(close)) => Err(Nondeterminism {
                seq,
                recorded: close.to_owned(),
                actual: "waits for something history never resolves".into(),
                location: None,
            }
            .into()),
            (RunEnd::Stopped(other), _) => {
                Err(EngineError::Engine(format!("replay stopped: {other}")).into())
            }
        }
    }
}
