//! `weft bench`: the peers' payment workload, in process, durable on disk.
//!
//! C lanes each start an execution and wait for its result, then start the
//! next (a closed loop, as `../shared/peers/loadgen.py` does), until N have
//! completed. Prints a table and one JSON line.

use anyhow::{Context, Result, bail};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use weft_engine::{EngineConfig, WorkflowEngine};
use weft_server::{
    ActivityContext, ActivityError, ActivityRegistry, Runtime, RuntimeConfig, StartWorkflow,
    SystemClock, WorkflowOutcome,
};
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
}

impl Bench<'_> {
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
const REMOTE_QUEUE: &str = "bench-remote";

/// A remote activity worker over gRPC: poll, run, complete, until aborted.
async fn remote_worker(mut client: weft_api::Client) -> Result<()> {
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

/// CPU time of this process (user + system), from /proc (10 ms ticks).
fn cpu_time() -> Duration {
    cpu_time_of("self")
}

/// CPU time (user + system) of process `pid` ("self" for this one).
fn cpu_time_of(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    Duration::from_millis(cpu_ticks(&stat) * 10)
}

/// utime + stime, in clock ticks, from a `/proc/<pid>/stat` line.
fn cpu_ticks(stat: &str) -> u64 {
    // Fields after the parenthesized command name, by position (some are
    // not numbers: the state letter, and a tpgid of -1 without a terminal):
    // utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let field = |i: usize| -> u64 {
        after
            .split_whitespace()
            .nth(i)
            .and_then(|f| f.parse().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// Resident memory now and at peak, in KiB, from /proc.
fn rss_kib() -> (u64, u64) {
    rss_kib_of("self")
}

/// Resident memory of process `pid`, now and at peak, in KiB.
fn rss_kib_of(pid: &str) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
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
    let store = Arc::new(RedbStore::open(&db)?);
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

pub async fn run(bench: Bench<'_>) -> Result<()> {
    let config = RuntimeConfig {
        cache_capacity: bench.concurrency.max(64) * 2,
        ..RuntimeConfig::default()
    };
    let (runtime, _, db) = fresh_runtime(&bench, "bench", config).await?;

    let input = bench.input()?;
    load(
        &runtime,
        &input,
        "warmup",
        bench.warmup,
        bench.concurrency.min(10),
    )
    .await?;
    let disk_before = std::fs::metadata(&db).map_or(0, |m| m.len());
    let cpu_before = cpu_time();
    let started = Instant::now();
    let latencies = load(&runtime, &input, "m", bench.executions, bench.concurrency).await?;
    let elapsed = started.elapsed();
    let cpu = cpu_time().saturating_sub(cpu_before);
    let (rss, peak) = rss_kib();
    runtime.shutdown().await;
    let disk_after = std::fs::metadata(&db).map_or(0, |m| m.len());

    report(Report {
        client: "in-process",
        activities: bench.activities(),
        latencies,
        concurrency: bench.concurrency,
        elapsed,
        cpu,
        rss,
        peak,
        disk: disk_after.saturating_sub(disk_before),
        in_use: in_use_per_execution(&db, bench.warmup + bench.executions),
    });
    Ok(())
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
    let bytes: u64 = usage
        .iter()
        .filter(|t| !NOT_PER_EXECUTION.contains(&t.name.as_str()))
        .map(|t| t.allocated_bytes)
        .sum();
    Some(bytes as f64 / executions.max(1) as f64)
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

/// The same workload with the load from this process over gRPC, against
/// a `weft bench-server` child process (a real server: the API, the
/// runtime, its workers), one `ExecuteWorkflow` call per execution. CPU
/// counts both processes; memory is the server's.
pub async fn run_grpc(bench: Bench<'_>) -> Result<()> {
    use tokio::io::AsyncBufReadExt;
    use weft_api::pb;
    let dir = bench.data_dir.join("bench-grpc");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let exe = std::env::current_exe().context("locating the weft binary")?;
    let mut server = tokio::process::Command::new(exe);
    let tls = if bench.tls {
        let certs = dir.join("certs");
        crate::certs::dev(&certs, &[], "bench")?;
        server
            .env("WEFT_SECURITY_TLS_CERT", certs.join("server.pem"))
            .env("WEFT_SECURITY_TLS_KEY", certs.join("server-key.pem"))
            .env("WEFT_SECURITY_TLS_CLIENT_CA", certs.join("ca.pem"));
        Some(weft_api::ClientTls {
            ca: Some(certs.join("ca.pem")),
            cert: Some(certs.join("client.pem")),
            key: Some(certs.join("client-key.pem")),
            server_name: None,
        })
    } else {
        None
    };
    // With `--auth`, one admin key (made offline, before the server opens
    // the database) for the load and the workers.
    let bearer = if bench.auth {
        server.env("WEFT_SECURITY_AUTH", "api-key");
        let key = crate::access::write_key_offline(&dir, "bench", &["*:admin".into()], None)
            .await?
            .secret
            .to_string();
        weft_api::Bearer::new(Some(&key)).map_err(anyhow::Error::msg)?
    } else {
        server.env("WEFT_SECURITY_AUTH", "none");
        weft_api::Bearer::default()
    };
    let mut server = server
        .arg("--data-dir")
        .arg(&dir)
        .args([
            "bench-server",
            "--cache",
            &(bench.concurrency.max(64) * 2).to_string(),
        ])
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
    let pid = server.id().context("server pid")?.to_string();
    // A few connections: one HTTP/2 connection serializes on one socket.
    let mut clients = Vec::new();
    for _ in 0..4 {
        let channel = match &tls {
            Some(tls) => tls
                .connect(&address)
                .await
                .map_err(|e| anyhow::anyhow!("connecting over TLS: {e}"))?,
            None => {
                tonic::transport::Channel::from_shared(address.clone())?
                    .connect()
                    .await?
            }
        };
        clients.push(weft_api::client(channel, bearer.clone()));
    }
    let bytes = std::fs::read(bench.component)
        .with_context(|| format!("reading {}", bench.component.display()))?;
    clients[0]
        .deploy_component(pb::DeployComponentRequest {
            workflow_type: "bench-payment".into(),
            component: bytes,
            ..Default::default()
        })
        .await?;
    let input = bench.input()?;
    let task_queue = if bench.remote { REMOTE_QUEUE } else { "" };
    // One worker per execution in flight: each runs one activity at a time.
    let mut workers = JoinSet::new();
    if bench.remote {
        for w in 0..bench.concurrency.max(1) {
            workers.spawn(remote_worker(clients[w % clients.len()].clone()));
        }
    }
    let load = |prefix: &'static str, count: usize, concurrency: usize| {
        let clients = clients.clone();
        let input = input.clone();
        async move {
            let mut lanes = JoinSet::new();
            for l in 0..concurrency.max(1) {
                let mut client = clients[l % clients.len()].clone();
                let input = input.clone();
                let ids: Vec<String> = (l..count)
                    .step_by(concurrency.max(1))
                    .map(|i| format!("{prefix}-{i}"))
                    .collect();
                lanes.spawn(async move {
                    let mut latencies = Vec::with_capacity(ids.len());
                    for id in ids {
                        let started = Instant::now();
                        let result = client
                            .execute_workflow(pb::StartWorkflowRequest {
                                workflow_id: id.clone(),
                                workflow_type: "bench-payment".into(),
                                input: input.clone(),
                                task_queue: task_queue.into(),
                                ..Default::default()
                            })
                            .await?
                            .into_inner();
                        match result.outcome {
                            Some(pb::get_result_response::Outcome::Completed(_)) => {
                                latencies.push(started.elapsed())
                            }
                            other => bail!("{id} did not complete: {other:?}"),
                        }
                    }
                    Ok(latencies)
                });
            }
            let mut all = Vec::with_capacity(count);
            while let Some(done) = lanes.join_next().await {
                all.extend(done??);
            }
            Ok::<_, anyhow::Error>(all)
        }
    };
    load("warmup", bench.warmup, bench.concurrency.min(10)).await?;
    let db = dir.join("weft.redb");
    let disk_before = std::fs::metadata(&db).map_or(0, |m| m.len());
    let cpu_before = cpu_time() + cpu_time_of(&pid);
    let started = Instant::now();
    let latencies = load("m", bench.executions, bench.concurrency).await?;
    let elapsed = started.elapsed();
    let cpu = (cpu_time() + cpu_time_of(&pid)).saturating_sub(cpu_before);
    let (rss, peak) = rss_kib_of(&pid);
    if let Some(Ok(Err(e))) = workers.try_join_next() {
        bail!("a remote worker failed: {e}");
    }
    workers.abort_all();
    // SIGTERM: the server flushes and exits; then the file size is final.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    let status = server.wait().await?;
    if !status.success() {
        bail!("the bench server exited with {status}");
    }
    let disk_after = std::fs::metadata(&db).map_or(0, |m| m.len());
    report(Report {
        client: match (bench.tls, bench.auth) {
            (true, true) => "gRPC over mutual TLS, API keys (separate process)",
            (true, false) => "gRPC over mutual TLS (separate process)",
            (false, true) => "gRPC, API keys (separate process)",
            (false, false) => "gRPC (separate process)",
        },
        activities: bench.activities(),
        latencies,
        concurrency: bench.concurrency,
        elapsed,
        cpu,
        rss,
        peak,
        disk: disk_after.saturating_sub(disk_before),
        in_use: in_use_per_execution(&db, bench.warmup + bench.executions),
    });
    Ok(())
}

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

/// Languages scenario: the payment example in Rust, Python and JavaScript
/// (the components next to `--component`): component size, compile time
/// (cold, and from the compile cache), the first workflow task of a new
/// execution (instantiate, run to the first wait, commit), and memory per
/// cached suspended execution (each waits on an activity nobody serves).
pub async fn run_languages(bench: Bench<'_>, only: Option<&str>) -> Result<()> {
    let guests = bench
        .component
        .parent()
        .context("the component's directory")?;
    let dir = bench.data_dir.join("bench-languages");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let n = bench.executions.max(1);
    println!("scenario   languages (payment example; {n} suspended executions each)");
    for (language, file) in [
        ("rust", "payment_workflow.wasm"),
        ("python", "payment_py.wasm"),
        ("javascript", "payment_js.wasm"),
    ]
    .into_iter()
    .filter(|(language, _)| only.is_none_or(|only| only == *language))
    {
        let path = guests.join(file);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        // Cold compile, then the same through a fresh engine and the cache.
        let cache = dir.join(format!("cache-{language}"));
        let cached = EngineConfig {
            compile_cache_dir: Some(cache),
            ..EngineConfig::default()
        };
        let started = Instant::now();
        WorkflowEngine::new(cached.clone())?.load(&bytes)?;
        let compile_ms = started.elapsed().as_secs_f64() * 1_000.0;
        // The engine a server caching these executions has (pooled), and
        // the same without the pool.
        let server_engine = Arc::new(WorkflowEngine::new(EngineConfig {
            pooling_slots: weft_engine::pooling_slots_for(n * 2),
            ..cached.clone()
        })?);
        let engine = Arc::new(WorkflowEngine::new(cached.clone())?);
        let started = Instant::now();
        engine.load(&bytes)?;
        let cached_ms = started.elapsed().as_secs_f64() * 1_000.0;
        server_engine.load(&bytes)?;
        // Instantiate and start: replaying a history that holds only its
        // start instantiates the component, runs it to its first wait and
        // stops it there (a trap: its cost includes the trap's backtrace).
        let pooled = Arc::new(WorkflowEngine::new(EngineConfig {
            pooling_slots: 64,
            ..cached
        })?);
        pooled.load(&bytes)?;

        let store = Arc::new(RedbStore::open(dir.join(format!("{language}.redb")))?);
        let config = RuntimeConfig {
            cache_capacity: n * 2,
            ..RuntimeConfig::default()
        };
        let engine_for_probe = engine.clone();
        let runtime = Runtime::start(
            store,
            server_engine,
            activities(),
            Arc::new(SystemClock),
            config,
        )
        .await?;
        runtime.deploy(language, bytes.clone()).await?;
        let input =
            serde_json::to_vec(&json!({"account": "a", "amount_cents": 1, "currency": "EUR"}))?;
        let (rss_before, _) = rss_kib();
        let started = Instant::now();
        for i in 0..n {
            let id = format!("{language}-{i}");
            runtime
                .start_workflow(StartWorkflow {
                    workflow_id: id.clone(),
                    workflow_type: language.into(),
                    input: input.clone(),
                    task_queue: Some("nobody-serves-this".into()),
                    ..Default::default()
                })
                .await?;
            // Its first workflow task: instantiated, run to its first
            // wait, committed.
            runtime
                .history_page(&id, 1, 1, Some(Duration::from_secs(60)))
                .await?;
        }
        let first_task_ms = started.elapsed().as_secs_f64() * 1_000.0 / n as f64;
        let start = runtime.history(&format!("{language}-0")).await?[..1].to_vec();
        let record = runtime.describe(&format!("{language}-0")).await?;
        // Per engine (on demand, pooled): instantiate alone (a fresh store
        // and instance, dropped), then instantiate, run and stop.
        let mut instantiate_us = [0.0f64; 2];
        let mut start_us = [0.0f64; 2];
        for (slot, engine) in [&engine_for_probe, &pooled].into_iter().enumerate() {
            let rounds = 1_000;
            let states = (0..rounds)
                .map(|_| weft_core::ExecutionState::from_history(record.id.clone(), start.clone()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow::anyhow!(e))?;
            let started = Instant::now();
            for state in states {
                engine.instantiate(state).await?;
            }
            instantiate_us[slot] = started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
            let started = Instant::now();
            for _ in 0..rounds {
                engine.replay(record.id.clone(), start.clone()).await?;
            }
            start_us[slot] = started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
        }
        let (rss_after, _) = rss_kib();
        let cached_executions = runtime.stats().cached;
        let per_execution_kib = rss_after.saturating_sub(rss_before) as f64 / n as f64;
        runtime.shutdown().await;
        println!(
            "{language:<10} {:>6.1} MB component, compile {compile_ms:>7.0} ms (cached {cached_ms:>5.0} ms), \
             instantiate {:>6.1} us ({:>6.1} us pooled), instantiate-run-stop {:>7.1} us \
             ({:>7.1} us pooled), first task {first_task_ms:>6.2} ms, \
             {per_execution_kib:>7.0} KiB per cached execution ({cached_executions} cached)",
            bytes.len() as f64 / 1e6,
            instantiate_us[0],
            instantiate_us[1],
            start_us[0],
            start_us[1],
        );
        println!(
            "{}",
            json!({
                "scenario": "languages", "language": language, "component_bytes": bytes.len(),
                "compile_ms": compile_ms, "cached_compile_ms": cached_ms,
                "first_task_ms": first_task_ms, "kib_per_cached_execution": per_execution_kib,
                "instantiate_us": instantiate_us[0], "instantiate_pooled_us": instantiate_us[1],
                "instantiate_start_us": start_us[0], "instantiate_start_pooled_us": start_us[1],
                "cached_executions": cached_executions, "n": n,
            })
        );
    }
    Ok(())
}

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

#[cfg(test)]
mod tests {
    use super::cpu_ticks;

    #[test]
    fn cpu_ticks_are_read_by_position_even_without_a_terminal() {
        // A process without a controlling terminal has tpgid -1; utime 250
        // and stime 40 follow. (Skipping the non-numbers once shifted the
        // fields and read stime + cutime instead.)
        let stat = "4242 (weft bench) S 1 4242 4242 0 -1 4194304 900 0 0 0 250 40 7 3 20 0 9 0";
        assert_eq!(cpu_ticks(stat), 290);
    }
}
