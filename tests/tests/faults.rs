//! Storage faults: the runtime reports them, keeps running, loses nothing
//! committed, and carries on when the fault clears.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use weft_engine::{EngineConfig, WorkflowEngine};
use weft_server::{Runtime, RuntimeConfig, StartWorkflow, TokioClock, WorkflowOutcome};
use weft_store::RedbStore;
use weft_tests::faulty::FaultyStore;
use weft_tests::{TEST_EPOCH, echo_activities, event_names, guest};

#[tokio::test(start_paused = true)]
async fn a_full_disk_delays_an_execution_but_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FaultyStore::new(
        RedbStore::open(
            dir.path().join("weft.redb"),
            weft_testkit::data_dir_protector(dir.path()),
        )
        .unwrap(),
    ));
    let engine = Arc::new(WorkflowEngine::new(EngineConfig::default()).unwrap());
    let clock = Arc::new(TokioClock::starting_at(TEST_EPOCH));
    let runtime = Runtime::start(
        store.clone(),
        engine,
        echo_activities(),
        clock,
        RuntimeConfig::default(),
    )
    .await
    .unwrap();
    runtime.deploy("call", guest("guest-call")).await.unwrap();

    // The disk is full for the next three workflow-task commits.
    store.fail_commits.store(3, Ordering::SeqCst);
    runtime
        .start_workflow(StartWorkflow {
            workflow_id: "full-disk".into(),
            workflow_type: "call".into(),
            input: serde_json::to_vec(&json!({"activity": "echo", "input": "hello"})).unwrap(),
            task_queue: None,
            ..Default::default()
        })
        .await
        .unwrap();
    let outcome = runtime.result("full-disk").await.unwrap();
    assert_eq!(outcome, WorkflowOutcome::Completed(br#""hello""#.to_vec()));
    assert_eq!(store.failed.load(Ordering::SeqCst), 3);

    let history = runtime.history("full-disk").await.unwrap();
    assert_eq!(
        event_names(&history),
        [
            "ExecutionStarted",
            "ActivityScheduled",
            "ActivityStarted",
            "ActivityCompleted",
            "ExecutionCompleted"
        ]
    );
    runtime.shutdown().await;
}
