use crate::{ActivityOptions, ChildOptions, ComponentId, Failure, Payload, TimeoutKind, Timestamp};
use serde::{Deserialize, Serialize};

/// One entry of an execution's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When the runtime recorded it.
    pub at: Timestamp,
    /// What happened.
    pub kind: EventKind,
    /// Who caused it, for an event a client call caused (a start, signal,
    /// update, cancel, terminate, reset, fail or upgrade). Not part of
    /// replay: the matcher never reads it.
    pub caller: Option<Caller>,
}

impl Event {
    /// An event recorded at `at`.
    pub fn new(at: Timestamp, kind: EventKind) -> Self {
        Event {
            at,
            kind,
            caller: None,
        }
    }

    /// This event, attributed to `caller`.
    pub fn by(mut self, caller: Option<Caller>) -> Self {
        self.caller = caller;
        self
    }
}

/// The authenticated client whose call caused an event, as the API
/// identified it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Caller {
    /// Who: an API key's `key:<id> (<name>)`, a JWT's subject, a client
    /// certificate's name, or `anonymous` when authentication is off.
    pub identity: String,
    /// Why, when the caller said (`--reason`); empty otherwise.
    pub reason: String,
}

impl Caller {
    /// `identity`, with no reason given.
    pub fn new(identity: impl Into<String>) -> Self {
        Caller {
            identity: identity.into(),
            reason: String::new(),
        }
    }

    /// This caller, giving `reason`.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }
}

/// Everything that can happen to an execution.
///
/// Append-only: new variants go at the end, existing ones never change
/// shape (postcard encodes the variant index). A change that cannot follow
/// that rule bumps [`crate::FORMAT_VERSION`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EventKind {
    /// The first event of every history.
    ExecutionStarted {
        /// Workflow type name.
        workflow_type: String,
        /// The component this execution is pinned to.
        component: ComponentId,
        /// The workflow's input.
        input: Payload,
        /// Seed of the execution's deterministic random stream.
        random_seed: [u8; 32],
        /// Default queue for its activities.
        task_queue: String,
    },
    /// Command: an activity was scheduled.
    ActivityScheduled {
        /// Command sequence number (the guest's handle).
        seq: u32,
        /// Activity name.
        name: String,
        /// Activity input.
        input: Payload,
        /// Options as the guest gave them.
        options: ActivityOptions,
    },
    /// A worker started attempt `attempt` (recorded with its outcome).
    ActivityStarted {
        /// Command sequence number.
        seq: u32,
        /// 1-based attempt number.
        attempt: u32,
    },
    /// The activity returned a value; resolves its handle.
    ActivityCompleted {
        /// Command sequence number.
        seq: u32,
        /// Attempt that succeeded.
        attempt: u32,
        /// The result.
        result: Payload,
    },
    /// An attempt failed. With `retry_at` set, another attempt follows and
    /// the handle stays open; without, the failure is final.
    ActivityFailed {
        /// Command sequence number.
        seq: u32,
        /// Attempt that failed.
        attempt: u32,
        /// Why.
        failure: Failure,
        /// When the next attempt becomes due, if any.
        retry_at: Option<Timestamp>,
    },
    /// An attempt exceeded a timeout; like `ActivityFailed` otherwise.
    ActivityTimedOut {
        /// Command sequence number.
        seq: u32,
        /// Attempt that timed out.
        attempt: u32,
        /// Which timeout.
        kind: TimeoutKind,
        /// When the next attempt becomes due, if any.
        retry_at: Option<Timestamp>,
    },
    /// Command: a durable timer was started.
    TimerStarted {
        /// Command sequence number.
        seq: u32,
        /// Duration asked for.
        duration_ms: u64,
        /// When it is due.
        fire_at: Timestamp,
    },
    /// A timer fired; resolves its handle.
    TimerFired {
        /// Command sequence number.
        seq: u32,
    },
    /// The workflow returned a value. Last event.
    ExecutionCompleted {
        /// The workflow's result.
        result: Payload,
    },
    /// The workflow returned an error or its guest trapped. Last event.
    ExecutionFailed {
        /// Why.
        failure: Failure,
    },
    /// Command: a value the workflow computed, returned again on replay.
    SideEffectRecorded {
        /// Command sequence number.
        seq: u32,
        /// The value.
        value: Payload,
    },
    /// Command: the code took the new branch of patch `change_id`.
    PatchMarker {
        /// Command sequence number.
        seq: u32,
        /// The change id given to `patched`.
        change_id: String,
    },
    /// The code diverged from this history; the execution waits for an
    /// operator (upgrade to a fixed component, or fail it).
    ExecutionParked {
        /// The divergence, as reported.
        reason: String,
    },
    /// An operator moved the execution to another component (after a dry
    /// run showed it replays this history); replays use `to` from the start.
    ComponentUpgraded {
        /// Previous component.
        from: ComponentId,
        /// New component.
        to: ComponentId,
    },
    /// A signal arrived (from a client, or signal-with-start).
    SignalReceived {
        /// Signal name.
        name: String,
        /// Its payload.
        payload: Payload,
    },
    /// Command: the workflow waits for the next signal named `name`; its
    /// handle resolves with the oldest signal of that name not yet taken.
    SignalAwaited {
        /// Command sequence number.
        seq: u32,
        /// Signal name.
        name: String,
    },
    /// Command: the workflow cancelled timer `timer` (its handle resolves
    /// as cancelled, if it had not fired).
    TimerCanceled {
        /// Command sequence number of this cancel.
        seq: u32,
        /// Sequence number of the timer.
        timer: u32,
    },
    /// A client asked the execution to cancel. The workflow sees it at its
    /// next wait and may run compensations before it returns.
    CancelRequested {
        /// Why, as the client gave it.
        reason: String,
    },
    /// An operator or client terminated the execution: no guest code ran.
    /// Last event.
    ExecutionTerminated {
        /// Why.
        reason: String,
    },
    /// The workflow continued as a new run with `input` (same workflow id,
    /// fresh history). Last event of this run.
    ExecutionContinuedAsNew {
        /// Input of the next run.
        input: Payload,
    },
    /// Command: a child workflow was started (atomically with this event,
    /// unless its id was taken: then `ChildFailed` follows).
    ChildStarted {
        /// Command sequence number.
        seq: u32,
        /// The child's workflow type.
        workflow_type: String,
        /// The child's workflow id.
        workflow_id: String,
        /// The child's input.
        input: Payload,
        /// Options as the guest gave them.
        options: ChildOptions,
    },
    /// The child returned a value; resolves its handle.
    ChildCompleted {
        /// Command sequence number.
        seq: u32,
        /// The child's result.
        result: Payload,
    },
    /// The child failed, was cancelled or terminated, or could not start;
    /// resolves its handle.
    ChildFailed {
        /// Command sequence number.
        seq: u32,
        /// Why.
        failure: Failure,
    },
    /// An update request arrived (its validator accepted it).
    UpdateAccepted {
        /// Id the client waits on.
        update_id: String,
        /// Update name.
        name: String,
        /// Its arguments.
        args: Payload,
    },
    /// Command: the workflow waits for the next update request `name`.
    UpdateAwaited {
        /// Command sequence number.
        seq: u32,
        /// Update name.
        name: String,
    },
    /// Command: the workflow answered an update request; the client that
    /// sent it gets `result` once this is committed.
    UpdateCompleted {
        /// Command sequence number.
        seq: u32,
        /// The handle that received the request.
        request: u32,
        /// The request's id.
        update_id: String,
        /// The answer.
        result: Result<Payload, Failure>,
    },
    /// Command: the workflow set search attributes (indexed, for listing
    /// executions); an empty value removes the attribute.
    SearchAttributesUpserted {
        /// Command sequence number.
        seq: u32,
        /// (name, value) pairs, in the order given.
        attributes: Vec<(String, String)>,
    },
    /// Command: the workflow set memo fields (shown, not indexed); an
    /// empty value removes the field.
    MemoUpserted {
        /// Command sequence number.
        seq: u32,
        /// (name, value) pairs, in the order given.
        memo: Vec<(String, String)>,
    },
    /// The run or execution timeout passed before the workflow closed.
    /// Last event; no workflow code ran.
    ExecutionTimedOut {
        /// Which timeout: `run` or `execution`.
        timeout: String,
    },
}

impl EventKind {
    /// Short name, as in Temporal's event type names.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::ExecutionStarted { .. } => "ExecutionStarted",
            EventKind::ActivityScheduled { .. } => "ActivityScheduled",
            EventKind::ActivityStarted { .. } => "ActivityStarted",
            EventKind::ActivityCompleted { .. } => "ActivityCompleted",
            EventKind::ActivityFailed { .. } => "ActivityFailed",
            EventKind::ActivityTimedOut { .. } => "ActivityTimedOut",
            EventKind::TimerStarted { .. } => "TimerStarted",
            EventKind::TimerFired { .. } => "TimerFired",
            EventKind::ExecutionCompleted { .. } => "ExecutionCompleted",
            EventKind::ExecutionFailed { .. } => "ExecutionFailed",
            EventKind::SideEffectRecorded { .. } => "SideEffectRecorded",
            EventKind::PatchMarker { .. } => "PatchMarker",
            EventKind::ExecutionParked { .. } => "ExecutionParked",
            EventKind::ComponentUpgraded { .. } => "ComponentUpgraded",
            EventKind::SignalReceived { .. } => "SignalReceived",
            EventKind::SignalAwaited { .. } => "SignalAwaited",
            EventKind::TimerCanceled { .. } => "TimerCanceled",
            EventKind::CancelRequested { .. } => "CancelRequested",
            EventKind::ExecutionTerminated { .. } => "ExecutionTerminated",
            EventKind::ExecutionContinuedAsNew { .. } => "ExecutionContinuedAsNew",
            EventKind::ChildStarted { .. } => "ChildStarted",
            EventKind::ChildCompleted { .. } => "ChildCompleted",
            EventKind::ChildFailed { .. } => "ChildFailed",
            EventKind::UpdateAccepted { .. } => "UpdateAccepted",
            EventKind::UpdateAwaited { .. } => "UpdateAwaited",
            EventKind::UpdateCompleted { .. } => "UpdateCompleted",
            EventKind::SearchAttributesUpserted { .. } => "SearchAttributesUpserted",
            EventKind::MemoUpserted { .. } => "MemoUpserted",
            EventKind::ExecutionTimedOut { .. } => "ExecutionTimedOut",
        }
    }

    /// True for the closing events the workflow's code did not make (it
    /// was waiting when its history was closed): a replay that waits at
    /// the end of such a history reproduces it.
    pub fn is_closed_from_outside(&self) -> bool {
        match self {
            EventKind::ExecutionTerminated { .. } | EventKind::ExecutionTimedOut { .. } => true,
            // An operator's `fail` (operator.rs) closes from outside too.
            EventKind::ExecutionFailed { failure } => failure.error_type == "FailedByOperator",
            _ => false,
        }
    }

    /// True for the events that close a run.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            EventKind::ExecutionCompleted { .. }
                | EventKind::ExecutionFailed { .. }
                | EventKind::ExecutionTerminated { .. }
                | EventKind::ExecutionContinuedAsNew { .. }
                | EventKind::ExecutionTimedOut { .. }
        )
    }
}
