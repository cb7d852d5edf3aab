//! Group commit: one task applies all queued writes in one transaction.

use crate::StoreError;
use redb::{Database, Durability, WriteTransaction};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

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
type Apply = Box<dyn FnOnce(&WriteTransaction) -> (bool, Reply) + Send>;

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
    pub(crate) fn start(db: Arc<Database>) -> Self {
        let (jobs, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(db, rx));
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
    /// `op` must not write anything before it has validated its input:
    /// a logical error (`Err` other than `Storage`) is returned to this
    /// caller alone while the batch commits, so it must leave no trace.
    pub(crate) async fn write<R, F>(&self, op: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<R, StoreError> + Send + 'static,
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
        F: FnOnce(&WriteTransaction) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(false, op).await
    }

    async fn submit<R, F>(&self, durable: bool, op: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let apply: Apply = Box::new(move |txn| {
            let result = op(txn);
            let fatal = matches!(
                result,
                Err(StoreError::Storage(_))
                    | Err(StoreError::Backend(_))
                    | Err(StoreError::Corrupt { .. })
            );
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

async fn run(db: Arc<Database>, mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let jobs = std::mem::take(&mut batch);
        let db = db.clone();
        // spawn_blocking: redb is synchronous, and a running blocking task
        // also keeps tokio's paused test clock from jumping during a commit.
        let done = tokio::task::spawn_blocking(move || apply(&db, jobs)).await;
        if let Err(e) = done {
            tracing::error!("store writer batch panicked: {e}");
        }
    }
}

fn apply(db: &Database, jobs: Vec<Job>) {
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
        let (job_fatal, reply) = (job.apply)(&txn);
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
