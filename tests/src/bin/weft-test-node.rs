//! A weft node for crash tests: the test runs it as a child process and
//! SIGKILLs it at chosen points. It prints `ACTIVITY <name> <key> <attempt>`
//! when an activity attempt starts and `RESULT <json>` at the end.
//!
//! Usage: weft-test-node <data-dir> <component.wasm> <workflow-id> <timer-ms>

use std::io::Write;
use std::sync::Arc;
use weft_engine::{EngineConfig, WorkflowEngine};
use weft_server::{
    ActivityContext, ActivityError, ActivityRegistry, Runtime, RuntimeConfig, StartWorkflow,
    SystemClock, WorkflowOutcome,
};
use weft_store::RedbStore;

fn announce(ctx: &ActivityContext) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "ACTIVITY {} {} {}",
        ctx.name, ctx.idempotency_key, ctx.attempt
    );
    let _ = out.flush();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, data_dir, component, workflow_id, timer_ms] = args.as_slice() else {
        anyhow::bail!("usage: weft-test-node <data-dir> <component> <workflow-id> <timer-ms>");
    };
    let timer_ms: u64 = timer_ms.parse()?;
    let mut activities = ActivityRegistry::new();
    for name in ["step", "mark"] {
        activities.register(name, |ctx: ActivityContext, input: String| async move {
            announce(&ctx);
            Ok::<_, ActivityError>(input)
        });
    }
    // The first attempt never finishes: the test kills the node during it.
    activities.register("slow", |ctx: ActivityContext, input: String| async move {
        announce(&ctx);
        if ctx.attempt == 1 {
            std::future::pending::<()>().await;
        }
        Ok::<_, ActivityError>(input)
    });

    std::fs::create_dir_all(data_dir)?;
    let store = Arc::new(RedbStore::open(
        std::path::Path::new(data_dir).join("weft.redb"),
        weft_protect::Protector::for_data_dir(std::path::Path::new(data_dir))?.0,
    )?);
    let engine = Arc::new(WorkflowEngine::new(EngineConfig::default())?);
    let runtime = Runtime::start(
        store,
        engine,
        activities,
        Arc::new(SystemClock),
        RuntimeConfig::default(),
    )
    .await?;
    runtime.deploy("crash", std::fs::read(component)?).await?;
    if runtime.history(workflow_id).await.is_err() {
        runtime
            .start_workflow(StartWorkflow {
                workflow_id: workflow_id.clone(),
                workflow_type: "crash".into(),
                input: serde_json::to_vec(&timer_ms)?,
                task_queue: None,
                ..Default::default()
            })
            .await?;
    }
    let outcome = runtime.result(workflow_id).await?;
    runtime.shutdown().await;
    match outcome {
        WorkflowOutcome::Completed(result) => {
            println!("RESULT {}", String::from_utf8_lossy(&result))
        }
        WorkflowOutcome::Failed(failure) => println!("FAILED {failure}"),
        WorkflowOutcome::Terminated(reason) => println!("TERMINATED {reason}"),
    }
    Ok(())
}
