//! The remote worker protocol: long-poll a queue for a task, then
//! complete, fail or heartbeat it by its signed task token.

use crate::RuntimeError;
use crate::runtime::Runtime;
use crate::task_token::TaskToken;
use crate::util::lock;
use std::time::Duration;
use weft_core::{Failure, Payload, Timestamp};
use weft_store::{ActivityTask, AttemptResult, HeartbeatAck, TaskState};

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
        let state = inner.dispatch.queue(queue);
        let wait = wait.min(Duration::from_millis(
            inner.services.config.max_poll_wait_ms,
        ));
        let give_up = tokio::time::Instant::now() + wait;
        let mut shutdown = inner.services.shutdown.clone();
        loop {
            lock(&state.pollers).insert(identity.to_owned(), inner.services.clock.now());
            // Registered before the store is read, so a wake-up between
            // the read and the wait is not lost.
            let woken = state.remote.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if *shutdown.borrow() {
                return Ok(None);
            }
            let (tasks, next_due) = inner.dispatch.lease(queue, 1).await?;
            if let Some(task) = tasks.into_iter().next() {
                if next_due.is_some_and(|at| at <= inner.services.clock.now()) {
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
                            .saturating_add(inner.services.config.task_token_grace_ms),
                    ),
                };
                polled.token = token.seal(&inner.services.token_key);
                return Ok(Some(polled));
            }
            let retry = async {
                match next_due {
                    Some(at) => inner.services.clock.sleep_until(at).await,
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
        TaskToken::open(
            token,
            &inner.services.token_key,
            namespace,
            inner.services.clock.now(),
        )
    }

    async fn report(
        &self,
        token: TaskToken,
        result: Result<Payload, Failure>,
    ) -> Result<(), RuntimeError> {
        let limits = self.inner.services.engine.config().limits;
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
                .services
                .engine
                .config()
                .limits
                .check_payload("heartbeat details", details)
                .map_err(RuntimeError::PayloadTooLarge)?;
        }
        let ack = inner
            .services
            .store
            .record_heartbeat(
                token.key,
                token.seq,
                token.attempt,
                details,
                inner.services.clock.now(),
            )
            .await?;
        if !ack.current {
            return Err(stale(&token));
        }
        Ok(ack)
    }
}
