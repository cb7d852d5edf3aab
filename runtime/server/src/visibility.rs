//! What operators look at: an execution's pending work (derived from its
//! history), following a history live, task queues, namespaces and
//! deployed components.

use crate::RuntimeError;
use crate::runtime::Runtime;
use crate::util::lock;
use std::time::Duration;
use weft_core::{ComponentId, Event, EventKind, Failure, Timestamp};
use weft_store::{ExecutionRecord, NamespaceRecord, QueueStats};

/// An activity that has not resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingActivity {
    /// Command sequence number.
    pub seq: u32,
    /// Activity name.
    pub name: String,
    /// Attempts that ended so far.
    pub attempts: u32,
    /// How the last attempt failed, if it did.
    pub last_failure: Option<Failure>,
    /// When the next attempt is due, if a retry is scheduled.
    pub next_attempt: Option<Timestamp>,
}

/// A timer that has neither fired nor been cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingTimer {
    /// Command sequence number.
    pub seq: u32,
    /// When it fires.
    pub fire_at: Timestamp,
}

/// A child workflow and where it stands, as the parent's history knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildState {
    /// Command sequence number in the parent.
    pub seq: u32,
    /// The child's workflow id.
    pub workflow_id: String,
    /// Its type.
    pub workflow_type: String,
    /// `Running`, `Completed` or `Failed`.
    pub state: &'static str,
}

/// An execution and its pending work.
#[derive(Debug, Clone)]
pub struct ExecutionDescription {
    /// Its record: status, times, pin, visibility.
    pub record: ExecutionRecord,
    /// Activities not yet resolved.
    pub pending_activities: Vec<PendingActivity>,
    /// Timers not yet fired.
    pub pending_timers: Vec<PendingTimer>,
    /// Children it started.
    pub children: Vec<ChildState>,
}

/// A page of history.
#[derive(Debug, Clone)]
pub struct HistoryPage {
    /// The events from the requested index on.
    pub events: Vec<Event>,
    /// Index of `events[0]`.
    pub first_index: u64,
    /// True if the run has closed (no more events will come).
    pub closed: bool,
    /// The run the page belongs to.
    pub run_id: String,
}

impl Runtime {
    /// The latest run of `workflow_id` with its pending activities
    /// (attempts, last failure), pending timers and children.
    pub async fn describe_execution(
        &self,
        workflow_id: &str,
    ) -> Result<ExecutionDescription, RuntimeError> {
        let record = self.describe(workflow_id).await?;
        let history = self
            .inner
            .services
            .store
            .load_execution(record.key)
            .await?
            .history;
        Ok(describe_history(record, &history))
    }

    /// Events of the latest run of `workflow_id` from `from_index` on (at
    /// most `max`, 0 for all). With `wait`, if there are none yet and the
    /// run is open, waits up to `wait` for some: a client follows an
    /// execution live by asking again from the next index.
    pub async fn history_page(
        &self,
        workflow_id: &str,
        from_index: u64,
        max: usize,
        wait: Option<Duration>,
    ) -> Result<HistoryPage, RuntimeError> {
        let deadline = wait.map(|w| tokio::time::Instant::now() + w);
        loop {
            // Register before reading, so a commit in between wakes us.
            let changed = self.inner.registry.history_changed.notified();
            let record = self.describe(workflow_id).await?;
            let closed = record.status != weft_store::ExecutionStatus::Running;
            if record.next_event > from_index || closed || deadline.is_none() {
                // Only the page: a follower polling a long history does
                // not read all of it each time.
                let events: Vec<Event> = self
                    .inner
                    .services
                    .store
                    .history_range(record.key, from_index, max)
                    .await?;
                let first_index = if events.is_empty() {
                    from_index.min(record.next_event)
                } else {
                    from_index
                };
                return Ok(HistoryPage {
                    events,
                    first_index,
                    closed,
                    run_id: record.id.run_id,
                });
            }
            let Some(deadline) = deadline else {
                unreachable!("handled above")
            };
            let mut shutdown = self.inner.services.shutdown.clone();
            let timed_out = tokio::select! {
                _ = changed => false,
                _ = tokio::time::sleep_until(deadline) => true,
                _ = shutdown.wait_for(|s| *s) => return Err(RuntimeError::ShuttingDown),
            };
            if timed_out {
                return Ok(HistoryPage {
                    events: Vec::new(),
                    first_index: from_index,
                    closed: false,
                    run_id: record.id.run_id,
                });
            }
        }
    }

    /// A queue's backlog and running attempts, and the workers serving it:
    /// this process's (if it registered activities on the queue) and the
    /// remote ones that polled in the last minute.
    pub async fn describe_task_queue(
        &self,
        queue: &str,
    ) -> Result<(QueueStats, Vec<String>), RuntimeError> {
        let stats = self.inner.services.store.queue_stats(queue).await?;
        let mut pollers = Vec::new();
        if self.inner.dispatch.serves(queue) {
            pollers.push(format!(
                "in-process worker (concurrency {})",
                self.inner
                    .services
                    .activities
                    .concurrency_of(queue, self.inner.services.config.worker_concurrency)
            ));
        }
        let now = self.inner.services.clock.now();
        for (identity, seen) in self.inner.dispatch.pollers(queue) {
            let ago = now.0.saturating_sub(seen.0) / 1_000;
            pollers.push(format!("{identity} (last poll {ago}s ago)"));
        }
        Ok((stats, pollers))
    }

    /// The dispatch rate limit of `queue` (tasks per second), if it has
    /// one.
    pub fn queue_rate_limit(&self, queue: &str) -> Option<f64> {
        let (_, name) = weft_core::namespace::split(queue);
        self.inner
            .services
            .config
            .queue_rate_limits
            .get(name)
            .copied()
            .filter(|r| *r > 0.0)
    }

    /// Deployed workflow types and their current components, sorted.
    pub fn components(&self) -> Vec<(String, ComponentId)> {
        let mut out: Vec<_> = lock(&self.inner.services.workflow_types)
            .iter()
            .map(|(t, c)| (t.clone(), *c))
            .collect();
        out.sort();
        out
    }

    /// Create (or change) a namespace.
    pub async fn create_namespace(&self, namespace: NamespaceRecord) -> Result<(), RuntimeError> {
        weft_core::namespace::check_namespace(&namespace.name)
            .map_err(|e| RuntimeError::Invalid(e.0))?;
        let name = namespace.name.clone();
        self.inner.services.store.put_namespace(namespace).await?;
        crate::node::serve_namespace(&self.inner, &name);
        Ok(())
    }

    /// Every namespace, the default one first.
    pub async fn namespaces(&self) -> Result<Vec<NamespaceRecord>, RuntimeError> {
        let mut out = self.inner.services.store.namespaces().await?;
        if !out
            .iter()
            .any(|n| n.name == weft_core::namespace::DEFAULT_NAMESPACE)
        {
            out.insert(
                0,
                NamespaceRecord {
                    name: weft_core::namespace::DEFAULT_NAMESPACE.to_owned(),
                    retention_seconds: 0,
                    description: "the namespace of names without one".to_owned(),
                },
            );
        }
        Ok(out)
    }

    /// One namespace.
    pub async fn namespace(&self, name: &str) -> Result<NamespaceRecord, RuntimeError> {
        let name = if name.is_empty() {
            weft_core::namespace::DEFAULT_NAMESPACE
        } else {
            name
        };
        self.namespaces()
            .await?
            .into_iter()
            .find(|n| n.name == name)
            .ok_or_else(|| RuntimeError::UnknownNamespace(name.to_owned()))
    }
}

/// Pending work of an execution, from its history.
pub(crate) fn describe_history(record: ExecutionRecord, history: &[Event]) -> ExecutionDescription {
    use std::collections::BTreeMap;
    let mut activities: BTreeMap<u32, PendingActivity> = BTreeMap::new();
    let mut timers: BTreeMap<u32, PendingTimer> = BTreeMap::new();
    let mut children: BTreeMap<u32, ChildState> = BTreeMap::new();
    for event in history {
        match &event.kind {
            EventKind::ActivityScheduled { seq, name, .. } => {
                activities.insert(
                    *seq,
                    PendingActivity {
                        seq: *seq,
                        name: name.clone(),
                        attempts: 0,
                        last_failure: None,
                        next_attempt: Some(event.at),
                    },
                );
            }
            EventKind::ActivityFailed {
                seq,
                attempt,
                failure,
                retry_at,
            } => {
                if let Some(a) = activities.get_mut(seq) {
                    a.attempts = *attempt;
                    a.last_failure = Some(failure.clone());
                    a.next_attempt = *retry_at;
                }
                if retry_at.is_none() {
                    activities.remove(seq);
                }
            }
            EventKind::ActivityTimedOut {
                seq,
                attempt,
                kind,
                retry_at,
            } => {
                if let Some(a) = activities.get_mut(seq) {
                    a.attempts = *attempt;
                    a.last_failure = Some(Failure::timeout(*kind));
                    a.next_attempt = *retry_at;
                }
                if retry_at.is_none() {
                    activities.remove(seq);
                }
            }
            EventKind::ActivityCompleted { seq, .. } => {
                activities.remove(seq);
            }
            EventKind::TimerStarted { seq, fire_at, .. } => {
                timers.insert(
                    *seq,
                    PendingTimer {
                        seq: *seq,
                        fire_at: *fire_at,
                    },
                );
            }
            EventKind::TimerFired { seq } | EventKind::TimerCanceled { timer: seq, .. } => {
                timers.remove(seq);
            }
            EventKind::ChildStarted {
                seq,
                workflow_type,
                workflow_id,
                ..
            } => {
                children.insert(
                    *seq,
                    ChildState {
                        seq: *seq,
                        workflow_id: workflow_id.clone(),
                        workflow_type: workflow_type.clone(),
                        state: "Running",
                    },
                );
            }
            EventKind::ChildCompleted { seq, .. } => {
                if let Some(c) = children.get_mut(seq) {
                    c.state = "Completed";
                }
            }
            EventKind::ChildFailed { seq, .. } => {
                if let Some(c) = children.get_mut(seq) {
                    c.state = "Failed";
                }
            }
            _ => {}
        }
    }
    let closed = record.status != weft_store::ExecutionStatus::Running;
    ExecutionDescription {
        record,
        // A closed execution has nothing pending.
        pending_activities: if closed {
            Vec::new()
        } else {
            activities.into_values().collect()
        },
        pending_timers: if closed {
            Vec::new()
        } else {
            timers.into_values().collect()
        },
        children: children.into_values().collect(),
    }
}

impl Runtime {
    /// Delete the closed executions past their namespace's retention; how
    /// many were deleted.
    pub async fn purge_expired(&self) -> Result<usize, RuntimeError> {
        const BATCH: usize = 1_000;
        let now = self.inner.services.clock.now();
        let mut purged = 0;
        for ns in self.namespaces().await? {
            if ns.retention_seconds == 0 {
                continue;
            }
            let before = Timestamp(
                now.0
                    .saturating_sub(ns.retention_seconds.saturating_mul(1_000)),
            );
            loop {
                let n = self
                    .inner
                    .services
                    .store
                    .purge_closed(ns.name.clone(), before, BATCH)
                    .await?;
                purged += n;
                if n < BATCH {
                    break;
                }
            }
        }
        Ok(purged)
    }
}
