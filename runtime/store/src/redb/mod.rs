//! The embedded backend: one redb file.
//!
//! Reads run on the caller's thread in their own read transactions (redb
//! is MVCC, so they never wait for writers). Writes go to one writer task that
//! applies every queued write in one transaction and one fsync: group commit.
//! A caller's write resolves only after its batch is durable.

#[cfg(test)]
mod fixture;
mod history;
mod masks;
mod ops;
mod rows;
mod tables;
mod txn;
mod visibility;
mod writer;

use crate::model::{
    ApiKeyRecord, AttemptResult, AuditFilter, AuditRecord, Committed, DueWork, ExecKey,
    ExecutionRecord, ListFilter, LoadedExecution, NamespaceRecord, NewExecution, Polled,
    QueueStats, Transition,
};
use crate::{HeartbeatAck, InboxEntry, Store, StoreError};
use async_trait::async_trait;
use history::{encoded_history, read_history, seal, unseal};
use redb::{Database, ReadableDatabase, ReadableTable};
use rows::{ROW_VERSION, decode_row, encode_row};
use std::path::Path;
use std::sync::Arc;
use tables::*;
use weft_core::{ComponentId, Event, InboxMessage, Timestamp, decode_event};
use writer::Writer;

/// The space one table of a database takes.
#[derive(Debug, Clone, PartialEq)]
pub struct TableUsage {
    /// Table name.
    pub name: String,
    /// Rows.
    pub rows: u64,
    /// Bytes of the pages it holds: its data, redb's per-entry metadata,
    /// and the unused space in those pages.
    pub allocated_bytes: u64,
    /// Bytes of keys and values alone.
    pub stored_bytes: u64,
}

/// A [`Store`] in one redb file.
pub struct RedbStore {
    db: Arc<Database>,
    writer: Writer,
}

impl RedbStore {
    /// Open (or create) the database at `path`. Must be called inside a
    /// tokio runtime: it starts the writer task, which stops when the store
    /// is dropped.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let db = Database::create(path).map_err(|e| {
            StoreError::Storage(format!("cannot open database {}: {e}", path.display()))
        })?;
        let db = Arc::new(db);
        // Create every table up front so read transactions never miss one.
        let txn = db.begin_write()?;
        tables::create_all(&txn)?;
        migrate(&txn, path)?;
        txn.commit()?;
        let writer = Writer::start(db.clone());
        Ok(RedbStore { db, writer })
    }

    /// The space each table of the database at `path` takes. The database
    /// must not be open elsewhere (redb locks the file).
    pub fn table_usage(path: impl AsRef<Path>) -> Result<Vec<TableUsage>, StoreError> {
        use redb::{ReadableTableMetadata, TableHandle};
        let path = path.as_ref();
        let db = Database::open(path).map_err(|e| {
            StoreError::Storage(format!("cannot open database {}: {e}", path.display()))
        })?;
        let txn = db.begin_read()?;
        let mut usage = Vec::new();
        for handle in txn.list_tables()? {
            let table = txn.open_untyped_table(handle.clone())?;
            let stats = table.stats()?;
            usage.push(TableUsage {
                name: handle.name().to_owned(),
                rows: table.len()?,
                allocated_bytes: stats.stored_bytes()
                    + stats.metadata_bytes()
                    + stats.fragmented_bytes(),
                stored_bytes: stats.stored_bytes(),
            });
        }
        Ok(usage)
    }

    /// The sealed history of the execution `t` closes: its durable events
    /// (read now, in a snapshot) followed by `t`'s. `None` if the snapshot
    /// does not hold the `t.first_index` events `t` extends. A history only
    /// ever grows by appends, so if the commit's conflict check then finds
    /// the same length, the snapshot was the history; if not, the commit
    /// is refused anyway.
    fn seal_closing(&self, t: &Transition) -> Result<Option<ops::Sealed>, StoreError> {
        let txn = self.db.begin_read()?;
        let mut rows = encoded_history(
            &txn.open_table(SEALED_HISTORY)?,
            &txn.open_table(HISTORY)?,
            t.key,
        )?;
        if rows.len() as u64 != t.first_index {
            return Ok(None);
        }
        for event in &t.events {
            rows.push(weft_core::encode_event(event)?);
        }
        Ok(Some(ops::Sealed {
            events: rows.len() as u64,
            blob: seal(&rows)?,
        }))
    }

    /// Run `f` in a read transaction, on the calling thread. A read is a
    /// few B-tree lookups in pages redb or the OS has cached (microseconds);
    /// handing it to the blocking pool cost more than the read (a thread
    /// wake-up and two context switches, measured under load). A read that
    /// misses the OS cache blocks this async worker for one disk read.
    async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&redb::ReadTransaction) -> Result<R, StoreError> + Send + 'static,
    {
        f(&self.db.begin_read()?)
    }
}

#[async_trait]
impl Store for RedbStore {
    async fn put_component(
        &self,
        id: ComponentId,
        bytes: Vec<u8>,
        workflow_type: Option<String>,
    ) -> Result<(), StoreError> {
        self.writer
            .write(move |txn| ops::put_component(txn, id, &bytes, workflow_type.as_deref()))
            .await
    }

    async fn workflow_types(&self) -> Result<Vec<(String, ComponentId)>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(WORKFLOW_TYPES)?;
            let mut out = Vec::new();
            for row in table.iter()? {
                let (k, v) = row?;
                let hash: [u8; 32] = v.value().try_into().map_err(|_| StoreError::Corrupt {
                    table: "workflow_types",
                    reason: format!("component hash of `{}` is not 32 bytes", k.value()),
                })?;
                out.push((k.value().to_owned(), ComponentId(hash)));
            }
            Ok(out)
        })
        .await
    }

    async fn get_component(&self, id: ComponentId) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(move |txn| {
            let table = txn.open_table(COMPONENTS)?;
            Ok(table.get(id.0.as_slice())?.map(|v| v.value().to_vec()))
        })
        .await
    }

    async fn start_execution(&self, new: NewExecution) -> Result<ExecutionRecord, StoreError> {
        self.writer
            .write(move |txn| ops::start_execution(txn, new))
            .await
    }

    async fn find_execution(
        &self,
        workflow_id: &str,
    ) -> Result<Option<ExecutionRecord>, StoreError> {
        let workflow_id = workflow_id.to_owned();
        self.read(move |txn| {
            let ids = txn.open_table(WORKFLOW_IDS)?;
            let Some(key) = ids.get(workflow_id.as_str())?.map(|v| v.value()) else {
                return Ok(None);
            };
            let execs = txn.open_table(EXECUTIONS)?;
            execs
                .get(key)?
                .map(|v| decode_row::<ExecutionRecord>("executions", v.value()))
                .transpose()
        })
        .await
    }

    async fn load_execution(&self, key: ExecKey) -> Result<LoadedExecution, StoreError> {
        self.read(move |txn| {
            let execs = txn.open_table(EXECUTIONS)?;
            let record: ExecutionRecord = match execs.get(key)? {
                Some(v) => decode_row("executions", v.value())?,
                None => return Err(StoreError::NotFound(format!("execution key {key}"))),
            };
            let history = read_history(
                &txn.open_table(SEALED_HISTORY)?,
                &txn.open_table(HISTORY)?,
                key,
                usize::try_from(record.next_event).unwrap_or(0),
            )?;
            let inbox_table = txn.open_table(INBOX)?;
            let mut inbox = Vec::new();
            for row in inbox_table.range((key, 0)..=(key, u64::MAX))? {
                let (k, v) = row?;
                inbox.push(InboxEntry {
                    key,
                    seq: k.value().1,
                    message: decode_row("inbox", v.value())?,
                });
            }
            Ok(LoadedExecution {
                record,
                history,
                inbox,
            })
        })
        .await
    }

    async fn list_executions(
        &self,
        filter: ListFilter,
    ) -> Result<Vec<ExecutionRecord>, StoreError> {
        self.read(move |txn| visibility::list(txn, &filter)).await
    }

    async fn count_executions(&self, filter: ListFilter) -> Result<u64, StoreError> {
        self.read(move |txn| visibility::count(txn, &filter)).await
    }

    async fn reset(&self, reset: crate::Reset) -> Result<Committed, StoreError> {
        self.writer.write(move |txn| ops::reset(txn, reset)).await
    }

    async fn put_namespace(&self, namespace: NamespaceRecord) -> Result<(), StoreError> {
        self.writer
            .write(move |txn| ops::put_namespace(txn, &namespace))
            .await
    }

    async fn namespaces(&self) -> Result<Vec<NamespaceRecord>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(NAMESPACES)?;
            let mut out = Vec::new();
            for row in table.iter()? {
                out.push(decode_row("namespaces", row?.1.value())?);
            }
            Ok(out)
        })
        .await
    }

    async fn purge_closed(
        &self,
        namespace: String,
        closed_before: Timestamp,
        max: usize,
    ) -> Result<usize, StoreError> {
        self.writer
            .write(move |txn| ops::purge_closed(txn, &namespace, closed_before, max))
            .await
    }

    async fn queue_stats(&self, queue: &str) -> Result<QueueStats, StoreError> {
        let queue = queue.to_owned();
        self.read(move |txn| {
            let ready = txn.open_table(READY)?;
            let mut stats = QueueStats::default();
            for row in ready
                .range((queue.as_str(), 0, 0, 0)..=(queue.as_str(), u64::MAX, u64::MAX, u32::MAX))?
            {
                row?;
                stats.backlog += 1;
            }
            let tasks = txn.open_table(TASKS)?;
            for row in tasks.iter()? {
                let task: crate::ActivityTask = decode_row("activity_tasks", row?.1.value())?;
                if task.queue == queue && matches!(task.state, crate::TaskState::Running { .. }) {
                    stats.running += 1;
                }
            }
            Ok(stats)
        })
        .await
    }

    async fn running_executions(&self) -> Result<Vec<ExecutionRecord>, StoreError> {
        self.read(|txn| {
            let running = txn.open_table(RUNNING)?;
            let execs = txn.open_table(EXECUTIONS)?;
            let mut out = Vec::new();
            for row in running.iter()? {
                let (k, _) = row?;
                if let Some(v) = execs.get(k.value())? {
                    out.push(decode_row("executions", v.value())?);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn commit(&self, transition: Transition) -> Result<Committed, StoreError> {
        // A closing commit's history is sealed here, on the caller's
        // thread, so the group-commit transaction only swaps rows for it.
        let sealed = match transition.close {
            Some(_) => self.seal_closing(&transition)?,
            None => None,
        };
        self.writer
            .write(move |txn| ops::commit(txn, transition, sealed))
            .await
    }

    async fn send(
        &self,
        key: ExecKey,
        message: InboxMessage,
    ) -> Result<Option<InboxEntry>, StoreError> {
        self.writer
            .write(move |txn| ops::send(txn, key, message))
            .await
    }

    async fn signal_with_start(
        &self,
        new: NewExecution,
        message: InboxMessage,
    ) -> Result<(ExecutionRecord, InboxEntry, bool), StoreError> {
        self.writer
            .write(move |txn| ops::signal_with_start(txn, new, message))
            .await
    }

    async fn poll_activities(
        &self,
        queue: &str,
        now: Timestamp,
        max: usize,
    ) -> Result<Polled, StoreError> {
        let queue = queue.to_owned();
        // Fast path: a read transaction answers "nothing due" without
        // taking a slot in the writer's batch.
        let probe = queue.clone();
        let (any_due, next_due) = self
            .read(move |txn| {
                let ready = txn.open_table(READY)?;
                let mut due = ready.range(
                    (probe.as_str(), 0, 0, 0)..=(probe.as_str(), u64::MAX, u64::MAX, u32::MAX),
                )?;
                Ok(match due.next().transpose()? {
                    Some((k, _)) if k.value().1 <= now.0 => (true, None),
                    Some((k, _)) => (false, Some(Timestamp(k.value().1))),
                    None => (false, None),
                })
            })
            .await?;
        if !any_due {
            return Ok(Polled {
                tasks: Vec::new(),
                next_due,
            });
        }
        self.writer
            .write(move |txn| ops::poll_activities(txn, &queue, now, max))
            .await
    }

    async fn report_attempt(
        &self,
        result: AttemptResult,
        now: Timestamp,
    ) -> Result<Option<crate::Reported>, StoreError> {
        self.writer
            .write_deferred(move |txn| ops::report_attempt(txn, result, now))
            .await
    }

    async fn record_heartbeat(
        &self,
        key: ExecKey,
        seq: u32,
        attempt: u32,
        details: Option<Vec<u8>>,
        now: Timestamp,
    ) -> Result<HeartbeatAck, StoreError> {
        self.writer
            .write_deferred(move |txn| ops::record_heartbeat(txn, key, seq, attempt, details, now))
            .await
    }

    async fn close(&self) {
        self.writer.close().await;
    }

    async fn fire_due(&self, now: Timestamp, max: usize) -> Result<DueWork, StoreError> {
        // Fast path, as in `poll_activities`: most wake-ups find nothing due.
        let first = self
            .read(|txn| {
                let due = txn.open_table(DUE)?;
                let first = due.first()?.map(|(k, _)| k.value().0);
                Ok(first)
            })
            .await?;
        match first {
            Some(at) if at <= now.0 => {
                self.writer
                    .write_deferred(move |txn| ops::fire_due(txn, now, max))
                    .await
            }
            next => Ok(DueWork {
                next_due: next.map(Timestamp),
                ..DueWork::default()
            }),
        }
    }

    async fn history_range(
        &self,
        key: ExecKey,
        from: u64,
        max: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.read(move |txn| {
            let corrupt = |e: weft_core::CodecError| StoreError::Corrupt {
                table: "history",
                reason: e.to_string(),
            };
            let take = if max == 0 { usize::MAX } else { max };
            let skip = usize::try_from(from).unwrap_or(usize::MAX);
            // A closed run is one sealed row: decode only the range.
            if let Some(blob) = txn.open_table(SEALED_HISTORY)?.get(key)? {
                return unseal(blob.value())?
                    .iter()
                    .skip(skip)
                    .take(take)
                    .map(|e| decode_event(e).map_err(corrupt))
                    .collect();
            }
            let rows = txn.open_table(HISTORY)?;
            let mut events = Vec::new();
            for row in rows.range((key, from)..=(key, u64::MAX))?.take(take) {
                events.push(decode_event(row?.1.value()).map_err(corrupt)?);
            }
            Ok(events)
        })
        .await
    }

    async fn put_api_key(&self, key: ApiKeyRecord) -> Result<(), StoreError> {
        self.writer
            .write(move |txn| {
                txn.open_table(API_KEYS)?
                    .insert(key.id.as_str(), encode_row(&key)?.as_slice())?;
                Ok(())
            })
            .await
    }

    async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(API_KEYS)?;
            let mut out = Vec::new();
            for row in table.iter()? {
                out.push(decode_row("api_keys", row?.1.value())?);
            }
            Ok(out)
        })
        .await
    }

    async fn put_mask_policy(
        &self,
        workflow_type: String,
        policy: weft_core::mask::MaskPolicy,
    ) -> Result<(), StoreError> {
        self.writer
            .write(move |txn| masks::put(txn, &workflow_type, &policy))
            .await
    }

    async fn mask_policies(
        &self,
    ) -> Result<Vec<(String, weft_core::mask::MaskPolicy)>, StoreError> {
        self.read(masks::all).await
    }

    async fn append_audit(&self, entries: Vec<AuditRecord>) -> Result<(), StoreError> {
        self.writer
            .write(move |txn| {
                let mut meta = txn.open_table(META)?;
                let mut seq = meta.get("next_audit_seq")?.map_or(0, |v| v.value());
                let mut table = txn.open_table(AUDIT)?;
                for entry in &entries {
                    table.insert((entry.at.0, seq), encode_row(entry)?.as_slice())?;
                    seq += 1;
                }
                meta.insert("next_audit_seq", seq)?;
                Ok(())
            })
            .await
    }

    async fn audit_log(&self, filter: AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        self.read(move |txn| {
            let table = txn.open_table(AUDIT)?;
            let limit = if filter.limit == 0 {
                1000
            } else {
                filter.limit
            };
            let wanted =
                |r: &AuditRecord| filter.identity.as_ref().is_none_or(|i| *i == r.identity);
            let mut out = Vec::new();
            if let Some(since) = filter.since {
                for row in table.range((since.0, 0)..)? {
                    let record: AuditRecord = decode_row("audit_log", row?.1.value())?;
                    if wanted(&record) {
                        out.push(record);
                        if out.len() == limit {
                            break;
                        }
                    }
                }
            } else {
                for row in table.iter()?.rev() {
                    let record: AuditRecord = decode_row("audit_log", row?.1.value())?;
                    if wanted(&record) {
                        out.push(record);
                        if out.len() == limit {
                            break;
                        }
                    }
                }
                out.reverse();
            }
            Ok(out)
        })
        .await
    }
}

/// The database layout this build writes, in `meta` as `row_format`:
/// - 3: as 2, with the listing index (`visibility.rs`).
/// - 2: rows of the executions, inbox, activity task and namespace tables
///   start with their layout version ([`encode_row`]).
/// - 1 (no `row_format`): those rows are bare postcard.
const ROW_FORMAT: u64 = 3;

/// Prefix every value of table `def` with [`ROW_VERSION`] (its keys made
/// owned by `owned` and borrowed back by `borrow`); how many rows.
macro_rules! prefix_rows {
    ($txn:expr, $def:expr, $owned:expr, $borrow:expr) => {{
        let mut table = $txn.open_table($def)?;
        let mut rows = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            let mut value = Vec::with_capacity(v.value().len() + 1);
            value.push(ROW_VERSION);
            value.extend_from_slice(v.value());
            rows.push((($owned)(k.value()), value));
        }
        for (k, v) in &rows {
            table.insert(($borrow)(k), v.as_slice())?;
        }
        rows.len() as u64
    }};
}

/// Bring a database written by an older build to [`ROW_FORMAT`], in the
/// transaction that opens it (all or nothing); refuse one from a newer
/// build.
fn migrate(txn: &redb::WriteTransaction, path: &Path) -> Result<(), StoreError> {
    let mut meta = txn.open_table(META)?;
    let format = meta.get("row_format")?.map(|v| v.value());
    match format {
        Some(ROW_FORMAT) => return Ok(()),
        Some(newer) if newer > ROW_FORMAT => {
            return Err(StoreError::Storage(format!(
                "{} was written by a newer weft (row format {newer}; this build knows up to \
                 {ROW_FORMAT}); run that version or a newer one",
                path.display()
            )));
        }
        _ => {}
    }
    if format == Some(2) {
        return index_visibility(&mut meta, txn, path);
    }
    // Format 1 (or a new database): every row gets the version byte of
    // the layout it already has.
    let migrated = prefix_rows!(txn, EXECUTIONS, |k: u64| k, |k: &u64| *k)
        + prefix_rows!(txn, INBOX, |k: (u64, u64)| k, |k: &(u64, u64)| *k)
        + prefix_rows!(txn, TASKS, |k: (u64, u32)| k, |k: &(u64, u32)| *k)
        + prefix_rows!(txn, NAMESPACES, str::to_owned, String::as_str);
    if migrated > 0 {
        tracing::info!(
            "{}: {migrated} rows moved to row format {ROW_FORMAT} (versioned rows)",
            path.display()
        );
    }
    index_visibility(&mut meta, txn, path)
}

/// Format 2 to 3: build the listing index (`visibility.rs`).
fn index_visibility(
    meta: &mut redb::Table<'_, &str, u64>,
    txn: &redb::WriteTransaction,
    path: &Path,
) -> Result<(), StoreError> {
    let indexed = visibility::build(txn)?;
    if indexed > 0 {
        tracing::info!(
            "{}: {indexed} executions indexed for listing (row format {ROW_FORMAT})",
            path.display()
        );
    }
    meta.insert("row_format", ROW_FORMAT)?;
    Ok(())
}
