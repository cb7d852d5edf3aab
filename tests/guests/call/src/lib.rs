//! Test guest: calls one activity with the options given in its input and
//! returns the activity's result (or fails with its failure).

use weft_sdk::prelude::*;

#[derive(Deserialize)]
struct Call {
    activity: String,
    input: serde_json::Value,
    start_to_close_ms: Option<u64>,
    initial_interval_ms: Option<u64>,
    backoff: Option<f64>,
    maximum_interval_ms: Option<u64>,
    maximum_attempts: Option<u32>,
    #[serde(default)]
    non_retryable: Vec<String>,
}

fn call(ctx: &Ctx, call: Call) -> Result<serde_json::Value, Failure> {
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
    for t in call.non_retryable {
        policy = policy.non_retryable(t);
    }
    let mut builder = ctx
        .activity::<serde_json::Value>(&call.activity, &call.input)
        .retry(policy);
    if let Some(ms) = call.start_to_close_ms {
        builder = builder.start_to_close(Duration::from_millis(ms));
    }
    builder.call()
}

weft_sdk::workflow!(call);
