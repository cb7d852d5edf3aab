//! Activity tasks: creating, leasing, reporting, heartbeats, and the
//! index entries of each task state.

use super::super::tables::*;
use super::super::txn::Txn;
use super::inbox::{cipher_of, push_inbox};
use crate::model::*;
use crate::protection::SealedRow;
use crate::{InboxEntry, StoreError};
use redb::ReadableTable;
use weft_core::{AttemptOutcome, Deadline, InboxMessage, Timestamp};
use weft_protect::RunCipher;

/// How long a due time or a queued task of an execution whose key is
/// missing waits before it is tried again.
pub(super) const DEFER_MS: u64 = 60_000;

/// A task row: the task with its input and heartbeat details sealed.
pub(super) type TaskRow = SealedRow<ActivityTask>;

/// Create the task of a newly scheduled activity and queue its attempt.
pub(super) fn create_task(
    txn: &Txn<'_>,
    key: ExecKey,
    execution: &weft_core::ExecutionId,
    new: NewActivityTask,
    cipher: &RunCipher,
) -> Result<(), StoreError> {
    let task = TaskRow::seal(ActivityTask::new(key, execution.clone(), new), cipher)?;
    if let Some(deadline) = task.value.close_deadline() {
        txn.open_table(DUE)?
            .insert((deadline.0, key, task.value.seq, DUE_SCHEDULE_TO_CLOSE), ())?;
    }
    save_task(txn, &task, true)
}

/// The `DUE` kind that indexes `deadline`.
pub(super) fn due_kind(deadline: Deadline) -> u8 {
    match deadline {
        Deadline::ScheduleToClose => DUE_SCHEDULE_TO_CLOSE,
        Deadline::ScheduleToStart => DUE_SCHEDULE_TO_START,
        Deadline::Attempt => DUE_DEADLINE,
        Deadline::Heartbeat => DUE_HEARTBEAT,
    }
}

/// The deadline a `DUE` kind of an activity task indexes.
pub(super) fn due_deadline(kind: u8) -> Option<Deadline> {
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
pub(super) fn save_task(txn: &Txn<'_>, row: &TaskRow, index: bool) -> Result<(), StoreError> {
    let task = &row.value;
    if index {
        if let TaskState::Ready { due } = task.state {
            txn.open_table(READY)?
                .insert((task.queue.as_str(), due.0, task.key, task.seq), ())?;
        }
        let mut deadlines = task.state_deadlines().peekable();
        if deadlines.peek().is_some() {
            let mut table = txn.open_table(DUE)?;
            for (deadline, at) in deadlines {
                table.insert((at.0, task.key, task.seq, due_kind(deadline)), ())?;
            }
        }
    }
    txn.open_table(TASKS)?
        .insert((task.key, task.seq), row.encode()?.as_slice())?;
    Ok(())
}

/// Remove the index entries of `task`'s current state: its queue entry
/// while queued, and its state's deadlines.
pub(super) fn unindex_state(txn: &Txn<'_>, task: &ActivityTask) -> Result<(), StoreError> {
    if let TaskState::Ready { due } = task.state {
        txn.open_table(READY)?
            .remove((task.queue.as_str(), due.0, task.key, task.seq))?;
    }
    let mut deadlines = task.state_deadlines().peekable();
    if deadlines.peek().is_some() {
        let mut table = txn.open_table(DUE)?;
        for (deadline, at) in deadlines {
            table.remove((at.0, task.key, task.seq, due_kind(deadline)))?;
        }
    }
    Ok(())
}

pub(super) fn load_task(
    txn: &Txn<'_>,
    key: ExecKey,
    seq: u32,
) -> Result<Option<TaskRow>, StoreError> {
    let tasks = txn.open_table(TASKS)?;
    let task = tasks
        .get((key, seq))?
        .map(|v| TaskRow::decode("activity_tasks", v.value()));
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
        let Some(mut task) =
            task.filter(|t| t.value.state == TaskState::Ready { due: Timestamp(at) })
        else {
            // Abandoned when its execution closed, or timed out in the queue.
            txn.open_table(READY)?.remove((queue, at, key, seq))?;
            continue;
        };
        // Opened before anything is written. A task whose execution's key
        // is missing waits in its queue and is tried again later, so it
        // never blocks the queue.
        let opened = cipher_of(txn, key).and_then(|c| task.clone().open(&c));
        let mut leased = match opened {
            Ok(leased) => leased,
            Err(StoreError::Protection(e)) => {
                tracing::error!(
                    "execution key {key}: task #{seq} waits {} ms in queue `{queue}`: {e}",
                    DEFER_MS
                );
                unindex_state(txn, &task.value)?;
                task.value.state = TaskState::Ready {
                    due: now.plus_ms(DEFER_MS),
                };
                save_task(txn, &task, true)?;
                continue;
            }
            Err(e) => return Err(e),
        };
        unindex_state(txn, &task.value)?;
        task.value.lease(now);
        leased.lease(now);
        save_task(txn, &task, true)?;
        polled.tasks.push(leased);
    }
    Ok(polled)
}

/// Close the current attempt of `task` with `outcome`: retry it or finish
/// the task, and report to the execution's inbox. The caller has removed
/// the index entries of the task's state.
pub(super) fn end_attempt(
    txn: &Txn<'_>,
    task: TaskRow,
    outcome: AttemptOutcome,
    now: Timestamp,
) -> Result<(Option<InboxEntry>, Option<String>), StoreError> {
    let report = task.value.end_attempt(outcome, now);
    let (key, seq) = (task.value.key, task.value.seq);
    let mut requeued = None;
    match report.retry_at {
        Some(at) => {
            requeued = Some(task.value.queue.clone());
            save_task(txn, &task.clone().map(|t| t.retry(at)), true)?;
        }
        None => {
            if let Some(close) = task.value.close_deadline() {
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
    let Some(task) = load_task(txn, result.key, result.seq)?.filter(|t| {
        t.value.attempt == result.attempt && matches!(t.value.state, TaskState::Running { .. })
    }) else {
        return Ok(None);
    };
    unindex_state(txn, &task.value)?;
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
    let Some(mut row) = load_task(txn, key, seq)?.filter(|t| {
        t.value.attempt == attempt && matches!(t.value.state, TaskState::Running { .. })
    }) else {
        // Timed out, superseded, or its execution closed.
        return Ok(HeartbeatAck {
            current: false,
            cancel_requested: false,
        });
    };
    // New details are sealed anew (opened and sealed before any write).
    let new_details = details.is_some();
    if let Some(details) = details {
        let cipher = cipher_of(txn, key)?;
        let mut task = row.open(&cipher)?;
        task.heartbeat_details = Some(details);
        row = TaskRow::seal(task, &cipher)?;
    }
    let task = &mut row.value;
    let mut changed = false;
    if let Some((old, next)) = task.heartbeat(now) {
        let mut due = txn.open_table(DUE)?;
        due.remove((old.0, key, seq, DUE_HEARTBEAT))?;
        due.insert((next.0, key, seq, DUE_HEARTBEAT), ())?;
        changed = true;
    }
    let cancel_requested = task.cancel_requested;
    if changed || new_details {
        save_task(txn, &row, false)?;
    }
    Ok(HeartbeatAck {
        current: true,
        cancel_requested,
    })
}
