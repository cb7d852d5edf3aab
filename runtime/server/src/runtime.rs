use crate::actor::{self, ActorMsg};
use crate::{ActivityRegistry, Clock, RuntimeError, timers, worker};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use weft_core::{Caller, ComponentId, Event, EventKind, ExecutionId, Failure, Payload};
use weft_engine::WorkflowEngine;
use weft_store::{
    ExecKey, ExecutionStatus, IdReusePolicy, InboxEntry, NewExecution, Store, StoreError,
};

/// The queue used when neither the workflow nor the activity names one.
pub const DEFAULT_QUEUE: &str = "default";

/// Tunables of a runtime.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Start-to-close timeout for activities that set none, in ms.
    pub default_start_to_close_ms: u64,
    /// Most executions kept in memory as suspended instances. Beyond it the
    /// least recently used is evicted and later rebuilt by replay.
    pub cache_capacity: usize,
    /// Most activities one queue's worker runs at once.
    pub worker_concurrency: usize,
    /// On shutdown, how long running activity attempts may take to finish
    /// and report, in ms, before they are abandoned (and retried after
    /// their deadlines).
    pub shutdown_grace_ms: u64,
    /// A local activity retries in place when its backoff is at most this
    /// long (ms); a longer backoff hands the next attempt to its queue.
    pub local_retry_threshold_ms: u64,
    /// Most activity tasks per second dispatched from a queue (by queue
    /// name, in every namespace), to workers here and remote ones alike.
    pub queue_rate_limits: BTreeMap<String, f64>,
    /// Longest a remote worker's poll waits for a task, ms.
    pub max_poll_wait_ms: u64,
    /// The key remote workers' task tokens are signed with; `None` draws a
    /// random one at start (tokens then die with the process: a report
    /// after a restart is refused and the attempt retries on its timeout).
    /// Nodes sharing a store must share it.
    pub task_token_key: Option<crate::TokenKey>,
    /// How long past its start-to-close deadline a task token is accepted,
    /// ms (a report that late finds the attempt timed out anyway).
    pub task_token_grace_ms: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            default_start_to_close_ms: 60_000,
            cache_capacity: 4_096,
            worker_concurrency: 64,
            shutdown_grace_ms: 10_000,
            local_retry_threshold_ms: 5_000,
            queue_rate_limits: BTreeMap::new(),
            max_poll_wait_ms: 60_000,
            task_token_key: None,
            task_token_grace_ms: 60_000,
        }
    }
}

/// A request to start an execution.
#[derive(Debug, Clone, Default)]
pub struct StartWorkflow {
    /// Business id, unique among running executions.
    pub workflow_id: String,
    /// Deployed workflow type.
    pub workflow_type: String,
    /// Encoded input (JSON for the SDKs).
    pub input: Payload,
    /// Default queue of its activities.
    pub task_queue: Option<String>,
    /// Whether the id may start again after earlier runs closed.
    pub id_reuse: IdReusePolicy,
    /// Limit on each run (continue-as-new starts the clock again); when it
    /// passes, the execution closes as timed out.
    pub run_timeout_ms: Option<u64>,
    /// Limit on the whole execution, across continue-as-new runs.
    pub execution_timeout_ms: Option<u64>,
    /// Initial search attributes (indexed, for listing).
    pub search_attributes: BTreeMap<String, String>,
    /// Initial memo (shown, not indexed).
    pub memo: BTreeMap<String, String>,
}

/// Where a run stands, for a client waiting on its result.
enum RunState {
    Running,
    /// Its code diverged from its history (the reason); it waits for an
    /// operator.
    Parked(String),
    /// Closed with this outcome (`None`: continued as new).
    Closed(Option<WorkflowOutcome>),
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkflowOutcome {
    /// Returned a value.
    Completed(Payload),
    /// Failed (returned an error or trapped), or was cancelled (then the
    /// failure's type is `Cancelled`).
    Failed(Failure),
    /// Terminated by a client or operator, for this reason.
    Terminated(String),
}

impl WorkflowOutcome {
    /// The outcome a terminal event records: `Some(None)` for a run that
    /// continued as new, `None` for an event that does not close a run.
    pub(crate) fn of(kind: &EventKind) -> Option<Option<WorkflowOutcome>> {
        Some(match kind {
            EventKind::ExecutionCompleted { result } => {
                Some(WorkflowOutcome::Completed(result.clone()))
            }
            EventKind::ExecutionFailed { failure } => {
                Some(WorkflowOutcome::Failed(failure.clone()))
            }
            EventKind::ExecutionTerminated { reason } => {
                Some(WorkflowOutcome::Terminated(reason.clone()))
            }
            EventKind::ExecutionContinuedAsNew { .. } => None,
            EventKind::ExecutionTimedOut { timeout } => Some(WorkflowOutcome::Failed(
                Failure::new("Timeout", format!("the {timeout} timeout passed")).non_retryable(),
            )),
            _ => return None,
        })
    }
}

/// A running weft node: store, engine, actors, workers, timers.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<Inner>,
    /// Who the calls through this handle act for (see
    /// [`Runtime::acting_as`]); recorded with the events they cause.
    pub(crate) caller: Option<Caller>,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) engine: Arc<WorkflowEngine>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: RuntimeConfig,
    /// Signs and checks remote workers' task tokens.
    pub(crate) token_key: crate::TokenKey,
    pub(crate) activities: ActivityRegistry,
    pub(crate) workflow_types: Mutex<HashMap<String, ComponentId>>,
    cache: Mutex<Cache>,
    pub(crate) queues: Mutex<HashMap<String, Arc<crate::dispatch::QueueState>>>,
    pub(crate) timers_changed: Notify,
    /// Woken on every commit: history followers re-read.
    pub(crate) history_changed: Notify,
    waiters: Mutex<HashMap<ExecKey, Vec<CloseWaiter>>>,
    /// Queues (namespaced) an in-process worker serves.
    served_queues: Mutex<std::collections::BTreeSet<String>>,
    /// Stored size of each running execution's history as of its last
    /// workflow task here, so a message that could not fit is refused at
    /// once (an execution not run since the start is not in it).
    pub(crate) history_bytes: Mutex<HashMap<ExecKey, u64>>,
    /// Clients waiting for the answer to an update, by execution and id.
    pub(crate) update_waiters: Mutex<HashMap<(ExecKey, String), UpdateWaiter>>,
    /// Cancellation switches of the activity attempts running here.
    /// Keyed by (execution, seq, attempt): a retry never takes an earlier
    /// attempt's place.
    pub(crate) attempts: Mutex<BTreeMap<(ExecKey, u32, u32), crate::activity::AttemptSwitch>>,
    /// Consecutive failures per execution, for retry backoff.
    failures: Mutex<HashMap<ExecKey, u32>>,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) stats: Stats,
    shutdown_tx: watch::Sender<bool>,
    tasks: Mutex<JoinSet<()>>,
}

/// Where a client waiting for a run to close is told how it ended: the
/// outcome, or `None` when the closer did not have it at hand or the run
/// continued as new (the client then reads the store).
type CloseWaiter = oneshot::Sender<Option<WorkflowOutcome>>;

/// Where the answer to one update goes.
pub(crate) type UpdateWaiter = oneshot::Sender<Result<Payload, Failure>>;

/// Counters an operator (and a test) can read.
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) evictions: AtomicU64,
    pub(crate) replays: AtomicU64,
}

/// A snapshot of the runtime's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeStats {
    /// Executions evicted from the cache.
    pub evictions: u64,
    /// Executions rebuilt by replaying a history with more than its start.
    pub replays: u64,
    /// Executions currently in memory.
    pub cached: usize,
}

/// Live executions, by key, with a use counter for LRU eviction.
#[derive(Default)]
struct Cache {
    actors: HashMap<ExecKey, CachedActor>,
    tick: u64,
}

struct CachedActor {
    tx: mpsc::UnboundedSender<ActorMsg>,
    last_used: u64,
    generation: u64,
}

/// `N` bytes of OS randomness, for `what` (named in the error).
pub(crate) fn os_random<const N: usize>(what: &str) -> Result<[u8; N], RuntimeError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| RuntimeError::internal(format!("no OS randomness for {what}"), e))?;
    Ok(bytes)
}

/// `N` random bytes in hex: run ids, update ids.
pub(crate) fn random_hex<const N: usize>(what: &str) -> Result<String, RuntimeError> {
    Ok(os_random::<N>(what)?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section below leaves its map consistent, so a panic in
    // another holder does not invalidate the data.
    m.lock().unwrap_or_else(|p| p.into_inner())
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
        let (shutdown_tx, shutdown) = watch::channel(false);
        let token_key = match &config.task_token_key {
            Some(key) => key.clone(),
            None => crate::TokenKey::random()?,
        };
        let runtime = Runtime {
            caller: None,
            inner: Arc::new(Inner {
                store,
                engine,
                clock,
                config,
                token_key,
                activities,
                workflow_types: Mutex::new(HashMap::new()),
                cache: Mutex::new(Cache::default()),
                queues: Mutex::new(HashMap::new()),
                timers_changed: Notify::new(),
                history_changed: Notify::new(),
                waiters: Mutex::new(HashMap::new()),
                attempts: Mutex::new(BTreeMap::new()),
                update_waiters: Mutex::new(HashMap::new()),
                history_bytes: Mutex::new(HashMap::new()),
                served_queues: Mutex::new(Default::default()),
                failures: Mutex::new(HashMap::new()),
                shutdown,
                stats: Stats::default(),
                shutdown_tx,
                tasks: Mutex::new(JoinSet::new()),
            }),
        };
        let inner = &runtime.inner;
        // Deployed types first: the executions resumed below may start
        // children or continue as new.
        let types = inner.store.workflow_types().await?;
        lock(&inner.workflow_types).extend(types);
        inner.spawn(timers::run(inner.clone()));
        inner.serve_namespace(weft_core::namespace::DEFAULT_NAMESPACE);
        for ns in inner.store.namespaces().await? {
            inner.serve_namespace(&ns.name);
        }
        // Only executions with work pending need an actor now; the others
        // come back (by replay) when their task or timer delivers.
        for record in inner.store.running_executions().await? {
            if record.needs_workflow_task() {
                inner.activate(record.key);
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
        let id = self.inner.load_component_bytes(bytes.clone()).await?;
        self.inner
            .store
            .put_component(id, bytes, Some(workflow_type.to_owned()))
            .await?;
        lock(&self.inner.workflow_types).insert(workflow_type.to_owned(), id);
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

    /// [`Inner::new_execution`], its start attributed to this handle's
    /// caller.
    pub(crate) fn new_execution(&self, req: StartWorkflow) -> Result<NewExecution, RuntimeError> {
        let mut new = self.inner.new_execution(req)?;
        new.started.caller = self.caller.clone();
        Ok(new)
    }

    /// Start an execution; returns once `ExecutionStarted` is durable.
    pub async fn start_workflow(&self, req: StartWorkflow) -> Result<ExecutionId, RuntimeError> {
        let new = self.new_execution(req)?;
        let id = new.id.clone();
        let record = self.inner.store.start_execution(new).await?;
        self.inner.activate(record.key);
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
        let record = self.inner.store.start_execution(new).await?;
        let closed = self.inner.wait_close(record.key);
        self.inner.activate(record.key);
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
            let closed = self.inner.wait_close(record.key);
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
        let mut shutdown = self.inner.shutdown.clone();
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
        let latest = self.inner.store.find_execution(workflow_id).await?;
        if let Some(record) =
            latest.filter(|r| r.key == key && r.status == ExecutionStatus::Running)
        {
            return Ok(running(&record));
        }
        let loaded = self.inner.store.load_execution(key).await?;
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
            .store
            .find_execution(workflow_id)
            .await?
            .ok_or_else(|| RuntimeError::NotFound(workflow_id.to_owned()))
    }

    /// The full history of the latest run of `workflow_id`.
    pub async fn history(&self, workflow_id: &str) -> Result<Vec<Event>, RuntimeError> {
        let record = self.find(workflow_id).await?;
        Ok(self.inner.store.load_execution(record.key).await?.history)
    }

    /// Why an execution is parked (nondeterminism), if it is.
    pub async fn parked_reason(&self, workflow_id: &str) -> Result<Option<String>, RuntimeError> {
        Ok(self.find(workflow_id).await?.parked)
    }

    /// Counters: evictions, replays, cache size.
    pub fn stats(&self) -> RuntimeStats {
        RuntimeStats {
            evictions: self.inner.stats.evictions.load(Ordering::Relaxed),
            replays: self.inner.stats.replays.load(Ordering::Relaxed),
            cached: lock(&self.inner.cache).actors.len(),
        }
    }

    /// Stop all services and executions and wait for them. Committed work
    /// is durable; executions resume by replay on the next start.
    pub async fn shutdown(self) {
        let _ = self.inner.shutdown_tx.send(true);
        lock(&self.inner.cache).actors.clear();
        let mut tasks = std::mem::take(&mut *lock(&self.inner.tasks));
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done
                && e.is_panic()
            {
                tracing::error!("runtime task panicked: {e}");
            }
        }
        // Every writer has stopped: flush and release the database.
        self.inner.store.close().await;
    }
}

impl Inner {
    /// A new execution for `req`: its run id, random seed and
    /// `ExecutionStarted` event, pinned to the type's current component.
    pub(crate) fn new_execution(&self, req: StartWorkflow) -> Result<NewExecution, RuntimeError> {
        self.new_execution_or(req, None)
    }

    /// [`Inner::new_execution`], on `fallback` if the type has no current
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

    /// Route what a commit did to other executions: deliver its inbox
    /// entries, run what it started, drop what it closed from memory.
    pub(crate) fn committed(self: &Arc<Self>, done: weft_store::Committed) {
        self.history_changed.notify_waiters();
        self.closed_elsewhere(done.closed);
        for key in done.started {
            self.activate(key);
        }
        for entry in done.delivered {
            self.deliver(entry);
        }
    }

    /// Start in-process workers for the registered activities' queues in
    /// `namespace` (once): the server's native activities serve every
    /// namespace, each through its own queues.
    pub(crate) fn serve_namespace(self: &Arc<Self>, namespace: &str) {
        for queue in self.activities.queues() {
            let Ok(queue) = weft_core::namespace::qualify(namespace, "task queue", &queue) else {
                continue;
            };
            if lock(&self.served_queues).insert(queue.clone()) {
                self.spawn(worker::run(self.clone(), queue));
            }
        }
    }

    /// True if an in-process worker serves `queue`.
    pub(crate) fn serves(&self, queue: &str) -> bool {
        lock(&self.served_queues).contains(queue)
    }

    /// The component new executions of `workflow_type` run.
    pub(crate) fn current_component(&self, workflow_type: &str) -> Option<ComponentId> {
        lock(&self.workflow_types).get(workflow_type).copied()
    }

    /// Tell every activity attempt of `key` running here that its
    /// execution is cancelling (they see it through their context).
    pub(crate) fn cancel_attempts(&self, key: ExecKey) {
        for (_, switch) in lock(&self.attempts).range((key, 0, 0)..=(key, u32::MAX, u32::MAX)) {
            crate::activity::raise(switch, crate::activity::AttemptSignal::CancelRequested);
        }
    }

    /// Stop the attempts running here that the store timed out: their
    /// reports would be ignored, and a retry may already be running.
    pub(crate) fn supersede_attempts(&self, attempts: &[(ExecKey, u32, u32)]) {
        let running = lock(&self.attempts);
        for id in attempts {
            if let Some(switch) = running.get(id) {
                crate::activity::raise(switch, crate::activity::AttemptSignal::Superseded);
            }
        }
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

    /// The notifier of `queue`'s worker.
    /// Route a committed inbox entry to its execution, starting (replaying)
    /// the execution if it is not in memory.
    pub(crate) fn deliver(self: &Arc<Self>, entry: InboxEntry) {
        let key = entry.key;
        let mut cache = lock(&self.cache);
        cache.tick += 1;
        let tick = cache.tick;
        if let Some(actor) = cache.actors.get_mut(&key) {
            actor.last_used = tick;
            if actor.tx.send(ActorMsg::Inbox(Box::new(entry))).is_ok() {
                return;
            }
        }
        drop(cache);
        // Not in memory: the entry is durable, the new actor will load it.
        self.activate(key);
    }

    /// Ensure an actor runs execution `key` (spawning one that replays it).
    pub(crate) fn activate(self: &Arc<Self>, key: ExecKey) {
        if *self.shutdown.borrow() {
            return;
        }
        let mut cache = lock(&self.cache);
        if cache.actors.get(&key).is_some_and(|a| !a.tx.is_closed()) {
            return;
        }
        if cache.actors.len() >= self.config.cache_capacity.max(1) {
            let victim = cache
                .actors
                .iter()
                .min_by_key(|(_, a)| a.last_used)
                .map(|(k, _)| *k);
            if let Some(victim) = victim
                && let Some(actor) = cache.actors.remove(&victim)
            {
                // Safe at any point: everything the victim did since its
                // last commit is redone by replay when it is next needed.
                let _ = actor.tx.send(ActorMsg::Evict);
                self.stats.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
        cache.tick += 1;
        let (tx, rx) = mpsc::unbounded_channel();
        let generation = cache.tick;
        cache.actors.insert(
            key,
            CachedActor {
                tx,
                last_used: generation,
                generation,
            },
        );
        drop(cache);
        self.spawn(actor::run(self.clone(), key, generation, rx));
    }

    /// An actor is exiting: forget it (unless a newer one replaced it).
    pub(crate) fn actor_exited(&self, key: ExecKey, generation: u64) {
        let mut cache = lock(&self.cache);
        if cache
            .actors
            .get(&key)
            .is_some_and(|a| a.generation == generation)
        {
            cache.actors.remove(&key);
        }
    }

    /// Delay before retrying an execution that failed for the `n`th time in
    /// a row: 1 s doubling to 5 min.
    pub(crate) fn next_backoff(&self, key: ExecKey) -> std::time::Duration {
        let mut failures = lock(&self.failures);
        let n = failures.entry(key).or_insert(0);
        *n = n.saturating_add(1);
        std::time::Duration::from_secs(1u64 << (*n - 1).min(8))
            .min(std::time::Duration::from_secs(300))
    }

    /// An execution ran without a runtime failure: reset its backoff.
    pub(crate) fn clear_backoff(&self, key: ExecKey) {
        lock(&self.failures).remove(&key);
    }

    /// Drop execution `key` from memory (it replays when next needed).
    pub(crate) fn evict(&self, key: ExecKey) {
        if let Some(actor) = lock(&self.cache).actors.remove(&key) {
            let _ = actor.tx.send(ActorMsg::Evict);
        }
    }

    /// Executions closed outside their actors (terminated with a parent,
    /// timed out): drop their actors, stop their activities, wake waiters.
    pub(crate) fn closed_elsewhere(&self, keys: Vec<ExecKey>) {
        for key in keys {
            self.evict(key);
            self.cancel_attempts(key);
            self.closed(key, None);
        }
    }

    /// `key` parked: wake the clients waiting for it to close, so they
    /// read its state and report the parking instead of waiting on.
    pub(crate) fn parked(&self, key: ExecKey) {
        for waiter in lock(&self.waiters).remove(&key).unwrap_or_default() {
            let _ = waiter.send(None);
        }
    }

    /// Register for the close of `key` (before checking whether it has
    /// closed, so a close in between is not missed).
    pub(crate) fn wait_close(&self, key: ExecKey) -> oneshot::Receiver<Option<WorkflowOutcome>> {
        let (tx, rx) = oneshot::channel();
        lock(&self.waiters).entry(key).or_default().push(tx);
        rx
    }

    /// Wake everyone waiting for `key` to close (with its `outcome`, if the
    /// caller has it), and fail the updates it will never answer.
    pub(crate) fn closed(&self, key: ExecKey, outcome: Option<WorkflowOutcome>) {
        lock(&self.history_bytes).remove(&key);
        self.history_changed.notify_waiters();
        for waiter in lock(&self.waiters).remove(&key).unwrap_or_default() {
            let _ = waiter.send(outcome.clone());
        }
        let mut updates = lock(&self.update_waiters);
        let unanswered: Vec<_> = updates.keys().filter(|(k, _)| *k == key).cloned().collect();
        for id in unanswered {
            if let Some(waiter) = updates.remove(&id) {
                let failure = Failure::new(
                    "UpdateNotCompleted",
                    "the execution closed before it answered the update",
                )
                .non_retryable();
                let _ = waiter.send(Err(failure));
            }
        }
    }

    /// Hand the answers among newly committed `events` of `key` to the
    /// clients waiting for them.
    pub(crate) fn updates_answered(&self, key: ExecKey, events: &[Event]) {
        for event in events {
            if let EventKind::UpdateCompleted {
                update_id, result, ..
            } = &event.kind
                && let Some(waiter) = lock(&self.update_waiters).remove(&(key, update_id.clone()))
            {
                let _ = waiter.send(result.clone());
            }
        }
    }
}
