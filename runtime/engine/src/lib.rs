//! wasmtime integration for weft.
//!
//! [`WorkflowEngine`] compiles workflow components under a deterministic
//! engine configuration and runs one execution at a time per call to
//! [`WorkflowEngine::run`]. The guest's host calls are answered by
//! `weft-core`'s [`ExecutionState`]; when the guest blocks, the engine hands
//! control to a [`Driver`] (the server's execution loop, or a replayer) that
//! commits and waits for new events. The engine knows nothing of storage.

mod bindings;
mod config;
mod driver;
mod error;
mod host;
mod limits;
mod mask_section;
mod replay;
mod run;
mod sandbox;
mod symbols;
mod validate;
mod wasi;

pub use config::{EngineConfig, MAX_AUTO_POOLING_SLOTS, pooling_slots_for};
pub use driver::{Driver, DriverStop, RunEnd};
pub use error::EngineError;
pub use mask_section::{MASK_SECTION, MaskSectionError, declared_mask};
pub use replay::{QueryError, ReplayError, ReplayReport};
pub use run::WorkflowEngine;
pub use validate::{ComponentReport, INTERPRETER_SECTION, allowed_imports, interpreter_of};
pub use weft_core::ExecutionState;
