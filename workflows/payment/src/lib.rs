//! Example: a payment workflow.
//!
//! Validate the account, charge it (retrying transient failures), send a
//! receipt. The activities are native Rust functions in
//! `workflows/payment-activities`; the `charge` activity fails once on
//! purpose so the retry shows in the history.

use weft_sdk::prelude::*;

/// What a client asks for.
#[derive(Serialize, Deserialize)]
pub struct PaymentRequest {
    /// Account to charge.
    pub account: String,
    /// Amount in minor units (cents).
    pub amount_cents: u64,
    /// ISO 4217 currency code.
    pub currency: String,
}

/// What `validate_account` returns.
#[derive(Serialize, Deserialize)]
pub struct Account {
    /// Account id, normalized.
    pub account: String,
    /// Name on the account.
    pub holder: String,
}

/// What `charge` returns.
#[derive(Serialize, Deserialize)]
pub struct Charge {
    /// Processor's charge id.
    pub charge_id: String,
}

/// What the workflow returns.
#[derive(Serialize, Deserialize)]
pub struct Receipt {
    /// Receipt number, drawn from the workflow's replayable randomness.
    pub receipt_id: String,
    /// Processor's charge id.
    pub charge_id: String,
    /// Who paid.
    pub holder: String,
    /// Amount charged, in minor units.
    pub amount_cents: u64,
    /// Currency.
    pub currency: String,
}

fn payment(ctx: &Ctx, req: PaymentRequest) -> Result<Receipt, Failure> {
    let account: Account = ctx.activity("validate_account", &req.account).call()?;

    let charge: Charge = ctx
        .activity(
            "charge",
            &(&account.account, req.amount_cents, &req.currency),
        )
        .retry(
            RetryPolicy::default()
                .initial_interval(Duration::from_millis(200))
                .maximum_attempts(5)
                .non_retryable("CardDeclined"),
        )
        .start_to_close(Duration::from_secs(10))
        .call()?;

    let receipt = Receipt {
        receipt_id: format!("R-{:016x}", ctx.random()),
        charge_id: charge.charge_id,
        holder: account.holder,
        amount_cents: req.amount_cents,
        currency: req.currency,
    };
    let _: () = ctx
        .activity("send_receipt", &(&receipt.receipt_id, &receipt.holder))
        .call()?;
    ctx.info(&format!("payment complete: {}", receipt.receipt_id));
    Ok(receipt)
}

weft_sdk::workflow!(payment);
