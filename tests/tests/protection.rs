//! Encryption at rest end to end: what reaches the database file, key
//! rotation, and a missing key (the executions it wraps fail clearly, the
//! others go on).

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

use serde_json::{Value, json};
use std::sync::Arc;
use weft_core::DataKey;
use weft_protect::{Keyring, Protector};
use weft_server::{ActivityRegistry, RuntimeConfig, RuntimeError, WorkflowOutcome};
use weft_store::{Store, StoreError};
use weft_tests::{StartGuest, TestRuntime, history_with};

const INPUT_MARKER: &str = "INPUT-Ada-Lovelace-7731";
const RESULT_MARKER: &str = "RESULT-acct-DE89370400440532013000";
const SIGNAL_MARKER: &str = "SIGNAL-approved-by-Grace-Hopper";

/// `lookup` answers with the result marker: an activity result.
fn activities() -> ActivityRegistry {
    let mut registry = ActivityRegistry::new();
    registry.register("lookup", |_ctx, input: Value| async move {
        Ok::<_, weft_server::ActivityError>(json!({"for": input, "account": RESULT_MARKER}))
    });
    registry
}

async fn completed(t: &TestRuntime, id: &str) -> String {
    match t.runtime.result(id).await.unwrap() {
        WorkflowOutcome::Completed(bytes) => String::from_utf8(bytes).unwrap(),
        other => panic!("{id} did not complete: {other:?}"),
    }
}

/// Run the three markers through a runtime: one in a workflow input (and
/// so an activity's arguments), one in an activity result, one in a
/// signal. Returns what the workflows returned: the real values.
async fn run_markers(t: &TestRuntime) -> (String, String) {
    let call = json!({"activity": "lookup", "input": {"applicant": INPUT_MARKER}});
    let id = t.start_guest("guest-call", "call", "kyc-1", call).await;
    let called = completed(t, &id).await;
    let id = t
        .start_guest(
            "guest-messages",
            "messages",
            "kyc-2",
            json!({"mode": "signals", "count": 1, "applicant": INPUT_MARKER}),
        )
        .await;
    history_with(&t.runtime, &id, "SignalAwaited").await;
    t.runtime
        .signal(&id, "item", serde_json::to_vec(SIGNAL_MARKER).unwrap())
        .await
        .unwrap();
    (called, completed(t, &id).await)
}

fn file_holds(bytes: &[u8], marker: &str) -> bool {
    bytes.windows(marker.len()).any(|w| w == marker.as_bytes())
}

#[tokio::test(start_paused = true)]
async fn no_payload_reaches_the_database_file_in_plaintext() {
    let t = TestRuntime::new(activities()).await;
    let (called, signalled) = run_markers(&t).await;
    // The workflows saw the real values.
    assert!(
        called.contains(INPUT_MARKER) && called.contains(RESULT_MARKER),
        "{called}"
    );
    assert!(signalled.contains(SIGNAL_MARKER), "{signalled}");
    let history = t.runtime.history("kyc-1").await.unwrap();
    let weft_core::EventKind::ExecutionStarted { input, .. } = &history[0].kind else {
        panic!("{:?}", history[0]);
    };
    assert!(
        file_holds(input, INPUT_MARKER),
        "the runtime reads real values"
    );
    let (dir, _) = t.stop().await;
    let file = std::fs::read(TestRuntime::db_path(&dir)).unwrap();
    for marker in [INPUT_MARKER, RESULT_MARKER, SIGNAL_MARKER] {
        assert!(
            !file_holds(&file, marker),
            "`{marker}` is in the database file"
        );
    }
    // A check of the check: the file is read whole, and its plain parts
    // (ids, types) are there.
    assert!(file_holds(&file, "kyc-1") && file_holds(&file, "lookup"));
}

#[tokio::test(start_paused = true)]
async fn with_encryption_off_the_payloads_are_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn weft_core::Clock> =
        Arc::new(weft_server::TokioClock::starting_at(weft_tests::TEST_EPOCH));
    let t = TestRuntime::on_dir_protected(
        dir,
        clock,
        activities(),
        RuntimeConfig::default(),
        Default::default(),
        Protector::off(),
    )
    .await;
    run_markers(&t).await;
    let (dir, _) = t.stop().await;
    let file = std::fs::read(TestRuntime::db_path(&dir)).unwrap();
    for marker in [INPUT_MARKER, RESULT_MARKER, SIGNAL_MARKER] {
        assert!(file_holds(&file, marker), "`{marker}` is not in the file");
    }
}

fn kek_of(record: &weft_store::ExecutionRecord) -> String {
    match &record.protection.as_ref().unwrap().key {
        DataKey::Wrapped { kek, .. } => kek.clone(),
        other => panic!("not wrapped: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn after_a_rotation_both_keys_read_and_without_the_old_one_only_its_executions_fail() {
    let t = TestRuntime::new(activities()).await;
    let call = |n: u32| json!({"activity": "lookup", "input": {"applicant": n}});
    let before = t.start_guest("guest-call", "call", "before", call(1)).await;
    completed(&t, &before).await;
    // A run left waiting under the first key.
    let waiting = t
        .start_guest(
            "guest-messages",
            "messages",
            "waiting",
            json!({"mode": "signals", "count": 1}),
        )
        .await;
    history_with(&t.runtime, &waiting, "SignalAwaited").await;
    let (dir, clock) = t.stop().await;

    let ring_path = dir.path().join(weft_protect::DEV_KEYRING);
    let mut ring = Keyring::load(&ring_path).unwrap();
    ring.rotate("k2").unwrap();
    ring.save(&ring_path).unwrap();
    let config = RuntimeConfig::default();
    let t = TestRuntime::on_dir(dir, clock, activities(), config.clone(), Default::default()).await;
    let after = t.start_guest("guest-call", "call", "after", call(2)).await;
    completed(&t, &after).await;
    for id in ["before", "after"] {
        let history = t.runtime.history(id).await.unwrap();
        assert_eq!(history.last().unwrap().kind.name(), "ExecutionCompleted");
    }
    let (dir, clock) = t.stop().await;
    {
        let store = weft_store::RedbStore::open(
            TestRuntime::db_path(&dir),
            weft_testkit::data_dir_protector(dir.path()),
        )
        .unwrap();
        let old = store.find_execution("before").await.unwrap().unwrap();
        let new = store.find_execution("after").await.unwrap().unwrap();
        assert_eq!(kek_of(&old), "dev-1");
        assert_eq!(kek_of(&new), "k2");
        store.close().await;
    }

    let mut ring = Keyring::load(&ring_path).unwrap();
    ring.remove("dev-1").unwrap();
    ring.save(&ring_path).unwrap();
    let t = TestRuntime::on_dir(dir, clock, activities(), config, Default::default()).await;
    // The old executions fail, naming the key.
    match t.runtime.history("before").await {
        Err(RuntimeError::Store(StoreError::Protection(e))) => {
            assert!(e.to_string().contains("`dev-1`"), "{e}");
        }
        other => panic!("read without its key: {other:?}"),
    }
    let refused = t
        .runtime
        .signal(&waiting, "item", serde_json::to_vec("late").unwrap())
        .await;
    assert!(
        matches!(&refused, Err(e) if e.to_string().contains("`dev-1`")),
        "{refused:?}"
    );
    // The others go on: old ones under the new key, and new ones.
    assert_eq!(
        t.runtime
            .history("after")
            .await
            .unwrap()
            .last()
            .unwrap()
            .kind
            .name(),
        "ExecutionCompleted"
    );
    let fresh = t.start_guest("guest-call", "call", "fresh", call(3)).await;
    assert!(completed(&t, &fresh).await.contains(RESULT_MARKER));
}

#[tokio::test(start_paused = true)]
async fn a_rewrap_moves_old_executions_to_the_current_key_and_keeps_their_chain() {
    let t = TestRuntime::new(activities()).await;
    let call = json!({"activity": "lookup", "input": {"applicant": INPUT_MARKER}});
    let id = t.start_guest("guest-call", "call", "old", call).await;
    let result = completed(&t, &id).await;
    let before = t.runtime.audited_history(&id).await.unwrap();
    let (dir, clock) = t.stop().await;

    let ring_path = dir.path().join(weft_protect::DEV_KEYRING);
    let mut ring = Keyring::load(&ring_path).unwrap();
    ring.rotate("k2").unwrap();
    ring.save(&ring_path).unwrap();
    let config = RuntimeConfig::default();
    let t = TestRuntime::on_dir(dir, clock, activities(), config.clone(), Default::default()).await;
    assert_eq!(t.runtime.rewrap(100).await.unwrap(), 1);
    assert_eq!(
        t.runtime.rewrap(100).await.unwrap(),
        0,
        "nothing left to move"
    );
    let after = t.runtime.audited_history(&id).await.unwrap();
    assert_eq!(kek_of(&after.record), "k2");
    assert_eq!(after.stored, before.stored, "no event was rewritten");
    assert_eq!(
        after.record.protection.as_ref().unwrap().head,
        before.record.protection.as_ref().unwrap().head
    );
    let (dir, clock) = t.stop().await;

    // The old key can go now.
    let mut ring = Keyring::load(&ring_path).unwrap();
    ring.remove("dev-1").unwrap();
    ring.save(&ring_path).unwrap();
    let t = TestRuntime::on_dir(dir, clock, activities(), config, Default::default()).await;
    match t.runtime.result(&id).await.unwrap() {
        WorkflowOutcome::Completed(bytes) => assert_eq!(String::from_utf8(bytes).unwrap(), result),
        other => panic!("{other:?}"),
    }
}
