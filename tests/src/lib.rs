//! Shared harness of weft's integration tests.
//!
//! Guest components are built by `cargo xtask guests` (the README's test
//! command runs it first); [`guest`] finds them.

pub mod faulty;

use std::path::PathBuf;
use weft_core::{Event, EventKind};
use weft_server::{ActivityRegistry, Runtime, StartWorkflow};

/// Directory of the built guest components.
pub fn guest_dir() -> PathBuf {
    std::env::var_os("WEFT_GUEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/guest/wasm32-wasip2/guest")
        })
}

/// Path of the guest component `name` (crate name with `_` for `-`).
pub fn guest_path(name: &str) -> PathBuf {
    guest_dir().join(format!("{}.wasm", name.replace('-', "_")))
}

/// Bytes of the guest component `name`.
pub fn guest(name: &str) -> Vec<u8> {
    let path = guest_path(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "guest component {} missing ({e}); build guests with `cargo xtask guests`",
            path.display()
        )
    })
}

/// The test runtime is the authors' test kit.
pub use weft_testkit::{TEST_EPOCH, TestEnv as TestRuntime};

/// Deploy-and-start for the test guests.
#[allow(async_fn_in_trait)] // used only by these tests, on one thread kind
pub trait StartGuest {
    /// Deploy guest `name` as `workflow_type`, start it with `input`, and
    /// return its workflow id.
    async fn start_guest(
        &self,
        name: &str,
        workflow_type: &str,
        id: &str,
        input: serde_json::Value,
    ) -> String;
}

impl StartGuest for TestRuntime {
    async fn start_guest(
        &self,
        name: &str,
        workflow_type: &str,
        id: &str,
        input: serde_json::Value,
    ) -> String {
        self.runtime
            .deploy(workflow_type, guest(name))
            .await
            .expect("deploy");
        self.runtime
            .start_workflow(StartWorkflow {
                workflow_id: id.to_owned(),
                workflow_type: workflow_type.to_owned(),
                input: serde_json::to_vec(&input).expect("json"),
                task_queue: None,
                ..Default::default()
            })
            .await
            .expect("start");
        id.to_owned()
    }
}

/// Event type names of a history, for exact-sequence assertions.
pub fn event_names(history: &[Event]) -> Vec<&'static str> {
    history.iter().map(|e| e.kind.name()).collect()
}

/// The JSON result of a completed history.
pub fn completed_result(history: &[Event]) -> serde_json::Value {
    let result = history.iter().find_map(|e| match &e.kind {
        EventKind::ExecutionCompleted { result } => Some(result.clone()),
        _ => None,
    });
    serde_json::from_slice(&result.expect("history has ExecutionCompleted"))
        .expect("result is JSON")
}

/// Activities used by the test guests: `echo` returns its input.
pub fn echo_activities() -> ActivityRegistry {
    let mut registry = ActivityRegistry::new();
    registry.register("echo", |_ctx, input: String| async move {
        Ok::<_, weft_server::ActivityError>(input)
    });
    registry
}

/// Wait until the durable history of `workflow_id` contains an event named
/// `event`; returns that history. Polls the store, letting tokio's paused
/// clock move a millisecond per look (at most ten virtual seconds).
pub async fn history_with(runtime: &Runtime, workflow_id: &str, event: &str) -> Vec<Event> {
    for _ in 0..10_000 {
        if let Ok(history) = runtime.history(workflow_id).await
            && history.iter().any(|e| e.kind.name() == event)
        {
            return history;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    panic!("{workflow_id} never recorded {event}");
}

/// Point a recorded history at another component, as a redeploy under a
/// running execution would (for replay tests).
pub fn repin(history: &mut [Event], to: weft_core::ComponentId) {
    if let Some(EventKind::ExecutionStarted { component, .. }) =
        history.first_mut().map(|e| &mut e.kind)
    {
        *component = to;
    }
}
