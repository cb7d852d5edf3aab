//! Local activities: run by the actor inside the workflow task, with no
//! queue round trip. The attempts and the result go into history in the
//! workflow task's own commit, so a completed local activity costs no
//! extra transaction. A crash before that commit loses the attempts, and
//! replay runs the activity again under the same idempotency key (at least
//! once, as for queued activities).
//!
//! Retries whose backoff is at most `RuntimeConfig::local_retry_threshold_ms`
//! happen in place; a longer one is handed to the activity's task queue as
//! an ordinary task for the next attempt, so a long backoff never holds a
//! workflow task open. An activity with no native handler in this process
//! is handed to its queue at once (a remote worker may serve it).

use crate::activity::{ActivityContext, AttemptSignal};
use crate::shared::Shared;
use std::sync::Arc;
use weft_core::{ActivityReport, AttemptOutcome, ExecutionId, Timestamp};
use weft_store::{ExecKey, NewActivityTask};

/// What running a local activity produced.
pub(crate) struct LocalRun {
    /// Its attempts, in order, each with the time it ended, for history.
    pub(crate) reports: Vec<(Timestamp, ActivityReport)>,
    /// The task for its next attempt, if its retries go to the queue.
    pub(crate) handoff: Option<NewActivityTask>,
}

/// Run local activity `task` (of execution `key`) to its result, its final
/// failure, or a handoff to its queue.
pub(crate) async fn run(
    inner: Arc<Shared>,
    key: ExecKey,
    execution: ExecutionId,
    mut task: NewActivityTask,
) -> LocalRun {
    let mut run = LocalRun {
        reports: Vec::new(),
        handoff: None,
    };
    if inner.services.activities.get(&task.name).is_none() {
        run.handoff = Some(task);
        return run;
    }
    let idempotency_key = execution.idempotency_key(task.seq);
    let close_deadline = task.timeouts.close_deadline(task.scheduled_at);
    loop {
        let started_at = inner.services.clock.now();
        let deadline = task
            .timeouts
            .attempt_deadline(task.scheduled_at, started_at);
        let (switch, signal) = tokio::sync::watch::channel(AttemptSignal::Running);
        let registered = inner
            .dispatch
            .register((key, task.seq, task.attempt), switch);
        let ctx = ActivityContext {
            execution: execution.clone(),
            name: task.name.clone(),
            attempt: task.attempt,
            idempotency_key: idempotency_key.clone(),
            signal,
            heartbeats: None,
            last_details: None,
        };
        let result =
            crate::attempt::execute(&inner.services, ctx, task.input.clone(), deadline).await;
        drop(registered);
        let now = inner.services.clock.now();
        let outcome = match result {
            Some(Ok(value)) => AttemptOutcome::Completed(value),
            Some(Err(failure)) => AttemptOutcome::Failed(failure),
            None => {
                AttemptOutcome::TimedOut(task.timeouts.attempt_timeout(task.scheduled_at, deadline))
            }
        };
        let retry_at = task.retry.next_attempt_at(
            task.attempt,
            &outcome,
            &idempotency_key,
            now,
            close_deadline,
        );
        let report = ActivityReport {
            seq: task.seq,
            attempt: task.attempt,
            started_at: Some(started_at),
            outcome,
            retry_at,
        };
        run.reports.push((now, report));
        let Some(at) = retry_at else {
            return run;
        };
        task.attempt += 1;
        if at.0.saturating_sub(now.0) > inner.services.config.local_retry_threshold_ms {
            task.due = at;
            run.handoff = Some(task);
            return run;
        }
        inner.services.clock.sleep_until(at).await;
    }
}
