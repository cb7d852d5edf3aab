//! [`Runtime`], the public face of a node: start it, deploy, start
//! workflows and wait for them. Messages, visibility, operator actions and
//! the remote worker protocol extend it from their own files; nothing
//! below it depends on it.

use crate::config::{RuntimeConfig, StartWorkflow, WorkflowOutcome};
use crate::node;
use crate::registry::RuntimeStats;
use crate::services::Services;
use crate::shared::Shared;
use crate::util::lock;
use crate::{ActivityRegistry, Clock, RuntimeError};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::oneshot;
use weft_core::mask::MaskPolicy;
use weft_core::{Caller, ComponentId, Event, ExecutionId};
use weft_engine::WorkflowEngine;
use weft_store::{ExecKey, ExecutionStatus, NewExecution, Store};

/// Where a run stands, for a client waiting on its result.
enum RunState {
    Running,
    /// Its code diverged from its history (the reason); it waits for an
    /// operator.
    Parked(String),
    /// Closed with this outcome (`None`: continued as new).
    Closed(Option<WorkflowOutcome>),
}

/// A running weft node: store, engine, actors, workers, timers.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<Shared>,
    /// Who the calls through this handle act for (see
    /// [`Runtime::acting_as`]); recorded with the events they cause.
    pub(crate) caller: Option<Caller>,
}

impl Runtime {
    /// Start a runtime on `store`: spawn the timer service and one worker
    /// per queue of `activities`, and resume (by replay) every execution
    /// that has inbox entries waiting or never ran its first workflow task.
    pub async fn start(
        store: Arc<dyn Store>,
        engine: Arc<WorkflowEngine>,
        activities: ActivityRegistry,
        clock: Arc<dyn Clock>,
        config: RuntimeConfig,
    ) -> Result<Runtime, RuntimeError> {
        let token_key = match &config.task_token_key {
            Some(key) => key.clone(),
            None => crate::TokenKey::random()?,
        };
        let services = Services::new(store, engine, clock, config, token_key, activities);
        let runtime = Runtime {
            caller: None,
            inner: node::start(services),
        };
        let inner = &runtime.inner;
        // Deployed types first: the executions resumed below may start
        // children or continue as new.
        let types = inner.services.store.workflow_types().await?;
        lock(&inner.services.workflow_types).extend(types);
        let masks = inner.services.store.mask_policies().await?;
        lock(&inner.services.mask_policies).extend(masks);
        node::serve_namespace(inner, weft_core::namespace::DEFAULT_NAMESPACE);
        for ns in inner.services.store.namespaces().await? {
            node::serve_namespace(inner, &ns.name);
        }
        if let Some(ms) = inner.services.config.retention_sweep_ms {
            let every = std::time::Duration::from_millis(ms.max(1));
            let sweeper = retention_sweeper(runtime.clone(), every);
            inner.services.spawn(sweeper);
        }
        crate::checkpointer::start(inner);
        // Only executions with work pending need an actor now; the others
        // come back (by replay) when their task or timer delivers.
        for record in inner.services.store.running_executions().await? {
            if record.needs_workflow_task() {
                node::activate(inner, record.key);
            }
        }
        Ok(runtime)
    }

    /// Store and compile a component, and make it the current code of
    /// `workflow_type` for new executions (durably: a restarted runtime
    /// knows its deployed types before it resumes any execution).
    pub async fn deploy(
        &self,
        workflow_type: &str,
        bytes: Vec<u8>,
    ) -> Result<ComponentId, RuntimeError> {
        self.deploy_masked(workflow_type, bytes, &MaskPolicy::default())
            .await
    }

    /// [`Runtime::deploy`], adding `mask` to the type's masking policy
    /// (with what the component declares in its `weft:mask` section).
    pub async fn deploy_masked(
        &self,
        workflow_type: &str,
        bytes: Vec<u8>,
        mask: &MaskPolicy,
    ) -> Result<ComponentId, RuntimeError> {
        // The fields the component declares sensitive are masked from
        // this deploy on; a bad declaration refuses it.
        let mut declared =
            weft_engine::declared_mask(&bytes).map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        declared.merge(mask);
        let id = self
            .inner
            .services
            .load_component_bytes(bytes.clone())
            .await?;
        // Stored before the component becomes current, so no execution of
        // it runs unmasked.
        self.add_mask_policy(workflow_type, &declared).await?;
        self.inner
            .services
            .store
            .put_component(id, bytes, Some(workflow_type.to_owned()))
            .await?;
        lock(&self.inner.services.workflow_types).insert(workflow_type.to_owned(), id);
        Ok(id)
    }

    /// This runtime, acting for `caller`: the events its calls cause
    /// (starts, signals, updates, cancellations, terminations, resets,
    /// operator failures and upgrades) record who caused them.
    pub fn acting_as(&self, caller: Caller) -> Runtime {
        Runtime {
            inner: self.inner.clone(),
            caller: Some(caller),
        }
    }

    /// Who this handle's calls act for, if anyone was named.
    pub fn caller(&self) -> Option<&Caller> {
        self.caller.as_ref()
    }

    /// [`Services::new_execution`], its start attributed to this handle's
    /// caller.
    pub(crate) fn new_execution(&self, req: StartWorkflow) -> Result<NewExecution, RuntimeError> {
        let mut new = self.inner.services.new_execution(req)?;
        new.started.caller = self.caller.clone();
        Ok(new)
    }

    /// Start an execution; returns once `ExecutionStarted` is durable.
    pub async fn start_workflow(&self, req: StartWorkflow) -> Result<ExecutionId, RuntimeError> {
        let new = self.new_execution(req)?;
        let id = new.id.clone();
        let record = self.inner.services.store.start_execution(new).await?;
        node::activate(&self.inner, record.key);
        Ok(id)
    }

    /// Start an execution; returns once `ExecutionStarted` is durable, with
    /// a future that resolves when the run closes: its id and outcome (a
    /// run that continued as new is followed to the run it started). Like
    /// [`Runtime::start_workflow`] then [`Runtime::result`], but the wait is
    /// registered before the execution can run, so the outcome comes
    /// straight from the closing actor, with no store reads.
    pub async fn start_and_watch(
        &self,
        req: StartWorkflow,
    ) -> Result<
        impl Future<Output = Result<(ExecutionId, WorkflowOutcome), RuntimeError>> + Send + use<>,
        RuntimeError,
    > {
        let new = self.new_execution(req)?;
        let id = new.id.clone();
        let record = self.inner.services.store.start_execution(new).await?;
        let closed = self.inner.registry.wait_close(record.key);
        node::activate(&self.inner, record.key);
        let runtime = self.clone();
        Ok(async move {
            if let Some(outcome) = runtime.await_close(closed).await? {
                return Ok((id, outcome));
            }
            let outcome = runtime.result(&id.workflow_id).await?;
            Ok((runtime.find(&id.workflow_id).await?.id, outcome))
        })
    }

    /// Wait until the latest run of `workflow_id` closes; its outcome. A
    /// run that continued as new is followed to the run it started.
    pub async fn result(&self, workflow_id: &str) -> Result<WorkflowOutcome, RuntimeError> {
        loop {
            if let Some(outcome) = self.run_result(workflow_id).await? {
                return Ok(outcome);
            }
        }
    }

    /// The outcome of the latest run, once it closes; `None` if it
    /// continued as new. A run that is (or becomes) parked ends the wait
    /// with [`RuntimeError::Parked`]: it will not close until an operator
    /// acts, and a client must not wait for ever without saying why.
    async fn run_result(&self, workflow_id: &str) -> Result<Option<WorkflowOutcome>, RuntimeError> {
        let record = self.find(workflow_id).await?;
        loop {
            // Subscribe before checking, so a close in between is not missed.
            let closed = self.inner.registry.wait_close(record.key);
            match self.run_state(workflow_id, record.key).await? {
                RunState::Closed(outcome) => return Ok(outcome),
                RunState::Parked(reason) => {
                    return Err(RuntimeError::Parked {
                        workflow_id: record.id.workflow_id.clone(),
                        workflow_type: record.workflow_type.clone(),
                        reason,
                    });
                }
                RunState::Running => {}
            }
            if let Some(outcome) = self.await_close(closed).await? {
                return Ok(Some(outcome));
            }
            // Woken without an outcome: closed (read it), or parked.
        }
    }

    /// Wait for the close `rx` was registered for: its outcome if the
    /// closer sent it, `None` if the store must be read for it.
    async fn await_close(
        &self,
        rx: oneshot::Receiver<Option<WorkflowOutcome>>,
    ) -> Result<Option<WorkflowOutcome>, RuntimeError> {
        let mut shutdown = self.inner.services.shutdown.clone();
        // Decide first, await after: the watch guard must not live across
        // an await, or this future would not be `Send`.
        let closed = tokio::select! {
            closed = rx => Some(closed.ok().flatten()),
            _ = shutdown.wait_for(|s| *s) => None,
        };
        closed.ok_or(RuntimeError::ShuttingDown)
    }

    /// Whether run `key` of `workflow_id` runs, is parked, or has closed
    /// (with its outcome). Reads only the execution record until the run
    /// has closed: this is called for every `result`, mostly on running
    /// executions.
    async fn run_state(&self, workflow_id: &str, key: ExecKey) -> Result<RunState, RuntimeError> {
        let running = |record: &weft_store::ExecutionRecord| match &record.parked {
            Some(reason) => RunState::Parked(reason.clone()),
            None => RunState::Running,
        };
        // A newer run of the id can only exist once this one has closed.
        let latest = self
            .inner
            .services
            .store
            .find_execution(workflow_id)
            .await?;
        if let Some(record) =
            latest.filter(|r| r.key == key && r.status == ExecutionStatus::Running)
        {
            return Ok(running(&record));
        }
        let loaded = self.inner.services.store.load_execution(key).await?;
        if loaded.record.status == ExecutionStatus::Running {
            return Ok(running(&loaded.record));
        }
        Ok(RunState::Closed(
            loaded
                .history
                .iter()
                .rev()
                .find_map(|e| WorkflowOutcome::of(&e.kind))
                .flatten(),
        ))
    }

    async fn find(&self, workflow_id: &str) -> Result<weft_store::ExecutionRecord, RuntimeError> {
        self.inner
            .services
            .store
            .find_execution(workflow_id)
            .await?
            .ok_or_else(|| RuntimeError::NotFound(workflow_id.to_owned()))
    }

    /// The full history of the latest run of `workflow_id`.
    pub async fn history(&self, workflow_id: &str) -> Result<Vec<Event>, RuntimeError> {
        let record = self.find(workflow_id).await?;
        Ok(self
            .inner
            .services
            .store
            .load_execution(record.key)
            .await?
            .history)
    }

    /// Why an execution is parked (nondeterminism), if it is.
    pub async fn parked_reason(&self, workflow_id: &str) -> Result<Option<String>, RuntimeError> {
        Ok(self.find(workflow_id).await?.parked)
    }

    /// Counters: evictions, replays, cache size.
    pub fn stats(&self) -> RuntimeStats {
        RuntimeStats {
            evictions: self.inner.registry.stats.evictions.load(Ordering::Relaxed),
            replays: self.inner.registry.stats.replays.load(Ordering::Relaxed),
            cached: self.inner.registry.cached(),
        }
    }

    /// Stop all services and executions and wait for them. Committed work
    /// is durable; executions resume by replay on the next start.
    pub async fn shutdown(self) {
        let _ = self.inner.services.shutdown_tx.send(true);
        self.inner.registry.clear();
        let mut tasks = std::mem::take(&mut *lock(&self.inner.services.tasks));
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done
                && e.is_panic()
            {
                tracing::error!("runtime task panicked: {e}");
            }
        }
        // Every writer has stopped: flush and release the database.
        self.inner.services.store.close().await;
    }
}

/// Run [`Runtime::purge_expired`] every `every`, until the runtime shuts
/// down (a task of the runtime's, see `RuntimeConfig::retention_sweep_ms`).
async fn retention_sweeper(runtime: Runtime, every: std::time::Duration) {
    let shutdown = runtime.inner.services.shutdown.clone();
    crate::util::every(shutdown, every, || async {
        match runtime.purge_expired().await {
            Ok(0) => {}
            Ok(n) => tracing::info!("retention: deleted {n} closed execution(s)"),
            Err(e) => tracing::error!("retention sweep failed: {e}"),
        }
    })
    .await;
}
