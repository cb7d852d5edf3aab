//! Listing executions without scanning them all: the `VISIBILITY` index.
//!
//! Every execution has three entries, `(index key, exec key)`: under its
//! namespace, under its namespace and status, and under its workflow type
//! (which carries its namespace). A list walks the narrowest index its
//! filter allows, newest first (exec keys grow with every start), and
//! checks each candidate against the whole filter, so the index only ever
//! narrows and never decides. A page cursor (`ListFilter::before`) starts
//! the walk below the last key a page returned.

use super::rows::decode_row;
use super::tables::{EXECUTIONS, VISIBILITY};
use super::txn::Txn;
use crate::StoreError;
use crate::model::{ExecKey, ExecutionRecord, ExecutionStatus, ListFilter};
use redb::{ReadTransaction, ReadableTable};
use weft_core::namespace::namespace_of;

// Index keys: a kind letter, then its values, separated by NUL (which no
// namespace, type or status name contains).
fn by_namespace(namespace: &str) -> String {
    format!("n\0{namespace}")
}

fn by_status(namespace: &str, status: ExecutionStatus) -> String {
    format!("s\0{namespace}\0{}", status.name())
}

fn by_type(workflow_type: &str) -> String {
    format!("t\0{workflow_type}")
}

fn capped(n: u64, limit: usize) -> u64 {
    if limit == 0 { n } else { n.min(limit as u64) }
}

/// Index a new execution.
pub(crate) fn index(txn: &Txn<'_>, record: &ExecutionRecord) -> Result<(), StoreError> {
    let namespace = namespace_of(&record.id.workflow_id);
    let mut table = txn.open_table(VISIBILITY)?;
    table.insert((by_namespace(namespace).as_str(), record.key), ())?;
    table.insert(
        (by_status(namespace, record.status).as_str(), record.key),
        (),
    )?;
    table.insert((by_type(&record.workflow_type).as_str(), record.key), ())?;
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
    table.remove((by_status(namespace, from).as_str(), record.key))?;
    table.insert(
        (by_status(namespace, record.status).as_str(), record.key),
        (),
    )?;
    Ok(())
}

/// Remove a deleted execution's entries.
pub(crate) fn unindex(txn: &Txn<'_>, record: &ExecutionRecord) -> Result<(), StoreError> {
    let namespace = namespace_of(&record.id.workflow_id);
    let mut table = txn.open_table(VISIBILITY)?;
    table.remove((by_namespace(namespace).as_str(), record.key))?;
    table.remove((by_status(namespace, record.status).as_str(), record.key))?;
    table.remove((by_type(&record.workflow_type).as_str(), record.key))?;
    Ok(())
}

/// Index every execution of a database written before the index existed.
pub(crate) fn build(txn: &redb::WriteTransaction) -> Result<u64, StoreError> {
    let execs = txn.open_table(EXECUTIONS)?;
    let mut table = txn.open_table(VISIBILITY)?;
    let mut indexed = 0;
    for row in execs.iter()? {
        let record: ExecutionRecord = decode_row("executions", row?.1.value())?;
        let namespace = namespace_of(&record.id.workflow_id);
        table.insert((by_namespace(namespace).as_str(), record.key), ())?;
        table.insert(
            (by_status(namespace, record.status).as_str(), record.key),
            (),
        )?;
        table.insert((by_type(&record.workflow_type).as_str(), record.key), ())?;
        indexed += 1;
    }
    Ok(indexed)
}

/// The index entry a filter walks: the narrowest it names.
fn walk(filter: &ListFilter) -> Option<String> {
    match (&filter.namespace, filter.status, &filter.workflow_type) {
        (Some(namespace), Some(status), _) => Some(by_status(namespace, status)),
        (_, _, Some(workflow_type)) => Some(by_type(workflow_type)),
        (Some(namespace), None, None) => Some(by_namespace(namespace)),
        (None, _, None) => None,
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
        Some(entry) => {
            let table = txn.open_table(VISIBILITY)?;
            let entry = entry.as_str();
            for row in table.range((entry, 0)..(entry, below))?.rev() {
                if !candidate(row?.0.value().1)? {
                    break;
                }
            }
        }
        None => {
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

/// How many executions pass `filter`, up to its limit. A filter that
/// names only a namespace (and a status) is answered from the index alone.
pub(crate) fn count(txn: &ReadTransaction, filter: &ListFilter) -> Result<u64, StoreError> {
    let index_only = ListFilter {
        namespace: filter.namespace.clone(),
        status: filter.status,
        before: filter.before,
        limit: filter.limit,
        ..ListFilter::default()
    };
    if let (Some(entry), true) = (walk(filter), *filter == index_only) {
        let table = txn.open_table(VISIBILITY)?;
        let entry = entry.as_str();
        let below = filter.before.unwrap_or(ExecKey::MAX);
        let mut n = 0;
        for row in table.range((entry, 0)..(entry, below))? {
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
