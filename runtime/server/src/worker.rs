//! Activity workers: one loop per task queue, running registered native
//! activities with a concurrency limit.

use crate::activity::{ActivityContext, AttemptSignal, AttemptSwitch, Heartbeats};
use crate::clock::until;
use crate::runtime::Inner;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use weft_core::{Failure, Payload, Timestamp};
use weft_store::{ActivityTask, AttemptResult, TaskState};

pub(crate) async fn run(inner: Arc<Inner>, queue: String) {
    let state = inner.queue(&queue);
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
            match inner.lease(&queue, permits.len()).await {
                Ok((tasks, next_due)) => {
                    for (task, permit) in tasks.into_iter().zip(permits.drain(..)) {
                        let inner = inner.clone();
                        running.spawn(async move {
                            run_attempt(&inner, task).await;
                            drop(permit);
                        });
                    }
                    next_due
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
            _ = state.local.notified() => {}
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

/// An attempt's switch, registered with the runtime while the attempt
/// runs (cancellation requests and timeouts reach it there).
pub(crate) struct AttemptRegistration<'a> {
    inner: &'a Inner,
    id: (weft_store::ExecKey, u32, u32),
}

impl<'a> AttemptRegistration<'a> {
    pub(crate) fn new(
        inner: &'a Inner,
        id: (weft_store::ExecKey, u32, u32),
        switch: AttemptSwitch,
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
    let initial = if task.cancel_requested {
        AttemptSignal::CancelRequested
    } else {
        AttemptSignal::Running
    };
    let (switch, signal) = tokio::sync::watch::channel(initial);
    let _registered =
        AttemptRegistration::new(inner, (task.key, task.seq, task.attempt), switch.clone());
    let ctx = ActivityContext {
        execution: task.execution.clone(),
        name: task.name.clone(),
        attempt: task.attempt,
        idempotency_key: task.idempotency_key(),
        signal,
        heartbeats: Some(Heartbeats {
            store: inner.store.clone(),
            clock: inner.clock.clone(),
            key: task.key,
            seq: task.seq,
            attempt: task.attempt,
            timeout_ms: task.timeouts.heartbeat_ms,
            last_written: Default::default(),
            switch,
        }),
        last_details: task.heartbeat_details.clone(),
    };
    // `None`: past its deadline or timed out by the store, which records
    // the timeout and schedules the retry.
    let Some(result) = execute(inner, ctx, task.input.clone(), deadline).await else {
        return;
    };
    let report = AttemptResult {
        key: task.key,
        seq: task.seq,
        attempt: task.attempt,
        result,
    };
    match inner.record_attempt(report).await {
        Ok(true) => {}
        Ok(false) => tracing::debug!(activity = task.name, "stale attempt report ignored"),
        Err(e) => tracing::error!(
            activity = task.name,
            "cannot record attempt; it will time out and retry: {e}"
        ),
    }
}

/// Run one attempt of the native activity `ctx.name` until it returns, its
/// `deadline` passes or it is superseded (`None` in the last two cases).
/// A panic fails only this attempt; an oversized result fails it for good.
pub(crate) async fn execute(
    inner: &Inner,
    ctx: ActivityContext,
    input: Payload,
    deadline: Timestamp,
) -> Option<Result<Payload, Failure>> {
    let name = ctx.name.clone();
    let mut signal = ctx.signal.clone();
    let Some(handler) = inner.activities.get(&name) else {
        return Some(Err(Failure::new(
            "ActivityNotRegistered",
            format!("no activity `{name}` is registered"),
        )));
    };
    // Its own task, so a panicking activity fails only this attempt.
    let attempt = tokio::spawn(handler(ctx, input));
    // Owned: if this attempt is dropped (deadline, shutdown), the activity
    // stops too instead of running on detached.
    let _abort = AbortOnDrop(attempt.abort_handle());
    let superseded = async {
        if signal
            .wait_for(|s| *s == AttemptSignal::Superseded)
            .await
            .is_err()
        {
            std::future::pending::<()>().await;
        }
    };
    let result = tokio::select! {
        joined = attempt => match joined {
            Ok(result) => result,
            Err(e) => Err(Failure::new("Panic", format!("activity `{name}` panicked: {e}"))),
        },
        _ = tokio::time::sleep(until(inner.clock.now(), deadline)) => return None,
        _ = superseded => return None,
    };
    Some(inner.engine.config().limits.bound_attempt(
        &format!("result of activity `{name}`"),
        &format!("failure of activity `{name}`"),
        result,
    ))
}
