//! Activity workers: one loop per task queue, running registered native
//! activities with a concurrency limit.

use crate::activity::ActivityContext;
use crate::clock::until;
use crate::runtime::Inner;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use weft_core::Failure;
use weft_store::{ActivityTask, AttemptResult, TaskState};

pub(crate) async fn run(inner: Arc<Inner>, queue: String) {
    let notify = inner.queue_notify(&queue);
    let limit = inner
        .activities
        .concurrency_of(&queue, inner.config.worker_concurrency);
    let limit = Arc::new(Semaphore::new(limit));
    let mut running = JoinSet::new();
    let mut shutdown = inner.shutdown.clone();
    loop {
        while running.try_join_next().is_some() {}
        // Slots first, lease second: a task leased in the store must never
        // find no slot here (it would sit out its timeout).
        let mut permits: Vec<_> =
            std::iter::from_fn(|| limit.clone().try_acquire_owned().ok()).collect();
        let next_due = if permits.is_empty() {
            None
        } else {
            match inner
                .store
                .poll_activities(&queue, inner.clock.now(), permits.len())
                .await
            {
                Ok(polled) => {
                    if !polled.tasks.is_empty() {
                        // New deadlines: the timer service may need to wake sooner.
                        inner.timers_changed.notify_one();
                    }
                    for (task, permit) in polled.tasks.into_iter().zip(permits.drain(..)) {
                        let inner = inner.clone();
                        running.spawn(async move {
                            run_attempt(&inner, task).await;
                            drop(permit);
                        });
                    }
                    polled.next_due
                }
                Err(e) => {
                    tracing::error!(queue, "activity poll failed: {e}");
                    Some(inner.clock.now().plus_ms(1_000))
                }
            }
        };
        // Slots that got no task are free again before this loop waits.
        drop(permits);
        let sleep = async {
            match next_due {
                Some(at) => tokio::time::sleep(until(inner.clock.now(), at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = notify.notified() => {}
            _ = sleep => {}
            Some(_) = running.join_next(), if !running.is_empty() => {}
            _ = shutdown.wait_for(|s| *s) => break,
        }
    }
    // Shutting down: lease nothing more, but let the attempts in flight
    // finish and report (so a restart does not wait out their leases), up
    // to the grace period; the rest are abandoned and retried after their
    // deadlines.
    let grace = std::time::Duration::from_millis(inner.config.shutdown_grace_ms);
    let drained = tokio::time::timeout(grace, async {
        while running.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            queue,
            "abandoning attempts still running after the shutdown grace period"
        );
        running.abort_all();
        while running.join_next().await.is_some() {}
    }
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An attempt's cancellation switch, registered with the runtime while the
/// attempt runs.
struct AttemptRegistration<'a> {
    inner: &'a Inner,
    id: (weft_store::ExecKey, u32),
}

impl<'a> AttemptRegistration<'a> {
    fn new(
        inner: &'a Inner,
        id: (weft_store::ExecKey, u32),
        switch: tokio::sync::watch::Sender<bool>,
    ) -> Self {
        crate::runtime::lock(&inner.attempts).insert(id, switch);
        AttemptRegistration { inner, id }
    }
}

impl Drop for AttemptRegistration<'_> {
    fn drop(&mut self) {
        crate::runtime::lock(&self.inner.attempts).remove(&self.id);
    }
}

async fn run_attempt(inner: &Arc<Inner>, task: ActivityTask) {
    let TaskState::Running { deadline, .. } = task.state else {
        return;
    };
    let (switch, cancel) = tokio::sync::watch::channel(false);
    let _registered = AttemptRegistration::new(inner, (task.key, task.seq), switch);
    let ctx = ActivityContext {
        execution: task.execution.clone(),
        name: task.name.clone(),
        attempt: task.attempt,
        idempotency_key: task.idempotency_key(),
        cancel,
        heartbeats: Some(crate::activity::Heartbeats {
            store: inner.store.clone(),
            key: task.key,
            seq: task.seq,
            attempt: task.attempt,
        }),
        last_details: task.heartbeat_details.clone(),
    };
    let result = match inner.activities.get(&task.name) {
        None => Err(Failure::new(
            "ActivityNotRegistered",
            format!("no activity `{}` is registered", task.name),
        )),
        Some(handler) => {
            // Its own task, so a panicking activity fails only this attempt.
            let attempt = tokio::spawn(handler(ctx, task.input.clone()));
            // Owned: if this attempt is dropped (deadline, shutdown), the
            // activity stops too instead of running on detached.
            let _abort = AbortOnDrop(attempt.abort_handle());
            match tokio::time::timeout(until(inner.clock.now(), deadline), attempt).await {
                Ok(Ok(result)) => result,
                Ok(Err(e)) => Err(Failure::new(
                    "Panic",
                    format!("activity `{}` panicked: {e}", task.name),
                )),
                // Past its deadline: the timer service records the timeout
                // and schedules the retry.
                Err(_) => return,
            }
        }
    };
    // An oversized result would fail every attempt the same way: final.
    let limits = inner.engine.config().limits;
    let what = format!("result of activity `{}`", task.name);
    let result = match result {
        Ok(value) => match limits.check_payload(&what, &value) {
            Ok(()) => Ok(value),
            Err(reason) => Err(Failure::new("PayloadTooLarge", reason).non_retryable()),
        },
        Err(failure) => {
            Err(limits.bound_failure(&format!("failure of activity `{}`", task.name), failure))
        }
    };
    let report = AttemptResult {
        key: task.key,
        seq: task.seq,
        attempt: task.attempt,
        result,
    };
    match inner.store.report_attempt(report, inner.clock.now()).await {
        Ok(Some(entry)) => inner.deliver(entry),
        Ok(None) => tracing::debug!(activity = task.name, "stale attempt report ignored"),
        Err(e) => tracing::error!(
            activity = task.name,
            "cannot record attempt; it will time out and retry: {e}"
        ),
    }
    // A retry may now be due later on this queue.
    inner.queue_notify(&task.queue).notify_one();
}
