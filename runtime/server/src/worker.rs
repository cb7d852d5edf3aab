//! Activity workers: one loop per task queue, running registered native
//! activities with a concurrency limit.

use crate::activity::{ActivityContext, AttemptSignal, Heartbeats};
use crate::attempt::execute;
use crate::shared::Shared;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use weft_store::{ActivityTask, AttemptResult, TaskState};

pub(crate) async fn run(inner: Arc<Shared>, queue: String) {
    let state = inner.dispatch.queue(&queue);
    let limit = inner
        .services
        .activities
        .concurrency_of(&queue, inner.services.config.worker_concurrency);
    let limit = Arc::new(Semaphore::new(limit));
    let mut running = JoinSet::new();
    let mut shutdown = inner.services.shutdown.clone();
    loop {
        while running.try_join_next().is_some() {}
        // Slots first, lease second: a task leased in the store must never
        // find no slot here (it would sit out its timeout).
        let mut permits: Vec<_> =
            std::iter::from_fn(|| limit.clone().try_acquire_owned().ok()).collect();
        let next_due = if permits.is_empty() {
            None
        } else {
            match inner.dispatch.lease(&queue, permits.len()).await {
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
                    Some(inner.services.clock.now().plus_ms(1_000))
                }
            }
        };
        // Slots that got no task are free again before this loop waits.
        drop(permits);
        let sleep = async {
            match next_due {
                Some(at) => inner.services.clock.sleep_until(at).await,
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
    let grace = std::time::Duration::from_millis(inner.services.config.shutdown_grace_ms);
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

async fn run_attempt(inner: &Arc<Shared>, task: ActivityTask) {
    let TaskState::Running { deadline, .. } = task.state else {
        return;
    };
    let initial = if task.cancel_requested {
        AttemptSignal::CancelRequested
    } else {
        AttemptSignal::Running
    };
    let (switch, signal) = tokio::sync::watch::channel(initial);
    let _registered = inner
        .dispatch
        .register((task.key, task.seq, task.attempt), switch.clone());
    let ctx = ActivityContext {
        execution: task.execution.clone(),
        name: task.name.clone(),
        attempt: task.attempt,
        idempotency_key: task.idempotency_key(),
        signal,
        heartbeats: Some(Heartbeats {
            store: inner.services.store.clone(),
            clock: inner.services.clock.clone(),
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
    let Some(result) = execute(&inner.services, ctx, task.input.clone(), deadline).await else {
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
