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
#[cfg(test)]
mod tamper;
mod txn;
mod visibility;
mod writer;

use crate::model::{
    ApiKeyRecord, AttemptResult, AuditFilter, AuditRecord, Committed, DueWork, ExecKey,
    ExecutionRecord, ListFilter, LoadedExecution, NamespaceRecord, NewExecution, Polled,
    QueueStats, Transition,
};
use crate::protection::{
    SealedRow, cipher, decode_event, decode_listed, decode_record, encode_events,
};
use crate::{HeartbeatAck, InboxEntry, Store, StoreError};
use async_trait::async_trait;
use history::{encoded_history, read_history, seal, unseal};
use redb::{Database, ReadableDatabase, ReadableTable};
use rows::{ROW_VERSION, decode_row, encode_row};
use std::path::Path;
use std::sync::Arc;
use tables::*;
use weft_core::{ComponentId, Event, InboxMessage, Timestamp};
use weft_protect::Protector;
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
    protector: Arc<Protector>,
}

impl RedbStore {
    /// Open (or create) the database at `path`, sealing new executions'
    /// payloads with `protector` (`Protector::off()`: in plaintext). Must
    /// be called inside a tokio runtime: it starts the writer task, which
    /// stops when the store is dropped.
    pub fn open(path: impl AsRef<Path>, protector: Protector) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let db = Database::create(path).map_err(|e| {
            StoreError::Storage(format!("cannot open database {}: {e}", path.display()))
        })?;
        let db = Arc::new(db);
        // Create every table up front so read transactions never miss one.
        let protector = Arc::new(protector);
        let txn = db.begin_write()?;
        tables::create_all(&txn)?;
        migrate(&txn, path, &protector)?;
        txn.commit()?;
        let writer = Writer::start(db.clone(), protector.clone());
        Ok(RedbStore {
            db,
            writer,
            protector,
        })
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
        let Some(row) = txn.open_table(EXECUTIONS)?.get(t.key)? else {
            return Ok(None);
        };
        let mut record = decode_record(row.value(), &self.protector)?;
        let mut rows = encoded_history(
            &txn.open_table(SEALED_HISTORY)?,
            &txn.open_table(HISTORY)?,
            t.key,
        )?;
        if rows.len() as u64 != t.first_index || record.next_event != t.first_index {
            return Ok(None);
        }
        let from = record.protection.as_ref().map(|p| p.head);
        let cipher = cipher(&self.protector, &record)?;
        rows.extend(encode_events(
            &mut record,
            t.first_index,
            &t.events,
            &cipher,
        )?);
        Ok(Some(ops::Sealed {
            events: rows.len() as u64,
            blob: seal(&rows)?,
            from,
            head: record.protection.as_ref().map(|p| p.head),
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
            .write(move |txn| ops::start_execution(txn, new, weft_core::ChainHash::ZERO))
            .await
    }

    async fn find_execution(
        &self,
        workflow_id: &str,
    ) -> Result<Option<ExecutionRecord>, StoreError> {
        let workflow_id = workflow_id.to_owned();
        let protector = self.protector.clone();
        self.read(move |txn| {
            let ids = txn.open_table(WORKFLOW_IDS)?;
            let Some(key) = ids.get(workflow_id.as_str())?.map(|v| v.value()) else {
                return Ok(None);
            };
            let execs = txn.open_table(EXECUTIONS)?;
            execs
                .get(key)?
                .map(|v| decode_listed(v.value(), &protector))
                .transpose()
        })
        .await
    }

    async fn load_execution(&self, key: ExecKey) -> Result<LoadedExecution, StoreError> {
        let protector = self.protector.clone();
        self.read(move |txn| {
            let execs = txn.open_table(EXECUTIONS)?;
            let record: ExecutionRecord = match execs.get(key)? {
                Some(v) => decode_record(v.value(), &protector)?,
                None => return Err(StoreError::NotFound(format!("execution key {key}"))),
            };
            let cipher = cipher(&protector, &record)?;
            let history = read_history(
                &txn.open_table(SEALED_HISTORY)?,
                &txn.open_table(HISTORY)?,
                key,
                usize::try_from(record.next_event).unwrap_or(0),
                &cipher,
            )?;
            let inbox_table = txn.open_table(INBOX)?;
            let mut inbox = Vec::new();
            for row in inbox_table.range((key, 0)..=(key, u64::MAX))? {
                let (k, v) = row?;
                inbox.push(InboxEntry {
                    key,
                    seq: k.value().1,
                    message: SealedRow::<InboxMessage>::decode("inbox", v.value())?
                        .open(&cipher)?,
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
        let protector = self.protector.clone();
        self.read(move |txn| visibility::list(txn, &protector, &filter))
            .await
    }

    async fn count_executions(&self, filter: ListFilter) -> Result<u64, StoreError> {
        let protector = self.protector.clone();
        self.read(move |txn| visibility::count(txn, &protector, &filter))
            .await
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
                // Scheduling fields only: no key needed.
                let task =
                    SealedRow::<crate::ActivityTask>::decode("activity_tasks", row?.1.value())?
                        .value;
                if task.queue == queue && matches!(task.state, crate::TaskState::Running { .. }) {
                    stats.running += 1;
                }
            }
            Ok(stats)
        })
        .await
    }

    async fn running_executions(&self) -> Result<Vec<ExecutionRecord>, StoreError> {
        let protector = self.protector.clone();
        self.read(move |txn| {
            let running = txn.open_table(RUNNING)?;
            let execs = txn.open_table(EXECUTIONS)?;
            let mut out = Vec::new();
            for row in running.iter()? {
                let (k, _) = row?;
                if let Some(v) = execs.get(k.value())? {
                    out.push(decode_listed(v.value(), &protector)?);
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
        let protector = self.protector.clone();
        self.read(move |txn| {
            let record = match txn.open_table(EXECUTIONS)?.get(key)? {
                Some(v) => decode_record(v.value(), &protector)?,
                None => return Err(StoreError::NotFound(format!("execution key {key}"))),
            };
            let cipher = cipher(&protector, &record)?;
            let take = if max == 0 { usize::MAX } else { max };
            let skip = usize::try_from(from).unwrap_or(usize::MAX);
            // A closed run is one sealed row: decode only the range.
            if let Some(blob) = txn.open_table(SEALED_HISTORY)?.get(key)? {
                return unseal(blob.value())?
                    .iter()
                    .enumerate()
                    .skip(skip)
                    .take(take)
                    .map(|(i, e)| decode_event(e, i as u64, &cipher))
                    .collect();
            }
            let rows = txn.open_table(HISTORY)?;
            let mut events = Vec::new();
            for row in rows.range((key, from)..=(key, u64::MAX))?.take(take) {
                let (k, v) = row?;
                events.push(decode_event(v.value(), k.value().1, &cipher)?);
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

    fn signing_public_key(&self) -> Option<[u8; 32]> {
        self.protector.signing_public_key()
    }

    async fn checkpoint_closed(
        &self,
        now: Timestamp,
    ) -> Result<Option<weft_protect::checkpoint::Checkpoint>, StoreError> {
        // Fast path: most calls find nothing to sign.
        let pending = self
            .read(|txn| {
                let unsigned = txn.open_table(UNSIGNED)?;
                Ok(unsigned.first()?.is_some())
            })
            .await?;
        if !pending {
            return Ok(None);
        }
        self.writer
            .write(move |txn| ops::checkpoint_closed(txn, now))
            .await
    }

    async fn checkpoint_open(
        &self,
        now: Timestamp,
        keep: usize,
    ) -> Result<Option<weft_protect::checkpoint::Checkpoint>, StoreError> {
        self.writer
            .write(move |txn| ops::checkpoint_open(txn, now, keep))
            .await
    }

    async fn audited_history(&self, key: ExecKey) -> Result<crate::AuditedHistory, StoreError> {
        let protector = self.protector.clone();
        self.read(move |txn| {
            let record = match txn.open_table(EXECUTIONS)?.get(key)? {
                Some(v) => decode_listed(v.value(), &protector)?,
                None => return Err(StoreError::NotFound(format!("execution key {key}"))),
            };
            let stored = encoded_history(
                &txn.open_table(SEALED_HISTORY)?,
                &txn.open_table(HISTORY)?,
                key,
            )?;
            let checkpoint = ops::covering(
                &record,
                &txn.open_table(CHECKPOINTS)?,
                &txn.open_table(OPEN_CHECKPOINTS)?,
            )?;
            Ok(crate::AuditedHistory {
                record,
                stored,
                checkpoint,
            })
        })
        .await
    }

    async fn erase(&self, key: ExecKey, at: Timestamp) -> Result<ExecutionRecord, StoreError> {
        self.writer.write(move |txn| ops::erase(txn, key, at)).await
    }

    async fn rewrap(&self, max: usize) -> Result<usize, StoreError> {
        self.writer.write(move |txn| ops::rewrap(txn, max)).await
    }
}

/// The database layout this build writes, in `meta` as `row_format`:
/// - 4: records carry their protection (data key, chain head), history
///   events are in the stored format 4 (sealed, linked), inbox and task
///   rows have their secret fields sealed (`protection.rs`). Rows of
///   executions started before stay as they were and are still read.
/// - 3: as 2, with the listing index (`visibility.rs`).
/// - 2: rows of the executions, inbox, activity task and namespace tables
///   start with their layout version ([`encode_row`]).
/// - 1 (no `row_format`): those rows are bare postcard.
const ROW_FORMAT: u64 = 4;

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
fn migrate(
    txn: &redb::WriteTransaction,
    path: &Path,
    protector: &Protector,
) -> Result<(), StoreError> {
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
    if format == Some(3) {
        // Nothing to rewrite: format 4 reads every row of format 3.
        meta.insert("row_format", ROW_FORMAT)?;
        return Ok(());
    }
    if format == Some(2) {
        return index_visibility(&mut meta, txn, path, protector);
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
    index_visibility(&mut meta, txn, path, protector)
}

/// Format 2 to 3: build the listing index (`visibility.rs`).
fn index_visibility(
    meta: &mut redb::Table<'_, &str, u64>,
    txn: &redb::WriteTransaction,
    path: &Path,
    protector: &Protector,
) -> Result<(), StoreError> {
    let indexed = visibility::build(txn, protector)?;
    if indexed > 0 {
        tracing::info!(
            "{}: {indexed} executions indexed for listing (row format {ROW_FORMAT})",
            path.display()
        );
    }
    meta.insert("row_format", ROW_FORMAT)?;
    Ok(())
}
