//! The registry of live executions: the cache of actors (with LRU
//! eviction), the clients waiting for a close or an update's answer, each
//! execution's stored history size and retry backoff, and the counters.
//! It spawns nothing: a cache miss is handed to the node's router.

use crate::config::WorkflowOutcome;
use crate::util::lock;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{Notify, mpsc, oneshot};
use weft_core::{Event, EventKind, Failure, Payload};
use weft_store::{ExecKey, InboxEntry};

/// What the runtime tells an actor.
pub(crate) enum ActorMsg {
    /// A committed inbox entry of this execution. Boxed: a channel
    /// allocates its slots up front (32 at a time), and every cached
    /// execution has one.
    Inbox(Box<InboxEntry>),
    /// Leave the cache: stop at the next wait point without committing.
    Evict,
}

/// Where a client waiting for a run to close is told how it ended: the
/// outcome, or `None` when the closer did not have it at hand or the run
/// continued as new (the client then reads the store).
type CloseWaiter = oneshot::Sender<Option<WorkflowOutcome>>;

/// Where the answer to one update goes.
pub(crate) type UpdateWaiter = oneshot::Sender<Result<Payload, Failure>>;

/// Counters an operator (and a test) can read.
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) evictions: AtomicU64,
    pub(crate) replays: AtomicU64,
}

/// A snapshot of the runtime's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeStats {
    /// Executions evicted from the cache.
    pub evictions: u64,
    /// Executions rebuilt by replaying a history with more than its start.
    pub replays: u64,
    /// Executions currently in memory.
    pub cached: usize,
}

/// Live executions, by key, with a use counter for LRU eviction.
#[derive(Default)]
struct Cache {
    actors: HashMap<ExecKey, CachedActor>,
    tick: u64,
}

struct CachedActor {
    tx: mpsc::UnboundedSender<ActorMsg>,
    last_used: u64,
    generation: u64,
}

/// See the module documentation.
pub(crate) struct Registry {
    cache: Mutex<Cache>,
    /// Woken on every commit: history followers re-read.
    pub(crate) history_changed: Notify,
    /// Signalled at every close: the checkpointer signs closed heads.
    pub(crate) closes: Notify,
    waiters: Mutex<HashMap<ExecKey, Vec<CloseWaiter>>>,
    /// Stored size of each running execution's history as of its last
    /// workflow task here, so a message that could not fit is refused at
    /// once (an execution not run since the start is not in it).
    pub(crate) history_bytes: Mutex<HashMap<ExecKey, u64>>,
    /// Clients waiting for the answer to an update, by execution and id.
    pub(crate) update_waiters: Mutex<HashMap<(ExecKey, String), UpdateWaiter>>,
    /// Consecutive failures per execution, for retry backoff.
    failures: Mutex<HashMap<ExecKey, u32>>,
    pub(crate) stats: Stats,
    /// Executions to start an actor for: the node's router spawns them
    /// (`node.rs`), so nothing here depends on the actor.
    router: mpsc::UnboundedSender<ExecKey>,
}

impl Registry {
    pub(crate) fn new(router: mpsc::UnboundedSender<ExecKey>) -> Self {
        Registry {
            cache: Mutex::new(Cache::default()),
            history_changed: Notify::new(),
            closes: Notify::new(),
            waiters: Mutex::new(HashMap::new()),
            history_bytes: Mutex::new(HashMap::new()),
            update_waiters: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            stats: Stats::default(),
            router,
        }
    }

    /// Have the node's router start an actor for `key` (if none runs).
    pub(crate) fn activate_later(&self, key: ExecKey) {
        // Closed only when the node is gone: nothing left to do.
        let _ = self.router.send(key);
    }

    /// Route a committed inbox entry to its execution's actor; if it has
    /// none in memory, have the router start one (it loads the entry).
    pub(crate) fn deliver(&self, entry: InboxEntry) {
        let key = entry.key;
        let mut cache = lock(&self.cache);
        cache.tick += 1;
        let tick = cache.tick;
        if let Some(actor) = cache.actors.get_mut(&key) {
            actor.last_used = tick;
            if actor.tx.send(ActorMsg::Inbox(Box::new(entry))).is_ok() {
                return;
            }
        }
        drop(cache);
        self.activate_later(key);
    }

    /// Make room for and register a new actor of `key`, unless a live one
    /// is in memory: its generation and mailbox, for the caller to spawn.
    pub(crate) fn admit(
        &self,
        key: ExecKey,
        capacity: usize,
    ) -> Option<(u64, mpsc::UnboundedReceiver<ActorMsg>)> {
        let mut cache = lock(&self.cache);
        if cache.actors.get(&key).is_some_and(|a| !a.tx.is_closed()) {
            return None;
        }
        if cache.actors.len() >= capacity.max(1) {
            let victim = cache
                .actors
                .iter()
                .min_by_key(|(_, a)| a.last_used)
                .map(|(k, _)| *k);
            if let Some(victim) = victim
                && let Some(actor) = cache.actors.remove(&victim)
            {
                // Safe at any point: everything the victim did since its
                // last commit is redone by replay when it is next needed.
                let _ = actor.tx.send(ActorMsg::Evict);
                self.stats.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
        cache.tick += 1;
        let (tx, rx) = mpsc::unbounded_channel();
        let generation = cache.tick;
        cache.actors.insert(
            key,
            CachedActor {
                tx,
                last_used: generation,
                generation,
            },
        );
        Some((generation, rx))
    }

    /// How many executions are in memory.
    pub(crate) fn cached(&self) -> usize {
        lock(&self.cache).actors.len()
    }

    /// Drop every actor (shutdown).
    pub(crate) fn clear(&self) {
        lock(&self.cache).actors.clear();
    }

    /// An actor is exiting: forget it (unless a newer one replaced it).
    pub(crate) fn actor_exited(&self, key: ExecKey, generation: u64) {
        let mut cache = lock(&self.cache);
        if cache
            .actors
            .get(&key)
            .is_some_and(|a| a.generation == generation)
        {
            cache.actors.remove(&key);
        }
    }

    /// Delay before retrying an execution that failed for the `n`th time in
    /// a row: 1 s doubling to 5 min.
    pub(crate) fn next_backoff(&self, key: ExecKey) -> std::time::Duration {
        let mut failures = lock(&self.failures);
        let n = failures.entry(key).or_insert(0);
        *n = n.saturating_add(1);
        std::time::Duration::from_secs(1u64 << (*n - 1).min(8))
            .min(std::time::Duration::from_secs(300))
    }

    /// An execution ran without a runtime failure: reset its backoff.
    pub(crate) fn clear_backoff(&self, key: ExecKey) {
        lock(&self.failures).remove(&key);
    }

    /// Drop execution `key` from memory (it replays when next needed).
    pub(crate) fn evict(&self, key: ExecKey) {
        if let Some(actor) = lock(&self.cache).actors.remove(&key) {
            let _ = actor.tx.send(ActorMsg::Evict);
        }
    }

    /// `key` parked: wake the clients waiting for it to close, so they
    /// read its state and report the parking instead of waiting on.
    pub(crate) fn parked(&self, key: ExecKey) {
        for waiter in lock(&self.waiters).remove(&key).unwrap_or_default() {
            let _ = waiter.send(None);
        }
    }

    /// Register for the close of `key` (before checking whether it has
    /// closed, so a close in between is not missed).
    pub(crate) fn wait_close(&self, key: ExecKey) -> oneshot::Receiver<Option<WorkflowOutcome>> {
        let (tx, rx) = oneshot::channel();
        lock(&self.waiters).entry(key).or_default().push(tx);
        rx
    }

    /// Wake everyone waiting for `key` to close (with its `outcome`, if the
    /// caller has it), and fail the updates it will never answer.
    pub(crate) fn closed(&self, key: ExecKey, outcome: Option<WorkflowOutcome>) {
        lock(&self.history_bytes).remove(&key);
        self.history_changed.notify_waiters();
        self.closes.notify_one();
        for waiter in lock(&self.waiters).remove(&key).unwrap_or_default() {
            let _ = waiter.send(outcome.clone());
        }
        let mut updates = lock(&self.update_waiters);
        let unanswered: Vec<_> = updates.keys().filter(|(k, _)| *k == key).cloned().collect();
        for id in unanswered {
            if let Some(waiter) = updates.remove(&id) {
                let failure = Failure::new(
                    "UpdateNotCompleted",
                    "the execution closed before it answered the update",
                )
                .non_retryable();
                let _ = waiter.send(Err(failure));
            }
        }
    }

    /// Hand the answers among newly committed `events` of `key` to the
    /// clients waiting for them.
    pub(crate) fn updates_answered(&self, key: ExecKey, events: &[Event]) {
        for event in events {
            if let EventKind::UpdateCompleted {
                update_id, result, ..
            } = &event.kind
                && let Some(waiter) = lock(&self.update_waiters).remove(&(key, update_id.clone()))
            {
                let _ = waiter.send(result.clone());
            }
        }
    }
}
