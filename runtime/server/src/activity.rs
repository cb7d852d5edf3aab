//! Native activities: Rust functions registered by name.

use serde::{Serialize, de::DeserializeOwned};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use weft_core::{ExecutionId, Failure, Payload};

/// What an activity knows about the attempt it is running.
#[derive(Debug, Clone)]
pub struct ActivityContext {
    /// The calling execution.
    pub execution: ExecutionId,
    /// Activity name.
    pub name: String,
    /// 1-based attempt number.
    pub attempt: u32,
    /// Stable across attempts: use it to make a side effect exactly once
    /// (e.g. as the payment processor's idempotency key).
    pub idempotency_key: String,
    pub(crate) cancel: tokio::sync::watch::Receiver<bool>,
    /// Where heartbeats go (none for a detached context).
    pub(crate) heartbeats: Option<Heartbeats>,
    /// Progress reported by the latest heartbeat of an earlier attempt.
    pub(crate) last_details: Option<Payload>,
}

/// The store handle an attempt's heartbeats are recorded through.
#[derive(Clone)]
pub(crate) struct Heartbeats {
    pub(crate) store: Arc<dyn weft_store::Store>,
    pub(crate) key: weft_store::ExecKey,
    pub(crate) seq: u32,
    pub(crate) attempt: u32,
}

impl std::fmt::Debug for Heartbeats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Heartbeats(task {}/{} attempt {})",
            self.key, self.seq, self.attempt
        )
    }
}

impl ActivityContext {
    /// A context for calling an activity function directly (in a unit test
    /// of the activity): never cancelled.
    pub fn detached(execution: ExecutionId, name: &str, attempt: u32) -> Self {
        let (_, cancel) = tokio::sync::watch::channel(false);
        ActivityContext {
            idempotency_key: execution.idempotency_key(0),
            execution,
            name: name.to_owned(),
            attempt,
            cancel,
            heartbeats: None,
            last_details: None,
        }
    }

    /// The progress the last heartbeat of an earlier attempt reported (see
    /// [`ActivityContext::heartbeat_details`]): resume from there.
    pub fn last_heartbeat_details<T: DeserializeOwned>(&self) -> Option<T> {
        self.last_details
            .as_deref()
            .and_then(|bytes| serde_json::from_slice(bytes).ok())
    }

    /// Report liveness and progress (a checkpoint, JSON-encoded). The
    /// details are kept with the task: if this attempt fails, the next one
    /// reads them with [`ActivityContext::last_heartbeat_details`]. Fails
    /// with a cancellation once the execution is cancelling, and with
    /// `AttemptSuperseded` if this attempt already timed out (another one
    /// owns the task): stop in both cases.
    pub async fn heartbeat_details(&self, details: &impl Serialize) -> Result<(), ActivityError> {
        self.heartbeat()?;
        let Some(hb) = &self.heartbeats else {
            return Ok(());
        };
        let details = serde_json::to_vec(details).map_err(|e| {
            ActivityError::non_retryable("PayloadError", format!("heartbeat details: {e}"))
        })?;
        match hb
            .store
            .record_heartbeat(hb.key, hb.seq, hb.attempt, Some(details))
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(ActivityError::non_retryable(
                "AttemptSuperseded",
                "this attempt timed out or its execution closed; stop",
            )),
            // Heartbeats are advisory: the attempt goes on, and a retry
            // would resume from the previous checkpoint.
            Err(e) => {
                tracing::warn!(activity = self.name, "heartbeat not recorded: {e}");
                Ok(())
            }
        }
    }

    /// True once the calling execution was asked to cancel (or was
    /// terminated): stop, clean up, and return [`ActivityError::cancelled`].
    pub fn is_cancelled(&self) -> bool {
        *self.cancel.borrow()
    }

    /// Resolves when the calling execution is asked to cancel; for
    /// `tokio::select!` against the activity's own work.
    pub async fn cancelled(&self) {
        let mut cancel = self.cancel.clone();
        // An error means the runtime dropped the switch (shutdown): the
        // attempt is being abandoned anyway, so never resolve.
        if cancel.wait_for(|c| *c).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Report liveness from a long activity; fails with a cancellation once
    /// the execution is cancelling, so `ctx.heartbeat()?` in a loop stops
    /// the activity promptly.
    pub fn heartbeat(&self) -> Result<(), ActivityError> {
        if self.is_cancelled() {
            return Err(ActivityError::cancelled());
        }
        Ok(())
    }
}

/// An activity's error: retried according to the caller's retry policy
/// unless marked non-retryable or its type is listed as non-retryable.
#[derive(Debug, Clone)]
pub struct ActivityError(pub(crate) Failure);

impl ActivityError {
    /// A retryable error of type `error_type`.
    pub fn retryable(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        ActivityError(Failure::new(error_type, message))
    }

    /// The activity stopped because its execution is cancelling. Not
    /// retried.
    pub fn cancelled() -> Self {
        ActivityError(Failure::new("Cancelled", "the activity was cancelled").non_retryable())
    }

    /// An error that is never retried.
    pub fn non_retryable(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        ActivityError(Failure::new(error_type, message).non_retryable())
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Payload, Failure>> + Send>>;
pub(crate) type Handler = Arc<dyn Fn(ActivityContext, Payload) -> BoxFuture + Send + Sync>;

/// Activities by name, each served on a task queue.
#[derive(Clone, Default)]
pub struct ActivityRegistry {
    handlers: HashMap<String, (String, Handler)>,
    /// Per-queue limits on attempts running at once (queue name without
    /// namespace); others use `RuntimeConfig::worker_concurrency`.
    concurrency: HashMap<String, usize>,
}

impl ActivityRegistry {
    /// Run at most `limit` attempts of `queue` at once in this process
    /// (e.g. 1 for work that must never overlap). In every namespace.
    pub fn set_concurrency(&mut self, queue: &str, limit: usize) -> &mut Self {
        self.concurrency.insert(queue.to_owned(), limit.max(1));
        self
    }

    /// The in-process concurrency limit of `queue` (a namespaced name).
    pub(crate) fn concurrency_of(&self, queue: &str, default: usize) -> usize {
        let (_, name) = weft_core::namespace::split(queue);
        self.concurrency
            .get(name)
            .copied()
            .unwrap_or(default)
            .max(1)
    }

    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Register `f` as activity `name` on the default queue.
    pub fn register<I, O, F, Fut>(&mut self, name: &str, f: F) -> &mut Self
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + 'static,
        F: Fn(ActivityContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, ActivityError>> + Send + 'static,
    {
        self.register_on(crate::runtime::DEFAULT_QUEUE, name, f)
    }

    /// Register `f` as activity `name`, served from `queue`.
    pub fn register_on<I, O, F, Fut>(&mut self, queue: &str, name: &str, f: F) -> &mut Self
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + 'static,
        F: Fn(ActivityContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, ActivityError>> + Send + 'static,
    {
        let f = Arc::new(f);
        let handler: Handler = Arc::new(move |ctx, input: Payload| {
            let f = f.clone();
            Box::pin(async move {
                let input: I = serde_json::from_slice(&input).map_err(|e| {
                    Failure::new(
                        "PayloadError",
                        format!("activity `{}` input: {e}", ctx.name),
                    )
                    .non_retryable()
                })?;
                let output = f(ctx, input).await.map_err(|e| e.0)?;
                serde_json::to_vec(&output)
                    .map_err(|e| Failure::new("PayloadError", e.to_string()).non_retryable())
            })
        });
        self.handlers
            .insert(name.to_owned(), (queue.to_owned(), handler));
        self
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Handler> {
        self.handlers.get(name).map(|(_, h)| h)
    }

    /// The queues that registered activities are served from, sorted.
    pub fn queues(&self) -> Vec<String> {
        let mut queues: Vec<String> = self.handlers.values().map(|(q, _)| q.clone()).collect();
        queues.sort();
        queues.dedup();
        queues
    }
}
