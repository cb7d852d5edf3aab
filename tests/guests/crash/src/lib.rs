//! Test guest for crash recovery: an activity, a slow activity (the first
//! kill lands while it runs), then a timer pending alongside a `mark`
//! activity (whose start tells the test the timer is durable; the second
//! kill lands then), then a last activity.

use weft_sdk::prelude::*;

fn crash(ctx: &Ctx, timer_ms: u64) -> Result<Vec<String>, Failure> {
    let mut seen = Vec::new();
    seen.push(ctx.activity::<String>("step", &"one").call()?);
    seen.push(
        ctx.activity::<String>("slow", &"two")
            .start_to_close(Duration::from_millis(500))
            .retry(RetryPolicy::default().initial_interval(Duration::from_millis(50)))
            .call()?,
    );
    let timer = ctx.timer(Duration::from_millis(timer_ms));
    // Scheduled in the same workflow task as the timer: when it starts,
    // the timer is committed.
    let _mark = ctx.activity::<String>("mark", &"timer armed").start()?;
    timer.result()?;
    seen.push(ctx.activity::<String>("step", &"three").call()?);
    Ok(seen)
}

weft_sdk::workflow!(crash);
