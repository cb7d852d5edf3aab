//! The payment scenario: in process, and over gRPC against a server process.

use super::proc::{cpu_time, cpu_time_of, rss_kib, rss_kib_of};
use super::workload::{REMOTE_QUEUE, remote_worker};
use super::{Bench, Report, fresh_runtime, in_use_per_execution, load, report, spawn_server};
use anyhow::{Context, Result, bail};
use std::time::Instant;
use tokio::task::JoinSet;
use weft_server::RuntimeConfig;

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

/// The same workload with the load from this process over gRPC, against
/// a `weft bench-server` child process (a real server: the API, the
/// runtime, its workers), one `ExecuteWorkflow` call per execution. CPU
/// counts both processes; memory is the server's.
pub async fn run_grpc(bench: Bench<'_>) -> Result<()> {
    use weft_api::pb;
    let dir = bench.data_dir.join("bench-grpc");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let exe = std::env::current_exe().context("locating the weft binary")?;
    let mut server = tokio::process::Command::new(exe);
    if bench.no_encryption {
        server.arg("--no-encryption");
    }
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
    let (mut server, address) = spawn_server(server, &dir, bench.concurrency.max(64) * 2).await?;
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
