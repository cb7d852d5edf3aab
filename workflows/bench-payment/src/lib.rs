//! The benchmark workload of `../shared/peers/`: `validate_account`, then
//! `charge`, sequentially, tiny payloads. The same shape as the Temporal
//! and Restate versions, so the numbers compare.

use weft_sdk::prelude::*;

#[derive(Deserialize)]
struct Input {
    acct: String,
    amount: u64,
}

fn payment(ctx: &Ctx, input: Input) -> Result<serde_json::Value, Failure> {
    let account: serde_json::Value = ctx.activity("validate_account", &input.acct).call()?;
    let charge: serde_json::Value = ctx
        .activity("charge", &(&input.acct, input.amount))
        .call()?;
    Ok(serde_json::json!({"ok": true, "acct": account["acct"], "charge": charge}))
}

weft_sdk::workflow!(payment);
