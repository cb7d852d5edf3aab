//! The timer service: fires durable timers, times out activity attempts
//! and activities (start-to-close, heartbeat, schedule-to-start,
//! schedule-to-close) and closes executions past their timeouts.

use crate::shared::Shared;
use std::sync::Arc;

/// Most due items handled per store write.
const BATCH: usize = 256;

pub(crate) async fn run(inner: Arc<Shared>) {
    let mut shutdown = inner.services.shutdown.clone();
    loop {
        let now = inner.services.clock.now();
        let next = match inner.services.store.fire_due(now, BATCH).await {
            Ok(work) => {
                let full = work.delivered.len() + work.closed.len() >= BATCH;
                inner.closed_elsewhere(work.closed);
                inner.dispatch.supersede_attempts(&work.timed_out);
                for entry in work.delivered {
                    inner.registry.deliver(entry);
                }
                for queue in work.requeued {
                    inner.dispatch.wake_queue(&queue);
                }
                if full {
                    continue;
                }
                work.next_due
            }
            Err(e) => {
                // Keep serving: retry after a pause rather than spinning.
                tracing::error!("timer service: {e}");
                Some(now.plus_ms(1_000))
            }
        };
        let sleep = async {
            match next {
                Some(at) => inner.services.clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {}
            _ = inner.dispatch.timers_changed.notified() => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}
