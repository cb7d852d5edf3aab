//! What every part of a node shares, split by who owns it: the services
//! (read-only), the registry of live executions, and dispatch. The few
//! operations that span two of them live here; anything that spawns a
//! task goes to the node's router (`node.rs`), so nothing below the node
//! depends on it.

use crate::dispatch::Dispatch;
use crate::registry::Registry;
use crate::services::Services;
use std::sync::Arc;
use weft_store::{AttemptResult, Committed, ExecKey, StoreError};

pub(crate) struct Shared {
    pub(crate) services: Arc<Services>,
    pub(crate) registry: Registry,
    pub(crate) dispatch: Dispatch,
}

impl Shared {
    /// Route what a commit did to other executions: deliver its inbox
    /// entries, run what it started, drop what it closed from memory.
    pub(crate) fn committed(&self, done: Committed) {
        self.registry.history_changed.notify_waiters();
        self.closed_elsewhere(done.closed);
        for key in done.started {
            self.registry.activate_later(key);
        }
        for entry in done.delivered {
            self.registry.deliver(entry);
        }
    }

    /// Executions closed outside their actors (terminated with a parent,
    /// timed out): drop their actors, stop their activities, wake waiters.
    pub(crate) fn closed_elsewhere(&self, keys: Vec<ExecKey>) {
        for key in keys {
            self.registry.evict(key);
            self.dispatch.cancel_attempts(key);
            self.registry.closed(key, None);
        }
    }

    /// Record how an attempt ended (in-process or remote): deliver the
    /// report to its execution, and tell the queue about a retry. `false`
    /// if the attempt is no longer current (the report is ignored).
    pub(crate) async fn record_attempt(&self, report: AttemptResult) -> Result<bool, StoreError> {
        let now = self.services.clock.now();
        let Some(reported) = self.services.store.report_attempt(report, now).await? else {
            return Ok(false);
        };
        self.registry.deliver(reported.entry);
        if let Some(queue) = reported.requeued {
            self.dispatch.requeued(&queue);
        }
        Ok(true)
    }
}
