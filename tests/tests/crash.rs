//! Crash and resume: a weft node in a child process is SIGKILLed while its
//! workflow waits on an activity, and again while a timer is pending. A
//! restarted node on the same data dir completes the workflow exactly once,
//! and no activity attempt whose success was recorded runs again.

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

    let store = RedbStore::open(dir.path().join("weft.redb")).unwrap();
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
