//! What keeps histories provable: signing checkpoints, erasing an
//! execution's data key, re-wrapping data keys with the current key.

use super::super::rows::{decode_row, encode_row};
use super::super::tables::*;
use super::super::txn::Txn;
use super::inbox::{load_record, save_record};
use crate::StoreError;
use crate::model::*;
use redb::ReadableTable;
use weft_core::{DataKey, ExecutionStatus, Timestamp};
use weft_protect::checkpoint::{self, Checkpoint, Kind, Leaf};

/// The closed checkpoint a run closing now waits for.
pub(crate) fn pending_checkpoint(txn: &Txn<'_>) -> Result<Option<u64>, StoreError> {
    if txn.protector().signing_public_key().is_none() {
        return Ok(None);
    }
    let meta = txn.open_table(META)?;
    Ok(Some(meta.get("next_checkpoint")?.map_or(1, |v| v.value())))
}

/// Sign `leaves` as checkpoint `seq` of `kind`.
fn sign(
    txn: &Txn<'_>,
    seq: u64,
    at: Timestamp,
    kind: Kind,
    leaves: Vec<Leaf>,
) -> Result<Option<Checkpoint>, StoreError> {
    let protector = txn.protector();
    let Some(public_key) = protector.signing_public_key() else {
        return Ok(None);
    };
    let hashes: Vec<[u8; 32]> = leaves.iter().map(Leaf::hash).collect();
    let root = checkpoint::root(&hashes);
    let message = checkpoint::message(seq, at, kind, leaves.len() as u64, &root);
    let Some(signature) = protector.sign(&message) else {
        return Ok(None);
    };
    Ok(Some(Checkpoint {
        seq,
        at,
        kind,
        leaves,
        root,
        signature: signature.to_vec(),
        public_key,
    }))
}

/// The leaf of `record` (an execution with a chain).
fn leaf(record: &ExecutionRecord) -> Option<Leaf> {
    let p = record.protection.as_ref()?;
    Some(Leaf {
        key: record.key,
        events: record.next_event,
        head: p.head,
    })
}

pub(crate) fn checkpoint_closed(
    txn: &Txn<'_>,
    now: Timestamp,
) -> Result<Option<Checkpoint>, StoreError> {
    let Some(seq) = pending_checkpoint(txn)? else {
        return Ok(None);
    };
    let keys: Vec<ExecKey> = {
        let unsigned = txn.open_table(UNSIGNED)?;
        let mut keys = Vec::new();
        for row in unsigned.range((seq, 0)..=(seq, u64::MAX))? {
            keys.push(row?.0.value().1);
        }
        keys
    };
    if keys.is_empty() {
        return Ok(None);
    }
    let mut leaves = Vec::with_capacity(keys.len());
    for key in keys {
        // Retention may have removed it already: it is then not signed.
        if let Some(leaf) = load_record(txn, key)?.as_ref().and_then(leaf) {
            leaves.push(leaf);
        }
    }
    let Some(signed) = sign(txn, seq, now, Kind::Closed, leaves)? else {
        return Ok(None);
    };
    txn.open_table(CHECKPOINTS)?
        .insert(seq, encode_row(&signed)?.as_slice())?;
    txn.open_table(UNSIGNED)?
        .retain_in((seq, 0)..=(seq, u64::MAX), |_, _| false)?;
    txn.open_table(META)?.insert("next_checkpoint", seq + 1)?;
    Ok(Some(signed))
}

pub(crate) fn checkpoint_open(
    txn: &Txn<'_>,
    now: Timestamp,
    keep: usize,
) -> Result<Option<Checkpoint>, StoreError> {
    if txn.protector().signing_public_key().is_none() {
        return Ok(None);
    }
    let seq = txn
        .open_table(META)?
        .get("next_open_checkpoint")?
        .map_or(1, |v| v.value());
    let keys: Vec<ExecKey> = {
        let running = txn.open_table(RUNNING)?;
        let mut keys = Vec::new();
        for row in running.iter()? {
            keys.push(row?.0.value());
        }
        keys
    };
    let mut leaves = Vec::with_capacity(keys.len());
    for key in keys {
        if let Some(leaf) = load_record(txn, key)?.as_ref().and_then(leaf) {
            leaves.push(leaf);
        }
    }
    let Some(signed) = sign(txn, seq, now, Kind::Open, leaves)? else {
        return Ok(None);
    };
    let mut table = txn.open_table(OPEN_CHECKPOINTS)?;
    table.insert(seq, encode_row(&signed)?.as_slice())?;
    let oldest_kept = (seq + 1).saturating_sub(keep.max(1) as u64);
    table.retain_in(0..oldest_kept, |_, _| false)?;
    txn.open_table(META)?
        .insert("next_open_checkpoint", seq + 1)?;
    Ok(Some(signed))
}

/// Read the checkpoint covering `record` in `closed` / `open`.
pub(crate) fn covering(
    record: &ExecutionRecord,
    closed: &impl ReadableTable<u64, &'static [u8]>,
    open: &impl ReadableTable<u64, &'static [u8]>,
) -> Result<Option<Checkpoint>, StoreError> {
    let Some(protection) = &record.protection else {
        return Ok(None);
    };
    if record.status != ExecutionStatus::Running {
        let Some(seq) = protection.checkpoint else {
            return Ok(None);
        };
        return closed
            .get(seq)?
            .map(|v| decode_row("checkpoints", v.value()))
            .transpose();
    }
    for row in open.iter()?.rev() {
        let checkpoint: Checkpoint = decode_row("open_checkpoints", row?.1.value())?;
        if checkpoint.leaves.iter().any(|l| l.key == record.key) {
            return Ok(Some(checkpoint));
        }
    }
    Ok(None)
}

pub(crate) fn erase(
    txn: &Txn<'_>,
    key: ExecKey,
    at: Timestamp,
) -> Result<ExecutionRecord, StoreError> {
    let Some(mut record) = load_record(txn, key)? else {
        return Err(StoreError::NotFound(format!("execution key {key}")));
    };
    if record.status == ExecutionStatus::Running {
        return Err(StoreError::Invalid(format!(
            "{} is running: terminate it before erasing it",
            record.id
        )));
    }
    let Some(protection) = &mut record.protection else {
        return Err(StoreError::Invalid(format!(
            "{} was written before data keys existed (plaintext, row format 3 or older): \
             it cannot be erased by destroying a key; delete it instead",
            record.id
        )));
    };
    match protection.key {
        DataKey::Wrapped { .. } => {}
        DataKey::Erased { .. } => return Ok(record),
        DataKey::Plaintext => {
            return Err(StoreError::Invalid(format!(
                "{} is stored in plaintext (written with --no-encryption): there is no key \
                 to destroy",
                record.id
            )));
        }
    }
    protection.key = DataKey::Erased { at };
    // Its memo was sealed with the key: gone with it.
    for value in record.memo.values_mut() {
        *value = "<erased>".to_owned();
    }
    save_record(txn, &record)?;
    Ok(record)
}

pub(crate) fn rewrap(txn: &Txn<'_>, max: usize) -> Result<usize, StoreError> {
    let protector = txn.protector();
    let Some(current) = protector.current_key() else {
        return Ok(0);
    };
    let mut moved = Vec::new();
    {
        let execs = txn.open_table(EXECUTIONS)?;
        for row in execs.iter()? {
            let (_, v) = row?;
            let mut record = crate::protection::decode_listed(v.value(), protector)?;
            let Some(p) = &mut record.protection else {
                continue;
            };
            let DataKey::Wrapped { kek, .. } = &p.key else {
                continue;
            };
            if *kek == current {
                continue;
            }
            // A key the ring no longer has is left as it is (and logged).
            match protector.rewrap(&p.key) {
                Ok(Some(key)) => p.key = key,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!("cannot re-wrap the data key of {}: {e}", record.id);
                    continue;
                }
            }
            moved.push(record);
            if moved.len() == max {
                break;
            }
        }
    }
    for record in &moved {
        save_record(txn, record)?;
    }
    Ok(moved.len())
}
