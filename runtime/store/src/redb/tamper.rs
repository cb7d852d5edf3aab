//! Tamper evidence against someone who edits the database file: each way
//! of changing a stored history (a flipped byte, a dropped event, a swapped
//! pair, a cut tail, a rewritten chain, a forged signature) is caught by
//! verification, which names where.

use super::RedbStore;
use super::history::{seal, unseal};
use super::tables::*;
use crate::{ExecutionStatus, NewExecution, Store, Transition};
use redb::ReadableTable;
use weft_core::{ComponentId, Event, EventKind, ExecKey, ExecutionId, Timestamp, hex};
use weft_protect::Protector;
use weft_protect::export::{ExportedChain, ExportedCheckpoint, verify};
use weft_protect::verify::Broken;

const T0: Timestamp = Timestamp(1_000_000);

fn new_execution(id: &str) -> NewExecution {
    NewExecution {
        id: ExecutionId::new(id, "run"),
        workflow_type: "t".into(),
        component: ComponentId::default(),
        task_queue: "q".into(),
        started: Event::new(
            T0,
            EventKind::ExecutionStarted {
                workflow_type: "t".into(),
                component: ComponentId::default(),
                input: b"{\"applicant\":\"Ada\"}".to_vec(),
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
    }
}

fn timer(seq: u32, i: u64) -> Event {
    Event::new(T0.plus_ms(i), EventKind::TimerFired { seq })
}

/// What `weft audit verify` checks, built from the store's answer.
async fn exported(store: &RedbStore, key: ExecKey) -> ExportedChain {
    let a = store.audited_history(key).await.expect("audited");
    let p = a.record.protection.clone().expect("chained");
    let checkpoint = a.checkpoint.map(|c| {
        let (index, leaf, path) = c.inclusion(key).expect("leaf");
        ExportedCheckpoint {
            seq: c.seq,
            at_ms: c.at.0,
            kind: c.kind.name().into(),
            leaf_index: index as u64,
            leaf_count: c.leaves.len() as u64,
            leaf_events: leaf.events,
            leaf_head: leaf.head.to_hex(),
            root: hex(&c.root),
            path: path.iter().map(|h| hex(h)).collect(),
            signature: hex(&c.signature),
            public_key: hex(&c.public_key),
        }
    });
    ExportedChain {
        workflow_id: a.record.id.workflow_id.clone(),
        run_id: a.record.id.run_id.clone(),
        exec_key: key,
        chained: true,
        origin: p.origin().to_hex(),
        head: p.head.to_hex(),
        stored: a.stored.iter().map(|s| hex(s)).collect(),
        status: format!("{:?}", a.record.status),
        data_key: String::new(),
        checkpoint,
    }
}

/// A store with one closed execution of 6 events (signed in a closed
/// checkpoint) and one running one of 4 events (in an open checkpoint).
async fn setup(path: &std::path::Path, protector: &Protector) -> (ExecKey, ExecKey) {
    let store = RedbStore::open(path, protector.clone()).expect("open");
    let closed = store
        .start_execution(new_execution("closed"))
        .await
        .expect("start")
        .key;
    let events = vec![timer(0, 1), timer(1, 2), timer(2, 3), timer(3, 4)];
    store
        .commit(Transition {
            key: closed,
            first_index: 1,
            events,
            ..Transition::default()
        })
        .await
        .expect("commit");
    let done = Event::new(
        T0.plus_ms(5),
        EventKind::ExecutionCompleted {
            result: b"\"Ada\"".to_vec(),
        },
    );
    store
        .commit(Transition {
            key: closed,
            first_index: 5,
            events: vec![done],
            close: Some(ExecutionStatus::Completed),
            ..Transition::default()
        })
        .await
        .expect("close");
    let open = store
        .start_execution(new_execution("open"))
        .await
        .expect("start")
        .key;
    store
        .commit(Transition {
            key: open,
            first_index: 1,
            events: vec![timer(0, 1), timer(1, 2), timer(2, 3)],
            ..Transition::default()
        })
        .await
        .expect("commit");
    let signed = store
        .checkpoint_closed(T0.plus_ms(9))
        .await
        .expect("sign")
        .expect("signed");
    assert_eq!(signed.leaves.len(), 1);
    store
        .checkpoint_open(T0.plus_ms(9), 10)
        .await
        .expect("sign open")
        .expect("signed");
    let key = protector.signing_public_key().expect("signer");
    for k in [closed, open] {
        let v = verify(&exported(&store, k).await, Some(&key)).expect("intact");
        assert!(v.checkpoint.is_some() && v.pinned);
    }
    store.close().await;
    (closed, open)
}

/// Rewrite the sealed history of `key` with `edit` applied to its events.
fn edit_sealed(path: &std::path::Path, key: ExecKey, edit: impl FnOnce(&mut Vec<Vec<u8>>)) {
    let db = redb::Database::open(path).expect("db");
    let txn = db.begin_write().expect("write");
    {
        let mut table = txn.open_table(SEALED_HISTORY).expect("table");
        let mut events =
            unseal(table.get(key).expect("get").expect("sealed").value()).expect("unseal");
        edit(&mut events);
        table
            .insert(key, seal(&events).expect("seal").as_slice())
            .expect("insert");
    }
    txn.commit().expect("commit");
}

async fn broken(path: &std::path::Path, protector: &Protector, key: ExecKey) -> Broken {
    let store = RedbStore::open(path, protector.clone()).expect("open");
    let trusted = protector.signing_public_key().expect("signer");
    let result = verify(&exported(&store, key).await, Some(&trusted));
    store.close().await;
    result.expect_err("tampering must be caught")
}

/// A fresh store, tampered with by `tamper`; what verifying `which` says.
async fn tampered(
    which: fn((ExecKey, ExecKey)) -> ExecKey,
    tamper: impl FnOnce(&std::path::Path, (ExecKey, ExecKey)),
) -> Broken {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("weft.redb");
    let protector = Protector::ephemeral().expect("keyring");
    let keys = setup(&path, &protector).await;
    tamper(&path, keys);
    broken(&path, &protector, which(keys)).await
}

fn closed(keys: (ExecKey, ExecKey)) -> ExecKey {
    keys.0
}
fn open(keys: (ExecKey, ExecKey)) -> ExecKey {
    keys.1
}

#[tokio::test]
async fn a_flipped_byte_is_named_by_the_link_after_it() {
    let b = tampered(closed, |path, (key, _)| {
        // Event 2's time (the byte after its version and link).
        edit_sealed(path, key, |e| e[2][1 + weft_core::LINK_LEN] ^= 1);
    })
    .await;
    assert!(matches!(b, Broken::Link { index: 3, .. }), "{b}");
}

#[tokio::test]
async fn a_dropped_event_and_a_swapped_pair_are_named() {
    let b = tampered(closed, |path, (key, _)| {
        edit_sealed(path, key, |e| drop(e.remove(2)))
    })
    .await;
    assert!(matches!(b, Broken::Link { index: 2, .. }), "{b}");
    let b = tampered(closed, |path, (key, _)| {
        edit_sealed(path, key, |e| e.swap(3, 4))
    })
    .await;
    assert!(matches!(b, Broken::Link { index: 3, .. }), "{b}");
    // The same in a running execution's rows.
    let b = tampered(open, |path, (_, key)| {
        let db = redb::Database::open(path).expect("db");
        let txn = db.begin_write().expect("write");
        {
            let mut rows = txn.open_table(HISTORY).expect("table");
            let one = rows
                .get((key, 1))
                .expect("get")
                .expect("row")
                .value()
                .to_vec();
            let two = rows
                .get((key, 2))
                .expect("get")
                .expect("row")
                .value()
                .to_vec();
            rows.insert((key, 1), two.as_slice()).expect("insert");
            rows.insert((key, 2), one.as_slice()).expect("insert");
        }
        txn.commit().expect("commit");
    })
    .await;
    assert!(matches!(b, Broken::Link { index: 1, .. }), "{b}");
}

#[tokio::test]
async fn a_cut_tail_is_caught_by_the_record_and_a_rebuilt_chain_by_the_checkpoint() {
    let b = tampered(closed, |path, (key, _)| {
        edit_sealed(path, key, |e| drop(e.pop()))
    })
    .await;
    assert!(
        matches!(&b, Broken::Head { events: 5, against, .. } if against == "the execution record"),
        "{b}"
    );
    // Cut, and the record's head rewritten to match: the signed
    // checkpoint still holds the old head.
    let protector = Protector::ephemeral().expect("keyring");
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("weft.redb");
    let (key, _) = setup(&path, &protector).await;
    edit_sealed(&path, key, |e| drop(e.pop()));
    {
        let store = RedbStore::open(&path, protector.clone()).expect("open");
        let a = store.audited_history(key).await.expect("audited");
        let mut record = a.record.clone();
        let p = record.protection.as_mut().expect("chained");
        let stored: Vec<&[u8]> = a.stored.iter().map(Vec::as_slice).collect();
        p.head = weft_protect::verify::chain(p.origin(), stored)
            .expect("chain")
            .0;
        record.next_event -= 1;
        store.close().await;
        drop(store);
        let db = redb::Database::open(&path).expect("db");
        let txn = db.begin_write().expect("write");
        let row = crate::protection::encode_record(&record, &protector).expect("encode");
        txn.open_table(EXECUTIONS)
            .expect("t")
            .insert(key, row.as_slice())
            .expect("insert");
        txn.commit().expect("commit");
    }
    let b = broken(&path, &protector, key).await;
    assert!(
        matches!(&b, Broken::Head { against, .. } if against.starts_with("checkpoint 1")),
        "{b}"
    );
}

#[tokio::test]
async fn a_forged_checkpoint_signature_is_caught() {
    let b = tampered(closed, |path, _| {
        let db = redb::Database::open(path).expect("db");
        let txn = db.begin_write().expect("write");
        {
            let mut table = txn.open_table(CHECKPOINTS).expect("table");
            let mut c: weft_protect::checkpoint::Checkpoint = super::rows::decode_row(
                "checkpoints",
                table.get(1).expect("get").expect("row").value(),
            )
            .expect("decode");
            c.signature[0] ^= 1;
            table
                .insert(1, super::rows::encode_row(&c).expect("encode").as_slice())
                .expect("insert");
        }
        txn.commit().expect("commit");
    })
    .await;
    assert!(matches!(b, Broken::Signature { seq: 1, .. }), "{b}");
}
