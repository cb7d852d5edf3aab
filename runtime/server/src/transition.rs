//! A workflow task's output as the store commits it: the tasks, timers
//! and children its new events ask for, with this node's defaults.

use crate::config::{DEFAULT_QUEUE, StartWorkflow};
use crate::services::Services;
use weft_core::{Event, EventKind, ExecutionState, Failure, RetryPolicy, Timestamp};
use weft_store::{
    ActivityTimeouts, ExecKey, ExecutionStatus, NewActivityTask, NewChild, Transition,
};

pub(crate) fn final_transition(
    key: ExecKey,
    state: &ExecutionState,
    status: ExecutionStatus,
) -> Transition {
    let (first, events) = state.pending();
    Transition {
        key,
        first_index: first as u64,
        events: events.to_vec(),
        // Closing deletes the whole inbox: nothing more will be consumed.
        consumed_inbox_through: Some(u64::MAX),
        // Activities scheduled but never awaited are abandoned with the
        // execution, so no task is created for them.
        close: Some(status),
        ..Transition::default()
    }
}

/// Activity tasks for the `ActivityScheduled` events among `events`; local
/// activities only with `include_local` (they run in the workflow task,
/// and get a task only if their retries are handed to the queue).
pub(crate) fn new_tasks(
    services: &Services,
    default_queue: &str,
    events: &[Event],
    include_local: bool,
) -> Vec<NewActivityTask> {
    events
        .iter()
        .filter_map(|e| new_task(services, default_queue, e))
        .filter(|(_, local)| include_local || !local)
        .map(|(task, _)| task)
        .collect()
}

/// The task of an `ActivityScheduled` event (and whether it is local).
pub(crate) fn new_task(
    services: &Services,
    default_queue: &str,
    event: &Event,
) -> Option<(NewActivityTask, bool)> {
    let EventKind::ActivityScheduled {
        seq,
        name,
        input,
        options,
    } = &event.kind
    else {
        return None;
    };
    let task = NewActivityTask {
        seq: *seq,
        // A queue the workflow names is in its own namespace.
        queue: options.task_queue.as_deref().map_or_else(
            || default_queue.to_owned(),
            |q| weft_core::namespace::same_namespace(default_queue, q),
        ),
        name: name.clone(),
        input: input.clone(),
        retry: options.retry.clone().unwrap_or_else(RetryPolicy::default),
        timeouts: ActivityTimeouts {
            start_to_close_ms: options
                .start_to_close_timeout_ms
                .unwrap_or(services.config.default_start_to_close_ms),
            schedule_to_start_ms: options.schedule_to_start_timeout_ms,
            schedule_to_close_ms: options.schedule_to_close_timeout_ms,
            heartbeat_ms: options.heartbeat_timeout_ms,
        },
        scheduled_at: event.at,
        attempt: 1,
        due: event.at,
    };
    Some((task, options.local))
}

/// Timers for the `TimerStarted` events among `events`.
pub(crate) fn new_timers(events: &[Event]) -> Vec<(Timestamp, u32)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::TimerStarted { seq, fire_at, .. } => Some((*fire_at, *seq)),
            _ => None,
        })
        .collect()
}

/// The armed timers that the `TimerCanceled` events among `events` cancel:
/// (due, seq), looked up in `history`.
pub(crate) fn cancelled_timers(history: &[Event], events: &[Event]) -> Vec<(Timestamp, u32)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::TimerCanceled { timer, .. } => history.iter().find_map(|h| match &h.kind {
                EventKind::TimerStarted { seq, fire_at, .. } if seq == timer => {
                    Some((*fire_at, *seq))
                }
                _ => None,
            }),
            _ => None,
        })
        .collect()
}

/// Children to start for the `ChildStarted` events among `events`: on the
/// type's current component, with the parent's queue unless one is given.
pub(crate) fn new_children(
    services: &Services,
    state: &ExecutionState,
    events: &[Event],
) -> Vec<NewChild> {
    let parent_queue = match &state.history()[0].kind {
        EventKind::ExecutionStarted { task_queue, .. } => task_queue.clone(),
        _ => DEFAULT_QUEUE.to_owned(),
    };
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ChildStarted {
                seq,
                workflow_type,
                workflow_id,
                input,
                options,
            } => {
                let req = StartWorkflow {
                    workflow_id: workflow_id.clone(),
                    // The type the guest named, as deployed in its
                    // parent's namespace (the id already is in it).
                    workflow_type: weft_core::namespace::same_namespace(workflow_id, workflow_type),
                    input: input.clone(),
                    task_queue: Some(options.task_queue.as_deref().map_or_else(
                        || parent_queue.clone(),
                        |q| weft_core::namespace::same_namespace(&parent_queue, q),
                    )),
                    ..Default::default()
                };
                let start = services.new_execution(req).map_err(|e| {
                    Failure::new("ChildStartFailed", format!("cannot start child: {e}"))
                        .non_retryable()
                });
                Some(NewChild { seq: *seq, start })
            }
            _ => None,
        })
        .collect()
}
