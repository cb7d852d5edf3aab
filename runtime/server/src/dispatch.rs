//! Task queue dispatch: the per-queue wake-ups, the optional rate limit,
//! the pollers seen, and the remote worker protocol (long-poll for a task,
//! then complete, fail or heartbeat it by its signed task token).
//!
//! A queue is created on first use: its tasks live in the store under its
//! name, and this in-memory state appears when anything touches it.

use crate::RuntimeError;
use crate::clock::until;
use crate::runtime::{Inner, Runtime, lock};
use crate::task_token::TaskToken;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use weft_core::{Failure, Payload, Timestamp};
use weft_store::{ActivityTask, AttemptResult, HeartbeatAck, TaskState};

/// How long a poller stays listed after its last poll.
const POLLER_TTL_MS: u64 = 60_000;

/// One task queue's in-memory state.
#[derive(Default)]
pub(crate) struct QueueState {
    /// Wakes this process's worker for the queue (a stored permit, so a
    /// wake-up is never lost).
    pub(crate) local: Notify,
    /// Wakes every waiting remote poll.
    remote: Notify,
    rate: Mutex<Option<TokenBucket>>,
    /// Remote pollers: identity -> last poll.
    pollers: Mutex<BTreeMap<String, Timestamp>>,
}

/// A token bucket: `rate` tokens per second, holding at most `burst`.
#[derive(Debug, Clone)]
struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: tokio::time::Instant,
}

impl TokenBucket {
    fn new(rate: f64) -> Self {
        let burst = rate.max(1.0);
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            at: tokio::time::Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = tokio::time::Instant::now();
        let elapsed = now.duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.at = now;
    }

    /// Take up to `want` whole tokens; returns how many.
    fn take(&mut self, want: usize) -> usize {
        self.refill();
        let granted = (self.tokens.floor() as usize).min(want);
        self.tokens -= granted as f64;
        granted
    }

    fn give_back(&mut self, n: usize) {
        self.tokens = (self.tokens + n as f64).min(self.burst);
    }

    /// How long until the next whole token.
    fn wait(&mut self) -> Duration {
        self.refill();
        let missing = (1.0 - self.tokens).max(0.0);
        Duration::from_secs_f64(missing / self.rate)
    }
}

impl Inner {
    /// The state of `queue` (a namespaced name), created on first use.
    pub(crate) fn queue(&self, queue: &str) -> Arc<QueueState> {
        let mut queues = lock(&self.queues);
        if let Some(state) = queues.get(queue) {
            return state.clone();
        }
        let state = Arc::new(QueueState::default());
        let (_, name) = weft_core::namespace::split(queue);
        if let Some(&rate) = self.config.queue_rate_limits.get(name)
            && rate > 0.0
        {
            *lock(&state.rate) = Some(TokenBucket::new(rate));
        }
        queues.insert(queue.to_owned(), state.clone());
        state
    }

    /// Tell the queue's workers, here and remote, that a task may be due.
    pub(crate) fn wake_queue(&self, queue: &str) {
        let state = self.queue(queue);
        state.local.notify_one();
        state.remote.notify_waiters();
    }

    /// An attempt was retried onto `queue`: its workers learn the due
    /// time, the timer service its schedule-to-start deadline.
    pub(crate) fn requeued(&self, queue: &str) {
        self.wake_queue(queue);
        self.timers_changed.notify_one();
    }

    /// Lease up to `max` due tasks of `queue`, within its rate limit.
    /// Returns the tasks and when to look again (`None`: on a wake-up).
    pub(crate) async fn lease(
        &self,
        queue: &str,
        max: usize,
    ) -> Result<(Vec<ActivityTask>, Option<Timestamp>), RuntimeError> {
        let state = self.queue(queue);
        let granted = match lock(&state.rate).as_mut() {
            None => max,
            Some(bucket) => match bucket.take(max) {
                0 => {
                    let wait = bucket.wait();
                    let at = self.clock.now().plus_ms(wait.as_millis().max(1) as u64);
                    return Ok((Vec::new(), Some(at)));
                }
                n => n,
            },
        };
        let polled = self
            .store
            .poll_activities(queue, self.clock.now(), granted)
            .await;
        let unused = polled.as_ref().map_or(granted, |p| granted - p.tasks.len());
        if unused > 0
            && let Some(bucket) = lock(&state.rate).as_mut()
        {
            bucket.give_back(unused);
        }
        let polled = polled?;
        if !polled.tasks.is_empty() {
            // New attempt deadlines: the timer service may need to wake
            // sooner.
            self.timers_changed.notify_one();
        }
        Ok((polled.tasks, polled.next_due))
    }

    /// Record how an attempt ended (in-process or remote): deliver the
    /// report to its execution, and tell the queue about a retry. `false`
    /// if the attempt is no longer current (the report is ignored).
    pub(crate) async fn record_attempt(
        self: &Arc<Self>,
        report: AttemptResult,
    ) -> Result<bool, weft_store::StoreError> {
        let Some(reported) = self.store.report_attempt(report, self.clock.now()).await? else {
            return Ok(false);
        };
        self.deliver(reported.entry);
        if let Some(queue) = reported.requeued {
            self.requeued(&queue);
        }
        Ok(true)
    }

    /// Remote pollers of `queue` seen in the last minute.
    pub(crate) fn pollers(&self, queue: &str) -> Vec<(String, Timestamp)> {
        let state = self.queue(queue);
        let now = self.clock.now();
        let mut pollers = lock(&state.pollers);
        pollers.retain(|_, seen| now.0.saturating_sub(seen.0) < POLLER_TTL_MS);
        pollers.iter().map(|(id, at)| (id.clone(), *at)).collect()
    }
}

/// An activity task leased by a remote worker.
#[derive(Debug, Clone)]
pub struct RemoteTask {
    /// Names the attempt in `complete`, `fail` and `heartbeat`: a signed
    /// token (`task_token.rs`), opaque to workers.
    pub token: Vec<u8>,
    /// The task as stored (state `Running`).
    pub task: ActivityTask,
}

impl RemoteTask {
    /// When the attempt times out (start-to-close).
    pub fn deadline(&self) -> Timestamp {
        match self.task.state {
            TaskState::Running { deadline, .. } => deadline,
            TaskState::Ready { due } => due,
        }
    }
}

fn stale(token: &TaskToken) -> RuntimeError {
    RuntimeError::StaleTask(format!(
        "activity task {}/{} attempt {}: no longer current (it timed out, was retried, or its \
         execution closed)",
        token.key, token.seq, token.attempt
    ))
}

impl Runtime {
    /// A remote worker's long-poll: lease one due task of `queue` (a
    /// namespaced name), waiting up to `wait` (capped by
    /// `RuntimeConfig::max_poll_wait_ms`) for one. `None` when the wait
    /// ends empty or the runtime shuts down.
    pub async fn poll_activity_task(
        &self,
        queue: &str,
        identity: &str,
        wait: Duration,
    ) -> Result<Option<RemoteTask>, RuntimeError> {
        let inner = &self.inner;
        let state = inner.queue(queue);
        let wait = wait.min(Duration::from_millis(inner.config.max_poll_wait_ms));
        let give_up = tokio::time::Instant::now() + wait;
        let mut shutdown = inner.shutdown.clone();
        loop {
            lock(&state.pollers).insert(identity.to_owned(), inner.clock.now());
            // Registered before the store is read, so a wake-up between
            // the read and the wait is not lost.
            let woken = state.remote.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if *shutdown.borrow() {
                return Ok(None);
            }
            let (tasks, next_due) = inner.lease(queue, 1).await?;
            if let Some(task) = tasks.into_iter().next() {
                if next_due.is_some_and(|at| at <= inner.clock.now()) {
                    // More are due: another poller may take them.
                    state.remote.notify_one();
                }
                let mut polled = RemoteTask {
                    token: Vec::new(),
                    task,
                };
                let token = TaskToken {
                    key: polled.task.key,
                    seq: polled.task.seq,
                    attempt: polled.task.attempt,
                    queue: queue.to_owned(),
                    expires: Timestamp(
                        polled
                            .deadline()
                            .0
                            .saturating_add(inner.config.task_token_grace_ms),
                    ),
                };
                polled.token = token.seal(&inner.token_key);
                return Ok(Some(polled));
            }
            let retry = async {
                match next_due {
                    Some(at) => tokio::time::sleep(until(inner.clock.now(), at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut woken => {}
                _ = retry => {}
                _ = tokio::time::sleep_until(give_up) => return Ok(None),
                _ = shutdown.wait_for(|s| *s) => return Ok(None),
            }
        }
    }

    /// A remote worker's report that its attempt returned `result`;
    /// `token` as [`RemoteTask::token`] gave it, reported from `namespace`
    /// (empty: the default one).
    pub async fn complete_activity_task(
        &self,
        token: &[u8],
        namespace: &str,
        result: Payload,
    ) -> Result<(), RuntimeError> {
        let token = self.open_token(token, namespace)?;
        self.report(token, Ok(result)).await
    }

    /// A remote worker's report that its attempt failed.
    pub async fn fail_activity_task(
        &self,
        token: &[u8],
        namespace: &str,
        failure: Failure,
    ) -> Result<(), RuntimeError> {
        let token = self.open_token(token, namespace)?;
        self.report(token, Err(failure)).await
    }

    /// The task queue (the client's name, without its namespace) a task
    /// token handed out in `namespace` was leased from, once the token
    /// checks out as [`Runtime::complete_activity_task`] checks it: so an
    /// access check can tell whether the caller may report on that queue.
    pub fn task_token_queue(&self, token: &[u8], namespace: &str) -> Result<String, RuntimeError> {
        let token = self.open_token(token, namespace)?;
        Ok(weft_core::namespace::split(&token.queue).1.to_owned())
    }

    /// Check a token a worker handed back: signed by this server, for a
    /// queue of `namespace`, not expired. Nothing is read or written for
    /// one that is not.
    fn open_token(&self, token: &[u8], namespace: &str) -> Result<TaskToken, RuntimeError> {
        let inner = &self.inner;
        TaskToken::open(token, &inner.token_key, namespace, inner.clock.now())
    }

    async fn report(
        &self,
        token: TaskToken,
        result: Result<Payload, Failure>,
    ) -> Result<(), RuntimeError> {
        let limits = self.inner.engine.config().limits;
        let report = AttemptResult {
            key: token.key,
            seq: token.seq,
            attempt: token.attempt,
            result: limits.bound_attempt("activity result", "activity failure", result),
        };
        if !self.inner.record_attempt(report).await? {
            return Err(stale(&token));
        }
        Ok(())
    }

    /// A remote worker's heartbeat, with optional progress details kept
    /// for the next attempt. The answer says whether the execution asked
    /// to cancel; a stale token (the attempt timed out) is `NotFound`.
    pub async fn heartbeat_activity_task(
        &self,
        token: &[u8],
        namespace: &str,
        details: Option<Payload>,
    ) -> Result<HeartbeatAck, RuntimeError> {
        let token = self.open_token(token, namespace)?;
        let inner = &self.inner;
        if let Some(details) = &details {
            inner
                .engine
                .config()
                .limits
                .check_payload("heartbeat details", details)
                .map_err(RuntimeError::PayloadTooLarge)?;
        }
        let ack = inner
            .store
            .record_heartbeat(
                token.key,
                token.seq,
                token.attempt,
                details,
                inner.clock.now(),
            )
            .await?;
        if !ack.current {
            return Err(stale(&token));
        }
        Ok(ack)
    }
}
