//! Example: loan approval.
//!
//! 1. Credit check and document verification run in parallel.
//! 2. A poor score is declined at once. Otherwise the funds are reserved
//!    and the workflow waits for a human decision (the `approval` signal)
//!    for at most `approval_timeout_hours`.
//! 3. Approved: a child workflow (`account-opening`) opens the loan account
//!    and the reserved funds are disbursed to it.
//! 4. Rejected, timed out or cancelled: the reservation is released (the
//!    compensation), and the workflow says why.
//!
//! The `status` query answers at any point, from the workflow's state.

use std::cell::RefCell;
use std::rc::Rc;
use weft_sdk::prelude::*;

/// A loan application.
#[derive(Serialize, Deserialize)]
pub struct Application {
    /// Application id (also the prefix of the child's workflow id).
    pub application_id: String,
    /// Who applies.
    pub applicant: String,
    /// Amount in minor units.
    pub amount_cents: u64,
    /// How long a reviewer has to decide; 72 hours if unset.
    pub approval_timeout_hours: Option<u64>,
}

/// What `credit_check` returns.
#[derive(Serialize, Deserialize)]
pub struct CreditReport {
    /// Score, 300 to 850.
    pub score: u32,
}

/// What `verify_documents` returns.
#[derive(Serialize, Deserialize)]
pub struct DocumentCheck {
    /// True if identity and income documents check out.
    pub verified: bool,
}

/// The `approval` signal's payload.
#[derive(Serialize, Deserialize)]
pub struct Decision {
    /// The reviewer's verdict.
    pub approved: bool,
    /// Who decided.
    pub reviewer: String,
}

/// What the `account-opening` child returns.
#[derive(Serialize, Deserialize)]
pub struct OpenedAccount {
    /// The new loan account.
    pub account_id: String,
}

/// The answer of the `status` query.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Status {
    /// checking, awaiting-approval, opening-account, done.
    pub stage: String,
    /// Credit score, once known.
    pub credit_score: Option<u32>,
    /// Document check, once known.
    pub documents_verified: Option<bool>,
    /// Funds reservation id, while held.
    pub reservation: Option<String>,
    /// approved, declined, rejected, expired or cancelled, at the end.
    pub outcome: Option<String>,
}

/// How the application ended.
#[derive(Serialize, Deserialize)]
pub struct LoanResult {
    /// approved, declined, rejected or expired.
    pub outcome: String,
    /// The loan account, if approved.
    pub account_id: Option<String>,
    /// Who decided, if a reviewer did.
    pub reviewer: Option<String>,
}

/// Lowest credit score that goes to a reviewer.
const MIN_SCORE: u32 = 620;

fn loan_approval(ctx: &Ctx, app: Application) -> Result<LoanResult, Failure> {
    let status = Rc::new(RefCell::new(Status {
        stage: "checking".into(),
        ..Status::default()
    }));
    let view = status.clone();
    ctx.on_query("status", move |(): ()| view.borrow().clone());

    let credit = ctx
        .activity::<CreditReport>("credit_check", &app.applicant)
        .start()?;
    let documents = ctx
        .activity::<DocumentCheck>("verify_documents", &app.applicant)
        .start()?;
    let (credit, documents) = ctx.join2(credit, documents);
    let (credit, documents) = (credit?, documents?);
    {
        let mut s = status.borrow_mut();
        s.credit_score = Some(credit.score);
        s.documents_verified = Some(documents.verified);
    }
    if credit.score < MIN_SCORE || !documents.verified {
        return Ok(finish(&status, "declined", None, None));
    }

    let reservation: String = ctx
        .activity("reserve_funds", &(&app.application_id, app.amount_cents))
        .call()?;
    {
        let mut s = status.borrow_mut();
        s.reservation = Some(reservation.clone());
        s.stage = "awaiting-approval".into();
    }

    let decision = ctx.signal::<Decision>("approval");
    let hours = app.approval_timeout_hours.unwrap_or(72);
    let timeout = ctx.timer(Duration::from_secs(hours * 3600));
    let selected = ctx.select(&[decision.handle(), timeout.handle()]);
    let decision = if selected.0 == 0 {
        ctx.cancel_timer(&timeout);
        decision.result()
    } else {
        release(ctx, &reservation)?;
        return Ok(finish(&status, "expired", None, None));
    };
    let decision = match decision {
        Ok(decision) => decision,
        Err(failure) if failure.is_cancelled() => {
            // Cancelled while waiting: compensate, then end as cancelled.
            release(ctx, &reservation)?;
            finish(&status, "cancelled", None, None);
            return Err(failure);
        }
        Err(failure) => return Err(failure),
    };
    if !decision.approved {
        release(ctx, &reservation)?;
        return Ok(finish(&status, "rejected", None, Some(decision.reviewer)));
    }

    status.borrow_mut().stage = "opening-account".into();
    let account: OpenedAccount = ctx
        .child("account-opening", &(&app.applicant, &app.application_id))
        .id(format!("{}/account", app.application_id))
        .call()?;
    let _: () = ctx
        .activity("disburse", &(&reservation, &account.account_id))
        .call()?;
    Ok(finish(
        &status,
        "approved",
        Some(account.account_id),
        Some(decision.reviewer),
    ))
}

/// Compensation: give the reserved funds back.
fn release(ctx: &Ctx, reservation: &str) -> Result<(), Failure> {
    ctx.activity::<()>("release_funds", &reservation).call()
}

fn finish(
    status: &Rc<RefCell<Status>>,
    outcome: &str,
    account_id: Option<String>,
    reviewer: Option<String>,
) -> LoanResult {
    let mut s = status.borrow_mut();
    s.stage = "done".into();
    s.outcome = Some(outcome.into());
    LoanResult {
        outcome: outcome.into(),
        account_id,
        reviewer,
    }
}

weft_sdk::workflow!(loan_approval);
