//! Test guest: the payment workflow with its first two activities swapped,
//! standing in for a code change deployed under running executions.

use weft_sdk::prelude::*;

#[derive(Deserialize)]
struct PaymentRequest {
    account: String,
    amount_cents: u64,
    currency: String,
}

fn payment(ctx: &Ctx, req: PaymentRequest) -> Result<serde_json::Value, Failure> {
    let _: serde_json::Value = ctx
        .activity("charge", &(&req.account, req.amount_cents, &req.currency))
        .call()?;
    let _: serde_json::Value = ctx.activity("validate_account", &req.account).call()?;
    Ok(serde_json::Value::Null)
}

weft_sdk::workflow!(payment);
