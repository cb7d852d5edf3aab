//! Task queue dispatch: the per-queue wake-ups, the optional rate limit,
//! the pollers seen, and the remote worker protocol (long-poll for a task,
//! then complete, fail or heartbeat it by its signed task token).
//!
//! A queue is created on first use: its tasks live in the store under its
//! name, and this in-memory state appears when anything touches it.

use crate::RuntimeError;
use crate::activity::{AttemptSignal, AttemptSwitch, raise};
use crate::services::Services;
use crate::util::lock;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use weft_core::Timestamp;
use weft_store::{ActivityTask, ExecKey};

/// How long a poller stays listed after its last poll.
const POLLER_TTL_MS: u64 = 60_000;

/// One task queue's in-memory state.
#[derive(Default)]
pub(crate) struct QueueState {
    /// Wakes this process's worker for the queue (a stored permit, so a
    /// wake-up is never lost).
    pub(crate) local: Notify,
    /// Wakes every waiting remote poll.
    pub(crate) remote: Notify,
    rate: Mutex<Option<TokenBucket>>,
    /// Remote pollers: identity -> last poll.
    pub(crate) pollers: Mutex<BTreeMap<String, Timestamp>>,
}

/// A token bucket: `rate` tokens per second, holding at most `burst`,
/// on the runtime's clock.
#[derive(Debug, Clone)]
struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Timestamp,
}

impl TokenBucket {
    fn new(rate: f64, now: Timestamp) -> Self {
        let burst = rate.max(1.0);
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            at: now,
        }
    }

    fn refill(&mut self, now: Timestamp) {
        let elapsed = now.0.saturating_sub(self.at.0) as f64 / 1_000.0;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.at = self.at.max(now);
    }

    /// Take up to `want` whole tokens at `now`; returns how many.
    fn take(&mut self, want: usize, now: Timestamp) -> usize {
        self.refill(now);
        let granted = (self.tokens.floor() as usize).min(want);
        self.tokens -= granted as f64;
        granted
    }

    fn give_back(&mut self, n: usize) {
        self.tokens = (self.tokens + n as f64).min(self.burst);
    }

    /// How long after `now` until the next whole token.
    fn wait(&mut self, now: Timestamp) -> Duration {
        self.refill(now);
        let missing = (1.0 - self.tokens).max(0.0);
        Duration::from_secs_f64(missing / self.rate)
    }
}

/// The node's dispatch: its queues' in-memory state, which queues its
/// in-process workers serve, and the switches of the attempts running here.
pub(crate) struct Dispatch {
    services: Arc<Services>,
    queues: Mutex<HashMap<String, Arc<QueueState>>>,
    /// Queues (namespaced) an in-process worker serves.
    served: Mutex<BTreeSet<String>>,
    /// Cancellation switches of the activity attempts running here.
    /// Keyed by (execution, seq, attempt): a retry never takes an earlier
    /// attempt's place.
    pub(crate) attempts: Mutex<BTreeMap<(ExecKey, u32, u32), AttemptSwitch>>,
    /// Wakes the timer service: a due item may be sooner than it sleeps.
    pub(crate) timers_changed: Notify,
}

impl Dispatch {
    pub(crate) fn new(services: Arc<Services>) -> Self {
        Dispatch {
            services,
            queues: Mutex::new(HashMap::new()),
            served: Mutex::new(BTreeSet::new()),
            attempts: Mutex::new(BTreeMap::new()),
            timers_changed: Notify::new(),
        }
    }

    /// Mark `queue` as served by an in-process worker; false if it was.
    pub(crate) fn serve(&self, queue: &str) -> bool {
        lock(&self.served).insert(queue.to_owned())
    }

    /// True if an in-process worker serves `queue`.
    pub(crate) fn serves(&self, queue: &str) -> bool {
        lock(&self.served).contains(queue)
    }

    /// Register the switch of attempt `id` (execution, seq, attempt) while
    /// it runs here: cancellation requests and timeouts reach it through
    /// it until the returned guard is dropped.
    pub(crate) fn register(
        &self,
        id: (ExecKey, u32, u32),
        switch: AttemptSwitch,
    ) -> AttemptRegistration<'_> {
        lock(&self.attempts).insert(id, switch);
        AttemptRegistration { dispatch: self, id }
    }

    /// Tell every activity attempt of `key` running here that its
    /// execution is cancelling (they see it through their context).
    pub(crate) fn cancel_attempts(&self, key: ExecKey) {
        for (_, switch) in lock(&self.attempts).range((key, 0, 0)..=(key, u32::MAX, u32::MAX)) {
            raise(switch, AttemptSignal::CancelRequested);
        }
    }

    /// Stop the attempts running here that the store timed out: their
    /// reports would be ignored, and a retry may already be running.
    pub(crate) fn supersede_attempts(&self, attempts: &[(ExecKey, u32, u32)]) {
        let running = lock(&self.attempts);
        for id in attempts {
            if let Some(switch) = running.get(id) {
                raise(switch, AttemptSignal::Superseded);
            }
        }
    }

    /// The state of `queue` (a namespaced name), created on first use.
    pub(crate) fn queue(&self, queue: &str) -> Arc<QueueState> {
        let mut queues = lock(&self.queues);
        if let Some(state) = queues.get(queue) {
            return state.clone();
        }
        let state = Arc::new(QueueState::default());
        let (_, name) = weft_core::namespace::split(queue);
        if let Some(&rate) = self.services.config.queue_rate_limits.get(name)
            && rate > 0.0
        {
            *lock(&state.rate) = Some(TokenBucket::new(rate, self.services.clock.now()));
        }
        queues.insert(queue.to_owned(), state.clone());
        state
    }

    /// Tell the queue's workers, here and remote, that a task may be due.
    pub(crate) fn wake_queue(&self, queue: &str) {
        let state = self.queue(queue);
        state.local.notify_one();
        state.remote.notify_waiters();
    }

    /// An attempt was retried onto `queue`: its workers learn the due
    /// time, the timer service its schedule-to-start deadline.
    pub(crate) fn requeued(&self, queue: &str) {
        self.wake_queue(queue);
        self.timers_changed.notify_one();
    }

    /// Lease up to `max` due tasks of `queue`, within its rate limit.
    /// Returns the tasks and when to look again (`None`: on a wake-up).
    pub(crate) async fn lease(
        &self,
        queue: &str,
        max: usize,
    ) -> Result<(Vec<ActivityTask>, Option<Timestamp>), RuntimeError> {
        let state = self.queue(queue);
        let now = self.services.clock.now();
        let granted = match lock(&state.rate).as_mut() {
            None => max,
            Some(bucket) => match bucket.take(max, now) {
                0 => {
                    let wait = bucket.wait(now);
                    let at = now.plus_ms(wait.as_millis().max(1) as u64);
                    return Ok((Vec::new(), Some(at)));
                }
                n => n,
            },
        };
        let polled = self
            .services
            .store
            .poll_activities(queue, self.services.clock.now(), granted)
            .await;
        let unused = polled.as_ref().map_or(granted, |p| granted - p.tasks.len());
        if unused > 0
            && let Some(bucket) = lock(&state.rate).as_mut()
        {
            bucket.give_back(unused);
        }
        let polled = polled?;
        if !polled.tasks.is_empty() {
            // New attempt deadlines: the timer service may need to wake
            // sooner.
            self.timers_changed.notify_one();
        }
        Ok((polled.tasks, polled.next_due))
    }

    /// Remote pollers of `queue` seen in the last minute.
    pub(crate) fn pollers(&self, queue: &str) -> Vec<(String, Timestamp)> {
        let state = self.queue(queue);
        let now = self.services.clock.now();
        let mut pollers = lock(&state.pollers);
        pollers.retain(|_, seen| now.0.saturating_sub(seen.0) < POLLER_TTL_MS);
        pollers.iter().map(|(id, at)| (id.clone(), *at)).collect()
    }
}

/// An attempt's switch, registered with dispatch while the attempt runs
/// (see [`Dispatch::register`]).
pub(crate) struct AttemptRegistration<'a> {
    dispatch: &'a Dispatch,
    id: (ExecKey, u32, u32),
}

impl Drop for AttemptRegistration<'_> {
    fn drop(&mut self) {
        lock(&self.dispatch.attempts).remove(&self.id);
    }
}
