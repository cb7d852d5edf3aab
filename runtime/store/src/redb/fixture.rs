//! The stored-format fixtures: every row (but components) of databases
//! written by earlier builds, checked in under `tests/fixtures/`, rebuilt
//! into a redb file and opened by this build. A change that stops reading
//! what earlier builds wrote fails here.
//!
//! - `rows-format-1.json`: written before rows were versioned (row format
//!   1, event format 2). Made with the `weft` binary of commit 6b5fbd6:
//!   `weft run` of the payment example (`pay-fixture`, completed, sealed)
//!   and, under `weft dev`, a loan-approval execution left waiting for its
//!   approval signal (`loan-fixture`: running, a timer due in 3 days);
//!   then `WEFT_FIXTURE_DB=<its weft.redb> cargo test -p weft-store
//!   dump_fixture -- --ignored`.
//! - `rows-format-3.json`: the last format before records carried a data
//!   key and a chain head (row format 3 with its listing index, event
//!   format 3 with callers). Made with the `weft` binary of commit 6ef1d30
//!   (`cargo build --release -p weft` in a worktree of it) and the
//!   components `cargo xtask guests` builds (their sources are the same at
//!   that commit and this one), in an empty data dir `$D`, `$G` the
//!   guests' directory (`target/guest/wasm32-wasip2/guest`):
//!
//!   ```sh
//!   weft run --data-dir $D --component $G/payment_workflow.wasm --type payment \
//!       --id pay-fixture --input '{"account":"acc-1","amount_cents":1250,"currency":"EUR"}'
//!   weft dev --data-dir $D --port 0      # $A: the address it prints
//!   weft --address $A component deploy --type loan-approval $G/loan_approval.wasm
//!   weft --address $A component deploy --type account-opening $G/account_opening.wasm
//!   weft --address $A workflow start --type loan-approval --id loan-fixture \
//!       --input '{"application_id":"loan-fixture","applicant":"ada","amount_cents":5000}'
//!   weft --address $A workflow signal loan-fixture --name note \
//!       --input '{"text":"documents re-sent"}'
//!   kill -TERM <weft dev>                # "stopped cleanly"
//!   WEFT_FIXTURE_DB=$D/weft.redb \
//!   WEFT_FIXTURE_OUT=$PWD/runtime/store/tests/fixtures/rows-format-3.json \
//!       cargo test -p weft-store dump_fixture -- --ignored
//!   ```
//!
//!   `pay-fixture` completed (sealed); `loan-fixture` runs, waiting for its
//!   approval signal with its 72-hour timer due, the `note` signal (which
//!   it does not wait for) received.

use super::tables::*;
use super::{ROW_FORMAT, RedbStore};
use crate::{ExecutionStatus, Store};
use redb::{Database, ReadableDatabase, ReadableTable, TableHandle};
use serde_json::{Value, json};
use std::path::Path;

const FIXTURE_1: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/rows-format-1.json"
);

const FIXTURE_3: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/rows-format-3.json"
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

/// Every table's rows as `[key, value]`, values of byte tables in hex. A
/// table the database does not have (one added by a later format) is left
/// out.
macro_rules! dump {
    ($txn:expr, $out:expr, $( $name:literal: $def:expr, |$v:ident| $value:expr; )*) => {$(
        match $txn.open_table($def) {
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            table => {
                let mut rows = Vec::new();
                for row in table.expect("table").iter().expect("iter") {
                    let (k, $v) = row.expect("row");
                    rows.push(json!([k.value(), $value]));
                }
                $out.insert($name.to_owned(), Value::Array(rows));
            }
        }
    )*};
}

/// Insert a table's fixture rows: its key as `$key` (owned), borrowed by
/// `$borrow`, its value made by `$value` from the JSON value `$v`. A table
/// the fixture does not have (one added after its format) stays empty.
macro_rules! load {
    ($txn:expr, $fixture:expr, $( $name:literal: $def:expr, $key:ty, |$k:ident| $borrow:expr, |$v:ident| $value:expr; )*) => {$({
        let mut table = $txn.open_table($def).expect("table");
        if let Some(rows) = $fixture.get($name) {
            for row in rows.as_array().expect("rows") {
                let $k: $key = serde_json::from_value(row[0].clone()).expect("key");
                let $v = &row[1];
                table.insert($borrow, $value).expect("insert");
            }
        }
    })*};
}

fn bytes(v: &Value) -> Vec<u8> {
    unhex(v.as_str().expect("hex"))
}

/// Dump the database named by `WEFT_FIXTURE_DB` to `WEFT_FIXTURE_OUT`
/// (default: the format-1 fixture).
#[test]
#[ignore = "makes a fixture from a database named by WEFT_FIXTURE_DB"]
fn dump_fixture() {
    let path = std::env::var("WEFT_FIXTURE_DB").expect("WEFT_FIXTURE_DB");
    let fixture = std::env::var("WEFT_FIXTURE_OUT").unwrap_or_else(|_| FIXTURE_1.to_owned());
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
        "api_keys": API_KEYS, |v| hex(v.value());
        "audit_log": AUDIT, |v| hex(v.value());
        "listing": VISIBILITY, |_v| Value::Null;
    );
    // Every table is in the fixture, but the components (large, and not
    // rows of a format).
    for table in txn.list_tables().expect("tables") {
        assert!(
            table.name() == "components" || out.contains_key(table.name()),
            "table {} is not dumped",
            table.name()
        );
    }
    let text = serde_json::to_string_pretty(&Value::Object(out)).expect("json");
    std::fs::write(&fixture, text + "\n").expect("write fixture");
}

/// Rebuild the database of the fixture at `fixture` into a new redb file
/// at `path`.
fn rebuild(fixture: &str, path: &Path) {
    let fixture: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).expect("fixture")).expect("json");
    let tables = [
        "meta",
        "workflow_types",
        "namespaces",
        "executions",
        "workflow_ids",
        "running",
        "history",
        "sealed_history",
        "inbox",
        "activity_tasks",
        "ready",
        "due",
        "api_keys",
        "audit_log",
        "listing",
    ];
    for name in fixture.as_object().expect("tables").keys() {
        assert!(
            tables.contains(&name.as_str()),
            "table {name} is not loaded"
        );
    }
    let db = Database::create(path).expect("create");
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
        "api_keys": API_KEYS, String, |k| k.as_str(), |v| bytes(v).as_slice();
        "audit_log": AUDIT, (u64, u64), |k| k, |v| bytes(v).as_slice();
        "listing": VISIBILITY, (u64, u64), |k| k, |_v| ();
    );
    txn.commit().expect("commit");
}

/// The `row_format` of the (closed) database at `path`.
fn row_format(path: &Path) -> Option<u64> {
    let db = Database::open(path).expect("reopen");
    let txn = db.begin_read().expect("read");
    txn.open_table(META)
        .expect("meta")
        .get("row_format")
        .expect("get")
        .map(|v| v.value())
}

/// The workflow ids `store` lists for `filter`, in the default namespace.
async fn listed(store: &RedbStore, filter: crate::ListFilter) -> Vec<String> {
    let filter = crate::ListFilter {
        namespace: Some("default".into()),
        ..filter
    };
    let records = store.list_executions(filter).await.expect("list");
    records.into_iter().map(|r| r.id.workflow_id).collect()
}

#[tokio::test]
async fn a_database_written_before_rows_were_versioned_is_migrated_and_read() {
    let protector = weft_protect::Protector::ephemeral().expect("keyring");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("weft.redb");
    rebuild(FIXTURE_1, &path);
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
        assert_eq!(
            listed(
                &store,
                crate::ListFilter {
                    status: Some(ExecutionStatus::Running),
                    ..Default::default()
                }
            )
            .await,
            ["loan-fixture"]
        );
        assert_eq!(
            listed(
                &store,
                crate::ListFilter {
                    workflow_type: Some("payment".into()),
                    ..Default::default()
                }
            )
            .await,
            ["pay-fixture"]
        );
        store.namespaces().await.expect("namespaces");
        store.queue_stats("default").await.expect("queue stats");
        store.close().await;
        drop(store);
        assert_eq!(row_format(&path), Some(ROW_FORMAT));
    }
}

#[tokio::test]
async fn a_database_of_row_format_3_is_read_and_its_runs_go_on_in_their_format() {
    use weft_core::{EventKind, InboxMessage, Timestamp};
    let protector = weft_protect::Protector::ephemeral().expect("keyring");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("weft.redb");
    rebuild(FIXTURE_3, &path);
    assert_eq!(row_format(&path), Some(3));
    let json = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).expect("json payload");
    let loan_events = [
        "ExecutionStarted",
        "ActivityScheduled",
        "ActivityScheduled",
        "ActivityStarted",
        "ActivityCompleted",
        "ActivityStarted",
        "ActivityCompleted",
        "ActivityScheduled",
        "ActivityStarted",
        "ActivityCompleted",
        "SignalAwaited",
        "TimerStarted",
        "SignalReceived",
    ];
    let mut loan_key = None;
    for round in 0..2 {
        // Opened twice: the first open moves the database to this build's
        // format, the second finds it current.
        let store = RedbStore::open(&path, protector.clone()).expect("open");
        let paid = store
            .find_execution("pay-fixture")
            .await
            .expect("find")
            .expect("pay-fixture");
        assert_eq!(paid.status, ExecutionStatus::Completed);
        assert_eq!(paid.workflow_type, "payment");
        // Written before data keys: nothing sealed, no chain.
        assert!(paid.protection.is_none());
        let loaded = store.load_execution(paid.key).await.expect("load");
        let kinds: Vec<&str> = loaded.history.iter().map(|e| e.kind.name()).collect();
        assert_eq!(kinds.first(), Some(&"ExecutionStarted"), "{kinds:?}");
        assert_eq!(kinds.last(), Some(&"ExecutionCompleted"), "{kinds:?}");
        let EventKind::ExecutionStarted { input, .. } = &loaded.history[0].kind else {
            unreachable!()
        };
        assert_eq!(
            json(input),
            json!({"account": "acc-1", "amount_cents": 1250, "currency": "EUR"})
        );
        let Some(EventKind::ExecutionCompleted { result }) = loaded.history.last().map(|e| &e.kind)
        else {
            unreachable!()
        };
        assert_eq!(
            json(result),
            json!({
                "receipt_id": "R-79dba5e059f89a28",
                "charge_id": "ch_000001_acc-1",
                "holder": "Holder of acc-1",
                "amount_cents": 1250,
                "currency": "EUR",
            })
        );

        let running = store.running_executions().await.expect("running");
        assert_eq!(running.len(), 1);
        let loan = &running[0];
        assert_eq!(loan.id.workflow_id, "loan-fixture");
        assert_eq!(loan.status, ExecutionStatus::Running);
        assert_eq!(loan.workflow_type, "loan-approval");
        assert!(loan.protection.is_none());
        loan_key = Some(loan.key);
        let loaded = store.load_execution(loan.key).await.expect("load");
        let kinds: Vec<&str> = loaded.history.iter().map(|e| e.kind.name()).collect();
        assert_eq!(kinds, loan_events);
        assert!(loaded.inbox.is_empty());
        let EventKind::ExecutionStarted { input, .. } = &loaded.history[0].kind else {
            unreachable!()
        };
        assert_eq!(
            json(input),
            json!({"application_id": "loan-fixture", "applicant": "ada", "amount_cents": 5000})
        );
        let EventKind::SignalReceived { name, payload } = &loaded.history[12].kind else {
            unreachable!()
        };
        assert_eq!(name, "note");
        assert_eq!(json(payload), json!({"text": "documents re-sent"}));
        // Format 3 recorded who caused an event.
        for event in [&loaded.history[0], &loaded.history[12]] {
            let caller = event.caller.as_ref().expect("caller");
            assert_eq!(caller.identity, "anonymous");
        }
        let EventKind::TimerStarted {
            seq: 4,
            duration_ms: 259_200_000,
            fire_at,
        } = loaded.history[11].kind
        else {
            panic!("{:?}", loaded.history[11]);
        };
        // The timer is armed: nothing is due before it, and it is next.
        let due = store
            .fire_due(Timestamp(fire_at.0 - 1), 10)
            .await
            .expect("fire due");
        assert!(due.delivered.is_empty());
        assert_eq!(due.next_due, Some(fire_at));

        assert_eq!(
            listed(
                &store,
                crate::ListFilter {
                    status: Some(ExecutionStatus::Running),
                    ..Default::default()
                }
            )
            .await,
            ["loan-fixture"]
        );
        assert_eq!(
            listed(
                &store,
                crate::ListFilter {
                    status: Some(ExecutionStatus::Completed),
                    ..Default::default()
                }
            )
            .await,
            ["pay-fixture"]
        );
        assert_eq!(
            listed(
                &store,
                crate::ListFilter {
                    workflow_type: Some("payment".into()),
                    ..Default::default()
                }
            )
            .await,
            ["pay-fixture"]
        );
        assert_eq!(
            listed(&store, Default::default()).await,
            ["loan-fixture", "pay-fixture"]
        );
        let mut types = store.workflow_types().await.expect("types");
        types.sort();
        let types: Vec<&str> = types.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(types, ["account-opening", "loan-approval", "payment"]);
        let audit = store
            .audit_log(crate::AuditFilter {
                since: Some(Timestamp(0)),
                ..Default::default()
            })
            .await
            .expect("audit");
        let rpcs: Vec<&str> = audit.iter().map(|a| a.rpc.as_str()).collect();
        assert_eq!(
            rpcs,
            [
                "DeployComponent",
                "DeployComponent",
                "StartWorkflow",
                "SignalWorkflow"
            ]
        );
        store.namespaces().await.expect("namespaces");
        store.queue_stats("default").await.expect("queue stats");

        if round == 1 {
            // The old run goes on: the approval arrives, the workflow
            // takes it and cancels its timer.
            let entry = store
                .send(
                    loan.key,
                    InboxMessage::Signal {
                        name: "approval".into(),
                        payload: br#"{"approved":true,"reviewer":"grace"}"#.to_vec(),
                    },
                )
                .await
                .expect("send")
                .expect("running");
            let loaded = store.load_execution(loan.key).await.expect("load");
            assert_eq!(loaded.inbox, std::slice::from_ref(&entry));
            let at = Timestamp(loaded.history[12].at.0 + 1000);
            store
                .commit(crate::Transition {
                    key: loan.key,
                    first_index: 13,
                    events: vec![
                        weft_core::Event::new(
                            at,
                            EventKind::SignalReceived {
                                name: "approval".into(),
                                payload: br#"{"approved":true,"reviewer":"grace"}"#.to_vec(),
                            },
                        ),
                        weft_core::Event::new(at, EventKind::TimerCanceled { seq: 5, timer: 4 }),
                    ],
                    consumed_inbox_through: Some(entry.seq),
                    cancelled_timers: vec![(fire_at, 4)],
                    ..Default::default()
                })
                .await
                .expect("commit");
            let loaded = store.load_execution(loan.key).await.expect("reload");
            let kinds: Vec<&str> = loaded.history.iter().map(|e| e.kind.name()).collect();
            assert_eq!(
                kinds,
                [&loan_events[..], &["SignalReceived", "TimerCanceled"]].concat()
            );
            assert!(loaded.inbox.is_empty());
            assert!(loaded.record.protection.is_none());
            assert_eq!(loaded.record.next_event, 15);
            let due = store.fire_due(fire_at, 10).await.expect("fire due");
            assert!(due.delivered.is_empty(), "{:?}", due.delivered);
        }
        store.close().await;
        drop(store);
        assert_eq!(row_format(&path), Some(ROW_FORMAT));
    }

    // Reopened, the run has its new events, stored in its old event
    // format (it has no data key and no chain to link them to).
    let loan_key = loan_key.expect("loan-fixture");
    {
        let store = RedbStore::open(&path, protector.clone()).expect("open");
        let loaded = store.load_execution(loan_key).await.expect("load");
        assert_eq!(loaded.history.len(), 15);
        assert!(loaded.record.protection.is_none());
        let EventKind::SignalReceived { name, payload } = &loaded.history[13].kind else {
            panic!("{:?}", loaded.history[13]);
        };
        assert_eq!(name, "approval");
        assert_eq!(
            json(payload),
            json!({"approved": true, "reviewer": "grace"})
        );
        store.close().await;
    }
    let db = Database::open(&path).expect("reopen");
    let txn = db.begin_read().expect("read");
    let history = txn.open_table(HISTORY).expect("history");
    let formats: Vec<u8> = history
        .range((loan_key, 0)..=(loan_key, u64::MAX))
        .expect("range")
        .map(|row| row.expect("row").1.value()[0])
        .collect();
    assert_eq!(formats, [weft_core::FORMAT_VERSION; 15]);
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
