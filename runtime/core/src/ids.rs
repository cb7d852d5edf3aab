use serde::{Deserialize, Serialize};
use std::fmt;

/// One run of a workflow: a workflow id chosen by the client plus a run id
/// chosen by the runtime.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ExecutionId {
    /// Business identifier, unique among running executions.
    pub workflow_id: String,
    /// Identifies this run of `workflow_id`.
    pub run_id: String,
}

impl ExecutionId {
    /// Build an id from its parts.
    pub fn new(workflow_id: impl Into<String>, run_id: impl Into<String>) -> Self {
        ExecutionId {
            workflow_id: workflow_id.into(),
            run_id: run_id.into(),
        }
    }

    /// The key an activity attempt uses to make its side effect once:
    /// stable across attempts and restarts, unique per activity command.
    pub fn idempotency_key(&self, seq: u32) -> String {
        format!("{}/{}/{}", self.workflow_id, self.run_id, seq)
    }
}

impl fmt::Display for ExecutionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.workflow_id, self.run_id)
    }
}

/// Content hash (BLAKE3) of a workflow component. An execution is pinned to
/// the component it started with.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ComponentId(pub [u8; 32]);

impl ComponentId {
    /// Hash of a component's bytes.
    pub fn of(bytes: &[u8]) -> Self {
        ComponentId(*blake3::hash(bytes).as_bytes())
    }

    /// Full lowercase hex form.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ComponentId({})", &self.to_hex()[..12])
    }
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex()[..12])
    }
}
