//! Test guest: calls one activity with the options given in its input and
//! returns the activity's result (or fails with its failure). With
//! `copies`, schedules that many calls at once and returns their results.

use weft_sdk::ActivityBuilder;
use weft_sdk::prelude::*;

#[derive(Deserialize)]
struct Call {
    activity: String,
    input: serde_json::Value,
    start_to_close_ms: Option<u64>,
    schedule_to_start_ms: Option<u64>,
    schedule_to_close_ms: Option<u64>,
    heartbeat_ms: Option<u64>,
    initial_interval_ms: Option<u64>,
    backoff: Option<f64>,
    maximum_interval_ms: Option<u64>,
    maximum_attempts: Option<u32>,
    jitter: Option<f64>,
    #[serde(default)]
    non_retryable: Vec<String>,
    task_queue: Option<String>,
    #[serde(default)]
    local: bool,
    copies: Option<usize>,
}

fn policy(call: &Call) -> RetryPolicy {
    let mut policy = RetryPolicy::default();
    if let Some(ms) = call.initial_interval_ms {
        policy = policy.initial_interval(Duration::from_millis(ms));
    }
    if let Some(b) = call.backoff {
        policy = policy.backoff_coefficient(b);
    }
    if let Some(ms) = call.maximum_interval_ms {
        policy = policy.maximum_interval(Duration::from_millis(ms));
    }
    if let Some(n) = call.maximum_attempts {
        policy = policy.maximum_attempts(n);
    }
    if let Some(j) = call.jitter {
        policy = policy.jitter(j);
    }
    for t in &call.non_retryable {
        policy = policy.non_retryable(t.clone());
    }
    policy
}

fn builder(ctx: &Ctx, call: &Call) -> ActivityBuilder<serde_json::Value> {
    let mut builder = ctx
        .activity::<serde_json::Value>(&call.activity, &call.input)
        .retry(policy(call));
    let ms = Duration::from_millis;
    if let Some(t) = call.start_to_close_ms {
        builder = builder.start_to_close(ms(t));
    }
    if let Some(t) = call.schedule_to_start_ms {
        builder = builder.schedule_to_start(ms(t));
    }
    if let Some(t) = call.schedule_to_close_ms {
        builder = builder.schedule_to_close(ms(t));
    }
    if let Some(t) = call.heartbeat_ms {
        builder = builder.heartbeat_timeout(ms(t));
    }
    if let Some(q) = &call.task_queue {
        builder = builder.task_queue(q.clone());
    }
    if call.local {
        builder = builder.local();
    }
    builder
}

fn call(ctx: &Ctx, call: Call) -> Result<serde_json::Value, Failure> {
    let Some(copies) = call.copies else {
        return builder(ctx, &call).call();
    };
    let pending = (0..copies)
        .map(|_| builder(ctx, &call).start())
        .collect::<Result<Vec<_>, _>>()?;
    let results = ctx
        .join_all(pending)
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    Ok(serde_json::Value::Array(results))
}

weft_sdk::workflow!(call);
