//! The IO-free model of weft.
//!
//! Everything here is plain data and pure functions: history [`Event`]s and
//! their encoding, the [`Command`]s a guest issues, [`ExecutionState`] (the
//! replay matcher that answers a guest's host calls from history), and the
//! retry arithmetic. No tokio, no wasmtime, no disk: this crate is unit
//! tested on its own and shared by every other crate.
//!
//! ```
//! use weft_core::{Command, ExecutionState, Event, EventKind, ExecutionId, Timestamp};
//!
//! let id = ExecutionId::new("order-1", "run-1");
//! let started = Event::new(Timestamp(1_000), EventKind::ExecutionStarted {
//!     workflow_type: "payment".into(),
//!     component: Default::default(),
//!     input: b"{}".to_vec(),
//!     random_seed: [7; 32],
//!     task_queue: "default".into(),
//! });
//! let mut state = ExecutionState::from_history(id, vec![started]).unwrap();
//! let timer = state.command(Command::StartTimer { duration_ms: 500 }, Timestamp(1_000)).unwrap();
//! assert_eq!(timer, 0);
//! assert!(state.poll_wait(&[timer]).unwrap().is_none()); // not fired yet
//! ```

mod chain;
mod clock;
mod codec;
mod command;
mod event;
mod execution;
mod failure;
mod ids;
mod inbox;
mod limits;
pub mod mask;
pub mod namespace;
mod random;
mod record;
mod render;
mod retry;
mod secrets;
mod task;
mod values;

pub use chain::{ChainHash, LINK_LEN, hex, unhex};
pub use clock::Clock;
pub use codec::{CodecError, FORMAT_VERSION, decode_event, encode_event};
pub use command::{ActivityOptions, ChildOptions, Command, Exit, ParentClosePolicy};
pub use event::{Caller, Event, EventKind};
pub use execution::{
    ExecutionState, HistoryError, Nondeterminism, Outcome, Resolution, WaitError, Wake,
};
pub use failure::{Failure, TimeoutKind};
pub use ids::{ComponentId, ExecutionId};
pub use inbox::{ActivityReport, InboxMessage};
pub use limits::{HISTORY_CLOSING_RESERVE, Limits};
pub use random::RandomStream;
pub use record::{
    ChildClose, ChildIds, DataKey, ExecKey, ExecutionRecord, ExecutionStatus, IdReusePolicy,
    NewExecution, Protection, StartRefused, child_outcome, parent_closed,
};
pub use render::{event_details, render_history};
pub use retry::{AttemptOutcome, RetryDecision, RetryPolicy};
pub use secrets::{HasSecrets, Secret, SecretsMismatch};
pub use task::{ActivityTask, ActivityTimeouts, Deadline, NewActivityTask, TaskState};
pub use values::{Payload, Timestamp};
