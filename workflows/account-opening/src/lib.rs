//! Example: open a loan account (the child workflow of `loan-approval`).

use weft_sdk::prelude::*;

/// What the workflow returns.
#[derive(Serialize, Deserialize)]
pub struct OpenedAccount {
    /// The new account.
    pub account_id: String,
}

fn account_opening(
    ctx: &Ctx,
    (applicant, application_id): (String, String),
) -> Result<OpenedAccount, Failure> {
    let account_id: String = ctx
        .activity("create_account", &(&applicant, &application_id))
        .call()?;
    let _: () = ctx
        .activity("send_welcome", &(&applicant, &account_id))
        .call()?;
    Ok(OpenedAccount { account_id })
}

weft_sdk::workflow!(account_opening);
