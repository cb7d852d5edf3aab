//! What an operator does to running executions: look, fail, upgrade.

use crate::RuntimeError;
use crate::config::WorkflowOutcome;
use crate::runtime::Runtime;
use crate::transition::{new_tasks, new_timers};
use weft_core::{ComponentId, Event, EventKind, ExecutionId, Failure, InboxMessage};
use weft_engine::ReplayReport;
use weft_store::{
    ExecutionRecord, ExecutionStatus, IdReusePolicy, NewExecution, StoreError, Transition,
};

/// How many times an operator action retries after racing a workflow task.
const RETRIES: usize = 5;

/// One running execution checked against a new component.
#[derive(Debug, Clone)]
pub struct UpgradeCheck {
    /// The execution.
    pub workflow_id: String,
    /// Replay report, or the divergence in words.
    pub outcome: Result<ReplayReport, String>,
    /// Whether `upgrade` moved it to the new component.
    pub upgraded: bool,
}

impl Runtime {
    /// The record of the latest run of `workflow_id`: status, pinned
    /// component, parked reason.
    pub async fn describe(&self, workflow_id: &str) -> Result<ExecutionRecord, RuntimeError> {
        self.inner
            .services
            .store
            .find_execution(workflow_id)
            .await?
            .ok_or_else(|| RuntimeError::NotFound(workflow_id.to_owned()))
    }

    /// Append `events` to a running execution from outside its actor,
    /// retrying if a workflow task commits first. Returns the record as it
    /// was before the append.
    pub(crate) async fn append(
        &self,
        workflow_id: &str,
        events: impl Fn(&ExecutionRecord) -> Vec<Event>,
        close: Option<ExecutionStatus>,
    ) -> Result<ExecutionRecord, RuntimeError> {
        for _ in 0..RETRIES {
            let record = self.describe(workflow_id).await?;
            if record.status != ExecutionStatus::Running {
                return Err(RuntimeError::NotRunning(workflow_id.to_owned()));
            }
            let transition = Transition {
                key: record.key,
                first_index: record.next_event,
                events: events(&record),
                consumed_inbox_through: close.map(|_| u64::MAX),
                close,
                ..Transition::default()
            };
            match self.inner.services.store.commit(transition).await {
                Ok(done) => {
                    // Its actor (if any) holds a stale history now.
                    self.inner.registry.evict(record.key);
                    self.inner.committed(done);
                    return Ok(record);
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(RuntimeError::Busy(workflow_id.to_owned()))
    }

    /// Fail a running (typically parked) execution: no guest code runs.
    pub async fn fail(&self, workflow_id: &str, reason: &str) -> Result<(), RuntimeError> {
        let now = self.inner.services.clock.now();
        let failure = Failure::new("FailedByOperator", reason).non_retryable();
        let events = |_: &ExecutionRecord| {
            vec![
                Event::new(
                    now,
                    EventKind::ExecutionFailed {
                        failure: failure.clone(),
                    },
                )
                .by(self.caller.clone()),
            ]
        };
        let record = self
            .append(workflow_id, events, Some(ExecutionStatus::Failed))
            .await?;
        self.inner
            .registry
            .closed(record.key, Some(WorkflowOutcome::Failed(failure)));
        Ok(())
    }

    /// Replay every running execution of `workflow_type` against `bytes`,
    /// without changing anything.
    pub async fn dry_run_upgrade(
        &self,
        workflow_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Vec<UpgradeCheck>, RuntimeError> {
        let to = self.inner.services.load_component_bytes(bytes).await?;
        let mut checks = Vec::new();
        for record in self.inner.services.store.running_executions().await? {
            if record.workflow_type != workflow_type {
                continue;
            }
            let mut history = self
                .inner
                .services
                .store
                .load_execution(record.key)
                .await?
                .history;
            let now = history.last().map_or(record.started_at, |e| e.at);
            history.push(Event::new(
                now,
                EventKind::ComponentUpgraded {
                    from: record.component,
                    to,
                },
            ));
            let id = ExecutionId::new(record.id.workflow_id.clone(), record.id.run_id.clone());
            let outcome = self
                .inner
                .services
                .engine
                .replay(id, history)
                .await
                .map_err(|e| e.to_string());
            checks.push(UpgradeCheck {
                workflow_id: record.id.workflow_id,
                outcome,
                upgraded: false,
            });
        }
        checks.sort_by(|a, b| a.workflow_id.cmp(&b.workflow_id));
        Ok(checks)
    }

    /// Deploy `bytes` as the current code of `workflow_type`, and move every
    /// running execution of that type that replays cleanly on it (all of
    /// them with `force`) to it. Parked executions that replay cleanly
    /// resume. Events an execution records between the dry run and the
    /// switch are checked when it next replays (and park it if they diverge).
    pub async fn upgrade(
        &self,
        workflow_type: &str,
        bytes: Vec<u8>,
        force: bool,
    ) -> Result<Vec<UpgradeCheck>, RuntimeError> {
        let to: ComponentId = self.deploy(workflow_type, bytes.clone()).await?;
        let mut checks = self.dry_run_upgrade(workflow_type, bytes).await?;
        for check in &mut checks {
            if check.outcome.is_err() && !force {
                continue;
            }
            let now = self.inner.services.clock.now();
            let events = |r: &ExecutionRecord| {
                vec![
                    Event::new(
                        now,
                        EventKind::ComponentUpgraded {
                            from: r.component,
                            to,
                        },
                    )
                    .by(self.caller.clone()),
                ]
            };
            match self.append(&check.workflow_id, events, None).await {
                Ok(record) => {
                    check.upgraded = true;
                    crate::node::activate(&self.inner, record.key);
                }
                // Closed since the dry run: nothing to upgrade.
                Err(RuntimeError::NotRunning(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(checks)
    }
}

impl Runtime {
    /// Reset the latest run of `workflow_id` to event `keep_through`: end
    /// it (terminated, if it runs) and start a new run whose history is a
    /// copy of events `0..=keep_through`, so the workflow continues from
    /// there with the code it is pinned to (Temporal's reset, e.g. to redo
    /// the steps after a bug fix). Activities and timers open at that
    /// point are scheduled again; signals recorded after it are delivered
    /// again to the new run. Returns the new run's id.
    pub async fn reset(
        &self,
        workflow_id: &str,
        keep_through: u64,
        reason: &str,
    ) -> Result<ExecutionId, RuntimeError> {
        let record = self.describe(workflow_id).await?;
        if record.erased_at().is_some() {
            return Err(RuntimeError::Erased(workflow_id.to_owned()));
        }
        let history = self
            .inner
            .services
            .store
            .load_execution(record.key)
            .await?
            .history;
        let keep = usize::try_from(keep_through).unwrap_or(usize::MAX);
        let last_allowed = history
            .iter()
            .position(|e| e.kind.is_terminal())
            .unwrap_or(history.len())
            .saturating_sub(1);
        if keep > last_allowed {
            return Err(RuntimeError::Invalid(format!(
                "cannot reset `{workflow_id}` to event {keep_through}: \
                 choose an event from 0 to {last_allowed} (before the run ended)"
            )));
        }
        if matches!(history[keep].kind, EventKind::ActivityStarted { .. }) {
            return Err(RuntimeError::Invalid(format!(
                "event {keep_through} is an ActivityStarted, recorded together with the \
                 attempt's outcome; reset to event {} or {} instead",
                keep_through.saturating_sub(1),
                keep_through + 1
            )));
        }
        let prefix = &history[..=keep];
        let state = weft_core::ExecutionState::from_history(record.id.clone(), prefix.to_vec())
            .map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        let tasks: Vec<_> = new_tasks(&self.inner.services, &record.task_queue, prefix, true)
            .into_iter()
            .filter(|t| !state.is_resolved(t.seq))
            .collect();
        let queues: Vec<String> = tasks.iter().map(|t| t.queue.clone()).collect();
        let timers = new_timers(prefix)
            .into_iter()
            .filter(|(_, seq)| !state.is_resolved(*seq))
            .collect();
        let reapply = history[keep + 1..]
            .iter()
            .filter_map(|e| match &e.kind {
                // Redelivered as sent: by whoever sent it.
                EventKind::SignalReceived { name, payload } => Some(InboxMessage::from_caller(
                    e.caller.as_ref(),
                    InboxMessage::Signal {
                        name: name.clone(),
                        payload: payload.clone(),
                    },
                )),
                _ => None,
            })
            .collect();
        let id = ExecutionId::new(
            record.id.workflow_id.clone(),
            crate::util::random_hex::<16>("a run id")?,
        );
        let new = NewExecution {
            id: id.clone(),
            workflow_type: record.workflow_type.clone(),
            component: state.component(),
            task_queue: record.task_queue.clone(),
            started: history[0].clone(),
            parent: record.parent,
            id_reuse: IdReusePolicy::AllowDuplicate,
            run_timeout_ms: record.run_timeout_ms,
            execution_deadline: record.execution_deadline,
            search_attributes: record.search_attributes.clone(),
            memo: record.memo.clone(),
        };
        let why = format!(
            "reset to event {keep_through} as run {}: {reason}",
            id.run_id
        );
        let done = self
            .inner
            .services
            .store
            .reset(weft_store::Reset {
                old: record.key,
                reason: why,
                caller: self.caller.clone(),
                new,
                rest: prefix[1..].to_vec(),
                tasks,
                timers,
                reapply,
            })
            .await?;
        self.inner.registry.evict(record.key);
        self.inner.committed(done);
        for queue in queues {
            self.inner.dispatch.wake_queue(&queue);
        }
        self.inner.dispatch.timers_changed.notify_one();
        Ok(id)
    }
}
