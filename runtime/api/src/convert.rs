//! Between runtime types and protobuf messages, and runtime errors and
//! gRPC statuses.

use crate::pb;
use tonic::Status;
use weft_core::{Event, Failure, namespace};
use weft_engine::QueryError;
use weft_server::{ExecutionRecord, ExecutionStatus, IdReusePolicy, RuntimeError};
use weft_store::StoreError;

/// The status a client can act on, with the runtime's message.
pub(crate) fn status(e: RuntimeError) -> Status {
    let message = e.to_string();
    match e {
        // The runtime's name is namespaced; say it in the client's terms.
        RuntimeError::UnknownWorkflowType(ref qualified) => {
            let (ns, workflow_type) = namespace::split(qualified);
            Status::not_found(format!(
                "unknown workflow type `{workflow_type}` in namespace `{ns}`: deploy its \
                 component there first"
            ))
        }
        RuntimeError::NotFound(_)
        | RuntimeError::UnknownNamespace(_)
        | RuntimeError::StaleTask(_)
        | RuntimeError::Store(StoreError::NotFound(_)) => Status::not_found(message),
        RuntimeError::Store(StoreError::AlreadyRunning(_))
        | RuntimeError::Store(StoreError::IdReuseRejected(..)) => Status::already_exists(message),
        RuntimeError::InvalidComponent(_) | RuntimeError::Invalid(_) => {
            Status::invalid_argument(message)
        }
        RuntimeError::QueryFailed(ref f) if f.error_type == "UnknownQuery" => {
            Status::invalid_argument(message)
        }
        RuntimeError::NotRunning(_)
        | RuntimeError::Erased(_)
        | RuntimeError::Store(StoreError::Protection(_))
        | RuntimeError::Parked { .. }
        | RuntimeError::UpdateRejected(_)
        | RuntimeError::Query(QueryError::Fault(_))
        | RuntimeError::Query(QueryError::Unavailable(_))
        | RuntimeError::Query(QueryError::Nondeterminism(_)) => {
            Status::failed_precondition(message)
        }
        RuntimeError::QueryFailed(_) | RuntimeError::UpdateFailed(_) => Status::aborted(message),
        RuntimeError::PermissionDenied(_) => Status::permission_denied(message),
        RuntimeError::PayloadTooLarge(_) | RuntimeError::HistoryFull(_) => {
            Status::resource_exhausted(message)
        }
        RuntimeError::Busy(_) | RuntimeError::ShuttingDown => Status::unavailable(message),
        _ => Status::internal(message),
    }
}

/// Qualify a client's workflow id (or queue) with its namespace.
pub(crate) fn qualify(namespace: &str, what: &str, name: &str) -> Result<String, Status> {
    namespace::qualify(namespace, what, name).map_err(|e| Status::invalid_argument(e.0))
}

/// Payloads through the API are JSON (the SDKs' encoding); empty means
/// `null`.
pub(crate) fn json_payload(what: &str, bytes: Vec<u8>) -> Result<Vec<u8>, Status> {
    if bytes.is_empty() {
        return Ok(b"null".to_vec());
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(&bytes)
        .map_err(|e| Status::invalid_argument(format!("{what} is not valid JSON: {e}")))?;
    Ok(bytes)
}

pub(crate) fn id_reuse(policy: i32) -> IdReusePolicy {
    match pb::IdReusePolicy::try_from(policy) {
        Ok(pb::IdReusePolicy::AllowDuplicateFailedOnly) => IdReusePolicy::AllowDuplicateFailedOnly,
        Ok(pb::IdReusePolicy::RejectDuplicate) => IdReusePolicy::RejectDuplicate,
        _ => IdReusePolicy::AllowDuplicate,
    }
}

pub(crate) fn status_name(status: ExecutionStatus) -> String {
    status.name().to_owned()
}

pub(crate) fn parse_status(name: &str) -> Result<Option<ExecutionStatus>, Status> {
    if name.is_empty() {
        return Ok(None);
    }
    ExecutionStatus::ALL
        .into_iter()
        .find(|s| s.name().eq_ignore_ascii_case(name))
        .map(Some)
        .ok_or_else(|| {
            let names: Vec<&str> = ExecutionStatus::ALL.iter().map(|s| s.name()).collect();
            Status::invalid_argument(format!("unknown status `{name}`; use one of {names:?}"))
        })
}

pub(crate) fn failure(f: &Failure) -> pb::Failure {
    pb::Failure {
        message: f.message.clone(),
        error_type: f.error_type.clone(),
        non_retryable: f.non_retryable,
    }
}

pub(crate) fn info(record: &ExecutionRecord) -> pb::WorkflowInfo {
    let (_, workflow_id) = namespace::split(&record.id.workflow_id);
    let (_, task_queue) = namespace::split(&record.task_queue);
    pb::WorkflowInfo {
        workflow_id: workflow_id.to_owned(),
        run_id: record.id.run_id.clone(),
        workflow_type: namespace::split(&record.workflow_type).1.to_owned(),
        status: status_name(record.status),
        start_time_ms: record.started_at.0,
        close_time_ms: record.closed_at.map_or(0, |t| t.0),
        task_queue: task_queue.to_owned(),
        component_id: record.component.to_string(),
        history_length: record.next_event,
        search_attributes: record
            .search_attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        memo: record
            .memo
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        parked_reason: record.parked.clone().unwrap_or_default(),
    }
}

pub(crate) fn history_event(index: u64, event: &Event) -> Result<pb::HistoryEvent, Status> {
    Ok(pb::HistoryEvent {
        index,
        time_ms: event.at.0,
        event_type: event.kind.name().to_owned(),
        details: weft_core::event_details(event),
        encoded: weft_core::encode_event(event).map_err(|e| Status::internal(e.to_string()))?,
        identity: event
            .caller
            .as_ref()
            .map_or_else(String::new, |c| c.identity.clone()),
        reason: event
            .caller
            .as_ref()
            .map_or_else(String::new, |c| c.reason.clone()),
    })
}

/// An API key as the API shows it (never its secret or hash).
pub fn api_key(record: &weft_server::ApiKeyRecord) -> pb::ApiKey {
    pb::ApiKey {
        id: record.id.clone(),
        name: record.name.clone(),
        roles: record.roles.clone(),
        created_ms: record.created.0,
        expires_ms: record.expires.map_or(0, |t| t.0),
        revoked_ms: record.revoked.map_or(0, |t| t.0),
    }
}

/// A leased task, for a remote worker.
pub(crate) fn activity_task(polled: weft_server::RemoteTask) -> pb::ActivityTask {
    let deadline_ms = polled.deadline().0;
    let task = polled.task;
    let (_, workflow_id) = namespace::split(&task.execution.workflow_id);
    pb::ActivityTask {
        task_token: polled.token.clone(),
        workflow_id: workflow_id.to_owned(),
        run_id: task.execution.run_id.clone(),
        activity_name: task.name.clone(),
        idempotency_key: task.idempotency_key(),
        input: task.input,
        attempt: task.attempt,
        heartbeat_details: task.heartbeat_details,
        deadline_ms,
        heartbeat_timeout_ms: task.timeouts.heartbeat_ms.unwrap_or(0),
        cancel_requested: task.cancel_requested,
    }
}
