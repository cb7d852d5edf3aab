//! The benchmark workload of `../shared/peers/`: `validate_account`, then
//! `charge`, sequentially, tiny payloads. The same shape as the Temporal
//! and Restate versions, so the numbers compare.

use weft_sdk::prelude::*;

#[derive(Deserialize)]
struct Input {
    #[serde(default)]
    acct: String,
    #[serde(default)]
    amount: u64,
    /// Replay scenario: instead of the payment, `steps` zero-length timers
    /// one after the other (two events each), for histories of a chosen
    /// length.
    steps: Option<u32>,
    /// Run the two activities as local activities.
    #[serde(default)]
    local: bool,
    /// Timers scenario: sleep this long, then return.
    sleep_ms: Option<u64>,
}

fn payment(ctx: &Ctx, input: Input) -> Result<serde_json::Value, Failure> {
    if let Some(ms) = input.sleep_ms {
        ctx.sleep(Duration::from_millis(ms))?;
        return Ok(serde_json::json!({"slept_ms": ms}));
    }
    if let Some(steps) = input.steps {
        for _ in 0..steps {
            ctx.sleep(Duration::ZERO)?;
        }
        return Ok(serde_json::json!({"steps": steps}));
    }
    let local = |b: weft_sdk::ActivityBuilder<serde_json::Value>| {
        if input.local { b.local() } else { b }
    };
    let account = local(ctx.activity("validate_account", &input.acct)).call()?;
    let charge = local(ctx.activity("charge", &(&input.acct, input.amount))).call()?;
    Ok(serde_json::json!({"ok": true, "acct": account["acct"], "charge": charge}))
}

weft_sdk::workflow!(payment);
