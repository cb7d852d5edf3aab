//! Execution records and inboxes: loading and saving a record, and
//! appending to a running execution's inbox.

use super::super::tables::*;
use super::super::txn::Txn;
use crate::model::*;
use crate::protection::{SealedRow, cipher, decode_record, encode_record};
use crate::{InboxEntry, StoreError};
use redb::ReadableTable;
use weft_core::{ExecutionStatus, InboxMessage};
use weft_protect::RunCipher;

pub(super) fn load_record(
    txn: &Txn<'_>,
    key: ExecKey,
) -> Result<Option<ExecutionRecord>, StoreError> {
    let execs = txn.open_table(EXECUTIONS)?;
    let record = execs
        .get(key)?
        .map(|v| decode_record(v.value(), txn.protector()))
        .transpose()?;
    Ok(record)
}

/// The cipher of execution `key`'s payloads.
pub(super) fn cipher_of(txn: &Txn<'_>, key: ExecKey) -> Result<RunCipher, StoreError> {
    match load_record(txn, key)? {
        Some(record) => cipher(txn.protector(), &record),
        None => Err(StoreError::NotFound(format!("execution key {key}"))),
    }
}

pub(super) fn save_record(txn: &Txn<'_>, record: &ExecutionRecord) -> Result<(), StoreError> {
    txn.open_table(EXECUTIONS)?.insert(
        record.key,
        encode_record(record, txn.protector())?.as_slice(),
    )?;
    Ok(())
}

/// The key of `workflow_id`'s running run, if it has one.
pub(super) fn running_key(txn: &Txn<'_>, workflow_id: &str) -> Result<Option<ExecKey>, StoreError> {
    let key = txn
        .open_table(WORKFLOW_IDS)?
        .get(workflow_id)?
        .map(|v| v.value());
    let Some(key) = key else { return Ok(None) };
    Ok(load_record(txn, key)?
        .filter(|r| r.status == ExecutionStatus::Running)
        .map(|r| r.key))
}

/// Append to an execution's inbox, unless it has closed (then the message
/// has nowhere to go and is dropped).
pub(super) fn push_inbox(
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
    // Sealed before anything is written: a missing key refuses the push.
    let row = SealedRow::seal(message.clone(), &cipher(txn.protector(), &record)?)?;
    if matches!(message.parts().0, InboxMessage::CancelRequested { .. }) {
        mark_tasks_cancel_requested(txn, key)?;
    }
    let seq = record.next_inbox;
    record.next_inbox += 1;
    txn.open_table(INBOX)?
        .insert((key, seq), row.encode()?.as_slice())?;
    save_record(txn, &record)?;
    Ok(Some(InboxEntry { key, seq, message }))
}

/// Flag every task of execution `key` as cancel-requested.
pub(super) fn mark_tasks_cancel_requested(txn: &Txn<'_>, key: ExecKey) -> Result<(), StoreError> {
    let mut tasks = txn.open_table(TASKS)?;
    let mut flagged = Vec::new();
    for row in tasks.range((key, 0)..=(key, u32::MAX))? {
        let (_, v) = row?;
        let mut task = SealedRow::<ActivityTask>::decode("activity_tasks", v.value())?;
        if !task.value.cancel_requested {
            task.value.cancel_requested = true;
            flagged.push(task);
        }
    }
    for task in flagged {
        let key = (task.value.key, task.value.seq);
        tasks.insert(key, task.encode()?.as_slice())?;
    }
    Ok(())
}
