//! Write operations, each applied inside a group-commit transaction.
//!
//! Rule: validate and read first, write last, so a logical error leaves
//! nothing behind in the shared transaction. Checked on every operation:
//! a logical error after a write rolls the whole batch back (`txn.rs`).

use super::history::{encoded_history, read_history, seal};
use super::rows::{decode_row, encode_row};
use super::tables::*;
use super::txn::Txn;
use super::visibility;
use crate::model::*;
use crate::{InboxEntry, StoreError};
use redb::ReadableTable;
use weft_core::{
    AttemptOutcome, ChildClose, ChildIds, ComponentId, Deadline, Event, ExecutionRecord,
    ExecutionState, ExecutionStatus, InboxMessage, ParentClosePolicy, StartRefused, Timestamp,
    child_outcome, encode_event, parent_closed,
};

pub(crate) fn put_component(
    txn: &Txn<'_>,
    id: ComponentId,
    bytes: &[u8],
    workflow_type: Option<&str>,
) -> Result<(), StoreError> {
    let mut table = txn.open_table(COMPONENTS)?;
    if table.get(id.0.as_slice())?.is_none() {
        table.insert(id.0.as_slice(), bytes)?;
    }
    if let Some(workflow_type) = workflow_type {
        txn.open_table(WORKFLOW_TYPES)?
            .insert(workflow_type, id.0.as_slice())?;
    }
    Ok(())
}

pub(crate) fn start_execution(
    txn: &Txn<'_>,
    new: NewExecution,
) -> Result<ExecutionRecord, StoreError> {
    let mut ids = txn.open_table(WORKFLOW_IDS)?;
    let mut execs = txn.open_table(EXECUTIONS)?;
    let latest = match ids.get(new.id.workflow_id.as_str())?.map(|v| v.value()) {
        Some(existing) => match execs.get(existing)? {
            Some(v) => Some(decode_row::<ExecutionRecord>("executions", v.value())?.status),
            None => None,
        },
        None => None,
    };
    match new.id_reuse.admits(latest) {
        Ok(()) => {}
        Err(StartRefused::AlreadyRunning) => {
            return Err(StoreError::AlreadyRunning(new.id.workflow_id));
        }
        Err(StartRefused::Reuse(reason)) => {
            return Err(StoreError::IdReuseRejected(new.id.workflow_id, reason));
        }
    }
    let mut meta = txn.open_table(META)?;
    let key = meta.get("next_exec_key")?.map_or(1, |v| v.value());
    meta.insert("next_exec_key", key + 1)?;
    let record = ExecutionRecord::started(key, &new);
    if let Some(deadline) = new.run_deadline() {
        txn.open_table(DUE)?
            .insert((deadline.0, key, 0, DUE_RUN_TIMEOUT), ())?;
    }
    ids.insert(record.id.workflow_id.as_str(), key)?;
    execs.insert(key, encode_row(&record)?.as_slice())?;
    visibility::index(txn, &record)?;
    txn.open_table(RUNNING)?.insert(key, ())?;
    txn.open_table(HISTORY)?
        .insert((key, 0), encode_event(&new.started)?.as_slice())?;
    Ok(record)
}

fn load_record(txn: &Txn<'_>, key: ExecKey) -> Result<Option<ExecutionRecord>, StoreError> {
    let execs = txn.open_table(EXECUTIONS)?;
    let record = execs
        .get(key)?
        .map(|v| decode_row("executions", v.value()))
        .transpose()?;
    Ok(record)
}

fn save_record(txn: &Txn<'_>, record: &ExecutionRecord) -> Result<(), StoreError> {
    txn.open_table(EXECUTIONS)?
        .insert(record.key, encode_row(record)?.as_slice())?;
    Ok(())
}

/// A closing run's whole history, sealed ahead of its commit.
pub(crate) struct Sealed {
    /// How many events it holds.
    pub(crate) events: u64,
    /// The sealed row (`history::seal`).
    pub(crate) blob: Vec<u8>,
}

pub(crate) fn commit(
    txn: &Txn<'_>,
    mut t: Transition,
    sealed: Option<Sealed>,
) -> Result<Committed, StoreError> {
    let Some(mut record) = load_record(txn, t.key)? else {
        return Err(StoreError::NotFound(format!("execution key {}", t.key)));
    };
    if record.next_event != t.first_index {
        return Err(StoreError::Conflict {
            key: t.key,
            expected: record.next_event,
            got: t.first_index,
        });
    }
    if let Some(next) = &t.continue_as_new {
        record
            .check_continue_as_new(t.close, next)
            .map_err(StoreError::Invalid)?;
    }
    // Children whose id is taken fail to start (reported to this
    // execution's inbox below); decided now, before anything is written.
    let mut child_ids = ChildIds::default();
    for child in &mut t.new_children {
        if let Ok(new) = &child.start {
            let running = running_key(txn, &new.id.workflow_id)?.is_some();
            if let Err(failure) = child_ids.admit(&new.id.workflow_id, running) {
                child.start = Err(failure);
            }
        }
    }
    // Children to apply their parent-close policies to (read before any
    // write, from the history as it will be).
    let close_children = match t.close {
        Some(_) if record.may_have_children(&t.events) => open_children(txn, &record, &t.events)?,
        _ => Vec::new(),
    };
    record.append(&t.events);
    // A sealed history prepared for exactly this commit replaces the rows;
    // otherwise the events go in as rows (and are sealed below at a close).
    let sealed = sealed.filter(|s| t.close.is_some() && s.events == record.next_event);
    if sealed.is_none() {
        let mut history = txn.open_table(HISTORY)?;
        for (i, event) in t.events.iter().enumerate() {
            history.insert(
                (t.key, t.first_index + i as u64),
                encode_event(event)?.as_slice(),
            )?;
        }
    }
    if let Some(through) = t.consumed_inbox_through {
        let mut inbox = txn.open_table(INBOX)?;
        inbox.retain_in((t.key, 0)..=(t.key, through), |_, _| false)?;
        record.consume_inbox_through(through);
    }
    for new in t.new_tasks {
        create_task(txn, t.key, &record.id, new)?;
    }
    if !t.new_timers.is_empty() || !t.cancelled_timers.is_empty() {
        let mut due = txn.open_table(DUE)?;
        for (at, seq) in t.new_timers {
            due.insert((at.0, t.key, seq, DUE_TIMER), ())?;
        }
        for (at, seq) in t.cancelled_timers {
            due.remove((at.0, t.key, seq, DUE_TIMER))?;
        }
    }
    if let Some(status) = t.close {
        let from = record.status;
        record.close(status, t.events.last().map(|e| e.at));
        visibility::restatus(txn, &record, from)?;
        txn.open_table(RUNNING)?.remove(t.key)?;
        match sealed {
            Some(sealed) => {
                txn.open_table(HISTORY)?
                    .retain_in((t.key, 0)..=(t.key, u64::MAX), |_, _| false)?;
                txn.open_table(SEALED_HISTORY)?
                    .insert(t.key, sealed.blob.as_slice())?;
            }
            None => seal_history(txn, t.key)?,
        }
        // Activities still queued for a closed execution are abandoned;
        // their queue and due index entries are swept lazily on sight.
        txn.open_table(TASKS)?
            .retain_in((t.key, 0)..=(t.key, u32::MAX), |_, _| false)?;
    }
    save_record(txn, &record)?;
    let mut done = Committed::default();
    // Below, nothing can fail for a logical reason: checked above.
    if let Some(next) = t.continue_as_new {
        // The id's only running run was this one, closed above.
        done.started
            .push(start_execution(txn, next.continuing(&record))?.key);
    }
    for child in t.new_children {
        match child.start {
            Ok(mut new) => {
                new.parent = Some((t.key, child.seq));
                done.started.push(start_execution(txn, new)?.key);
            }
            Err(failure) => {
                let message = InboxMessage::ChildClosed {
                    seq: child.seq,
                    result: Err(failure),
                };
                done.delivered.extend(push_inbox(txn, t.key, message)?);
            }
        }
    }
    if let (Some(status), Some((parent, seq))) = (t.close, record.parent)
        && status != ExecutionStatus::ContinuedAsNew
        && let Some(result) = t.events.last().and_then(|e| child_outcome(&e.kind))
    {
        let message = InboxMessage::ChildClosed { seq, result };
        done.delivered.extend(push_inbox(txn, parent, message)?);
    }
    let at = t.events.last().map_or(record.started_at, |e| e.at);
    for (workflow_id, policy) in close_children {
        let Some(child) =
            running_key(txn, &workflow_id)?.and_then(|k| load_record(txn, k).transpose())
        else {
            continue;
        };
        let child = child?;
        match parent_closed(&record, &child, policy) {
            None => {}
            Some(ChildClose::Cancel(message)) => {
                done.delivered.extend(push_inbox(txn, child.key, message)?);
            }
            Some(ChildClose::Terminate(kind)) => {
                let nested = close_from_outside(txn, &child, Event::new(at, kind))?;
                done.delivered.extend(nested.delivered);
                done.closed.extend(nested.closed);
            }
        }
    }
    Ok(done)
}

/// Close running execution `record` with the terminal event `end`, which
/// no workflow code produced (terminated, timed out). `closed` includes
/// `record` itself.
fn close_from_outside(
    txn: &Txn<'_>,
    record: &ExecutionRecord,
    end: Event,
) -> Result<Committed, StoreError> {
    let status = ExecutionStatus::closing(&end.kind, false);
    let transition = Transition {
        key: record.key,
        first_index: record.next_event,
        events: vec![end],
        consumed_inbox_through: Some(u64::MAX),
        close: Some(status),
        ..Transition::default()
    };
    let mut done = commit(txn, transition, None)?;
    done.closed.insert(0, record.key);
    Ok(done)
}

/// Move the history rows of execution `key`, which just closed, into one
/// sealed row. Its history no longer grows (a closed run takes no events),
/// and readers take the sealed part first, then any rows.
fn seal_history(txn: &Txn<'_>, key: ExecKey) -> Result<(), StoreError> {
    let mut history = txn.open_table(HISTORY)?;
    let mut sealed = txn.open_table(SEALED_HISTORY)?;
    let rows = encoded_history(&*sealed, &*history, key)?;
    history.retain_in((key, 0)..=(key, u64::MAX), |_, _| false)?;
    sealed.insert(key, seal(&rows)?.as_slice())?;
    Ok(())
}

/// The children of `record` still open once `new_events` are appended, and
/// their parent-close policies.
fn open_children(
    txn: &Txn<'_>,
    record: &ExecutionRecord,
    new_events: &[Event],
) -> Result<Vec<(String, ParentClosePolicy)>, StoreError> {
    let mut history = read_history(
        &*txn.open_table(SEALED_HISTORY)?,
        &*txn.open_table(HISTORY)?,
        record.key,
        new_events.len(),
    )?;
    history.extend_from_slice(new_events);
    let state = ExecutionState::from_history(record.id.clone(), history).map_err(|e| {
        StoreError::Corrupt {
            table: "history",
            reason: e.to_string(),
        }
    })?;
    Ok(state.open_children())
}

/// The key of `workflow_id`'s running run, if it has one.
fn running_key(txn: &Txn<'_>, workflow_id: &str) -> Result<Option<ExecKey>, StoreError> {
    let key = txn
        .open_table(WORKFLOW_IDS)?
        .get(workflow_id)?
        .map(|v| v.value());
    let Some(key) = key else { return Ok(None) };
    Ok(load_record(txn, key)?
        .filter(|r| r.status == ExecutionStatus::Running)
        .map(|r| r.key))
}

pub(crate) fn reset(txn: &Txn<'_>, reset: Reset) -> Result<Committed, StoreError> {
    let Reset {
        old,
        reason,
        caller,
        new,
        rest,
        tasks,
        timers,
        reapply,
    } = reset;
    let Some(record) = load_record(txn, old)? else {
        return Err(StoreError::NotFound(format!("execution key {old}")));
    };
    if record.id.workflow_id != new.id.workflow_id {
        return Err(StoreError::Invalid("a reset keeps the workflow id".into()));
    }
    let mut done = Committed::default();
    if record.status == ExecutionStatus::Running {
        let end = record.reset_end(reason, caller, new.started.at);
        done = close_from_outside(txn, &record, end)?;
    }
    let new_key = start_execution(txn, new)?.key;
    let prefix = Transition {
        key: new_key,
        first_index: 1,
        events: rest,
        new_tasks: tasks,
        new_timers: timers,
        ..Transition::default()
    };
    let started = commit(txn, prefix, None)?;
    done.delivered.extend(started.delivered);
    done.started.push(new_key);
    for message in reapply {
        done.delivered.extend(push_inbox(txn, new_key, message)?);
    }
    Ok(done)
}

pub(crate) fn put_namespace(txn: &Txn<'_>, namespace: &NamespaceRecord) -> Result<(), StoreError> {
    txn.open_table(NAMESPACES)?
        .insert(namespace.name.as_str(), encode_row(namespace)?.as_slice())?;
    Ok(())
}

pub(crate) fn purge_closed(
    txn: &Txn<'_>,
    namespace: &str,
    closed_before: Timestamp,
    max: usize,
) -> Result<usize, StoreError> {
    let victims: Vec<ExecutionRecord> = {
        let execs = txn.open_table(EXECUTIONS)?;
        let mut victims = Vec::new();
        for row in execs.iter()? {
            let record: ExecutionRecord = decode_row("executions", row?.1.value())?;
            let old = record.closed_at.is_some_and(|t| t < closed_before);
            if old
                && record.status != ExecutionStatus::Running
                && weft_core::namespace::namespace_of(&record.id.workflow_id) == namespace
            {
                victims.push(record);
                if victims.len() == max {
                    break;
                }
            }
        }
        victims
    };
    let mut execs = txn.open_table(EXECUTIONS)?;
    let mut ids = txn.open_table(WORKFLOW_IDS)?;
    let mut history = txn.open_table(HISTORY)?;
    let mut sealed = txn.open_table(SEALED_HISTORY)?;
    let mut inbox = txn.open_table(INBOX)?;
    for record in &victims {
        execs.remove(record.key)?;
        visibility::unindex(txn, record)?;
        history.retain_in((record.key, 0)..=(record.key, u64::MAX), |_, _| false)?;
        sealed.remove(record.key)?;
        inbox.retain_in((record.key, 0)..=(record.key, u64::MAX), |_, _| false)?;
        let latest = ids.get(record.id.workflow_id.as_str())?.map(|v| v.value());
        if latest == Some(record.key) {
            ids.remove(record.id.workflow_id.as_str())?;
        }
    }
    Ok(victims.len())
}

/// Append `message` to the inbox of a running execution.
pub(crate) fn send(
    txn: &Txn<'_>,
    key: ExecKey,
    message: InboxMessage,
) -> Result<Option<InboxEntry>, StoreError> {
    push_inbox(txn, key, message)
}

/// Start `new` unless its workflow id has a running run, then append
/// `message` to the inbox of whichever run is running.
pub(crate) fn signal_with_start(
    txn: &Txn<'_>,
    new: NewExecution,
    message: InboxMessage,
) -> Result<(ExecutionRecord, InboxEntry, bool), StoreError> {
    let running = {
        let ids = txn.open_table(WORKFLOW_IDS)?;
        let key = ids.get(new.id.workflow_id.as_str())?.map(|v| v.value());
        drop(ids);
        match key {
            Some(key) => load_record(txn, key)?.filter(|r| r.status == ExecutionStatus::Running),
            None => None,
        }
    };
    let (record, started) = match running {
        Some(record) => (record, false),
        None => (start_execution(txn, new)?, true),
    };
    // Cannot be `None`: the record is running (or was just started).
    let entry = push_inbox(txn, record.key, message)?
        .ok_or_else(|| StoreError::NotFound(format!("running execution {}", record.id)))?;
    Ok((record, entry, started))
}

/// Append to an execution's inbox, unless it has closed (then the message
/// has nowhere to go and is dropped).
fn push_inbox(
    txn: &Txn<'_>,
    key: ExecKey,
    message: InboxMessage,
) -> Result<Option<InboxEntry>, StoreError> {
    let Some(mut record) = load_record(txn, key)? else {
        return Ok(None);
    };
    if record.status != ExecutionStatus::Running {
        return Ok(None);
    }
    if matches!(message.parts().0, InboxMessage::CancelRequested { .. }) {
        mark_tasks_cancel_requested(txn, key)?;
    }
    let seq = record.next_inbox;
    record.next_inbox += 1;
    txn.open_table(INBOX)?
        .insert((key, seq), encode_row(&message)?.as_slice())?;
    save_record(txn, &record)?;
    Ok(Some(InboxEntry { key, seq, message }))
}

/// Create the task of a newly scheduled activity and queue its attempt.
fn create_task(
    txn: &Txn<'_>,
    key: ExecKey,
    execution: &weft_core::ExecutionId,
    new: NewActivityTask,
) -> Result<(), StoreError> {
    let task = ActivityTask::new(key, execution.clone(), new);
    if let Some(deadline) = task.close_deadline() {
        txn.open_table(DUE)?
            .insert((deadline.0, key, task.seq, DUE_SCHEDULE_TO_CLOSE), ())?;
    }
    save_task(txn, &task, true)
}

/// The `DUE` kind that indexes `deadline`.
fn due_kind(deadline: Deadline) -> u8 {
    match deadline {
        Deadline::ScheduleToClose => DUE_SCHEDULE_TO_CLOSE,
        Deadline::ScheduleToStart => DUE_SCHEDULE_TO_START,
        Deadline::Attempt => DUE_DEADLINE,
        Deadline::Heartbeat => DUE_HEARTBEAT,
    }
}

/// The deadline a `DUE` kind of an activity task indexes.
fn due_deadline(kind: u8) -> Option<Deadline> {
    match kind {
        DUE_SCHEDULE_TO_CLOSE => Some(Deadline::ScheduleToClose),
        DUE_SCHEDULE_TO_START => Some(Deadline::ScheduleToStart),
        DUE_DEADLINE => Some(Deadline::Attempt),
        DUE_HEARTBEAT => Some(Deadline::Heartbeat),
        _ => None,
    }
}

/// Save `task`; with `index`, also add the index entries of its state:
/// its queue entry while queued, and its state's deadlines.
fn save_task(txn: &Txn<'_>, task: &ActivityTask, index: bool) -> Result<(), StoreError> {
    if index {
        if let TaskState::Ready { due } = task.state {
            txn.open_table(READY)?
                .insert((task.queue.as_str(), due.0, task.key, task.seq), ())?;
        }
        let deadlines = task.state_deadlines();
        if !deadlines.is_empty() {
            let mut table = txn.open_table(DUE)?;
            for (deadline, at) in deadlines {
                table.insert((at.0, task.key, task.seq, due_kind(deadline)), ())?;
            }
        }
    }
    txn.open_table(TASKS)?
        .insert((task.key, task.seq), encode_row(task)?.as_slice())?;
    Ok(())
}

/// Remove the index entries of `task`'s current state: its queue entry
/// while queued, and its state's deadlines.
fn unindex_state(txn: &Txn<'_>, task: &ActivityTask) -> Result<(), StoreError> {
    if let TaskState::Ready { due } = task.state {
        txn.open_table(READY)?
            .remove((task.queue.as_str(), due.0, task.key, task.seq))?;
    }
    let deadlines = task.state_deadlines();
    if !deadlines.is_empty() {
        let mut table = txn.open_table(DUE)?;
        for (deadline, at) in deadlines {
            table.remove((at.0, task.key, task.seq, due_kind(deadline)))?;
        }
    }
    Ok(())
}

/// Flag every task of execution `key` as cancel-requested.
fn mark_tasks_cancel_requested(txn: &Txn<'_>, key: ExecKey) -> Result<(), StoreError> {
    let mut tasks = txn.open_table(TASKS)?;
    let mut flagged = Vec::new();
    for row in tasks.range((key, 0)..=(key, u32::MAX))? {
        let (_, v) = row?;
        let mut task: ActivityTask = decode_row("activity_tasks", v.value())?;
        if !task.cancel_requested {
            task.cancel_requested = true;
            flagged.push(task);
        }
    }
    for task in flagged {
        tasks.insert((task.key, task.seq), encode_row(&task)?.as_slice())?;
    }
    Ok(())
}

fn load_task(txn: &Txn<'_>, key: ExecKey, seq: u32) -> Result<Option<ActivityTask>, StoreError> {
    let tasks = txn.open_table(TASKS)?;
    let task = tasks
        .get((key, seq))?
        .map(|v| decode_row::<ActivityTask>("activity_tasks", v.value()));
    task.transpose()
}

pub(crate) fn poll_activities(
    txn: &Txn<'_>,
    queue: &str,
    now: Timestamp,
    max: usize,
) -> Result<Polled, StoreError> {
    let mut polled = Polled::default();
    let mut taken = Vec::new();
    {
        let ready = txn.open_table(READY)?;
        for row in ready.range((queue, 0, 0, 0)..=(queue, u64::MAX, u64::MAX, u32::MAX))? {
            let (k, _) = row?;
            let (_, at, key, seq) = k.value();
            if at > now.0 {
                polled.next_due = Some(Timestamp(at));
                break;
            }
            if taken.len() == max {
                polled.next_due = Some(now);
                break;
            }
            taken.push((at, key, seq));
        }
    }
    for (at, key, seq) in taken {
        let task = load_task(txn, key, seq)?;
        let Some(mut task) = task.filter(|t| t.state == TaskState::Ready { due: Timestamp(at) })
        else {
            // Abandoned when its execution closed, or timed out in the queue.
            txn.open_table(READY)?.remove((queue, at, key, seq))?;
            continue;
        };
        unindex_state(txn, &task)?;
        task.lease(now);
        save_task(txn, &task, true)?;
        polled.tasks.push(task);
    }
    Ok(polled)
}

/// Close the current attempt of `task` with `outcome`: retry it or finish
/// the task, and report to the execution's inbox. The caller has removed
/// the index entries of the task's state.
fn end_attempt(
    txn: &Txn<'_>,
    task: ActivityTask,
    outcome: AttemptOutcome,
    now: Timestamp,
) -> Result<(Option<InboxEntry>, Option<String>), StoreError> {
    let report = task.end_attempt(outcome, now);
    let (key, seq) = (task.key, task.seq);
    let mut requeued = None;
    match report.retry_at {
        Some(at) => {
            requeued = Some(task.queue.clone());
            save_task(txn, &task.retry(at), true)?;
        }
        None => {
            if let Some(close) = task.close_deadline() {
                txn.open_table(DUE)?
                    .remove((close.0, key, seq, DUE_SCHEDULE_TO_CLOSE))?;
            }
            txn.open_table(TASKS)?.remove((key, seq))?;
        }
    }
    let entry = push_inbox(txn, key, InboxMessage::Activity(report))?;
    Ok((entry, requeued))
}

pub(crate) fn report_attempt(
    txn: &Txn<'_>,
    result: AttemptResult,
    now: Timestamp,
) -> Result<Option<Reported>, StoreError> {
    // Stale: the task is gone (execution closed) or this attempt already
    // timed out and another attempt owns the task now.
    let Some(task) = load_task(txn, result.key, result.seq)?
        .filter(|t| t.attempt == result.attempt && matches!(t.state, TaskState::Running { .. }))
    else {
        return Ok(None);
    };
    unindex_state(txn, &task)?;
    let outcome = match result.result {
        Ok(value) => AttemptOutcome::Completed(value),
        Err(failure) => AttemptOutcome::Failed(failure),
    };
    let (entry, requeued) = end_attempt(txn, task, outcome, now)?;
    Ok(entry.map(|entry| Reported { entry, requeued }))
}

pub(crate) fn record_heartbeat(
    txn: &Txn<'_>,
    key: ExecKey,
    seq: u32,
    attempt: u32,
    details: Option<Vec<u8>>,
    now: Timestamp,
) -> Result<HeartbeatAck, StoreError> {
    let Some(mut task) = load_task(txn, key, seq)?
        .filter(|t| t.attempt == attempt && matches!(t.state, TaskState::Running { .. }))
    else {
        // Timed out, superseded, or its execution closed.
        return Ok(HeartbeatAck {
            current: false,
            cancel_requested: false,
        });
    };
    let mut changed = false;
    if let Some((old, next)) = task.heartbeat(now) {
        let mut due = txn.open_table(DUE)?;
        due.remove((old.0, key, seq, DUE_HEARTBEAT))?;
        due.insert((next.0, key, seq, DUE_HEARTBEAT), ())?;
        changed = true;
    }
    if details.is_some() {
        task.heartbeat_details = details;
        changed = true;
    }
    if changed {
        save_task(txn, &task, false)?;
    }
    Ok(HeartbeatAck {
        current: true,
        cancel_requested: task.cancel_requested,
    })
}

pub(crate) fn fire_due(txn: &Txn<'_>, now: Timestamp, max: usize) -> Result<DueWork, StoreError> {
    let mut work = DueWork::default();
    let mut fired = Vec::new();
    {
        let due = txn.open_table(DUE)?;
        for row in due.range((0, 0, 0, 0)..=(u64::MAX, u64::MAX, u32::MAX, u8::MAX))? {
            let (k, _) = row?;
            let item = k.value();
            if item.0 > now.0 || fired.len() == max {
                work.next_due = Some(Timestamp(item.0.max(now.0)));
                break;
            }
            fired.push(item);
        }
    }
    for (at, key, seq, kind) in fired {
        txn.open_table(DUE)?.remove((at, key, seq, kind))?;
        if kind == DUE_TIMER {
            work.delivered
                .extend(push_inbox(txn, key, InboxMessage::TimerFired { seq })?);
            continue;
        }
        if kind == DUE_RUN_TIMEOUT {
            let Some(record) =
                load_record(txn, key)?.filter(|r| r.status == ExecutionStatus::Running)
            else {
                continue;
            };
            let kind = record.timed_out(Timestamp(at));
            let done = close_from_outside(txn, &record, Event::new(now, kind))?;
            work.closed.extend(done.closed);
            work.delivered.extend(done.delivered);
            continue;
        }
        let Some(task) = load_task(txn, key, seq)? else {
            continue; // finished, or abandoned with its execution
        };
        let Some(timeout) = due_deadline(kind).and_then(|d| task.timeout_at(d, Timestamp(at)))
        else {
            continue;
        };
        unindex_state(txn, &task)?;
        if matches!(task.state, TaskState::Running { .. }) {
            work.timed_out.push((key, seq, task.attempt));
        }
        let outcome = AttemptOutcome::TimedOut(timeout);
        let (entry, requeued) = end_attempt(txn, task, outcome, now)?;
        work.delivered.extend(entry);
        work.requeued.extend(requeued);
    }
    Ok(work)
}
