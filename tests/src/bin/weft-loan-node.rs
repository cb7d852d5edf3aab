//! A weft node running the loan-approval example, for the crash test of
//! signals and child workflows. The test SIGKILLs it at chosen points.
//!
//! Usage: weft-loan-node <data-dir> <guest-dir> <workflow-id> [approval-json]
//!
//! Starts the loan (or attaches to it), prints `WAITING` once it waits for
//! the approval signal, sends `approval-json` as that signal if given
//! (printing `SIGNALLED`), and prints `RESULT <json>` at the end.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use weft_engine::{EngineConfig, WorkflowEngine};
use weft_server::{
    ActivityRegistry, Runtime, RuntimeConfig, StartWorkflow, SystemClock, WorkflowOutcome,
};
use weft_store::RedbStore;

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (data_dir, guest_dir, workflow_id, approval) = match args.as_slice() {
        [_, d, g, w] => (d, g, w, None),
        [_, d, g, w, a] => (d, g, w, Some(a.clone())),
        _ => anyhow::bail!("usage: weft-loan-node <data-dir> <guest-dir> <workflow-id> [approval]"),
    };
    std::fs::create_dir_all(data_dir)?;
    let mut activities = ActivityRegistry::new();
    // The bank outlives the node, as a real one would.
    let bank = loan_activities::Bank::open(Path::new(data_dir).join("bank.json"))?;
    loan_activities::register(&mut activities, bank);

    let store = Arc::new(RedbStore::open(
        Path::new(data_dir).join("weft.redb"),
        weft_protect::Protector::for_data_dir(Path::new(data_dir))?.0,
    )?);
    let engine = Arc::new(WorkflowEngine::new(EngineConfig::default())?);
    // Short attempt timeout: an attempt killed with its node retries soon.
    let config = RuntimeConfig {
        default_start_to_close_ms: 1_000,
        ..RuntimeConfig::default()
    };
    let runtime = Runtime::start(store, engine, activities, Arc::new(SystemClock), config).await?;
    let guests = Path::new(guest_dir);
    runtime
        .deploy(
            "loan-approval",
            std::fs::read(guests.join("loan_approval.wasm"))?,
        )
        .await?;
    runtime
        .deploy(
            "account-opening",
            std::fs::read(guests.join("account_opening.wasm"))?,
        )
        .await?;
    if runtime.history(workflow_id).await.is_err() {
        let application = serde_json::json!({
            "application_id": workflow_id,
            "applicant": "ada",
            "amount_cents": 1_000_000,
        });
        runtime
            .start_workflow(StartWorkflow {
                workflow_id: workflow_id.clone(),
                workflow_type: "loan-approval".into(),
                input: serde_json::to_vec(&application)?,
                ..Default::default()
            })
            .await?;
    }
    // A helper process has no event stream to await (the gRPC API's
    // history long-poll will be one): it polls the store.
    loop {
        let history = runtime.history(workflow_id).await?;
        if history.iter().any(|e| e.kind.name() == "SignalAwaited") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    say("WAITING");
    if let Some(approval) = approval {
        runtime
            .signal(workflow_id, "approval", approval.into_bytes())
            .await?;
        say("SIGNALLED");
    }
    let outcome = runtime.result(workflow_id).await?;
    runtime.shutdown().await;
    match outcome {
        WorkflowOutcome::Completed(result) => {
            say(&format!("RESULT {}", String::from_utf8_lossy(&result)))
        }
        WorkflowOutcome::Failed(failure) => say(&format!("FAILED {failure}")),
        WorkflowOutcome::Terminated(reason) => say(&format!("TERMINATED {reason}")),
    }
    Ok(())
}
