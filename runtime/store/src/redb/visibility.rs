//! Listing executions without scanning them all: the `VISIBILITY` index.
//!
//! Every execution has entries `(tag, exec key)` under a tag of its
//! namespace and a tag of its workflow type (which carries its namespace)
//! from its start, and under a tag of its namespace and status once it has
//! closed; the running ones are the `RUNNING` table already. A tag is the
//! first 8 bytes of a BLAKE3 hash of what it names: fixed-size keys, no
//! allocation, one table. A list walks the narrowest index its filter
//! allows, newest first (exec keys grow with every start), and checks each
//! candidate against the whole filter, so the index only narrows and never
//! decides (two names sharing a tag, at odds of one in 2^64, would only
//! cost a look). A page cursor (`ListFilter::before`) starts the walk
//! below the last key a page returned. Counting a namespace, or a closed
//! status in it, reads the index alone.

use super::rows::decode_row;
use super::tables::{EXECUTIONS, RUNNING, VISIBILITY};
use super::txn::Txn;
use crate::StoreError;
use crate::model::{ExecKey, ExecutionRecord, ExecutionStatus, ListFilter};
use redb::{ReadTransaction, ReadableTable};
use weft_core::namespace::namespace_of;

/// The tag of `(kind, parts)`.
fn tag(kind: u8, parts: &[&str]) -> u64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[kind]);
    for part in parts {
        // Length-prefixed: no two part lists hash the same input.
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    let mut first = [0u8; 8];
    first.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
    u64::from_le_bytes(first)
}

fn by_namespace(namespace: &str) -> u64 {
    tag(b'n', &[namespace])
}

fn by_status(namespace: &str, status: ExecutionStatus) -> u64 {
    tag(b's', &[namespace, status.name()])
}

fn by_type(workflow_type: &str) -> u64 {
    tag(b't', &[workflow_type])
}

/// The index entries of `record` as it stands.
fn entries(record: &ExecutionRecord) -> impl Iterator<Item = (u64, u64)> {
    let namespace = namespace_of(&record.id.workflow_id);
    let closed = (record.status != ExecutionStatus::Running)
        .then(|| (by_status(namespace, record.status), record.key));
    [
        (by_namespace(namespace), record.key),
        (by_type(&record.workflow_type), record.key),
    ]
    .into_iter()
    .chain(closed)
}

/// Index a new execution.
pub(crate) fn index(txn: &Txn<'_>, record: &ExecutionRecord) -> Result<(), StoreError> {
    let mut table = txn.open_table(VISIBILITY)?;
    for entry in entries(record) {
        table.insert(entry, ())?;
    }
    Ok(())
}

/// Move `record` from status `from` to its current one.
pub(crate) fn restatus(
    txn: &Txn<'_>,
    record: &ExecutionRecord,
    from: ExecutionStatus,
) -> Result<(), StoreError> {
    if from == record.status {
        return Ok(());
    }
    let namespace = namespace_of(&record.id.workflow_id);
    let mut table = txn.open_table(VISIBILITY)?;
    if from != ExecutionStatus::Running {
        table.remove((by_status(namespace, from), record.key))?;
    }
    if record.status != ExecutionStatus::Running {
        table.insert((by_status(namespace, record.status), record.key), ())?;
    }
    Ok(())
}

/// Remove a deleted execution's entries.
pub(crate) fn unindex(txn: &Txn<'_>, record: &ExecutionRecord) -> Result<(), StoreError> {
    let mut table = txn.open_table(VISIBILITY)?;
    for entry in entries(record) {
        table.remove(entry)?;
    }
    Ok(())
}

/// Index every execution of a database written before the index existed.
pub(crate) fn build(txn: &redb::WriteTransaction) -> Result<u64, StoreError> {
    let execs = txn.open_table(EXECUTIONS)?;
    let mut table = txn.open_table(VISIBILITY)?;
    let mut indexed = 0;
    for row in execs.iter()? {
        let record: ExecutionRecord = decode_row("executions", row?.1.value())?;
        for entry in entries(&record) {
            table.insert(entry, ())?;
        }
        indexed += 1;
    }
    Ok(indexed)
}

/// What a filter walks: the narrowest set it names.
enum Walk {
    /// The running executions (`RUNNING`).
    Running,
    /// One tag of the index.
    Tag(u64),
    /// Every execution.
    All,
}

fn walk(filter: &ListFilter) -> Walk {
    match (&filter.namespace, filter.status, &filter.workflow_type) {
        (_, Some(ExecutionStatus::Running), _) => Walk::Running,
        (Some(namespace), Some(status), _) => Walk::Tag(by_status(namespace, status)),
        (_, _, Some(workflow_type)) => Walk::Tag(by_type(workflow_type)),
        (Some(namespace), None, None) => Walk::Tag(by_namespace(namespace)),
        (None, _, None) => Walk::All,
    }
}

/// Call `visit` with each execution that passes `filter`, newest first,
/// until it returns false.
fn each(
    txn: &ReadTransaction,
    filter: &ListFilter,
    mut visit: impl FnMut(ExecutionRecord) -> bool,
) -> Result<(), StoreError> {
    let execs = txn.open_table(EXECUTIONS)?;
    let below = filter.before.unwrap_or(ExecKey::MAX);
    let mut candidate = |key: ExecKey| -> Result<bool, StoreError> {
        let Some(row) = execs.get(key)? else {
            return Ok(true);
        };
        let record: ExecutionRecord = decode_row("executions", row.value())?;
        Ok(!filter.matches(&record) || visit(record))
    };
    match walk(filter) {
        Walk::Running => {
            for row in txn.open_table(RUNNING)?.range(..below)?.rev() {
                if !candidate(row?.0.value())? {
                    break;
                }
            }
        }
        Walk::Tag(tag) => {
            let table = txn.open_table(VISIBILITY)?;
            for row in table.range((tag, 0)..(tag, below))?.rev() {
                if !candidate(row?.0.value().1)? {
                    break;
                }
            }
        }
        Walk::All => {
            for row in execs.range(..below)?.rev() {
                if !candidate(row?.0.value())? {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// The executions that pass `filter`, newest first, at most its limit.
pub(crate) fn list(
    txn: &ReadTransaction,
    filter: &ListFilter,
) -> Result<Vec<ExecutionRecord>, StoreError> {
    let mut out = Vec::new();
    each(txn, filter, |record| {
        out.push(record);
        out.len() != filter.limit
    })?;
    Ok(out)
}

fn capped(n: u64, limit: usize) -> u64 {
    if limit == 0 { n } else { n.min(limit as u64) }
}

/// How many executions pass `filter`, up to its limit. A filter that
/// names only a namespace (and a closed status) is answered from the index
/// alone.
pub(crate) fn count(txn: &ReadTransaction, filter: &ListFilter) -> Result<u64, StoreError> {
    let index_only = ListFilter {
        namespace: filter.namespace.clone(),
        status: filter.status,
        before: filter.before,
        limit: filter.limit,
        ..ListFilter::default()
    };
    if let (Walk::Tag(tag), true) = (walk(filter), *filter == index_only) {
        let table = txn.open_table(VISIBILITY)?;
        let below = filter.before.unwrap_or(ExecKey::MAX);
        let mut n = 0;
        for row in table.range((tag, 0)..(tag, below))? {
            row?;
            n += 1;
        }
        return Ok(capped(n, filter.limit));
    }
    let mut n = 0;
    each(txn, filter, |_| {
        n += 1;
        n != filter.limit as u64
    })?;
    Ok(n)
}
