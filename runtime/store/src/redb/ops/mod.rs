//! Write operations, each applied inside a group-commit transaction.
//!
//! Rule: validate and read first, write last, so a logical error leaves
//! nothing behind in the shared transaction. Checked on every operation:
//! a logical error after a write rolls the whole batch back (`txn.rs`).

mod audit;
mod inbox;
mod tasks;

pub(crate) use audit::{checkpoint_closed, checkpoint_open, covering, erase, rewrap};
pub(crate) use tasks::{poll_activities, record_heartbeat, report_attempt};

use super::history::{encoded_history, read_history, seal};
use super::rows::encode_row;
use super::tables::*;
use super::txn::Txn;
use super::visibility;
use crate::model::*;
use crate::protection::{cipher, decode_record, encode_events};
use crate::{InboxEntry, StoreError};
use inbox::{load_record, push_inbox, running_key, save_record};
use redb::ReadableTable;
use tasks::{DEFER_MS, create_task, due_deadline, end_attempt, load_task, unindex_state};
use weft_core::{
    AttemptOutcome, ChainHash, ChildClose, ChildIds, ComponentId, Event, ExecutionRecord,
    ExecutionState, ExecutionStatus, InboxMessage, ParentClosePolicy, Protection, StartRefused,
    Timestamp, child_outcome, parent_closed,
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

/// Start `new`, its history chained from `origin` (zero for a first run).
pub(crate) fn start_execution(
    txn: &Txn<'_>,
    new: NewExecution,
    origin: ChainHash,
) -> Result<ExecutionRecord, StoreError> {
    let mut ids = txn.open_table(WORKFLOW_IDS)?;
    let mut execs = txn.open_table(EXECUTIONS)?;
    let latest = match ids.get(new.id.workflow_id.as_str())?.map(|v| v.value()) {
        Some(existing) => match execs.get(existing)? {
            Some(v) => Some(decode_record(v.value(), txn.protector())?.status),
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
    let run_deadline = new.run_deadline();
    // Its data key made and its first event sealed before any write.
    let (data_key, cipher) = txn.protector().new_run()?;
    let (mut record, started) = ExecutionRecord::started(key, new);
    record.protection = Some(Protection::new(data_key, origin));
    let first = encode_events(&mut record, 0, std::slice::from_ref(&started), &cipher)?;
    let row = crate::protection::encode_record(&record, txn.protector())?;
    meta.insert("next_exec_key", key + 1)?;
    if let Some(deadline) = run_deadline {
        txn.open_table(DUE)?
            .insert((deadline.0, key, 0, DUE_RUN_TIMEOUT), ())?;
    }
    ids.insert(record.id.workflow_id.as_str(), key)?;
    execs.insert(key, row.as_slice())?;
    txn.open_table(RUNNING)?.insert(key, ())?;
    let mut history = txn.open_table(HISTORY)?;
    for (i, bytes) in first.iter().enumerate() {
        history.insert((key, i as u64), bytes.as_slice())?;
    }
    Ok(record)
}

/// A closing run's whole history, sealed ahead of its commit.
pub(crate) struct Sealed {
    /// How many events it holds.
    pub(crate) events: u64,
    /// The sealed row (`history::seal`).
    pub(crate) blob: Vec<u8>,
    /// The chain head before the closing transition's events (`None`: a
    /// run written before chains), which the record must still have.
    pub(crate) from: Option<ChainHash>,
    /// The chain head after them.
    pub(crate) head: Option<ChainHash>,
}

pub(crate) fn commit(
    txn: &Txn<'_>,
    mut t: Transition,
    sealed: Option<Sealed>,
) -> Result<Committed, StoreError> {
    let Some(mut record) = load_record(txn, t.key)? else {
        return Err(StoreError::NotFound(format!("execution key {}", t.key)));
    };
    let cipher = cipher(txn.protector(), &record)?;
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
        Some(_) if record.may_have_children(&t.events) => {
            open_children(txn, &record, &t.events, &cipher)?
        }
        _ => Vec::new(),
    };
    // A sealed history prepared for exactly this commit replaces the rows
    // (its chain continues from the record's head); otherwise the events
    // go in as rows (and are sealed below at a close). Encoded before
    // anything is written.
    let head = record.protection.as_ref().map(|p| p.head);
    let sealed = sealed.filter(|s| {
        t.close.is_some() && s.events == record.next_event + t.events.len() as u64 && s.from == head
    });
    let rows = match &sealed {
        Some(s) => {
            if let (Some(p), Some(head)) = (&mut record.protection, s.head) {
                p.head = head;
            }
            Vec::new()
        }
        None => encode_events(&mut record, t.first_index, &t.events, &cipher)?,
    };
    record.append(&t.events);
    if !rows.is_empty() {
        let mut history = txn.open_table(HISTORY)?;
        for (i, bytes) in rows.iter().enumerate() {
            history.insert((t.key, t.first_index + i as u64), bytes.as_slice())?;
        }
    }
    if let Some(through) = t.consumed_inbox_through {
        let mut inbox = txn.open_table(INBOX)?;
        inbox.retain_in((t.key, 0)..=(t.key, through), |_, _| false)?;
        record.consume_inbox_through(through);
    }
    for new in t.new_tasks {
        create_task(txn, t.key, &record.id, new, &cipher)?;
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
        // Its final head waits for the next closed checkpoint's signature.
        if record.protection.is_some()
            && let Some(seq) = audit::pending_checkpoint(txn)?
        {
            txn.open_table(UNSIGNED)?.insert((seq, t.key), ())?;
            if let Some(p) = &mut record.protection {
                p.checkpoint = Some(seq);
            }
        }
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
        // The id's only running run was this one, closed above. Its chain
        // goes on in the new run.
        let origin = record
            .protection
            .as_ref()
            .map_or(ChainHash::ZERO, |p| p.head);
        done.started
            .push(start_execution(txn, next.continuing(&record), origin)?.key);
    }
    for child in t.new_children {
        match child.start {
            Ok(mut new) => {
                new.parent = Some((t.key, child.seq));
                done.started
                    .push(start_execution(txn, new, ChainHash::ZERO)?.key);
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
    cipher: &weft_protect::RunCipher,
) -> Result<Vec<(String, ParentClosePolicy)>, StoreError> {
    let mut history = read_history(
        &*txn.open_table(SEALED_HISTORY)?,
        &*txn.open_table(HISTORY)?,
        record.key,
        new_events.len(),
        cipher,
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
    let origin = cut_point(txn, &record, 1 + rest.len())?;
    let mut done = Committed::default();
    if record.status == ExecutionStatus::Running {
        let end = record.reset_end(reason, caller, new.started.at);
        done = close_from_outside(txn, &record, end)?;
    }
    let new_key = start_execution(txn, new, origin)?.key;
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

/// The chain value of `record`'s run after its first `events` events: where
/// a reset's new run, which copies them, continues the chain. Refuses a run
/// whose chain is broken there.
fn cut_point(
    txn: &Txn<'_>,
    record: &ExecutionRecord,
    events: usize,
) -> Result<ChainHash, StoreError> {
    let Some(protection) = &record.protection else {
        return Ok(ChainHash::ZERO);
    };
    let stored = encoded_history(
        &*txn.open_table(SEALED_HISTORY)?,
        &*txn.open_table(HISTORY)?,
        record.key,
    )?;
    let prefix = stored.iter().take(events).map(Vec::as_slice);
    let (cut, _) = weft_protect::verify::chain(protection.origin(), prefix).map_err(|broken| {
        StoreError::Corrupt {
            table: "history",
            reason: format!("cannot reset {}: {broken}", record.id),
        }
    })?;
    Ok(cut)
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
    // The namespace's closed runs, from the listing index: retention never
    // reads the running ones or other namespaces'.
    let victims: Vec<ExecutionRecord> = {
        let execs = txn.open_table(EXECUTIONS)?;
        let index = txn.open_table(VISIBILITY)?;
        let tag = visibility::by_namespace(namespace);
        let mut victims = Vec::new();
        for row in index.range((tag, 0)..=(tag, u64::MAX))? {
            let key = row?.0.value().1;
            let Some(row) = execs.get(key)? else { continue };
            let record = decode_record(row.value(), txn.protector())?;
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
        None => (start_execution(txn, new, ChainHash::ZERO)?, true),
    };
    // Cannot be `None`: the record is running (or was just started).
    let entry = push_inbox(txn, record.key, message)?
        .ok_or_else(|| StoreError::NotFound(format!("running execution {}", record.id)))?;
    Ok((record, entry, started))
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
        // An execution whose key is missing cannot take the firing now:
        // it waits, and is tried again later, so it fires once the key is
        // back and never blocks the others.
        if let Err(StoreError::Protection(e)) = inbox::cipher_of(txn, key) {
            tracing::error!("execution key {key}: deferring a due time by {DEFER_MS} ms: {e}");
            let mut due = txn.open_table(DUE)?;
            due.remove((at, key, seq, kind))?;
            due.insert((now.0 + DEFER_MS, key, seq, kind), ())?;
            continue;
        }
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
        let Some(timeout) =
            due_deadline(kind).and_then(|d| task.value.timeout_at(d, Timestamp(at)))
        else {
            continue;
        };
        unindex_state(txn, &task.value)?;
        if matches!(task.value.state, TaskState::Running { .. }) {
            work.timed_out.push((key, seq, task.value.attempt));
        }
        let outcome = AttemptOutcome::TimedOut(timeout);
        let (entry, requeued) = end_attempt(txn, task, outcome, now)?;
        work.delivered.extend(entry);
        work.requeued.extend(requeued);
    }
    Ok(work)
}
