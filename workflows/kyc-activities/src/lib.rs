//! Native activities of the identity-verification (KYC) example, over an
//! in-memory [`Compliance`] back office that tests inspect (lookups per
//! sanctions list, escalations, recorded decisions).
//!
//! Deterministic and offline: a name starting with `Sanctioned` matches
//! every list in [`LISTS`], an applicant from a country in
//! [`HIGH_RISK_COUNTRIES`] is high risk, and each list lookup takes the
//! back office's lookup delay (tokio time, so virtual in tests).
//!
//! `sanctions_screening` heartbeats its progress after every list; an
//! attempt that fails part-way (a list that does not answer, see
//! [`Compliance::with_outage`]) is retried, and the retry resumes after the
//! lists the last heartbeat reported, so no list is looked up twice.
//!
//! ```
//! let mut registry = weft_server::ActivityRegistry::new();
//! kyc_activities::register(&mut registry);
//! ```

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use weft_server::{ActivityContext, ActivityError, ActivityRegistry};

/// The sanctions lists screened, in order.
pub const LISTS: [&str; 4] = ["UN", "EU", "OFAC", "UK-HMT"];

/// ISO country codes whose applicants always go to a reviewer (the FATF
/// "call for action" jurisdictions).
pub const HIGH_RISK_COUNTRIES: [&str; 3] = ["IR", "KP", "MM"];

/// How long one list lookup takes unless [`Compliance::with_lookup_delay`]
/// says otherwise.
pub const DEFAULT_LOOKUP_DELAY: Duration = Duration::from_secs(2);

/// The person being verified: personal data throughout.
#[derive(Clone, Serialize, Deserialize)]
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

/// Only the country: personal data stays out of logs and panics.
impl std::fmt::Debug for Applicant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Applicant")
            .field("name", &"<redacted>")
            .field("date_of_birth", &"<redacted>")
            .field("document_number", &"<redacted>")
            .field("country", &self.country)
            .finish()
    }
}

/// What `collect_documents` returns: references to the stored documents
/// and a checksum over what they say, never the data itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Documents {
    /// Where each document is filed.
    pub refs: Vec<String>,
    /// FNV-1a over the identity fields, to show later that the decision
    /// was taken on these documents.
    pub checksum: String,
}

/// The heartbeat details of `sanctions_screening`: how far it got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Lists already looked up, in order.
    pub checked: Vec<String>,
    /// Those of them that matched.
    pub matches: Vec<String>,
}

/// What `sanctions_screening` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Screening {
    /// Every list looked up, in order.
    pub lists_checked: Vec<String>,
    /// The lists on which the name matched.
    pub matches: Vec<String>,
    /// `low`, or `high` (a match or a high-risk country).
    pub risk: String,
    /// The attempt that finished the screening.
    pub attempt: u32,
}

/// What `record_decision` files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// The case.
    pub case_id: String,
    /// `approved`, `rejected` or `expired`.
    pub decision: String,
    /// Who decided, if a reviewer did.
    pub reviewer: Option<String>,
    /// The reviewer's note, if any.
    pub note: Option<String>,
    /// [`Documents::checksum`] of the documents decided on.
    pub documents_checksum: String,
}

/// The compliance back office the activities talk to, in memory.
#[derive(Debug, Clone)]
pub struct Compliance {
    state: Arc<Mutex<State>>,
    lookup_delay: Duration,
}

#[derive(Debug, Default)]
struct State {
    /// Document references filed per case.
    documents: BTreeMap<String, Vec<String>>,
    /// Successful lookups per list.
    lookups: BTreeMap<String, u32>,
    /// A list that fails its next `n` lookups.
    outage: Option<(String, u32)>,
    /// Escalation tickets per idempotency key.
    escalations: BTreeMap<String, String>,
    /// Decisions per case, with their record ids.
    decisions: BTreeMap<String, (String, DecisionRecord)>,
}

impl Default for Compliance {
    fn default() -> Self {
        Compliance {
            state: Arc::default(),
            lookup_delay: DEFAULT_LOOKUP_DELAY,
        }
    }
}

impl Compliance {
    /// Each list lookup takes `delay`.
    pub fn with_lookup_delay(mut self, delay: Duration) -> Self {
        self.lookup_delay = delay;
        self
    }

    /// `list` does not answer its next `failures` lookups: the attempt
    /// fails with a retryable `ListUnavailable`.
    pub fn with_outage(self, list: &str, failures: u32) -> Self {
        self.with(|s| s.outage = Some((list.to_owned(), failures)));
        self
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut state)
    }

    /// Successful lookups per list.
    pub fn lookups(&self) -> BTreeMap<String, u32> {
        self.with(|s| s.lookups.clone())
    }

    /// Escalation tickets opened, in ticket order.
    pub fn escalations(&self) -> Vec<String> {
        self.with(|s| {
            let mut tickets: Vec<String> = s.escalations.values().cloned().collect();
            tickets.sort();
            tickets
        })
    }

    /// Recorded decisions, by case.
    pub fn decisions(&self) -> Vec<DecisionRecord> {
        self.with(|s| s.decisions.values().map(|(_, d)| d.clone()).collect())
    }

    /// Look `name` up on `list`, or fail if the list is down.
    async fn lookup(&self, list: &str, name: &str) -> Result<bool, ActivityError> {
        tokio::time::sleep(self.lookup_delay).await;
        self.with(|s| {
            if let Some((down, failures)) = &mut s.outage
                && down == list
                && *failures > 0
            {
                *failures -= 1;
                return Err(ActivityError::retryable(
                    "ListUnavailable",
                    format!("the {list} list did not answer"),
                ));
            }
            *s.lookups.entry(list.to_owned()).or_default() += 1;
            Ok(name.starts_with("Sanctioned"))
        })
    }
}

/// FNV-1a (64 bits) over `parts`, each ended by a unit separator so that
/// moving a character between fields changes the sum.
fn checksum(parts: &[&str]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0x1f]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("fnv1a64:{hash:016x}")
}

/// Register the KYC activities on the default queue, over a fresh
/// [`Compliance`].
pub fn register(registry: &mut ActivityRegistry) {
    register_with(registry, Compliance::default());
}

/// Register the KYC activities on the default queue, over `compliance`.
pub fn register_with(registry: &mut ActivityRegistry, compliance: Compliance) {
    let c = compliance.clone();
    registry.register(
        "collect_documents",
        move |_ctx: ActivityContext, (case_id, applicant): (String, Applicant)| {
            let compliance = c.clone();
            async move { collect_documents(&compliance, &case_id, &applicant) }
        },
    );
    let c = compliance.clone();
    registry.register(
        "sanctions_screening",
        move |ctx: ActivityContext, applicant: Applicant| {
            let compliance = c.clone();
            async move { sanctions_screening(&compliance, &ctx, &applicant).await }
        },
    );
    let c = compliance.clone();
    registry.register(
        "escalate",
        move |ctx: ActivityContext, (case_id, _screening): (String, Screening)| {
            let compliance = c.clone();
            async move {
                // One ticket per activity, however many attempts it takes.
                let ticket = compliance.with(|s| {
                    let next = format!("ESC-{:04}-{case_id}", s.escalations.len() + 1);
                    s.escalations
                        .entry(ctx.idempotency_key.clone())
                        .or_insert(next)
                        .clone()
                });
                Ok::<_, ActivityError>(ticket)
            }
        },
    );
    let c = compliance;
    registry.register(
        "record_decision",
        move |_ctx: ActivityContext, record: DecisionRecord| {
            let compliance = c.clone();
            async move {
                // A case is decided once: a repeated attempt gets the
                // first record back.
                let id = compliance.with(|s| {
                    let next = format!("DEC-{:04}-{}", s.decisions.len() + 1, record.case_id);
                    s.decisions
                        .entry(record.case_id.clone())
                        .or_insert((next, record))
                        .0
                        .clone()
                });
                Ok::<_, ActivityError>(id)
            }
        },
    );
}

fn collect_documents(
    compliance: &Compliance,
    case_id: &str,
    applicant: &Applicant,
) -> Result<Documents, ActivityError> {
    let fields = [
        ("name", &applicant.name),
        ("date_of_birth", &applicant.date_of_birth),
        ("document_number", &applicant.document_number),
        ("country", &applicant.country),
    ];
    // The error names the field, never its value.
    if let Some((field, _)) = fields.iter().find(|(_, v)| v.trim().is_empty()) {
        return Err(ActivityError::non_retryable(
            "DocumentsIncomplete",
            format!("case {case_id}: {field} is missing"),
        ));
    }
    let refs: Vec<String> = ["id-document", "selfie", "proof-of-address"]
        .iter()
        .map(|kind| format!("{case_id}/{kind}"))
        .collect();
    compliance.with(|s| s.documents.insert(case_id.to_owned(), refs.clone()));
    Ok(Documents {
        refs,
        checksum: checksum(&fields.map(|(_, v)| v.as_str())),
    })
}

async fn sanctions_screening(
    compliance: &Compliance,
    ctx: &ActivityContext,
    applicant: &Applicant,
) -> Result<Screening, ActivityError> {
    // Resume after the lists an earlier attempt already checked.
    let mut progress: Progress = ctx.last_heartbeat_details().unwrap_or_default();
    for list in LISTS.iter().skip(progress.checked.len()) {
        if compliance.lookup(list, &applicant.name).await? {
            progress.matches.push((*list).to_owned());
        }
        progress.checked.push((*list).to_owned());
        // Also keeps the attempt alive past its heartbeat timeout.
        ctx.heartbeat_details(&progress).await?;
    }
    let high_risk_country = HIGH_RISK_COUNTRIES
        .iter()
        .any(|c| c.eq_ignore_ascii_case(applicant.country.trim()));
    let risk = if progress.matches.is_empty() && !high_risk_country {
        "low"
    } else {
        "high"
    };
    Ok(Screening {
        lists_checked: progress.checked,
        matches: progress.matches,
        risk: risk.to_owned(),
        attempt: ctx.attempt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_covers_every_field_and_its_boundaries() {
        let a = checksum(&["Ada", "1815-12-10", "P1", "GB"]);
        assert_eq!(a, checksum(&["Ada", "1815-12-10", "P1", "GB"]));
        assert_ne!(a, checksum(&["Ad", "a1815-12-10", "P1", "GB"]));
        assert_ne!(a, checksum(&["Ada", "1815-12-10", "P2", "GB"]));
        assert!(a.starts_with("fnv1a64:") && a.len() == "fnv1a64:".len() + 16);
    }

    #[test]
    fn debug_hides_the_personal_data() {
        let applicant = Applicant {
            name: "Ada Lovelace".into(),
            date_of_birth: "1815-12-10".into(),
            document_number: "P1234567".into(),
            country: "GB".into(),
        };
        let shown = format!("{applicant:?}");
        for secret in ["Ada", "1815", "P1234567"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("GB"), "{shown}");
    }
}
