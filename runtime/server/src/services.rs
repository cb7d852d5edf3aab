//! The services every part of a node reads: the store, the engine, the
//! clock, the configuration, the native activities, the deployed types,
//! and the node's task set and shutdown signal.

use crate::config::{DEFAULT_QUEUE, RuntimeConfig, StartWorkflow};
use crate::util::{lock, os_random, random_hex};
use crate::{ActivityRegistry, Clock, RuntimeError, TokenKey};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio::task::JoinSet;
use weft_core::{ComponentId, Event, EventKind, ExecutionId};
use weft_engine::WorkflowEngine;
use weft_store::{NewExecution, Store, StoreError};

/// What a node runs on. Set at start; only the deployed types change.
pub(crate) struct Services {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) engine: Arc<WorkflowEngine>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: RuntimeConfig,
    /// Signs and checks remote workers' task tokens.
    pub(crate) token_key: TokenKey,
    pub(crate) activities: ActivityRegistry,
    pub(crate) workflow_types: Mutex<HashMap<String, ComponentId>>,
    /// Stored masking policies by workflow type (see `masking.rs`).
    pub(crate) mask_policies: Mutex<HashMap<String, weft_core::mask::MaskPolicy>>,
    /// Turns true when the node shuts down.
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) shutdown_tx: watch::Sender<bool>,
    /// Every task the node spawned, awaited at shutdown.
    pub(crate) tasks: Mutex<JoinSet<()>>,
}

impl Services {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        engine: Arc<WorkflowEngine>,
        clock: Arc<dyn Clock>,
        config: RuntimeConfig,
        token_key: TokenKey,
        activities: ActivityRegistry,
    ) -> Self {
        let (shutdown_tx, shutdown) = watch::channel(false);
        Services {
            store,
            engine,
            clock,
            config,
            token_key,
            activities,
            workflow_types: Mutex::new(HashMap::new()),
            mask_policies: Mutex::new(HashMap::new()),
            shutdown,
            shutdown_tx,
            tasks: Mutex::new(JoinSet::new()),
        }
    }

    /// A new execution for `req`: its run id, random seed and
    /// `ExecutionStarted` event, pinned to the type's current component.
    pub(crate) fn new_execution(&self, req: StartWorkflow) -> Result<NewExecution, RuntimeError> {
        self.new_execution_or(req, None)
    }

    /// [`Services::new_execution`], on `fallback` if the type has no current
    /// component in this process (a continue-as-new after a restart).
    pub(crate) fn new_execution_or(
        &self,
        req: StartWorkflow,
        fallback: Option<ComponentId>,
    ) -> Result<NewExecution, RuntimeError> {
        self.engine
            .config()
            .limits
            .check_payload("workflow input", &req.input)
            .map_err(RuntimeError::PayloadTooLarge)?;
        let component = self
            .current_component(&req.workflow_type)
            .or(fallback)
            .ok_or_else(|| RuntimeError::UnknownWorkflowType(req.workflow_type.clone()))?;
        let id = ExecutionId::new(req.workflow_id, random_hex::<16>("a run id")?);
        let seed = os_random::<32>("a random seed")?;
        let task_queue = req.task_queue.unwrap_or_else(|| DEFAULT_QUEUE.to_owned());
        let now = self.clock.now();
        let started = Event::new(
            now,
            EventKind::ExecutionStarted {
                workflow_type: req.workflow_type.clone(),
                component,
                input: req.input,
                random_seed: seed,
                task_queue: task_queue.clone(),
            },
        );
        Ok(NewExecution {
            id,
            workflow_type: req.workflow_type,
            component,
            task_queue,
            started,
            parent: None,
            id_reuse: req.id_reuse,
            run_timeout_ms: req.run_timeout_ms,
            execution_deadline: req.execution_timeout_ms.map(|ms| now.plus_ms(ms)),
            search_attributes: req.search_attributes,
            memo: req.memo,
        })
    }

    /// The component new executions of `workflow_type` run.
    pub(crate) fn current_component(&self, workflow_type: &str) -> Option<ComponentId> {
        lock(&self.workflow_types).get(workflow_type).copied()
    }

    pub(crate) fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut tasks = lock(&self.tasks);
        // Reap finished tasks so the set does not grow with every actor.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }

    /// Compile a component off the async threads.
    pub(crate) async fn load_component_bytes(
        &self,
        bytes: Vec<u8>,
    ) -> Result<ComponentId, RuntimeError> {
        let engine = self.engine.clone();
        let loaded = tokio::task::spawn_blocking(move || engine.load(&bytes)).await;
        loaded
            .map_err(|e| RuntimeError::internal("the component compile task failed", e))?
            .map_err(RuntimeError::from)
    }

    /// Make sure `component` is compiled, fetching it from the store.
    pub(crate) async fn ensure_component(
        &self,
        component: ComponentId,
    ) -> Result<(), RuntimeError> {
        if self.engine.is_loaded(component) {
            return Ok(());
        }
        let bytes = self
            .store
            .get_component(component)
            .await?
            .ok_or(RuntimeError::Store(StoreError::ComponentNotFound(
                component,
            )))?;
        self.load_component_bytes(bytes).await.map(|_| ())
    }
}
