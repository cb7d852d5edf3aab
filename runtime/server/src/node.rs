//! The node's wiring: it owns the tasks that run executions (actors),
//! native activities (workers), timers and the router, and is the one
//! place that spawns them. Every part below it reaches it only through
//! the router's channel (`Registry::activate_later`), so the import graph
//! has no cycle: node -> actor, worker, timers -> shared -> registry,
//! dispatch, services.

use crate::actor::{self, Exit};
use crate::dispatch::Dispatch;
use crate::registry::Registry;
use crate::services::Services;
use crate::shared::Shared;
use crate::{timers, worker};
use std::sync::Arc;
use tokio::sync::mpsc;
use weft_store::ExecKey;

/// Wire a node over `services`, and start its router and timer service.
pub(crate) fn start(services: Services) -> Arc<Shared> {
    let services = Arc::new(services);
    let (router, activations) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        registry: Registry::new(router),
        dispatch: Dispatch::new(services.clone()),
        services,
    });
    shared.services.spawn(route(shared.clone(), activations));
    shared.services.spawn(timers::run(shared.clone()));
    shared
}

/// Start actors for the executions the parts below the node ask for.
async fn route(shared: Arc<Shared>, mut activations: mpsc::UnboundedReceiver<ExecKey>) {
    let mut shutdown = shared.services.shutdown.clone();
    loop {
        tokio::select! {
            Some(key) = activations.recv() => activate(&shared, key),
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// Ensure an actor runs execution `key` (spawning one that replays it).
pub(crate) fn activate(shared: &Arc<Shared>, key: ExecKey) {
    if *shared.services.shutdown.borrow() {
        return;
    }
    let capacity = shared.services.config.cache_capacity;
    if let Some((generation, rx)) = shared.registry.admit(key, capacity) {
        let actor = supervise(shared.clone(), key, generation, rx);
        shared.services.spawn(actor);
    }
}

/// Run one actor of `key` and act on how it ended.
async fn supervise(
    shared: Arc<Shared>,
    key: ExecKey,
    generation: u64,
    rx: mpsc::UnboundedReceiver<crate::registry::ActorMsg>,
) {
    let outcome = actor::run(&shared, key, rx).await;
    shared.registry.actor_exited(key, generation);
    match outcome {
        Ok(Exit::Done) => shared.registry.clear_backoff(key),
        // Another actor committed to this history first (an eviction
        // race): start over from what is durable.
        Ok(Exit::Reload) => activate(&shared, key),
        // The store or the engine failed (a full disk, say). Nothing
        // committed is lost, but the deliveries that would wake this
        // execution may depend on the write that failed: try again later.
        Err(e) => {
            let delay = shared.registry.next_backoff(key);
            tracing::error!(key, "execution stopped: {e}; retrying in {delay:?}");
            let retry = shared.clone();
            shared.services.spawn(async move {
                let mut shutdown = retry.services.shutdown.clone();
                tokio::select! {
                    _ = tokio::time::sleep(delay) => activate(&retry, key),
                    _ = shutdown.wait_for(|s| *s) => {}
                }
            });
        }
    }
}

/// Start in-process workers for the registered activities' queues in
/// `namespace` (once): the server's native activities serve every
/// namespace, each through its own queues.
pub(crate) fn serve_namespace(shared: &Arc<Shared>, namespace: &str) {
    for queue in shared.services.activities.queues() {
        let Ok(queue) = weft_core::namespace::qualify(namespace, "task queue", &queue) else {
            continue;
        };
        if shared.dispatch.serve(&queue) {
            shared.services.spawn(worker::run(shared.clone(), queue));
        }
    }
}
