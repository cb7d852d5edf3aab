//! Shared by the end-to-end tests: a `weft dev` process and gRPC helpers.

#![allow(dead_code)] // each test binary uses its own subset

use serde_json::Value;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tonic::transport::Channel;
use weft_api::pb::{self, weft_client::WeftClient};
use weft_tests::guest_path;

pub const WEFT: &str = env!("CARGO_BIN_EXE_weft");

/// A `weft dev` process.
pub struct Dev {
    pub child: Child,
    pub address: String,
}

impl Dev {
    pub async fn start(data_dir: &std::path::Path) -> Dev {
        let mut child = Command::new(WEFT)
            .args([
                "--data-dir",
                data_dir.to_str().unwrap(),
                "dev",
                "--port",
                "0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn weft dev");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // First line: "weft dev listening on http://127.0.0.1:PORT (...)".
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("weft dev printed nothing");
        let address = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        Dev { child, address }
    }

    pub async fn client(&self) -> WeftClient<Channel> {
        WeftClient::connect(self.address.clone()).await.unwrap()
    }

    /// Run the CLI against this server; (success, stdout, stderr).
    pub async fn cli(&self, args: &[&str]) -> (bool, String, String) {
        weft(
            [&["--address", self.address.as_str()][..], args]
                .concat()
                .as_slice(),
        )
        .await
    }

    /// SIGTERM, then the exit status.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().unwrap();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().await.unwrap()
    }
}

/// Run `weft` with `args`: success, stdout, stderr.
pub async fn weft(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(WEFT).args(args).output().await.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn guest(name: &str) -> String {
    guest_path(name).to_str().unwrap().to_owned()
}

pub fn start(id: &str, workflow_type: &str, input: Value) -> pb::StartWorkflowRequest {
    pb::StartWorkflowRequest {
        workflow_id: id.into(),
        workflow_type: workflow_type.into(),
        input: serde_json::to_vec(&input).unwrap(),
        ..Default::default()
    }
}

pub async fn completed(client: &mut WeftClient<Channel>, id: &str) -> Value {
    let r = client
        .get_result(pb::GetResultRequest {
            workflow_id: id.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    match r.outcome {
        Some(pb::get_result_response::Outcome::Completed(v)) => serde_json::from_slice(&v).unwrap(),
        other => panic!("{id} did not complete: {other:?}"),
    }
}

/// Follow `id`'s history live (long-poll) until an `event` appears;
/// returns the run id.
pub async fn wait_for_event(client: &mut WeftClient<Channel>, id: &str, event: &str) -> String {
    let mut from = 0;
    loop {
        let page = client
            .get_history(pb::GetHistoryRequest {
                workflow_id: id.into(),
                from_index: from,
                wait_new_events: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        from = page.next_index;
        if page.events.iter().any(|e| e.event_type == event) {
            return page.run_id;
        }
        assert!(!page.closed, "{id} closed without recording {event}");
    }
}
