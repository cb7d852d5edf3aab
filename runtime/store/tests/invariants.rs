//! What only the redb backend promises; every backend's semantics are the
//! conformance suite's (`runtime/store-conformance`).

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

use weft_core::{ComponentId, Event, EventKind, ExecutionId, Timestamp};
use weft_store::{ExecutionStatus, NewExecution, RedbStore, Store, Transition};

const T0: Timestamp = Timestamp(1_000_000);

fn new_execution(workflow_id: &str, execution_deadline: Option<Timestamp>) -> NewExecution {
    NewExecution {
        id: ExecutionId::new(workflow_id, "run"),
        workflow_type: "t".into(),
        component: ComponentId::default(),
        task_queue: "q".into(),
        started: Event::new(
            T0,
            EventKind::ExecutionStarted {
                workflow_type: "t".into(),
                component: ComponentId::default(),
                input: b"null".to_vec(),
                random_seed: [0; 32],
                task_queue: "q".into(),
            },
        ),
        parent: None,
        id_reuse: Default::default(),
        run_timeout_ms: None,
        execution_deadline,
        search_attributes: Default::default(),
        memo: Default::default(),
    }
}

#[tokio::test]
async fn a_closed_run_leaves_its_rows_for_one_sealed_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weft.redb");
    let store = RedbStore::open(&path, weft_protect::Protector::ephemeral().unwrap()).unwrap();
    // Closed by its own workflow task (sealed before the commit) and from
    // outside, by its deadline (sealed in the closing transaction).
    let key = store
        .start_execution(new_execution("completed", None))
        .await
        .unwrap()
        .key;
    store
        .commit(Transition {
            key,
            first_index: 1,
            events: vec![Event::new(
                T0,
                EventKind::ExecutionCompleted {
                    result: b"1".to_vec(),
                },
            )],
            close: Some(ExecutionStatus::Completed),
            ..Transition::default()
        })
        .await
        .unwrap();
    store
        .start_execution(new_execution("deadline", Some(T0.plus_ms(10))))
        .await
        .unwrap();
    store
        .start_execution(new_execution("open", None))
        .await
        .unwrap();
    assert_eq!(
        store
            .fire_due(T0.plus_ms(10), 10)
            .await
            .unwrap()
            .closed
            .len(),
        1
    );
    store.close().await;
    drop(store);
    let usage = RedbStore::table_usage(&path).unwrap();
    let rows = |name: &str| usage.iter().find(|t| t.name == name).unwrap().rows;
    assert_eq!(rows("history"), 1, "only the open run has rows: {usage:?}");
    assert_eq!(rows("sealed_history"), 2, "{usage:?}");
}
