//! Native activities: Rust functions registered by name.

use serde::{Serialize, de::DeserializeOwned};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use weft_core::{ExecutionId, Failure, Payload};
use weft_store::HeartbeatAck;

/// What the runtime tells a running attempt through its context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum AttemptSignal {
    /// Go on.
    #[default]
    Running,
    /// The execution was asked to cancel: stop and report a cancellation.
    CancelRequested,
    /// The attempt timed out (another attempt owns the task, or none will
    /// run): stop; its report would be ignored.
    Superseded,
}

/// The runtime's end of an attempt's [`AttemptSignal`].
pub(crate) type AttemptSwitch = tokio::sync::watch::Sender<AttemptSignal>;

/// Raise `signal` on `switch`, never lowering a stronger one.
pub(crate) fn raise(switch: &AttemptSwitch, signal: AttemptSignal) {
    switch.send_if_modified(|current| {
        let stronger = match signal {
            AttemptSignal::Running => false,
            AttemptSignal::CancelRequested => *current == AttemptSignal::Running,
            AttemptSignal::Superseded => *current != AttemptSignal::Superseded,
        };
        if stronger {
            *current = signal;
        }
        stronger
    });
}

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
    pub(crate) signal: tokio::sync::watch::Receiver<AttemptSignal>,
    /// Where heartbeats go (none for a detached context or a local
    /// activity).
    pub(crate) heartbeats: Option<Heartbeats>,
    /// Progress reported by the latest heartbeat of an earlier attempt.
    pub(crate) last_details: Option<Payload>,
}

/// How an attempt's heartbeats reach the store.
#[derive(Clone)]
pub(crate) struct Heartbeats {
    pub(crate) store: Arc<dyn weft_store::Store>,
    pub(crate) clock: Arc<dyn crate::Clock>,
    pub(crate) key: weft_store::ExecKey,
    pub(crate) seq: u32,
    pub(crate) attempt: u32,
    /// The activity's heartbeat timeout: plain heartbeats are written only
    /// when it has one, at most three times per timeout.
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) last_written: Arc<std::sync::Mutex<Option<tokio::time::Instant>>>,
    pub(crate) switch: AttemptSwitch,
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

impl Heartbeats {
    /// Record a heartbeat and pass its answer to the attempt's switch.
    async fn write(
        &self,
        details: Option<Payload>,
    ) -> Result<HeartbeatAck, weft_store::StoreError> {
        *crate::util::lock(&self.last_written) = Some(tokio::time::Instant::now());
        let ack = self
            .store
            .record_heartbeat(self.key, self.seq, self.attempt, details, self.clock.now())
            .await?;
        if !ack.current {
            raise(&self.switch, AttemptSignal::Superseded);
        } else if ack.cancel_requested {
            raise(&self.switch, AttemptSignal::CancelRequested);
        }
        Ok(ack)
    }

    /// A liveness beat, written in the background when the heartbeat
    /// timeout needs it (throttled to a third of the timeout).
    fn beat(&self) {
        let Some(timeout) = self.timeout_ms else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        {
            let mut last = crate::util::lock(&self.last_written);
            let throttle = std::time::Duration::from_millis(timeout / 3);
            if last.is_some_and(|at| at.elapsed() < throttle) {
                return;
            }
            *last = Some(tokio::time::Instant::now());
        }
        let this = self.clone();
        runtime.spawn(async move {
            if let Err(e) = this.write(None).await {
                tracing::warn!(task = ?this, "heartbeat not recorded: {e}");
            }
        });
    }
}

impl ActivityContext {
    /// A context for calling an activity function directly (in a unit test
    /// of the activity): never cancelled.
    pub fn detached(execution: ExecutionId, name: &str, attempt: u32) -> Self {
        let (_, signal) = tokio::sync::watch::channel(AttemptSignal::Running);
        ActivityContext {
            idempotency_key: execution.idempotency_key(0),
            execution,
            name: name.to_owned(),
            attempt,
            signal,
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

    /// Report liveness and progress (a checkpoint, JSON-encoded), written
    /// to the store before this returns. If this attempt fails, the next
    /// one reads the details with
    /// [`ActivityContext::last_heartbeat_details`]. Fails with a
    /// cancellation once the execution is cancelling, and with
    /// `AttemptSuperseded` if this attempt already timed out: stop in both
    /// cases.
    pub async fn heartbeat_details(&self, details: &impl Serialize) -> Result<(), ActivityError> {
        self.heartbeat_check()?;
        let Some(hb) = &self.heartbeats else {
            return Ok(());
        };
        let details = serde_json::to_vec(details).map_err(|e| {
            ActivityError::non_retryable("PayloadError", format!("heartbeat details: {e}"))
        })?;
        match hb.write(Some(details)).await {
            Ok(_) => self.heartbeat_check(),
            // Heartbeats are advisory: the attempt goes on, and a retry
            // would resume from the previous checkpoint.
            Err(e) => {
                tracing::warn!(activity = self.name, "heartbeat not recorded: {e}");
                Ok(())
            }
        }
    }

    /// True once the calling execution was asked to cancel (or was
    /// terminated), or this attempt timed out: stop, clean up, and return
    /// [`ActivityError::cancelled`].
    pub fn is_cancelled(&self) -> bool {
        *self.signal.borrow() != AttemptSignal::Running
    }

    /// Resolves when [`ActivityContext::is_cancelled`] becomes true; for
    /// `tokio::select!` against the activity's own work.
    pub async fn cancelled(&self) {
        let mut signal = self.signal.clone();
        // An error means the runtime dropped the switch (shutdown): the
        // attempt is being abandoned anyway, so never resolve.
        if signal
            .wait_for(|s| *s != AttemptSignal::Running)
            .await
            .is_err()
        {
            std::future::pending::<()>().await;
        }
    }

    /// Report liveness from a long activity. With a heartbeat timeout, the
    /// beat is recorded (in the background, at most three times per
    /// timeout), so the attempt does not time out while it beats. Fails
    /// with a cancellation once the execution is cancelling (or the
    /// attempt timed out), so `ctx.heartbeat()?` in a loop stops the
    /// activity promptly.
    pub fn heartbeat(&self) -> Result<(), ActivityError> {
        self.heartbeat_check()?;
        if let Some(hb) = &self.heartbeats {
            hb.beat();
        }
        Ok(())
    }

    fn heartbeat_check(&self) -> Result<(), ActivityError> {
        match *self.signal.borrow() {
            AttemptSignal::Running => Ok(()),
            AttemptSignal::CancelRequested => Err(ActivityError::cancelled()),
            AttemptSignal::Superseded => Err(ActivityError::non_retryable(
                "AttemptSuperseded",
                "this attempt timed out or its execution closed; stop",
            )),
        }
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

    /// Ask for the next attempt after `delay` instead of the retry
    /// policy's backoff (a rate-limited API's retry-after, say). The
    /// policy's attempt limit and the schedule-to-close timeout still
    /// apply.
    pub fn retry_after(self, delay: std::time::Duration) -> Self {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        ActivityError(self.0.retry_after(ms))
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
        self.register_on(crate::config::DEFAULT_QUEUE, name, f)
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
