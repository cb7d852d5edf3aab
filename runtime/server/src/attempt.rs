//! One attempt of a native activity, run by an in-process worker or by an
//! actor (a local activity): its own task, bounded by its deadline.

use crate::activity::{ActivityContext, AttemptSignal};
use crate::services::Services;
use weft_core::{Failure, Payload, Timestamp};

/// Aborts a spawned task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Run one attempt of the native activity `ctx.name` until it returns, its
/// `deadline` passes or it is superseded (`None` in the last two cases).
/// A panic fails only this attempt; an oversized result fails it for good.
pub(crate) async fn execute(
    services: &Services,
    ctx: ActivityContext,
    input: Payload,
    deadline: Timestamp,
) -> Option<Result<Payload, Failure>> {
    let name = ctx.name.clone();
    let mut signal = ctx.signal.clone();
    let Some(handler) = services.activities.get(&name) else {
        return Some(Err(Failure::new(
            "ActivityNotRegistered",
            format!("no activity `{name}` is registered"),
        )));
    };
    // Its own task, so a panicking activity fails only this attempt.
    let attempt = tokio::spawn(handler(ctx, input));
    // Owned: if this attempt is dropped (deadline, shutdown), the activity
    // stops too instead of running on detached.
    let _abort = AbortOnDrop(attempt.abort_handle());
    let superseded = async {
        if signal
            .wait_for(|s| *s == AttemptSignal::Superseded)
            .await
            .is_err()
        {
            std::future::pending::<()>().await;
        }
    };
    let result = tokio::select! {
        joined = attempt => match joined {
            Ok(result) => result,
            Err(e) => Err(Failure::new("Panic", format!("activity `{name}` panicked: {e}"))),
        },
        _ = services.clock.sleep_until(deadline) => return None,
        _ = superseded => return None,
    };
    Some(services.engine.config().limits.bound_attempt(
        &format!("result of activity `{name}`"),
        &format!("failure of activity `{name}`"),
        result,
    ))
}
