use super::proc::rss_kib;
use super::{Bench, fresh_runtime, percentile};
use anyhow::{Result, bail};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use weft_server::{RuntimeConfig, StartWorkflow, SystemClock, WorkflowOutcome};

/// Timers scenario: `--n` executions each sleep until a due time spread
/// evenly over a 60 s window that opens once all can be started; then
/// every timer fires. Reports the database bytes per sleeping execution
/// and the lateness of each firing (when it entered the history, minus
/// when it was due), through evictions and replays.
pub async fn run_timers(bench: Bench<'_>) -> Result<()> {
    const WINDOW_MS: u64 = 60_000;
    let (runtime, _, db) = fresh_runtime(&bench, "bench-timers", RuntimeConfig::default()).await?;
    let n = bench.executions.max(1);
    let clock = SystemClock;
    // The window opens once every execution can have started (starts run
    // at well over 400/s even while the cache evicts), so firings are
    // measured without starts competing with them.
    let lead_ms = 5_000 + n as u64 * 5 / 2;
    let first_due = weft_server::Clock::now(&clock).0 + lead_ms;
    let disk_before = std::fs::metadata(&db).map_or(0, |m| m.len());
    let started = Instant::now();
    let mut lanes = JoinSet::new();
    let lanes_n = bench.concurrency.clamp(1, 64);
    for l in 0..lanes_n {
        let runtime = runtime.clone();
        lanes.spawn(async move {
            for i in (l..n).step_by(lanes_n) {
                let due = first_due + i as u64 * WINDOW_MS / n as u64;
                let sleep_ms = due.saturating_sub(weft_server::Clock::now(&SystemClock).0);
                runtime
                    .start_workflow(StartWorkflow {
                        workflow_id: format!("timer-{i}"),
                        workflow_type: "bench-payment".into(),
                        input: serde_json::to_vec(&json!({"sleep_ms": sleep_ms}))?,
                        ..Default::default()
                    })
                    .await?;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(done) = lanes.join_next().await {
        done??;
    }
    let start_s = started.elapsed().as_secs_f64();
    // Every execution has recorded its timer once its first task committed.
    for i in 0..n {
        let id = format!("timer-{i}");
        while runtime.history(&id).await?.len() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let disk_sleeping = std::fs::metadata(&db)
        .map_or(0, |m| m.len())
        .saturating_sub(disk_before);
    let (rss, _) = rss_kib();
    let mut lateness = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("timer-{i}");
        match runtime.result(&id).await? {
            WorkflowOutcome::Completed(_) => {}
            other => bail!("{id} did not complete: {other:?}"),
        }
        let history = runtime.history(&id).await?;
        let due = history.iter().find_map(|e| match e.kind {
            weft_core::EventKind::TimerStarted { fire_at, .. } => Some(fire_at.0),
            _ => None,
        });
        let fired = history
            .iter()
            .find(|e| matches!(e.kind, weft_core::EventKind::TimerFired { .. }))
            .map(|e| e.at.0);
        if let (Some(due), Some(fired)) = (due, fired) {
            lateness.push(Duration::from_millis(fired.saturating_sub(due)));
        }
    }
    let stats = runtime.stats();
    runtime.shutdown().await;
    lateness.sort();
    let (p50, p99) = (percentile(&lateness, 0.50), percentile(&lateness, 0.99));
    let max = lateness.last().map_or(0.0, |d| d.as_secs_f64() * 1_000.0);
    let per_exec = disk_sleeping as f64 / n as f64;
    println!(
        "scenario   timers ({n} executions sleeping, due over {} s)",
        WINDOW_MS / 1_000
    );
    println!(
        "started    {n} in {start_s:.1} s; {per_exec:.0} bytes on disk per sleeping execution"
    );
    println!("lateness   p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms");
    println!(
        "memory     rss {} MiB with {} cached; {} evictions, {} replays",
        rss / 1024,
        stats.cached,
        stats.evictions,
        stats.replays
    );
    println!(
        "{}",
        json!({
            "scenario": "timers", "n": n, "disk_bytes_per_sleeping_exec": per_exec,
            "lateness_p50_ms": p50, "lateness_p99_ms": p99, "lateness_max_ms": max,
            "evictions": stats.evictions, "replays": stats.replays, "rss_kib": rss,
        })
    );
    Ok(())
}
