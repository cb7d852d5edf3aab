//! The stored-format fixture: every row (but components) of a database
//! written by weft before rows were versioned (row format 1, event format
//! 2), checked in as `tests/fixtures/rows-format-1.json`, rebuilt into a
//! redb file and opened by this build. A change that stops reading what
//! earlier builds wrote fails here.
//!
//! How the fixture was made: with the `weft` binary of commit 6b5fbd6,
//! `weft run` of the payment example (`pay-fixture`, completed, sealed)
//! and, under `weft dev`, a loan-approval execution left waiting for its
//! approval signal (`loan-fixture`: running, a timer due in 3 days); then
//! `WEFT_FIXTURE_DB=<its weft.redb> cargo test -p weft-store
//! dump_fixture -- --ignored`.

use super::tables::*;
use super::{ROW_FORMAT, RedbStore};
use crate::{ExecutionStatus, Store};
use redb::{Database, ReadableDatabase, ReadableTable};
use serde_json::{Value, json};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/rows-format-1.json"
);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Every table's rows as `[key, value]`, values of byte tables in hex.
macro_rules! dump {
    ($txn:expr, $out:expr, $( $name:literal: $def:expr, |$v:ident| $value:expr; )*) => {$(
        let table = $txn.open_table($def).expect("table");
        let mut rows = Vec::new();
        for row in table.iter().expect("iter") {
            let (k, $v) = row.expect("row");
            rows.push(json!([k.value(), $value]));
        }
        $out.insert($name.to_owned(), Value::Array(rows));
    )*};
}

/// Insert a table's fixture rows: its key as `$key` (owned), borrowed by
/// `$borrow`, its value made by `$value` from the JSON value `$v`.
macro_rules! load {
    ($txn:expr, $fixture:expr, $( $name:literal: $def:expr, $key:ty, |$k:ident| $borrow:expr, |$v:ident| $value:expr; )*) => {$({
        let mut table = $txn.open_table($def).expect("table");
        for row in $fixture[$name].as_array().expect("rows") {
            let $k: $key = serde_json::from_value(row[0].clone()).expect("key");
            let $v = &row[1];
            table.insert($borrow, $value).expect("insert");
        }
    })*};
}

fn bytes(v: &Value) -> Vec<u8> {
    unhex(v.as_str().expect("hex"))
}

#[test]
#[ignore = "makes the fixture from a database named by WEFT_FIXTURE_DB"]
fn dump_fixture() {
    let path = std::env::var("WEFT_FIXTURE_DB").expect("WEFT_FIXTURE_DB");
    let db = Database::open(path).expect("open");
    let txn = db.begin_read().expect("read");
    let mut out = serde_json::Map::new();
    dump!(txn, out,
        "meta": META, |v| json!(v.value());
        "workflow_types": WORKFLOW_TYPES, |v| hex(v.value());
        "namespaces": NAMESPACES, |v| hex(v.value());
        "executions": EXECUTIONS, |v| hex(v.value());
        "workflow_ids": WORKFLOW_IDS, |v| json!(v.value());
        "running": RUNNING, |_v| Value::Null;
        "history": HISTORY, |v| hex(v.value());
        "sealed_history": SEALED_HISTORY, |v| hex(v.value());
        "inbox": INBOX, |v| hex(v.value());
        "activity_tasks": TASKS, |v| hex(v.value());
        "ready": READY, |_v| Value::Null;
        "due": DUE, |_v| Value::Null;
    );
    let text = serde_json::to_string_pretty(&Value::Object(out)).expect("json");
    std::fs::write(FIXTURE, text + "\n").expect("write fixture");
}

#[tokio::test]
async fn a_database_written_before_rows_were_versioned_is_migrated_and_read() {
    let protector = weft_protect::Protector::ephemeral().expect("keyring");
    let fixture: Value =
        serde_json::from_str(&std::fs::read_to_string(FIXTURE).expect("fixture")).expect("json");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("weft.redb");
    {
        let db = Database::create(&path).expect("create");
        let txn = db.begin_write().expect("write");
        load!(txn, fixture,
            "meta": META, String, |k| k.as_str(), |v| v.as_u64().expect("u64");
            "workflow_types": WORKFLOW_TYPES, String, |k| k.as_str(), |v| bytes(v).as_slice();
            "namespaces": NAMESPACES, String, |k| k.as_str(), |v| bytes(v).as_slice();
            "executions": EXECUTIONS, u64, |k| k, |v| bytes(v).as_slice();
            "workflow_ids": WORKFLOW_IDS, String, |k| k.as_str(), |v| v.as_u64().expect("u64");
            "running": RUNNING, u64, |k| k, |_v| ();
            "history": HISTORY, (u64, u64), |k| k, |v| bytes(v).as_slice();
            "sealed_history": SEALED_HISTORY, u64, |k| k, |v| bytes(v).as_slice();
            "inbox": INBOX, (u64, u64), |k| k, |v| bytes(v).as_slice();
            "activity_tasks": TASKS, (u64, u32), |k| k, |v| bytes(v).as_slice();
            "ready": READY, (String, u64, u64, u32), |k| (k.0.as_str(), k.1, k.2, k.3), |_v| ();
            "due": DUE, (u64, u64, u32, u8), |k| k, |_v| ();
        );
        txn.commit().expect("commit");
    }
    for _ in 0..2 {
        // Opened twice: the migration runs once, then the rows are current.
        let store = RedbStore::open(&path, protector.clone()).expect("open");
        let paid = store
            .find_execution("pay-fixture")
            .await
            .expect("find")
            .expect("pay-fixture");
        assert_eq!(paid.status, ExecutionStatus::Completed);
        assert_eq!(paid.workflow_type, "payment");
        let loaded = store.load_execution(paid.key).await.expect("load");
        let kinds: Vec<&str> = loaded.history.iter().map(|e| e.kind.name()).collect();
        assert_eq!(kinds.first(), Some(&"ExecutionStarted"));
        assert_eq!(kinds.last(), Some(&"ExecutionCompleted"));
        assert!(loaded.history.iter().all(|e| e.caller.is_none()));

        let running = store.running_executions().await.expect("running");
        assert_eq!(running.len(), 1);
        let loan = &running[0];
        assert_eq!(loan.id.workflow_id, "loan-fixture");
        let loaded = store.load_execution(loan.key).await.expect("load");
        assert!(
            loaded
                .history
                .iter()
                .any(|e| e.kind.name() == "TimerStarted"),
            "{kinds:?}"
        );
        // Everything the runtime reads at start decodes, and the listing
        // index was built from the old rows.
        store
            .list_executions(Default::default())
            .await
            .expect("list");
        let listed = |filter: crate::ListFilter| {
            let store = &store;
            async move {
                let records = store.list_executions(filter).await.expect("list");
                records
                    .into_iter()
                    .map(|r| r.id.workflow_id)
                    .collect::<Vec<_>>()
            }
        };
        let default = || crate::ListFilter {
            namespace: Some("default".into()),
            ..Default::default()
        };
        assert_eq!(
            listed(crate::ListFilter {
                status: Some(ExecutionStatus::Running),
                ..default()
            })
            .await,
            ["loan-fixture"]
        );
        assert_eq!(
            listed(crate::ListFilter {
                workflow_type: Some("payment".into()),
                ..default()
            })
            .await,
            ["pay-fixture"]
        );
        store.namespaces().await.expect("namespaces");
        store.queue_stats("default").await.expect("queue stats");
        store.close().await;
        drop(store);
        let db = Database::open(&path).expect("reopen");
        let txn = db.begin_read().expect("read");
        let format = txn
            .open_table(META)
            .expect("meta")
            .get("row_format")
            .expect("get")
            .map(|v| v.value());
        assert_eq!(format, Some(ROW_FORMAT));
    }
}

#[tokio::test]
async fn a_database_of_a_newer_row_format_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("weft.redb");
    {
        let db = Database::create(&path).expect("create");
        let txn = db.begin_write().expect("write");
        txn.open_table(META)
            .expect("meta")
            .insert("row_format", ROW_FORMAT + 1)
            .expect("insert");
        txn.commit().expect("commit");
    }
    let Err(e) = RedbStore::open(&path, weft_protect::Protector::off()) else {
        panic!("a newer database opened");
    };
    assert!(e.to_string().contains("newer weft"), "{e}");
}

#[tokio::test]
async fn a_format_2_database_gets_its_listing_index() {
    let protector = weft_protect::Protector::ephemeral().expect("keyring");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("weft.redb");
    let store = RedbStore::open(&path, protector.clone()).expect("open");
    let mut new = crate::NewExecution {
        id: weft_core::ExecutionId::new("w", "r"),
        workflow_type: "t".into(),
        component: Default::default(),
        task_queue: "q".into(),
        started: weft_core::Event::new(
            weft_core::Timestamp(1),
            weft_core::EventKind::ExecutionStarted {
                workflow_type: "t".into(),
                component: Default::default(),
                input: Vec::new(),
                random_seed: [0; 32],
                task_queue: "q".into(),
            },
        ),
        parent: None,
        id_reuse: Default::default(),
        run_timeout_ms: None,
        execution_deadline: None,
        search_attributes: Default::default(),
        memo: Default::default(),
    };
    store.start_execution(new.clone()).await.expect("start");
    new.id = weft_core::ExecutionId::new("v", "r");
    store.start_execution(new).await.expect("start");
    store.close().await;
    drop(store);
    {
        // What format 2 was: the same rows, no listing index.
        let db = Database::open(&path).expect("reopen");
        let txn = db.begin_write().expect("write");
        txn.open_table(META)
            .expect("meta")
            .insert("row_format", 2)
            .expect("insert");
        txn.open_table(VISIBILITY)
            .expect("visibility")
            .retain(|_, _| false)
            .expect("clear");
        txn.commit().expect("commit");
    }
    let store = RedbStore::open(&path, protector.clone()).expect("open");
    let running = store
        .list_executions(crate::ListFilter {
            namespace: Some("default".into()),
            status: Some(ExecutionStatus::Running),
            ..Default::default()
        })
        .await
        .expect("list");
    let ids: Vec<String> = running.into_iter().map(|r| r.id.workflow_id).collect();
    assert_eq!(ids, ["v", "w"]);
}
