//! The payment workload's activities, native and on a remote worker.

use anyhow::{Result, bail};
use serde_json::json;
use weft_server::{ActivityContext, ActivityError, ActivityRegistry};

fn validate_account(acct: String) -> serde_json::Value {
    json!({"acct": acct, "valid": true})
}

fn charge((acct, amount): (String, u64)) -> serde_json::Value {
    json!({"acct": acct, "amount": amount, "status": "charged"})
}

/// The workload's activities (the peers' versions do the same).
pub fn activities() -> ActivityRegistry {
    let mut registry = ActivityRegistry::new();
    registry.register(
        "validate_account",
        |_ctx: ActivityContext, acct: String| async move {
            Ok::<_, ActivityError>(validate_account(acct))
        },
    );
    registry.register(
        "charge",
        |_ctx: ActivityContext, args: (String, u64)| async move {
            Ok::<_, ActivityError>(charge(args))
        },
    );
    registry
}

/// The queue the remote workers serve (the bench server has no
/// in-process activities on it).
pub(super) const REMOTE_QUEUE: &str = "bench-remote";

/// A remote activity worker over gRPC: poll, run, complete, until aborted.
pub(super) async fn remote_worker(mut client: weft_api::Client) -> Result<()> {
    use weft_api::pb;
    loop {
        let polled = client
            .poll_activity_task(pb::PollActivityTaskRequest {
                task_queue: REMOTE_QUEUE.into(),
                identity: "bench-worker".into(),
                wait_ms: 5_000,
                ..Default::default()
            })
            .await?
            .into_inner();
        let Some(task) = polled.task else { continue };
        let result = match task.activity_name.as_str() {
            "validate_account" => validate_account(serde_json::from_slice(&task.input)?),
            "charge" => charge(serde_json::from_slice(&task.input)?),
            other => bail!("the bench worker has no activity `{other}`"),
        };
        client
            .complete_activity_task(pb::CompleteActivityTaskRequest {
                task_token: task.task_token,
                result: serde_json::to_vec(&result)?,
                ..Default::default()
            })
            .await?;
    }
}
