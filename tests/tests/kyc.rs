//! The identity-verification (KYC) example end to end, in virtual time:
//! auto-approval, a review after a heartbeating screening that resumes
//! from its last heartbeat, escalation then expiry, a review after the
//! escalation, the personal data kept out of the database file, and every
//! history replaying.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

use kyc_activities::{Compliance, LISTS};
use serde_json::{Value, json};
use std::time::Duration;
use weft_core::{Event, EventKind};
use weft_engine::ReplayError;
use weft_server::ActivityRegistry;
use weft_tests::{StartGuest, TEST_EPOCH, TestRuntime, event_names};

const HOUR_MS: u64 = 3600 * 1000;

/// Personal data of the applicant of the database-file test: each must
/// reach the activities, and none the file.
const NAME: &str = "Sanctioned Ada Lovelace-KYC";
const DATE_OF_BIRTH: &str = "1815-12-10";
const DOCUMENT_NUMBER: &str = "P-X7731-0042-KYC";

fn activities(compliance: &Compliance) -> ActivityRegistry {
    let mut registry = ActivityRegistry::new();
    kyc_activities::register_with(&mut registry, compliance.clone());
    registry
}

fn case(id: &str, name: &str, country: &str) -> Value {
    json!({
        "case_id": id,
        "applicant": {
            "name": name,
            "date_of_birth": "1990-04-01",
            "document_number": format!("D-{id}"),
            "country": country,
        }
    })
}

async fn start(t: &TestRuntime, input: Value) -> String {
    let id = input["case_id"].as_str().unwrap().to_owned();
    t.start_guest("kyc", "kyc", &id, input).await
}

fn review(approved: bool, reviewer: &str, note: &str) -> Value {
    json!({"approved": approved, "reviewer": reviewer, "note": note})
}

/// The sequence number of the first activity named `name`.
fn activity_seq(history: &[Event], name: &str) -> u32 {
    history
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::ActivityScheduled { seq, name: n, .. } if n == name => Some(*seq),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {name} in {:?}", event_names(history)))
}

/// Every event of activity `seq`, as (name, attempt, at).
fn activity_events(history: &[Event], seq: u32) -> Vec<(&'static str, u32, u64)> {
    history
        .iter()
        .filter_map(|e| {
            let (s, attempt) = match &e.kind {
                EventKind::ActivityScheduled { seq, .. } => (*seq, 0),
                EventKind::ActivityStarted { seq, attempt }
                | EventKind::ActivityCompleted { seq, attempt, .. }
                | EventKind::ActivityFailed { seq, attempt, .. }
                | EventKind::ActivityTimedOut { seq, attempt, .. } => (*seq, *attempt),
                _ => return None,
            };
            (s == seq).then(|| (e.kind.name(), attempt, e.at.0 - TEST_EPOCH.0))
        })
        .collect()
}

/// The activities scheduled, in order.
fn activities_scheduled(history: &[Event]) -> Vec<&str> {
    history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ActivityScheduled { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect()
}

/// Replay the closed history of `id` through its component: the code
/// issues exactly the recorded commands and ends as recorded.
async fn assert_replays(t: &TestRuntime, id: &str) {
    let history = t.runtime.history(id).await.unwrap();
    let exec = t.runtime.describe(id).await.unwrap().id;
    let report = t.engine.replay(exec, history).await.unwrap();
    assert!(report.closed, "{id}: {report:?}");
}

fn holds(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(start_paused = true)]
async fn a_clear_applicant_is_approved_without_a_reviewer() {
    let compliance = Compliance::default();
    let t = TestRuntime::new(activities(&compliance)).await;
    let id = start(&t, case("kyc-1", "Grace Hopper", "US")).await;
    let result: Value = t.result(&id).await.unwrap();
    assert_eq!(result["case_id"], json!("kyc-1"));
    assert_eq!(result["decision"], json!("approved"));
    assert_eq!(result["reviewer"], Value::Null);
    assert_eq!(
        result["screening"],
        json!({"lists_checked": LISTS, "matches": [], "risk": "low", "attempt": 1})
    );

    let history = t.runtime.history(&id).await.unwrap();
    assert_eq!(
        activities_scheduled(&history),
        [
            "collect_documents",
            "sanctions_screening",
            "record_decision"
        ]
    );
    let names = event_names(&history);
    assert!(
        !names.contains(&"SignalAwaited") && !names.contains(&"TimerStarted"),
        "{names:?}"
    );
    // Four 2-second lookups under a 5-second heartbeat timeout: one
    // attempt, kept alive by its heartbeats.
    let screening = activity_events(&history, activity_seq(&history, "sanctions_screening"));
    let [scheduled, .., completed] = screening[..] else {
        panic!("{screening:?}");
    };
    assert!(
        screening
            .iter()
            .all(|(n, a, _)| *n != "ActivityTimedOut" && *a <= 1),
        "{screening:?}"
    );
    assert_eq!(completed.0, "ActivityCompleted");
    assert!(completed.2 - scheduled.2 >= 8_000, "{screening:?}");

    let decisions = compliance.decisions();
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(
        (
            decisions[0].case_id.as_str(),
            decisions[0].decision.as_str()
        ),
        ("kyc-1", "approved")
    );
    assert!(decisions[0].documents_checksum.starts_with("fnv1a64:"));
    assert!(compliance.escalations().is_empty());
    let status: Value = t.query(&id, "status").await.unwrap();
    assert_eq!(status["stage"], json!("done"));
    assert_eq!(status["documents"], json!(3));
    assert_eq!(status["record"], json!("DEC-0001-kyc-1"));
    assert_replays(&t, &id).await;
}

#[tokio::test(start_paused = true)]
async fn a_sanctions_match_waits_for_review_and_the_screening_resumes_from_its_heartbeat() {
    // The OFAC list (the third) does not answer the first attempt.
    let compliance = Compliance::default().with_outage("OFAC", 1);
    let t = TestRuntime::new(activities(&compliance)).await;
    let id = start(&t, case("kyc-2", "Sanctioned Sam", "GB")).await;
    let history = t.wait_for_event(&id, "SignalAwaited").await.unwrap();

    // Attempt 1 checked UN and EU and heartbeated after each, then failed
    // at OFAC; attempt 2 read the last heartbeat's details and went on
    // from OFAC, so every list was looked up exactly once.
    let screening = activity_events(&history, activity_seq(&history, "sanctions_screening"));
    let outcomes: Vec<_> = screening.iter().map(|(n, a, _)| (*n, *a)).collect();
    assert_eq!(
        outcomes,
        [
            ("ActivityScheduled", 0),
            ("ActivityStarted", 1),
            ("ActivityFailed", 1),
            ("ActivityStarted", 2),
            ("ActivityCompleted", 2),
        ]
    );
    let failure = history
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::ActivityFailed { failure, .. } => Some(failure),
            _ => None,
        })
        .unwrap();
    assert_eq!(failure.error_type, "ListUnavailable", "{failure}");
    assert_eq!(
        compliance.lookups().into_iter().collect::<Vec<_>>(),
        [
            ("EU".to_owned(), 1),
            ("OFAC".to_owned(), 1),
            ("UK-HMT".to_owned(), 1),
            ("UN".to_owned(), 1),
        ]
    );

    let status: Value = t.query(&id, "status").await.unwrap();
    assert_eq!(status["stage"], json!("awaiting-review"));
    assert_eq!(status["screening"]["matches"], json!(LISTS));
    assert_eq!(status["screening"]["risk"], json!("high"));
    assert_eq!(status["screening"]["attempt"], json!(2));
    assert_eq!(status["decision"], Value::Null);

    t.skip(Duration::from_secs(3 * 3600)).await;
    let note = "false positive: another date of birth";
    t.signal(&id, "review", &review(true, "grace", note))
        .await
        .unwrap();
    let result: Value = t.result(&id).await.unwrap();
    assert_eq!(result["decision"], json!("approved"));
    assert_eq!(result["reviewer"], json!("grace"));
    assert_eq!(result["screening"]["lists_checked"], json!(LISTS));

    let history = t.runtime.history(&id).await.unwrap();
    let received: Vec<(String, Value)> = history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::SignalReceived { name, payload } => {
                Some((name.clone(), serde_json::from_slice(payload).unwrap()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        received,
        [("review".to_owned(), review(true, "grace", note))]
    );
    // The escalation timer was cancelled, not left to fire.
    let names = event_names(&history);
    assert!(
        names.contains(&"TimerCanceled") && !names.contains(&"TimerFired"),
        "{names:?}"
    );
    assert!(compliance.escalations().is_empty());
    let decisions = compliance.decisions();
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(decisions[0].reviewer.as_deref(), Some("grace"));
    assert_eq!(decisions[0].note.as_deref(), Some(note));
    assert_replays(&t, &id).await;
}

#[tokio::test(start_paused = true)]
async fn without_a_review_the_case_escalates_then_expires() {
    let compliance = Compliance::default();
    let t = TestRuntime::new(activities(&compliance)).await;
    // A clean name from a high-risk country: a reviewer must look.
    let id = start(&t, case("kyc-3", "Kim Lee", "KP")).await;
    t.wait_for_event(&id, "SignalAwaited").await.unwrap();
    assert!(compliance.escalations().is_empty());

    // Past the first 24 hours (the default): escalated, waiting again.
    t.skip(Duration::from_secs(24 * 3600 + 60)).await;
    assert_eq!(compliance.escalations(), ["ESC-0001-kyc-3"]);
    let status: Value = t.query(&id, "status").await.unwrap();
    assert_eq!(status["stage"], json!("escalated"));
    assert_eq!(status["escalation"], json!("ESC-0001-kyc-3"));
    assert!(compliance.decisions().is_empty());

    let result: Value = t.result(&id).await.unwrap();
    assert_eq!(result["decision"], json!("expired"));
    assert_eq!(result["reviewer"], Value::Null);
    assert_eq!(result["screening"]["matches"], json!([]));
    assert_eq!(result["screening"]["risk"], json!("high"));

    let history = t.runtime.history(&id).await.unwrap();
    assert_eq!(
        activities_scheduled(&history),
        [
            "collect_documents",
            "sanctions_screening",
            "escalate",
            "record_decision"
        ]
    );
    // Two periods of 24 hours each, the escalation between them.
    let mut started = Vec::new();
    let mut fired = Vec::new();
    for e in &history {
        match &e.kind {
            EventKind::TimerStarted {
                seq,
                duration_ms,
                fire_at,
            } => started.push((*seq, *duration_ms, fire_at.0)),
            EventKind::TimerFired { seq } => fired.push((*seq, e.at.0)),
            _ => {}
        }
    }
    assert_eq!(started.len(), 2, "{started:?}");
    assert_eq!(fired.len(), 2, "{fired:?}");
    for ((seq, duration, due), (fired_seq, at)) in started.iter().zip(&fired) {
        assert_eq!((*duration, seq, *due), (24 * HOUR_MS, fired_seq, *at));
    }
    let escalated_at = history
        .iter()
        .find(
            |e| matches!(&e.kind, EventKind::ActivityScheduled { name, .. } if name == "escalate"),
        )
        .unwrap()
        .at
        .0;
    assert!(fired[0].1 <= escalated_at && escalated_at <= fired[1].1 - 24 * HOUR_MS);
    // The screening took its 8 seconds; then 48 hours of waiting.
    assert!(
        fired[1].1 - TEST_EPOCH.0 >= 48 * HOUR_MS + 8_000,
        "{fired:?}"
    );

    let decisions = compliance.decisions();
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(decisions[0].decision, "expired");
    assert_eq!(decisions[0].reviewer, None);
    let status: Value = t.query(&id, "status").await.unwrap();
    assert_eq!(status["decision"], json!("expired"));
    assert_replays(&t, &id).await;
}

#[tokio::test(start_paused = true)]
async fn a_review_after_the_escalation_decides_and_the_history_replays() {
    let compliance = Compliance::default();
    let t = TestRuntime::new(activities(&compliance)).await;
    let mut input = case("kyc-5", "Sanctioned Bob", "FR");
    input["escalation_hours"] = json!(6);
    let id = start(&t, input).await;
    t.wait_for_event(&id, "SignalAwaited").await.unwrap();
    t.skip(Duration::from_secs(7 * 3600)).await;
    let status: Value = t.query(&id, "status").await.unwrap();
    assert_eq!(status["stage"], json!("escalated"));

    t.signal(
        &id,
        "review",
        &review(false, "senior-reviewer", "true match on the UN list"),
    )
    .await
    .unwrap();
    let result: Value = t.result(&id).await.unwrap();
    assert_eq!(result["decision"], json!("rejected"));
    assert_eq!(result["reviewer"], json!("senior-reviewer"));

    let history = t.runtime.history(&id).await.unwrap();
    let names = event_names(&history);
    let count = |name: &str| names.iter().filter(|n| **n == name).count();
    assert_eq!(
        (
            count("TimerStarted"),
            count("TimerFired"),
            count("TimerCanceled")
        ),
        (2, 1, 1),
        "{names:?}"
    );
    assert_eq!(count("SignalReceived"), 1, "{names:?}");
    assert_eq!(compliance.escalations(), ["ESC-0001-kyc-5"]);
    assert_eq!(compliance.decisions()[0].decision, "rejected");

    // The same code replays the recorded history exactly. A check of the
    // check: with another applicant in the input, the first activity's
    // arguments differ from the recorded ones, and the replay says so.
    assert_replays(&t, &id).await;
    let mut other = history.clone();
    let EventKind::ExecutionStarted { input, .. } = &mut other[0].kind else {
        panic!("{:?}", other[0]);
    };
    *input = serde_json::to_vec(&case("kyc-5", "Bob", "FR")).unwrap();
    let exec = t.runtime.describe(&id).await.unwrap().id;
    match t.engine.replay(exec, other).await {
        Err(ReplayError::Nondeterminism(n)) => {
            assert!(n.recorded.contains("collect_documents"), "{n:?}");
        }
        other => panic!("expected a divergence, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn the_applicants_personal_data_never_reaches_the_database_file() {
    let compliance = Compliance::default();
    let t = TestRuntime::new(activities(&compliance)).await;
    let input = json!({
        "case_id": "kyc-4",
        "applicant": {
            "name": NAME,
            "date_of_birth": DATE_OF_BIRTH,
            "document_number": DOCUMENT_NUMBER,
            "country": "GB",
        }
    });
    let id = start(&t, input).await;
    t.wait_for_event(&id, "SignalAwaited").await.unwrap();
    t.signal(&id, "review", &review(false, "grace", "confirmed match"))
        .await
        .unwrap();
    let result: Value = t.result(&id).await.unwrap();
    assert_eq!(result["decision"], json!("rejected"));
    assert_eq!(result["screening"]["matches"], json!(LISTS));

    // The runtime reads real values: the input, and the arguments of the
    // activities that need the applicant.
    let history = t.runtime.history(&id).await.unwrap();
    let EventKind::ExecutionStarted { input, .. } = &history[0].kind else {
        panic!("{:?}", history[0]);
    };
    for value in [NAME, DATE_OF_BIRTH, DOCUMENT_NUMBER] {
        assert!(holds(input, value), "the input lacks `{value}`");
    }
    let arguments: Vec<&[u8]> = history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ActivityScheduled { name, input, .. }
                if name == "collect_documents" || name == "sanctions_screening" =>
            {
                Some(input.as_slice())
            }
            _ => None,
        })
        .collect();
    assert_eq!(arguments.len(), 2);
    for arguments in arguments {
        for value in [NAME, DATE_OF_BIRTH, DOCUMENT_NUMBER] {
            assert!(holds(arguments, value), "an argument lacks `{value}`");
        }
    }
    assert_replays(&t, &id).await;

    let (dir, _) = t.stop().await;
    let file = std::fs::read(TestRuntime::db_path(&dir)).unwrap();
    for value in [NAME, DATE_OF_BIRTH, DOCUMENT_NUMBER, "confirmed match"] {
        assert!(!holds(&file, value), "`{value}` is in the database file");
    }
    // A check of the check: the file is read whole, and its plain parts
    // (ids, activity names) are there.
    assert!(holds(&file, "kyc-4") && holds(&file, "sanctions_screening"));
}
