//! Listing executions without scanning them all: the `VISIBILITY` index.
//!
//! Running executions are the `RUNNING` table, which the store keeps
//! anyway. A closed execution gets entries `(tag, exec key)`, written in
//! its closing transaction, under a tag of its namespace, of its workflow
//! type (which carries its namespace) and of its namespace and status. So
//! a start writes nothing more and a close one table's three entries. A
//! tag is the first 8 bytes of a BLAKE3 hash of what it names: fixed-size
//! keys, no allocation, one table.
//!
//! A list walks the narrowest set its filter allows, newest first (exec
//! keys grow with every start): the running ones, one tag, or, for a
//! namespace or type of any status, the running ones merged with that tag.
//! Every candidate is checked against the whole filter, so the index only
//! narrows and never decides (two names sharing a tag, at odds of one in
//! 2^64, would only cost a look). A page cursor (`ListFilter::before`)
//! starts the walk below the last key a page returned. Counting a closed
//! status in a namespace reads the index alone.

use super::tables::{EXECUTIONS, RUNNING, VISIBILITY};
use super::txn::Txn;
use crate::StoreError;
use crate::model::{ExecKey, ExecutionRecord, ExecutionStatus, ListFilter};
use crate::protection::decode_listed;
use redb::{ReadTransaction, ReadableTable};
use weft_core::namespace::namespace_of;
use weft_protect::Protector;

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

/// The tag under which the closed executions of `namespace` are indexed
/// (listing and retention walk it).
pub(crate) fn by_namespace(namespace: &str) -> u64 {
    tag(b'n', &[namespace])
}

fn by_status(namespace: &str, status: ExecutionStatus) -> u64 {
    tag(b's', &[namespace, status.name()])
}

fn by_type(workflow_type: &str) -> u64 {
    tag(b't', &[workflow_type])
}

/// The index entries of `record` with status `status`: none while it
/// runs (`RUNNING` lists it).
fn entries(
    record: &ExecutionRecord,
    status: ExecutionStatus,
) -> impl Iterator<Item = (u64, u64)> + use<> {
    let namespace = namespace_of(&record.id.workflow_id);
    let closed = (status != ExecutionStatus::Running).then(|| {
        [
            (by_namespace(namespace), record.key),
            (by_type(&record.workflow_type), record.key),
            (by_status(namespace, status), record.key),
        ]
    });
    closed.into_iter().flatten()
}

/// Move `record` from status `from` to its current one: index it when it
/// closes.
pub(crate) fn restatus(
    txn: &Txn<'_>,
    record: &ExecutionRecord,
    from: ExecutionStatus,
) -> Result<(), StoreError> {
    if from == record.status {
        return Ok(());
    }
    let mut table = txn.open_table(VISIBILITY)?;
    for entry in entries(record, from) {
        table.remove(entry)?;
    }
    for entry in entries(record, record.status) {
        table.insert(entry, ())?;
    }
    Ok(())
}

/// Remove a deleted execution's entries.
pub(crate) fn unindex(txn: &Txn<'_>, record: &ExecutionRecord) -> Result<(), StoreError> {
    let mut table = txn.open_table(VISIBILITY)?;
    for entry in entries(record, record.status) {
        table.remove(entry)?;
    }
    Ok(())
}

/// Index every execution of a database written before the index existed.
pub(crate) fn build(
    txn: &redb::WriteTransaction,
    protector: &Protector,
) -> Result<u64, StoreError> {
    let execs = txn.open_table(EXECUTIONS)?;
    let mut table = txn.open_table(VISIBILITY)?;
    let mut indexed = 0;
    for row in execs.iter()? {
        let record: ExecutionRecord = decode_listed(row?.1.value(), protector)?;
        for entry in entries(&record, record.status) {
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
    /// The closed executions of one tag.
    Closed(u64),
    /// The running ones and the closed ones of one tag, merged.
    Both(u64),
    /// Every execution.
    All,
}

fn walk(filter: &ListFilter) -> Walk {
    match (&filter.namespace, filter.status, &filter.workflow_type) {
        (_, Some(ExecutionStatus::Running), _) => Walk::Running,
        (Some(namespace), Some(status), _) => Walk::Closed(by_status(namespace, status)),
        (_, None, Some(workflow_type)) => Walk::Both(by_type(workflow_type)),
        (Some(namespace), None, None) => Walk::Both(by_namespace(namespace)),
        (None, Some(_), Some(workflow_type)) => Walk::Closed(by_type(workflow_type)),
        (None, _, None) => Walk::All,
    }
}

/// Keys from `rows`, newest first, as a fallible stream.
type Keys<'a> = std::iter::Peekable<Box<dyn Iterator<Item = Result<ExecKey, StoreError>> + 'a>>;

/// Call `visit` with each execution that passes `filter`, newest first,
/// until it returns false.
fn each(
    txn: &ReadTransaction,
    protector: &Protector,
    filter: &ListFilter,
    mut visit: impl FnMut(ExecutionRecord) -> bool,
) -> Result<(), StoreError> {
    let execs = txn.open_table(EXECUTIONS)?;
    let below = filter.before.unwrap_or(ExecKey::MAX);
    let mut candidate = |key: ExecKey| -> Result<bool, StoreError> {
        let Some(row) = execs.get(key)? else {
            return Ok(true);
        };
        let record: ExecutionRecord = decode_listed(row.value(), protector)?;
        Ok(!filter.matches(&record) || visit(record))
    };
    let running_table = txn.open_table(RUNNING)?;
    let index = txn.open_table(VISIBILITY)?;
    let running = || -> Result<Keys<'_>, StoreError> {
        let rows = running_table.range(..below)?.rev();
        let keys: Box<dyn Iterator<Item = _>> =
            Box::new(rows.map(|r| r.map(|(k, _)| k.value()).map_err(StoreError::from)));
        Ok(keys.peekable())
    };
    let closed = |tag: u64| -> Result<Keys<'_>, StoreError> {
        let rows = index.range((tag, 0)..(tag, below))?.rev();
        let keys: Box<dyn Iterator<Item = _>> =
            Box::new(rows.map(|r| r.map(|(k, _)| k.value().1).map_err(StoreError::from)));
        Ok(keys.peekable())
    };
    let (mut first, mut second) = match walk(filter) {
        Walk::Running => (running()?, None),
        Walk::Closed(tag) => (closed(tag)?, None),
        Walk::Both(tag) => (running()?, Some(closed(tag)?)),
        Walk::All => {
            let rows = execs.range(..below)?.rev();
            let keys: Box<dyn Iterator<Item = _>> =
                Box::new(rows.map(|r| r.map(|(k, _)| k.value()).map_err(StoreError::from)));
            (keys.peekable(), None)
        }
    };
    loop {
        // The newer head of the two streams (keys never repeat across
        // them: an execution is either running or closed).
        let from_second = match (first.peek(), second.as_mut().and_then(|s| s.peek())) {
            (None, None) => break,
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (Some(Ok(a)), Some(Ok(b))) => b > a,
            (Some(Err(_)), _) => false,
            (_, Some(Err(_))) => true,
        };
        let next = if from_second {
            second.as_mut().and_then(Iterator::next)
        } else {
            first.next()
        };
        let Some(key) = next else { break };
        if !candidate(key?)? {
            break;
        }
    }
    Ok(())
}

/// The executions that pass `filter`, newest first, at most its limit.
pub(crate) fn list(
    txn: &ReadTransaction,
    protector: &Protector,
    filter: &ListFilter,
) -> Result<Vec<ExecutionRecord>, StoreError> {
    let mut out = Vec::new();
    each(txn, protector, filter, |record| {
        out.push(record);
        out.len() != filter.limit
    })?;
    Ok(out)
}

fn capped(n: u64, limit: usize) -> u64 {
    if limit == 0 { n } else { n.min(limit as u64) }
}

/// How many executions pass `filter`, up to its limit. A filter that
/// names only a namespace (and a closed status) is answered from the index,
/// and the records of its running executions.
pub(crate) fn count(
    txn: &ReadTransaction,
    protector: &Protector,
    filter: &ListFilter,
) -> Result<u64, StoreError> {
    let index_only = ListFilter {
        namespace: filter.namespace.clone(),
        status: filter.status,
        before: filter.before,
        limit: filter.limit,
        ..ListFilter::default()
    };
    if *filter == index_only {
        let below = filter.before.unwrap_or(ExecKey::MAX);
        let tagged = |tag: u64| -> Result<u64, StoreError> {
            let mut n = 0;
            for row in txn.open_table(VISIBILITY)?.range((tag, 0)..(tag, below))? {
                row?;
                n += 1;
            }
            Ok(n)
        };
        match walk(filter) {
            Walk::Closed(tag) => return Ok(capped(tagged(tag)?, filter.limit)),
            // A namespace: its closed ones from the index, its running
            // ones (few, next to the closed) by their records.
            Walk::Both(tag) => {
                let running = ListFilter {
                    status: Some(ExecutionStatus::Running),
                    limit: 0,
                    ..filter.clone()
                };
                let mut n = tagged(tag)?;
                each(txn, protector, &running, |_| {
                    n += 1;
                    true
                })?;
                return Ok(capped(n, filter.limit));
            }
            Walk::Running | Walk::All => {}
        }
    }
    let mut n = 0;
    each(txn, protector, filter, |_| {
        n += 1;
        n != filter.limit as u64
    })?;
    Ok(n)
}
