//! Test weft workflows in-process, in virtual time.
//!
//! A [`TestEnv`] is a complete runtime (redb store in a temporary
//! directory, the engine, activity workers, timers) whose clock is tokio's.
//! Run the test with tokio's clock paused and time skips ahead whenever
//! every task is idle, that is, whenever all executions are blocked on
//! timers: a workflow that sleeps for 30 days completes in milliseconds,
//! and the recorded times are exact.
//!
//! ```ignore
//! #[tokio::test(start_paused = true)]
//! async fn approval_times_out_after_three_days() {
//!     let env = TestEnv::new(my_activities()).await;
//!     env.deploy_file("loan-approval", "target/guest/.../loan_approval.wasm").await.unwrap();
//!     env.start("loan-approval", "loan-1", &application).await.unwrap();
//!     let result: LoanResult = env.result("loan-1").await.unwrap();
//!     assert_eq!(result.outcome, "expired");
//! }
//! ```
//!
//! Caveat of paused time: it also skips while an activity waits on real
//! I/O (a socket, a subprocess). Activities under test should be in-memory
//! fakes, as they should be in a unit test anyway.

use serde::{Serialize, de::DeserializeOwned};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use weft_core::{ComponentId, Event, Failure, Timestamp};
use weft_engine::{EngineConfig, WorkflowEngine};
use weft_server::{
    ActivityRegistry, Clock, Runtime, RuntimeConfig, RuntimeError, StartWorkflow, TokioClock,
    WorkflowOutcome,
};
use weft_store::RedbStore;

/// Midnight, 2026-01-01 UTC, in ms: where a test environment's clock starts.
pub const TEST_EPOCH: Timestamp = Timestamp(1_767_225_600_000);

/// What went wrong in a test environment.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    /// The runtime refused or failed the request.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The workflow failed (returned an error, trapped or was cancelled).
    #[error("workflow failed: {0}")]
    Failed(Failure),
    /// The workflow was terminated.
    #[error("workflow terminated: {0}")]
    Terminated(String),
    /// A payload did not encode or decode as the test expected.
    #[error("payload: {0}")]
    Payload(#[from] serde_json::Error),
    /// A component file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An awaited event never came.
    #[error("{0}")]
    Timeout(String),
}

/// A runtime on a fresh database, with tokio's clock.
pub struct TestEnv {
    /// The runtime: everything the environment does goes through it.
    pub runtime: Runtime,
    /// Its engine, for replays.
    pub engine: Arc<WorkflowEngine>,
    /// The database directory (deleted when dropped).
    pub dir: tempfile::TempDir,
    /// The clock, kept across restarts so time never goes back.
    pub clock: Arc<dyn Clock>,
}

/// The compile cache tests share (`WEFT_COMPILE_CACHE`, or one under the
/// system's temporary directory): a component compiles once per machine,
/// not once per test, which matters for interpreters' components.
pub fn compile_cache_dir() -> PathBuf {
    std::env::var_os("WEFT_COMPILE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("weft-compile-cache"))
}

impl TestEnv {
    /// An environment serving `activities`, with default limits.
    ///
    /// # Panics
    /// If the temporary directory, database or engine cannot be created
    /// (a broken machine, not a test failure).
    pub async fn new(activities: ActivityRegistry) -> Self {
        Self::with_config(activities, RuntimeConfig::default()).await
    }

    /// An environment with runtime tunables (cache size, concurrency...).
    pub async fn with_config(activities: ActivityRegistry, config: RuntimeConfig) -> Self {
        Self::with_engine(activities, config, EngineConfig::default()).await
    }

    /// An environment with runtime tunables and engine limits.
    pub async fn with_engine(
        activities: ActivityRegistry,
        config: RuntimeConfig,
        engine: EngineConfig,
    ) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(TEST_EPOCH));
        let dir = tempfile::tempdir().expect("temporary directory");
        Self::on_dir(dir, clock, activities, config, engine).await
    }

    /// A runtime on the database in `dir` (as left by [`TestEnv::stop`]),
    /// with a new engine: nothing compiled or deployed survives.
    pub async fn on_dir(
        dir: tempfile::TempDir,
        clock: Arc<dyn Clock>,
        activities: ActivityRegistry,
        config: RuntimeConfig,
        engine: EngineConfig,
    ) -> Self {
        let protector = data_dir_protector(dir.path());
        Self::on_dir_protected(dir, clock, activities, config, engine, protector).await
    }

    /// [`TestEnv::on_dir`], with payloads protected by `protector` instead
    /// of the directory's development keyring.
    pub async fn on_dir_protected(
        dir: tempfile::TempDir,
        clock: Arc<dyn Clock>,
        activities: ActivityRegistry,
        config: RuntimeConfig,
        mut engine: EngineConfig,
        protector: weft_protect::Protector,
    ) -> Self {
        if engine.compile_cache_dir.is_none() {
            engine.compile_cache_dir = Some(compile_cache_dir());
        }
        let engine = Arc::new(WorkflowEngine::new(engine).expect("workflow engine"));
        let store = Arc::new(RedbStore::open(Self::db_path(&dir), protector).expect("open store"));
        let runtime = Runtime::start(store, engine.clone(), activities, clock.clone(), config)
            .await
            .expect("runtime start");
        TestEnv {
            runtime,
            engine,
            dir,
            clock,
        }
    }

    /// Stop the runtime and start a new one on the same database: what a
    /// process restart does, minus the process.
    pub async fn restart(self, activities: ActivityRegistry, config: RuntimeConfig) -> Self {
        let (dir, clock) = self.stop().await;
        Self::on_dir(dir, clock, activities, config, EngineConfig::default()).await
    }

    /// Stop the runtime; its database directory and clock.
    pub async fn stop(self) -> (tempfile::TempDir, Arc<dyn Clock>) {
        self.runtime.shutdown().await;
        (self.dir, self.clock)
    }

    /// Path of the database file in `dir`.
    pub fn db_path(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("weft.redb")
    }

    /// Deploy the component at `path` as `workflow_type`.
    pub async fn deploy_file(
        &self,
        workflow_type: &str,
        path: impl AsRef<Path>,
    ) -> Result<ComponentId, TestError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| TestError::Io {
            path: path.to_owned(),
            source,
        })?;
        Ok(self.runtime.deploy(workflow_type, bytes).await?)
    }

    /// Start `workflow_type` as `workflow_id` with a JSON-encoded input.
    pub async fn start(
        &self,
        workflow_type: &str,
        workflow_id: &str,
        input: &impl Serialize,
    ) -> Result<(), TestError> {
        self.runtime
            .start_workflow(StartWorkflow {
                workflow_id: workflow_id.to_owned(),
                workflow_type: workflow_type.to_owned(),
                input: serde_json::to_vec(input)?,
                task_queue: None,
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    /// Wait for `workflow_id` to complete (skipping time) and decode its
    /// result.
    pub async fn result<T: DeserializeOwned>(&self, workflow_id: &str) -> Result<T, TestError> {
        match self.runtime.result(workflow_id).await? {
            WorkflowOutcome::Completed(bytes) => Ok(serde_json::from_slice(&bytes)?),
            WorkflowOutcome::Failed(failure) => Err(TestError::Failed(failure)),
            WorkflowOutcome::Terminated(reason) => Err(TestError::Terminated(reason)),
        }
    }

    /// Send signal `name` with a JSON-encoded payload.
    pub async fn signal(
        &self,
        workflow_id: &str,
        name: &str,
        payload: &impl Serialize,
    ) -> Result<(), TestError> {
        let payload = serde_json::to_vec(payload)?;
        Ok(self.runtime.signal(workflow_id, name, payload).await?)
    }

    /// Ask query `name` (no arguments) and decode the answer.
    pub async fn query<T: DeserializeOwned>(
        &self,
        workflow_id: &str,
        name: &str,
    ) -> Result<T, TestError> {
        let answer = self.runtime.query(workflow_id, name, Vec::new()).await?;
        Ok(serde_json::from_slice(&answer)?)
    }

    /// Wait until the history of `workflow_id` holds an event named `event`
    /// (e.g. `"SignalAwaited"`, `"TimerStarted"`); returns the history.
    /// Looks once per virtual millisecond, for at most a virtual minute.
    pub async fn wait_for_event(
        &self,
        workflow_id: &str,
        event: &str,
    ) -> Result<Vec<Event>, TestError> {
        for _ in 0..60_000 {
            if let Ok(history) = self.runtime.history(workflow_id).await
                && history.iter().any(|e| e.kind.name() == event)
            {
                return Ok(history);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Err(TestError::Timeout(format!(
            "{workflow_id} recorded no {event} within a virtual minute"
        )))
    }

    /// Let `d` of virtual time pass (timers due in it fire).
    pub async fn skip(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }

    /// The environment's current time.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

/// The protector of a test data directory: encryption on, with the
/// directory's development keyring (made on first use), as `weft dev` runs.
pub fn data_dir_protector(dir: &std::path::Path) -> weft_protect::Protector {
    weft_protect::Protector::for_data_dir(dir)
        .expect("development keyring")
        .0
}
