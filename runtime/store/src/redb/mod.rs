//! The embedded backend: one redb file.
//!
//! Reads run on the caller's thread in their own read transactions (redb
//! is MVCC, so they never wait for writers). Writes go to one writer task that
//! applies every queued write in one transaction and one fsync: group commit.
//! A caller's write resolves only after its batch is durable.

mod ops;
mod tables;
mod writer;

use crate::model::{
    AttemptResult, Committed, DueWork, ExecKey, ExecutionRecord, ListFilter, LoadedExecution,
    NamespaceRecord, NewExecution, Polled, QueueStats, Transition,
};
use crate::{HeartbeatAck, InboxEntry, Store, StoreError};
use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable};
use std::path::Path;
use std::sync::Arc;
use tables::*;
use weft_core::{ComponentId, InboxMessage, Timestamp, decode_event};
use writer::Writer;

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
        txn.commit()?;
        let writer = Writer::start(db.clone());
        Ok(RedbStore { db, writer })
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
                .map(|v| decode::<ExecutionRecord>("executions", v.value()))
                .transpose()
        })
        .await
    }

    async fn load_execution(&self, key: ExecKey) -> Result<LoadedExecution, StoreError> {
        self.read(move |txn| {
            let execs = txn.open_table(EXECUTIONS)?;
            let record: ExecutionRecord = match execs.get(key)? {
                Some(v) => decode("executions", v.value())?,
                None => return Err(StoreError::NotFound(format!("execution key {key}"))),
            };
            let history_table = txn.open_table(HISTORY)?;
            let mut history = Vec::with_capacity(usize::try_from(record.next_event).unwrap_or(0));
            for row in history_table.range((key, 0)..=(key, u64::MAX))? {
                let (_, v) = row?;
                history.push(decode_event(v.value()).map_err(|e| StoreError::Corrupt {
                    table: "history",
                    reason: e.to_string(),
                })?);
            }
            let inbox_table = txn.open_table(INBOX)?;
            let mut inbox = Vec::new();
            for row in inbox_table.range((key, 0)..=(key, u64::MAX))? {
                let (k, v) = row?;
                inbox.push(InboxEntry {
                    key,
                    seq: k.value().1,
                    message: decode("inbox", v.value())?,
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
        self.read(move |txn| {
            let execs = txn.open_table(EXECUTIONS)?;
            let mut out = Vec::new();
            // Keys grow with every start: newest first is a reverse scan.
            for row in execs.iter()?.rev() {
                let (_, v) = row?;
                let record: ExecutionRecord = decode("executions", v.value())?;
                if filter.matches(&record) {
                    out.push(record);
                    if out.len() == filter.limit {
                        break;
                    }
                }
            }
            Ok(out)
        })
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
                out.push(decode("namespaces", row?.1.value())?);
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
                let task: crate::ActivityTask = decode("activity_tasks", row?.1.value())?;
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
                    out.push(decode("executions", v.value())?);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn commit(&self, transition: Transition) -> Result<Committed, StoreError> {
        self.writer
            .write(move |txn| ops::commit(txn, transition))
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
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    table: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        table,
        reason: e.to_string(),
    })
}

pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Plain data into a Vec: serialization cannot fail.
    postcard::to_allocvec(value).unwrap_or_default()
}
