//! List scenario: visibility at scale. A database of `--n` closed and
//! `--n / 100` running executions (the running ones blocked on a timer,
//! as most running workflows are), then the listing queries an operator
//! runs, timed in process against the store and over gRPC against a
//! `weft bench-server` on that database. The bar (issue 18): `weft
//! workflow list --status Running` with 100,000 closed and 1,000 running
//! executions answers in under 10 ms.

use super::{Bench, percentile, spawn_server};
use anyhow::{Context, Result, bail};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use weft_core::{ComponentId, Event, EventKind, ExecutionId, Timestamp};
use weft_store::{ExecutionStatus, ListFilter, NewExecution, RedbStore, Store, Transition};

/// Rounds per timed query.
const ROUNDS: usize = 50;

/// How long the running executions sleep: past the end of the run.
const SLEEP_MS: u64 = 3_600_000;

pub async fn run_list(bench: Bench<'_>) -> Result<()> {
    let closed = bench.executions.max(1);
    let running = (closed / 100).max(1);
    let dir = bench.data_dir.join("bench-list");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let db = dir.join("weft.redb");

    let store = Arc::new(RedbStore::open(&db, bench.protector(&dir)?)?);
    let bytes = std::fs::read(bench.component)
        .with_context(|| format!("reading {}", bench.component.display()))?;
    let component = ComponentId::of(&bytes);
    store
        .put_component(component, bytes, Some("bench-payment".into()))
        .await?;
    let filled = Instant::now();
    fill(&store, component, closed, running, bench.concurrency).await?;
    let fill_s = filled.elapsed().as_secs_f64();

    let default = || ListFilter {
        namespace: Some("default".into()),
        ..ListFilter::default()
    };
    let running_filter = ListFilter {
        status: Some(ExecutionStatus::Running),
        ..default()
    };
    let completed_page = ListFilter {
        status: Some(ExecutionStatus::Completed),
        limit: 100,
        ..default()
    };
    // No index for a search attribute: the walk is the namespace's, and
    // stops at the page's end.
    let attribute_page = ListFilter {
        search_attributes: vec![("tier".into(), "gold".into())],
        limit: 100,
        ..default()
    };
    let listed = store.list_executions(running_filter.clone()).await?.len();
    if listed != running {
        bail!("listed {listed} running executions, expected {running}");
    }
    let store_running = time(|| store.list_executions(running_filter.clone())).await?;
    let store_page = time(|| store.list_executions(completed_page.clone())).await?;
    let store_attribute = time(|| store.list_executions(attribute_page.clone())).await?;
    let store_count = time(|| store.count_executions(default())).await?;
    // What every list cost before the index: decode every execution.
    let full_walk = ListFilter {
        search_attributes: vec![("tier".into(), "none".into())],
        ..default()
    };
    let store_walk = time(|| store.list_executions(full_walk.clone())).await?;
    store.close().await;
    drop(store);

    // The same over gRPC, as `weft workflow list --status Running` asks.
    let mut server =
        tokio::process::Command::new(std::env::current_exe().context("locating the weft binary")?);
    server.env("WEFT_SECURITY_AUTH", "none");
    let (mut server, address) = spawn_server(server, &dir, 256).await?;
    let channel = tonic::transport::Channel::from_shared(address)?
        .connect()
        .await?;
    let client = weft_api::client(channel, weft_api::Bearer::default());
    let request = |status: &str, limit: u32| weft_api::pb::ListWorkflowsRequest {
        status: status.into(),
        limit,
        ..Default::default()
    };
    let grpc_running = time(|| {
        let mut client = client.clone();
        let request = request("Running", 0);
        async move {
            let workflows = client.list_workflows(request).await?.into_inner().workflows;
            if workflows.len() != running {
                bail!("listed {} running over gRPC", workflows.len());
            }
            Ok(workflows)
        }
    })
    .await?;
    let grpc_count =
        time(|| {
            let mut client = client.clone();
            let request = request("Completed", 0);
            async move {
                Ok::<_, anyhow::Error>(client.count_workflows(request).await?.into_inner().count)
            }
        })
        .await?;
    if let Some(pid) = server.id() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
    server.wait().await?;

    println!(
        "scenario   list ({closed} closed and {running} running executions; \
         filled in {fill_s:.1} s)"
    );
    let rows = [
        ("store: running (the running set)", &store_running),
        ("store: completed, first page of 100", &store_page),
        ("store: search attribute, page of 100", &store_attribute),
        ("store: count in namespace", &store_count),
        ("store: no match, every execution decoded", &store_walk),
        ("gRPC: ListWorkflows --status Running", &grpc_running),
        ("gRPC: CountWorkflows --status Completed", &grpc_count),
    ];
    for (what, t) in rows {
        println!("{what:<42} p50 {:>7.3} ms, p99 {:>7.3} ms", t.p50, t.p99);
    }
    println!(
        "{}",
        json!({
            "scenario": "list", "closed": closed, "running": running,
            "store_running_p50_ms": store_running.p50, "store_running_p99_ms": store_running.p99,
            "store_page_p50_ms": store_page.p50, "store_attribute_page_p50_ms": store_attribute.p50,
            "store_count_p50_ms": store_count.p50, "store_full_walk_p50_ms": store_walk.p50,
            "grpc_running_p50_ms": grpc_running.p50, "grpc_running_p99_ms": grpc_running.p99,
            "grpc_count_completed_p50_ms": grpc_count.p50,
        })
    );
    Ok(())
}

/// Median and 99th percentile of a query, ms.
struct Timing {
    p50: f64,
    p99: f64,
}

/// Run `query` [`ROUNDS`] times (after one untimed round).
async fn time<T, F, E>(mut query: impl FnMut() -> F) -> Result<Timing>
where
    F: Future<Output = Result<T, E>>,
    anyhow::Error: From<E>,
{
    query().await?;
    let mut took: Vec<Duration> = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        query().await?;
        took.push(started.elapsed());
    }
    took.sort();
    Ok(Timing {
        p50: percentile(&took, 0.50),
        p99: percentile(&took, 0.99),
    })
}

/// Write `closed` completed executions and `running` ones blocked on an
/// hour's timer, over `lanes` concurrent writers (group commit).
async fn fill(
    store: &Arc<RedbStore>,
    component: ComponentId,
    closed: usize,
    running: usize,
    lanes: usize,
) -> Result<()> {
    let lanes = lanes.clamp(1, 512);
    // Now, so the running ones' timers are an hour away when the server
    // opens the database (past ones would fire at once).
    let base = weft_server::Clock::now(&weft_server::SystemClock).0;
    let total = closed + running;
    let mut writers = JoinSet::new();
    for lane in 0..lanes {
        let store = store.clone();
        writers.spawn(async move {
            for i in (lane..total).step_by(lanes) {
                let is_running = i >= closed;
                let at = Timestamp(base + i as u64 / 1_000);
                // What the bench workflow records when it sleeps first.
                let input = if is_running {
                    json!({"sleep_ms": SLEEP_MS})
                } else {
                    json!({})
                };
                let mut new = NewExecution {
                    id: ExecutionId::new(format!("list-{i}"), format!("run-{i}")),
                    workflow_type: "bench-payment".into(),
                    component,
                    task_queue: "default".into(),
                    started: Event::new(
                        at,
                        EventKind::ExecutionStarted {
                            workflow_type: "bench-payment".into(),
                            component,
                            input: serde_json::to_vec(&input)?,
                            random_seed: [0; 32],
                            task_queue: "default".into(),
                        },
                    ),
                    parent: None,
                    id_reuse: Default::default(),
                    run_timeout_ms: None,
                    execution_deadline: None,
                    search_attributes: Default::default(),
                    memo: Default::default(),
                };
                if i % 10 == 0 {
                    new.search_attributes.insert("tier".into(), "gold".into());
                }
                let key = store.start_execution(new).await?.key;
                let (event, close, timers) = if is_running {
                    let fire_at = at.plus_ms(SLEEP_MS);
                    let timer = EventKind::TimerStarted {
                        seq: 0,
                        duration_ms: SLEEP_MS,
                        fire_at,
                    };
                    (timer, None, vec![(fire_at, 0)])
                } else {
                    let done = EventKind::ExecutionCompleted {
                        result: b"{}".to_vec(),
                    };
                    (done, Some(ExecutionStatus::Completed), Vec::new())
                };
                store
                    .commit(Transition {
                        key,
                        first_index: 1,
                        events: vec![Event::new(at, event)],
                        new_timers: timers,
                        close,
                        ..Transition::default()
                    })
                    .await?;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(done) = writers.join_next().await {
        done??;
    }
    Ok(())
}
