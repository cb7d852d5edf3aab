//! Crash and resume: a weft node in a child process is SIGKILLed while its
//! workflow waits on an activity, and again while a timer is pending. A
//! restarted node on the same data dir completes the workflow exactly once,
//! and no activity attempt whose success was recorded runs again. The same
//! for the loan-approval example: killed while it waits for its approval
//! signal, and right after the signal was accepted.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use weft_core::EventKind;
use weft_store::{RedbStore, Store};
use weft_tests::guest_path;

const NODE: &str = env!("CARGO_BIN_EXE_weft-test-node");
const WORKFLOW_ID: &str = "crash-1";

/// A node process and the lines it printed so far.
struct Node {
    child: Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    seen: Vec<String>,
}

impl Node {
    fn spawn(data_dir: &std::path::Path) -> Node {
        let mut child = Command::new(NODE)
            .args([
                data_dir.to_str().unwrap(),
                guest_path("guest-crash").to_str().unwrap(),
                WORKFLOW_ID,
                "1000",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn weft-test-node");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Node {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Read lines until one starts with `prefix`; returns it.
    async fn wait_for(&mut self, prefix: &str) -> String {
        while let Some(line) = self.lines.next_line().await.expect("read node output") {
            self.seen.push(line.clone());
            if line.starts_with(prefix) {
                return line;
            }
        }
        panic!(
            "node exited before printing `{prefix}`; printed {:?}",
            self.seen
        );
    }

    async fn kill(mut self) -> Vec<String> {
        self.child.kill().await.expect("SIGKILL node");
        self.seen
    }
}

#[tokio::test]
async fn killed_node_resumes_and_completes_exactly_once() {
    let dir = tempfile::tempdir().unwrap();

    // 1st kill: `step one` succeeded, `slow` is running.
    let mut a = Node::spawn(dir.path());
    a.wait_for("ACTIVITY slow").await;
    let mut printed = a.kill().await;

    // 2nd kill: `slow` timed out and was retried, the timer is committed
    // (the `mark` activity scheduled with it has started) and pending.
    let mut b = Node::spawn(dir.path());
    b.wait_for("ACTIVITY mark").await;
    printed.extend(b.kill().await);

    // 3rd run: the timer fires after the restart and the workflow ends.
    let mut c = Node::spawn(dir.path());
    let result = c.wait_for("RESULT").await;
    assert_eq!(result, r#"RESULT ["one","two","three"]"#);
    assert!(c.child.wait().await.unwrap().success());
    printed.extend(c.seen);

    let store = RedbStore::open(
        dir.path().join("weft.redb"),
        weft_testkit::data_dir_protector(dir.path()),
    )
    .unwrap();
    let record = store
        .find_execution(WORKFLOW_ID)
        .await
        .unwrap()
        .expect("execution exists");
    let history = store.load_execution(record.key).await.unwrap().history;
    let count = |name: &str| history.iter().filter(|e| e.kind.name() == name).count();
    assert_eq!(count("ExecutionCompleted"), 1);
    assert_eq!(count("ExecutionStarted"), 1);
    assert_eq!((count("TimerStarted"), count("TimerFired")), (1, 1));
    // The first `slow` attempt died with node A and timed out.
    assert!(
        history
            .iter()
            .any(|e| matches!(e.kind, EventKind::ActivityTimedOut { attempt: 1, .. }))
    );

    // Attempts that ran, from the nodes' output: (idempotency key, attempt).
    let mut ran: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    for line in printed.iter().filter(|l| l.starts_with("ACTIVITY ")) {
        let parts: Vec<&str> = line.split(' ').collect();
        let attempt: u32 = parts[3].parse().unwrap();
        assert!(
            ran.entry(parts[2].to_owned()).or_default().insert(attempt),
            "attempt ran twice: {line}"
        );
    }
    // No attempt after a recorded success.
    for event in &history {
        if let EventKind::ActivityCompleted { seq, attempt, .. } = event.kind {
            let key = format!("{WORKFLOW_ID}/{}/{seq}", record.id.run_id);
            let attempts = ran
                .get(&key)
                .unwrap_or_else(|| panic!("completed activity {key} never ran: {printed:?}"));
            assert_eq!(
                attempts.last(),
                Some(&attempt),
                "activity {key} ran again after its success was recorded"
            );
        }
    }
    // `step one` completed before the first kill and never ran again.
    let step_one = format!("{WORKFLOW_ID}/{}/0", record.id.run_id);
    assert_eq!(ran[&step_one], BTreeSet::from([1]));
}

const LOAN_NODE: &str = env!("CARGO_BIN_EXE_weft-loan-node");

/// Run the loan node; `approval` is sent as the approval signal.
fn loan_node(data_dir: &std::path::Path, approval: Option<&str>) -> Node {
    let guests = weft_tests::guest_dir();
    let mut args = vec![
        data_dir.to_str().unwrap().to_owned(),
        guests.to_str().unwrap().to_owned(),
        "loan-crash".to_owned(),
    ];
    args.extend(approval.map(str::to_owned));
    let mut child = Command::new(LOAN_NODE)
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn weft-loan-node");
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    Node {
        child,
        lines,
        seen: Vec::new(),
    }
}

#[tokio::test]
async fn signals_and_children_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    // 1st kill: the loan waits for its approval signal.
    let mut a = loan_node(dir.path(), None);
    a.wait_for("WAITING").await;
    a.kill().await;

    // 2nd kill: right after the signal is accepted (durable), wherever the
    // workflow got to with it (recording it, starting the child...).
    let approval = r#"{"approved":true,"reviewer":"grace"}"#;
    let mut b = loan_node(dir.path(), Some(approval));
    b.wait_for("SIGNALLED").await;
    b.kill().await;

    // 3rd run: no new signal; the recorded one carries the loan through.
    let mut c = loan_node(dir.path(), None);
    let result = c.wait_for("RESULT").await;
    let result: serde_json::Value =
        serde_json::from_str(result.trim_start_matches("RESULT ")).unwrap();
    assert_eq!(result["outcome"], "approved");
    assert_eq!(result["reviewer"], "grace");
    assert!(c.child.wait().await.unwrap().success());

    let store = RedbStore::open(
        dir.path().join("weft.redb"),
        weft_testkit::data_dir_protector(dir.path()),
    )
    .unwrap();
    let history = |id: &'static str| {
        let store = &store;
        async move {
            let record = store.find_execution(id).await.unwrap().expect("exists");
            store.load_execution(record.key).await.unwrap().history
        }
    };
    let parent = history("loan-crash").await;
    let count =
        |h: &[weft_core::Event], name: &str| h.iter().filter(|e| e.kind.name() == name).count();
    assert_eq!(
        count(&parent, "SignalReceived"),
        1,
        "the signal arrived once"
    );
    assert_eq!(count(&parent, "ChildStarted"), 1);
    assert_eq!(count(&parent, "ChildCompleted"), 1);
    assert_eq!(count(&parent, "ExecutionCompleted"), 1);
    let child = history("loan-crash/account").await;
    let accounts = child
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::ActivityScheduled { name, .. } if name == "create_account"))
        .count();
    assert_eq!(accounts, 1, "one account-opening command");
    assert_eq!(count(&child, "ExecutionCompleted"), 1);
    // The bank saw one hold, disbursed, and one account, whatever attempts
    // the kills repeated (idempotency keys).
    let bank = loan_activities::Bank::open(dir.path().join("bank.json")).unwrap();
    let holds: Vec<_> = bank.holds().into_iter().map(|(_, _, h)| h).collect();
    assert_eq!(holds, [loan_activities::Hold::Disbursed]);
    assert_eq!(bank.accounts_opened(), 1);
}
