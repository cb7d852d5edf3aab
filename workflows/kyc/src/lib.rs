//! Example: identity verification (KYC).
//!
//! 1. `collect_documents` files the applicant's documents and returns
//!    their references and a checksum.
//! 2. `sanctions_screening` checks several sanctions lists, heartbeating
//!    its progress after each (a retried attempt resumes there).
//! 3. No match and low risk: approved at once. Otherwise a reviewer
//!    decides (the `review` signal) within `escalation_hours` (24 if
//!    unset); past that the case is escalated (`escalate`) and waits as
//!    long again, then expires.
//! 4. `record_decision` files the decision with the documents' checksum.
//!
//! The applicant's name, date of birth and document number travel only in
//! the input and in activity arguments, never in the result, the `status`
//! query or a log line: that is what a masking policy hides from operators
//! (and encryption at rest from the database file).

use std::cell::RefCell;
use std::rc::Rc;
use weft_sdk::prelude::*;

/// The person being verified: personal data throughout.
#[derive(Serialize, Deserialize)]
pub struct Applicant {
    /// Full name.
    pub name: String,
    /// Date of birth, `YYYY-MM-DD`.
    pub date_of_birth: String,
    /// Passport or identity-card number.
    pub document_number: String,
    /// ISO 3166 alpha-2 country of the document.
    pub country: String,
}

/// A verification case.
#[derive(Serialize, Deserialize)]
pub struct Case {
    /// Case id.
    pub case_id: String,
    /// Who is verified.
    pub applicant: Applicant,
    /// How long a reviewer has before the case escalates, and again before
    /// it expires; 24 hours if unset.
    pub escalation_hours: Option<u64>,
}

/// What `collect_documents` returns.
#[derive(Serialize, Deserialize)]
pub struct Documents {
    /// Where each document is filed.
    pub refs: Vec<String>,
    /// A checksum over what the documents say.
    pub checksum: String,
}

/// What `sanctions_screening` returns.
#[derive(Clone, Serialize, Deserialize)]
pub struct Screening {
    /// Every list looked up, in order.
    pub lists_checked: Vec<String>,
    /// The lists on which the name matched.
    pub matches: Vec<String>,
    /// `low` or `high`.
    pub risk: String,
    /// The attempt that finished the screening.
    pub attempt: u32,
}

/// The `review` signal's payload.
#[derive(Serialize, Deserialize)]
pub struct Review {
    /// The reviewer's verdict.
    pub approved: bool,
    /// Who decided.
    pub reviewer: String,
    /// Why.
    pub note: String,
}

/// What `record_decision` files.
#[derive(Serialize, Deserialize)]
pub struct DecisionRecord {
    /// The case.
    pub case_id: String,
    /// `approved`, `rejected` or `expired`.
    pub decision: String,
    /// Who decided, if a reviewer did.
    pub reviewer: Option<String>,
    /// The reviewer's note, if any.
    pub note: Option<String>,
    /// The checksum of the documents decided on.
    pub documents_checksum: String,
}

/// The answer of the `status` query.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Status {
    /// collecting-documents, screening, awaiting-review, escalated,
    /// recording, done.
    pub stage: String,
    /// How many documents were filed, once they are.
    pub documents: Option<usize>,
    /// The screening, once done.
    pub screening: Option<Screening>,
    /// The escalation ticket, if the case escalated.
    pub escalation: Option<String>,
    /// approved, rejected or expired, once decided.
    pub decision: Option<String>,
    /// The decision's record, once filed.
    pub record: Option<String>,
}

/// How the case ended.
#[derive(Serialize, Deserialize)]
pub struct KycResult {
    /// The case.
    pub case_id: String,
    /// approved, rejected or expired.
    pub decision: String,
    /// Who decided, if a reviewer did.
    pub reviewer: Option<String>,
    /// What the screening found.
    pub screening: Screening,
}

fn kyc(ctx: &Ctx, case: Case) -> Result<KycResult, Failure> {
    let status = Rc::new(RefCell::new(Status {
        stage: "collecting-documents".into(),
        ..Status::default()
    }));
    let view = status.clone();
    ctx.on_query("status", move |(): ()| view.borrow().clone());

    let documents: Documents = ctx
        .activity("collect_documents", &(&case.case_id, &case.applicant))
        .call()?;
    {
        let mut s = status.borrow_mut();
        s.documents = Some(documents.refs.len());
        s.stage = "screening".into();
    }

    // A lookup per list, a heartbeat after each: a stuck list provider
    // times the attempt out in seconds, not at start-to-close.
    let screening: Screening = ctx
        .activity("sanctions_screening", &case.applicant)
        .heartbeat_timeout(Duration::from_secs(5))
        .start_to_close(Duration::from_secs(120))
        .retry(
            RetryPolicy::default()
                .initial_interval(Duration::from_secs(1))
                .maximum_attempts(5),
        )
        .call()?;
    status.borrow_mut().screening = Some(screening.clone());

    let (decision, review) = if screening.matches.is_empty() && screening.risk == "low" {
        ("approved", None)
    } else {
        await_review(ctx, &case, &screening, &status)?
    };

    status.borrow_mut().stage = "recording".into();
    let reviewer = review.as_ref().map(|r| r.reviewer.clone());
    let record: String = ctx
        .activity(
            "record_decision",
            &DecisionRecord {
                case_id: case.case_id.clone(),
                decision: decision.into(),
                reviewer: reviewer.clone(),
                note: review.map(|r| r.note),
                documents_checksum: documents.checksum,
            },
        )
        .call()?;
    {
        let mut s = status.borrow_mut();
        s.stage = "done".into();
        s.decision = Some(decision.into());
        s.record = Some(record);
    }
    Ok(KycResult {
        case_id: case.case_id,
        decision: decision.into(),
        reviewer,
        screening,
    })
}

/// Wait for a reviewer: one escalation period, then an escalation and a
/// second period, then the case expires. One `review` wait spans both
/// periods, so a review sent at any point is the one taken.
fn await_review(
    ctx: &Ctx,
    case: &Case,
    screening: &Screening,
    status: &Rc<RefCell<Status>>,
) -> Result<(&'static str, Option<Review>), Failure> {
    status.borrow_mut().stage = "awaiting-review".into();
    let period = Duration::from_secs(case.escalation_hours.unwrap_or(24) * 3600);
    let review = ctx.signal::<Review>("review");
    for round in 0..2 {
        let timeout = ctx.timer(period);
        if ctx.select(&[review.handle(), timeout.handle()]).0 == 0 {
            ctx.cancel_timer(&timeout);
            let review = review.result()?;
            let decision = if review.approved {
                "approved"
            } else {
                "rejected"
            };
            return Ok((decision, Some(review)));
        }
        if round == 0 {
            let ticket: String = ctx
                .activity("escalate", &(&case.case_id, screening))
                .call()?;
            let mut s = status.borrow_mut();
            s.escalation = Some(ticket);
            s.stage = "escalated".into();
        }
    }
    Ok(("expired", None))
}

weft_sdk::workflow!(kyc);

// The applicant's personal data, masked for every caller of the API
// without the `unmask` permission, in the input and in both activities'
// arguments (the workflow and its activities still see real values).
weft_sdk::sensitive!(
    "$.applicant.name",
    "$.applicant.date_of_birth",
    "$.applicant.document_number",
    "activity:collect_documents=$[1].name",
    "activity:collect_documents=$[1].date_of_birth",
    "activity:collect_documents=$[1].document_number",
    "activity:sanctions_screening=$.name",
    "activity:sanctions_screening=$.date_of_birth",
    "activity:sanctions_screening=$.document_number",
);
