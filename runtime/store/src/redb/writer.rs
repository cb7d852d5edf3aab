//! Group commit: one task applies all queued writes in one transaction.

use super::txn::Txn;
use crate::StoreError;
use redb::{Database, Durability, WriteTransaction};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use weft_protect::Protector;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Both guarded values stay valid if a holder panicked.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Most writes applied in one transaction.
const MAX_BATCH: usize = 512;

/// Sends the caller its result once the batch's commit outcome is known.
type Reply = Box<dyn FnOnce(Option<&StoreError>) + Send>;
/// One write: applied inside the shared transaction; says whether it hit a
/// storage error (which aborts the whole batch) and how to reply.
type Apply = Box<dyn FnOnce(&WriteTransaction, &Protector) -> (bool, Reply) + Send>;

/// One queued write and whether its caller needs it on disk.
struct Job {
    durable: bool,
    apply: Apply,
}

pub(crate) struct Writer {
    jobs: Mutex<Option<mpsc::UnboundedSender<Job>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Start the writer task. It ends when the last `Writer` is dropped,
    /// after finishing the batch in hand.
    pub(crate) fn start(db: Arc<Database>, protector: Arc<Protector>) -> Self {
        let (jobs, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(db, protector, rx));
        Writer {
            jobs: Mutex::new(Some(jobs)),
            task: Mutex::new(Some(task)),
        }
    }

    /// Stop accepting writes, finish the queued ones, and wait until the
    /// writer task has released the database.
    pub(crate) async fn close(&self) {
        drop(lock(&self.jobs).take());
        let task = lock(&self.task).take();
        if let Some(task) = task
            && let Err(e) = task.await
        {
            tracing::error!("store writer task failed: {e}");
        }
    }

    /// Apply `op` in the next batch; resolves after the batch is durable.
    ///
    /// A logical error (an `Err` that is not a storage failure) is returned
    /// to this caller alone while the rest of the batch commits, so `op`
    /// must validate before it writes. If it wrote and then failed, the
    /// whole batch is rolled back instead: partial writes never commit.
    pub(crate) async fn write<R, F>(&self, op: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Txn<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(true, op).await
    }

    /// Like [`Writer::write`], but resolves once the batch is committed,
    /// without waiting for it to reach the disk: the write becomes durable
    /// with the next durable commit (redb persists every earlier commit with
    /// it), and a crash before that loses it. Only for writes whose loss
    /// the protocol tolerates (see `Store`).
    pub(crate) async fn write_deferred<R, F>(&self, op: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Txn<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(false, op).await
    }

    async fn submit<R, F>(&self, durable: bool, op: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Txn<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let apply: Apply = Box::new(move |txn, protector| {
            let txn = Txn::new(txn, protector);
            let result = op(&txn);
            let fatal = match &result {
                Ok(_) => false,
                Err(
                    StoreError::Storage(_) | StoreError::Backend(_) | StoreError::Corrupt { .. },
                ) => true,
                Err(e) if txn.wrote() => {
                    tracing::error!(
                        "a store write failed ({e}) after changing tables; \
                         rolling its batch back so the partial write is not committed"
                    );
                    true
                }
                Err(_) => false,
            };
            let reply: Reply = Box::new(move |commit_error| {
                let _ = tx.send(match commit_error {
                    Some(e) => Err(StoreError::Storage(e.to_string())),
                    None => result,
                });
            });
            (fatal, reply)
        });
        lock(&self.jobs)
            .as_ref()
            .ok_or(StoreError::Closed)?
            .send(Job { durable, apply })
            .map_err(|_| StoreError::Closed)?;
        // A dropped reply means the batch never ran (the writer logged why).
        rx.await.map_err(|_| {
            StoreError::Storage("the store writer could not run this write; see the log".into())
        })?
    }
}

async fn run(db: Arc<Database>, protector: Arc<Protector>, mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let jobs = std::mem::take(&mut batch);
        let db = db.clone();
        let protector = protector.clone();
        // spawn_blocking: redb is synchronous, and a running blocking task
        // also keeps tokio's paused test clock from jumping during a commit.
        let done = tokio::task::spawn_blocking(move || apply(&db, &protector, jobs)).await;
        if let Err(e) = done {
            tracing::error!("store writer batch panicked: {e}");
        }
    }
}

fn apply(db: &Database, protector: &Protector, jobs: Vec<Job>) {
    let mut txn = match db.begin_write() {
        Ok(txn) => txn,
        Err(e) => return fail_all(jobs, StoreError::Storage(e.to_string())),
    };
    // One fsync for the batch if anyone in it needs durability; none if
    // all its writes may wait for the next durable commit.
    let durability = if jobs.iter().any(|j| j.durable) {
        Durability::Immediate
    } else {
        Durability::None
    };
    if let Err(e) = txn.set_durability(durability) {
        return fail_all(jobs, StoreError::Storage(e.to_string()));
    }
    let mut replies = Vec::with_capacity(jobs.len());
    let mut fatal = false;
    for job in jobs {
        let (job_fatal, reply) = (job.apply)(&txn, protector);
        fatal |= job_fatal;
        replies.push(reply);
    }
    let outcome = if fatal {
        // A storage error may have left partial writes: drop everything.
        drop(txn.abort());
        Some(StoreError::Storage(
            "a write in this batch failed; the batch was rolled back".into(),
        ))
    } else {
        txn.commit()
            .err()
            .map(|e| StoreError::Storage(e.to_string()))
    };
    if let Some(e) = &outcome {
        tracing::error!("store commit failed: {e}");
    }
    for reply in replies {
        reply(outcome.as_ref());
    }
}

fn fail_all(jobs: Vec<Job>, error: StoreError) {
    // The jobs never run; dropping them drops their reply channels, which
    // their callers report as a storage error.
    tracing::error!(
        "store writer cannot begin a transaction ({} writes dropped): {error}",
        jobs.len()
    );
    drop(jobs);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redb::tables::META;
    use redb::{ReadableDatabase, ReadableTable};

    fn meta(db: &Database, name: &str) -> Option<u64> {
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(META).unwrap();
        table.get(name).unwrap().map(|v| v.value())
    }

    #[tokio::test]
    async fn a_failed_write_leaves_nothing_and_a_write_then_failure_rolls_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("w.redb")).unwrap());
        let writer = Writer::start(db.clone(), Arc::new(Protector::off()));
        writer
            .write(|txn| {
                txn.open_table(META)?.insert("kept", 1)?;
                Ok(())
            })
            .await
            .unwrap();

        // Validated before writing: the caller gets its own error.
        let refused = writer
            .write(|txn| -> Result<(), StoreError> {
                let table = txn.open_table(META)?;
                let _ = table.get("kept")?;
                Err(StoreError::Invalid("refused before writing".into()))
            })
            .await;
        assert!(
            matches!(refused, Err(StoreError::Invalid(_))),
            "{refused:?}"
        );

        // Wrote, then failed: nothing of it is committed.
        let broken = writer
            .write(|txn| -> Result<(), StoreError> {
                txn.open_table(META)?.insert("partial", 2)?;
                Err(StoreError::Invalid("refused after writing".into()))
            })
            .await;
        assert!(matches!(broken, Err(StoreError::Storage(_))), "{broken:?}");
        writer.close().await;
        assert_eq!(meta(&db, "kept"), Some(1));
        assert_eq!(meta(&db, "partial"), None);
    }
}
