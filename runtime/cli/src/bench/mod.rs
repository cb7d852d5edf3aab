//! `weft bench`: the peers' payment workload, in process, durable on disk.
//!
//! C lanes each start an execution and wait for its result, then start the
//! next (a closed loop, as `../shared/peers/loadgen.py` does), until N have
//! completed. Prints a table and one JSON line.
//!
//! One scenario per file: `payment.rs` (in process and over gRPC),
//! `replay.rs`, `languages.rs`, `timers.rs`, `list.rs`; the workload's
//! activities in `workload.rs`, /proc readings in `proc.rs`.

mod languages;
mod list;
mod payment;
mod proc;
mod replay;
mod timers;
mod workload;

pub use languages::run_languages;
pub use list::run_list;
pub use payment::{run, run_grpc};
pub use replay::run_replay;
pub use timers::run_timers;
pub use workload::activities;

use anyhow::{Context, Result, bail};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use weft_engine::{EngineConfig, WorkflowEngine};
use weft_server::{Runtime, RuntimeConfig, StartWorkflow, SystemClock, WorkflowOutcome};
use weft_store::RedbStore;

/// Parameters of one run.
pub struct Bench<'a> {
    pub component: &'a Path,
    pub data_dir: &'a Path,
    pub executions: usize,
    pub concurrency: usize,
    pub warmup: usize,
    /// Run the activities as local activities (Restate's default mapping,
    /// `ctx.run`) instead of through the task queue (Temporal's).
    pub local: bool,
    /// Serve the activities from remote gRPC workers in this process
    /// (with `--grpc`).
    pub remote: bool,
    /// With `--grpc`: over mutual TLS (certificates from `weft certs dev`).
    pub tls: bool,
    /// With `--grpc`: API keys required, and sent with every call.
    pub auth: bool,
    /// Payloads written in plaintext (`--no-encryption`): the price of
    /// encryption at rest against a run with it.
    pub no_encryption: bool,
}

impl Bench<'_> {
    /// The protector of a bench database in `dir`: encryption on with the
    /// directory's development keyring, as `weft dev` runs, unless
    /// `--no-encryption`.
    fn protector(&self, dir: &Path) -> Result<weft_protect::Protector> {
        if self.no_encryption {
            return Ok(weft_protect::Protector::off());
        }
        Ok(weft_protect::Protector::for_data_dir(dir)?.0)
    }

    /// The workflow input of the payment scenario.
    fn input(&self) -> Result<Vec<u8>> {
        let input = json!({"acct": "acct-0042", "amount": 142, "local": self.local});
        Ok(serde_json::to_vec(&input)?)
    }

    fn activities(&self) -> &'static str {
        match (self.local, self.remote) {
            (true, _) => "local activities",
            (false, true) => "activities on remote gRPC workers",
            (false, false) => "queued native activities",
        }
    }
}

async fn lane(runtime: Runtime, ids: Vec<String>, input: Vec<u8>) -> Result<Vec<Duration>> {
    let mut latencies = Vec::with_capacity(ids.len());
    for id in ids {
        let started = Instant::now();
        runtime
            .start_workflow(StartWorkflow {
                workflow_id: id.clone(),
                workflow_type: "bench-payment".into(),
                input: input.clone(),
                task_queue: None,
                ..Default::default()
            })
            .await?;
        match runtime.result(&id).await? {
            WorkflowOutcome::Completed(_) => latencies.push(started.elapsed()),
            WorkflowOutcome::Failed(f) => bail!("{id} failed: {f}"),
            WorkflowOutcome::Terminated(reason) => bail!("{id} was terminated: {reason}"),
        }
    }
    Ok(latencies)
}

/// Run `count` executions over `concurrency` lanes; their latencies.
async fn load(
    runtime: &Runtime,
    input: &[u8],
    prefix: &str,
    count: usize,
    concurrency: usize,
) -> Result<Vec<Duration>> {
    let mut lanes = JoinSet::new();
    for l in 0..concurrency.max(1) {
        let ids: Vec<String> = (l..count)
            .step_by(concurrency.max(1))
            .map(|i| format!("{prefix}-{i}"))
            .collect();
        lanes.spawn(lane(runtime.clone(), ids, input.to_vec()));
    }
    let mut all = Vec::with_capacity(count);
    while let Some(done) = lanes.join_next().await {
        all.extend(done??);
    }
    Ok(all)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1_000.0
}

/// A runtime on a fresh database in `<data-dir>/<name>`, serving the
/// workload's activities, with the bench component deployed as
/// `bench-payment`. Also returns its engine and database path.
async fn fresh_runtime(
    bench: &Bench<'_>,
    name: &str,
    config: RuntimeConfig,
) -> Result<(Runtime, Arc<WorkflowEngine>, std::path::PathBuf)> {
    let dir = bench.data_dir.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let db = dir.join("weft.redb");
    let store = Arc::new(RedbStore::open(&db, bench.protector(&dir)?)?);
    // The engine a server with this cache would have.
    let engine = Arc::new(WorkflowEngine::new(EngineConfig {
        pooling_slots: weft_engine::pooling_slots_for(config.cache_capacity),
        ..EngineConfig::default()
    })?);
    let runtime = Runtime::start(
        store,
        engine.clone(),
        activities(),
        Arc::new(SystemClock),
        config,
    )
    .await?;
    let bytes = std::fs::read(bench.component)
        .with_context(|| format!("reading {}", bench.component.display()))?;
    runtime.deploy("bench-payment", bytes).await?;
    Ok((runtime, engine, db))
}

/// What one run measured.
struct Report {
    client: &'static str,
    activities: &'static str,
    latencies: Vec<Duration>,
    concurrency: usize,
    elapsed: Duration,
    /// Server, workers and client together.
    cpu: Duration,
    /// Server resident memory now and at peak, KiB.
    rss: u64,
    peak: u64,
    /// Database growth, bytes.
    disk: u64,
    /// Bytes of pages the executions' tables hold per execution (warm-up
    /// included), read from the closed database; `None` if unreadable.
    in_use: Option<f64>,
}

/// Bytes of pages the executions' tables of the (closed) database at `db`
/// hold, per execution in it: a steadier measure than the file's growth,
/// which redb extends in steps and which holds freed pages for reuse.
fn in_use_per_execution(db: &std::path::Path, executions: usize) -> Option<f64> {
    // Per deployment, not per execution: the component's bytes, type and
    // namespace registries, counters.
    const NOT_PER_EXECUTION: [&str; 4] = ["components", "workflow_types", "namespaces", "meta"];
    let usage = weft_store::RedbStore::table_usage(db).ok()?;
    let per_execution: Vec<_> = usage
        .iter()
        .filter(|t| !NOT_PER_EXECUTION.contains(&t.name.as_str()) && t.allocated_bytes > 0)
        .map(|t| {
            (
                t.name.as_str(),
                t.allocated_bytes as f64 / executions.max(1) as f64,
            )
        })
        .collect();
    // Where the bytes go (the price of each table, e.g. of encryption and
    // the chain), on stderr beside the report.
    let tables: Vec<String> = per_execution
        .iter()
        .filter(|(_, b)| *b >= 1.0)
        .map(|(name, b)| format!("{name} {b:.0}"))
        .collect();
    eprintln!("disk by table (bytes per execution): {}", tables.join(", "));
    Some(per_execution.iter().map(|(_, b)| b).sum())
}

fn report(r: Report) {
    let Report {
        client,
        activities,
        mut latencies,
        concurrency,
        elapsed,
        cpu,
        rss,
        peak,
        disk,
        in_use,
    } = r;
    latencies.sort();
    let n = latencies.len().max(1) as f64;
    let throughput = n / elapsed.as_secs_f64();
    let (p50, p99) = (percentile(&latencies, 0.50), percentile(&latencies, 0.99));
    let cpu_ms = cpu.as_secs_f64() * 1_000.0 / n;
    let disk_per_exec = disk as f64 / n;
    println!("scenario   payment ({client} client, {activities}, redb durable)");
    println!(
        "executions {} at concurrency {concurrency}",
        latencies.len()
    );
    println!("throughput {throughput:.0} executions/s");
    println!("latency    p50 {p50:.2} ms, p99 {p99:.2} ms");
    println!("cpu        {cpu_ms:.3} ms per execution (server and client, 10 ms ticks)");
    println!(
        "memory     rss {} MiB, peak {} MiB",
        rss / 1024,
        peak / 1024
    );
    match in_use {
        Some(in_use) => println!(
            "disk       {in_use:.0} bytes per execution in the database's pages, \
             {disk_per_exec:.0} of file growth"
        ),
        None => {
            println!("disk       {disk_per_exec:.0} bytes per execution (database file growth)")
        }
    }
    println!(
        "{}",
        json!({
            "scenario": "payment", "client": client, "activities": activities, "n": latencies.len(), "c": concurrency,
            "throughput_per_s": throughput, "p50_ms": p50, "p99_ms": p99, "cpu_ms_per_exec": cpu_ms,
            "rss_kib": rss, "peak_rss_kib": peak, "disk_bytes_per_exec": disk_per_exec,
            "disk_in_use_bytes_per_exec": in_use,
        })
    );
}

/// Start `server` (a `weft` command, configured by the caller) as
/// `weft bench-server` on the database in `dir`, with an execution cache
/// of `cache`; returns the process (killed when dropped) and the address
/// it listens on.
async fn spawn_server(
    mut server: tokio::process::Command,
    dir: &Path,
    cache: usize,
) -> Result<(tokio::process::Child, String)> {
    use tokio::io::AsyncBufReadExt;
    let mut server = server
        .arg("--data-dir")
        .arg(dir)
        .args(["bench-server", "--cache", &cache.to_string()])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the bench server")?;
    let stdout = server.stdout.take().context("server stdout")?;
    let line = tokio::io::BufReader::new(stdout)
        .lines()
        .next_line()
        .await?
        .context("the bench server exited before listening")?;
    let address = line
        .split_whitespace()
        .find(|w| w.starts_with("http://") || w.starts_with("https://"))
        .with_context(|| format!("no address in {line:?}"))?
        .to_owned();
    Ok((server, address))
}
