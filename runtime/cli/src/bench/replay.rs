use super::proc::cpu_time;
use super::{Bench, fresh_runtime};
use anyhow::{Result, bail};
use serde_json::json;
use std::time::Instant;
use weft_server::{RuntimeConfig, StartWorkflow, WorkflowOutcome};

/// Replay scenario: record histories of about 10, 1,000 and 10,000 events
/// (a workflow of sequential zero-length timers), then replay each through
/// the guest, as rebuilding an evicted execution does, and report events
/// per second and the time per rebuild.
pub async fn run_replay(bench: Bench<'_>) -> Result<()> {
    let (runtime, engine, _) =
        fresh_runtime(&bench, "bench-replay", RuntimeConfig::default()).await?;
    println!("scenario   replay (sequential timers, through the guest)");
    for steps in [4u32, 500, 5_000] {
        let id = format!("replay-{steps}");
        runtime
            .start_workflow(StartWorkflow {
                workflow_id: id.clone(),
                workflow_type: "bench-payment".into(),
                input: serde_json::to_vec(&json!({"steps": steps}))?,
                ..Default::default()
            })
            .await?;
        match runtime.result(&id).await? {
            WorkflowOutcome::Completed(_) => {}
            other => bail!("{id} did not complete: {other:?}"),
        }
        let history = runtime.history(&id).await?;
        let record = runtime.describe(&id).await?;
        // About two million events replayed per history length (capped).
        let rounds = (2_000_000 / history.len()).clamp(1, 1_000);
        let cpu_before = cpu_time();
        let started = Instant::now();
        for _ in 0..rounds {
            let report = engine.replay(record.id.clone(), history.clone()).await?;
            if !report.closed {
                bail!("replay of {id} did not reach the end");
            }
        }
        let elapsed = started.elapsed();
        let cpu = cpu_time().saturating_sub(cpu_before);
        let events = (history.len() * rounds) as f64;
        let per_s = events / elapsed.as_secs_f64();
        let rebuild_ms = elapsed.as_secs_f64() * 1_000.0 / rounds as f64;
        println!(
            "history    {:>6} events: {per_s:>10.0} events/s, {rebuild_ms:.3} ms per rebuild ({rounds} rounds)",
            history.len()
        );
        println!(
            "{}",
            json!({
                "scenario": "replay", "events": history.len(), "rounds": rounds,
                "events_per_s": per_s, "rebuild_ms": rebuild_ms,
                "cpu_ms_per_rebuild": cpu.as_secs_f64() * 1_000.0 / rounds as f64,
            })
        );
    }
    runtime.shutdown().await;
    Ok(())
}
