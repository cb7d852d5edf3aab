use super::Bench;
use super::proc::rss_kib;
use super::workload::activities;
use anyhow::{Context, Result};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use weft_engine::{EngineConfig, WorkflowEngine};
use weft_server::{Runtime, RuntimeConfig, StartWorkflow, SystemClock};
use weft_store::RedbStore;

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

        let store = Arc::new(RedbStore::open(
            dir.join(format!("{language}.redb")),
            bench.protector(&dir)?,
        )?);
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
