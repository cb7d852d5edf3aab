//! The loan-approval example on the test kit, as an author would test it:
//! every path (approve, reject, timeout, decline, cancel) in virtual time.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

use loan_activities::{Bank, Hold};
use serde_json::{Value, json};
use weft_server::{ActivityRegistry, RuntimeConfig};
use weft_testkit::{TEST_EPOCH, TestEnv, TestError};
use weft_tests::{event_names, guest_path};

const HOUR_MS: u64 = 3600 * 1000;

fn activities(bank: &Bank) -> ActivityRegistry {
    let mut registry = ActivityRegistry::new();
    loan_activities::register(&mut registry, bank.clone());
    registry
}

async fn env(bank: &Bank) -> TestEnv {
    let env = TestEnv::new(activities(bank)).await;
    deploy(&env).await;
    env
}

async fn deploy(env: &TestEnv) {
    env.deploy_file("loan-approval", guest_path("loan-approval"))
        .await
        .unwrap();
    env.deploy_file("account-opening", guest_path("account-opening"))
        .await
        .unwrap();
}

fn application(id: &str, applicant: &str) -> Value {
    json!({
        "application_id": id,
        "applicant": applicant,
        "amount_cents": 2_500_000,
        "approval_timeout_hours": 48
    })
}

fn holds(bank: &Bank) -> Vec<Hold> {
    bank.holds().into_iter().map(|(_, _, h)| h).collect()
}

#[tokio::test(start_paused = true)]
async fn approved_loans_open_an_account_in_a_child_and_disburse() {
    let bank = Bank::default();
    let env = env(&bank).await;
    env.start("loan-approval", "loan-1", &application("loan-1", "ada"))
        .await
        .unwrap();
    env.wait_for_event("loan-1", "SignalAwaited").await.unwrap();
    let status: Value = env.query("loan-1", "status").await.unwrap();
    assert_eq!(status["stage"], json!("awaiting-approval"));
    assert_eq!(status["credit_score"], json!(720));
    assert_eq!(status["documents_verified"], json!(true));
    assert_eq!(holds(&bank), [Hold::Held]);

    env.skip(std::time::Duration::from_secs(5 * 3600)).await;
    env.signal(
        "loan-1",
        "approval",
        &json!({"approved": true, "reviewer": "grace"}),
    )
    .await
    .unwrap();
    let result: Value = env.result("loan-1").await.unwrap();
    assert_eq!(result["outcome"], json!("approved"));
    assert_eq!(result["reviewer"], json!("grace"));
    assert!(
        result["account_id"]
            .as_str()
            .unwrap()
            .starts_with("LN-0001-loan-1")
    );
    assert_eq!(holds(&bank), [Hold::Disbursed]);
    assert_eq!(bank.accounts_opened(), 1);

    // The child ran as its own execution, with its own history.
    let child = env.runtime.history("loan-1/account").await.unwrap();
    assert_eq!(child.last().unwrap().kind.name(), "ExecutionCompleted");
    let names = event_names(&env.runtime.history("loan-1").await.unwrap());
    assert!(
        names.contains(&"ChildStarted") && names.contains(&"ChildCompleted"),
        "{names:?}"
    );
    // The approval timer was cancelled, not left to fire.
    assert!(
        names.contains(&"TimerCanceled") && !names.contains(&"TimerFired"),
        "{names:?}"
    );
    let status: Value = env.query("loan-1", "status").await.unwrap();
    assert_eq!(status["outcome"], json!("approved"));
}

#[tokio::test(start_paused = true)]
async fn rejected_loans_release_the_funds() {
    let bank = Bank::default();
    let env = env(&bank).await;
    env.start("loan-approval", "loan-2", &application("loan-2", "bob"))
        .await
        .unwrap();
    env.wait_for_event("loan-2", "SignalAwaited").await.unwrap();
    env.signal(
        "loan-2",
        "approval",
        &json!({"approved": false, "reviewer": "grace"}),
    )
    .await
    .unwrap();
    let result: Value = env.result("loan-2").await.unwrap();
    assert_eq!(result["outcome"], json!("rejected"));
    assert_eq!(holds(&bank), [Hold::Released]);
    assert_eq!(bank.accounts_opened(), 0);
}

#[tokio::test(start_paused = true)]
async fn unanswered_applications_expire_after_the_timeout_and_release_the_funds() {
    let bank = Bank::default();
    let env = env(&bank).await;
    env.start("loan-approval", "loan-3", &application("loan-3", "carol"))
        .await
        .unwrap();
    let result: Value = env.result("loan-3").await.unwrap();
    assert_eq!(result["outcome"], json!("expired"));
    assert_eq!(holds(&bank), [Hold::Released]);
    let history = env.runtime.history("loan-3").await.unwrap();
    let fired = history
        .iter()
        .find(|e| e.kind.name() == "TimerFired")
        .unwrap();
    assert_eq!(fired.at.0, TEST_EPOCH.0 + 48 * HOUR_MS);
}

#[tokio::test(start_paused = true)]
async fn poor_credit_is_declined_without_a_reviewer() {
    let bank = Bank::default();
    let env = env(&bank).await;
    env.start(
        "loan-approval",
        "loan-4",
        &application("loan-4", "poor-dave"),
    )
    .await
    .unwrap();
    let result: Value = env.result("loan-4").await.unwrap();
    assert_eq!(result["outcome"], json!("declined"));
    assert!(bank.holds().is_empty(), "nothing reserved");
}

#[tokio::test(start_paused = true)]
async fn cancelling_while_awaiting_approval_compensates() {
    let bank = Bank::default();
    let env = env(&bank).await;
    env.start("loan-approval", "loan-5", &application("loan-5", "erin"))
        .await
        .unwrap();
    env.wait_for_event("loan-5", "SignalAwaited").await.unwrap();
    env.runtime
        .cancel("loan-5", "applicant withdrew")
        .await
        .unwrap();
    match env.result::<Value>("loan-5").await {
        Err(TestError::Failed(f)) => assert_eq!(f.error_type, "Cancelled", "{f}"),
        other => panic!("expected a cancellation, got {other:?}"),
    }
    assert_eq!(holds(&bank), [Hold::Released]);
    let status: Value = env.query("loan-5", "status").await.unwrap();
    assert_eq!(status["outcome"], json!("cancelled"));
}

#[tokio::test(start_paused = true)]
async fn a_restart_while_awaiting_approval_loses_nothing() {
    let bank = Bank::default();
    let env = env(&bank).await;
    env.start("loan-approval", "loan-6", &application("loan-6", "frank"))
        .await
        .unwrap();
    env.wait_for_event("loan-6", "SignalAwaited").await.unwrap();
    let env = env
        .restart(activities(&bank), RuntimeConfig::default())
        .await;
    deploy(&env).await;
    env.signal(
        "loan-6",
        "approval",
        &json!({"approved": true, "reviewer": "heidi"}),
    )
    .await
    .unwrap();
    let result: Value = env.result("loan-6").await.unwrap();
    assert_eq!(result["outcome"], json!("approved"));
    assert_eq!(holds(&bank), [Hold::Disbursed]);
    assert_eq!(bank.accounts_opened(), 1, "exactly one account");
}

#[tokio::test(start_paused = true)]
async fn a_namespace_runs_its_own_types_and_its_children_find_theirs() {
    let bank = Bank::default();
    let env = TestEnv::new(activities(&bank)).await;
    env.runtime
        .create_namespace(weft_server::NamespaceRecord {
            name: "bank".into(),
            retention_seconds: 0,
            description: String::new(),
        })
        .await
        .unwrap();
    // The same type name, other code, in the default namespace.
    env.deploy_file("loan-approval", guest_path("payment-workflow"))
        .await
        .unwrap();
    env.deploy_file("bank::loan-approval", guest_path("loan-approval"))
        .await
        .unwrap();
    env.deploy_file("bank::account-opening", guest_path("account-opening"))
        .await
        .unwrap();
    let components = env.runtime.components();
    let id_of = |t: &str| components.iter().find(|(n, _)| n == t).map(|(_, id)| *id);
    assert_ne!(id_of("loan-approval"), id_of("bank::loan-approval"));
    assert!(id_of("account-opening").is_none(), "{components:?}");

    env.start(
        "bank::loan-approval",
        "bank::loan-1",
        &application("loan-1", "ada"),
    )
    .await
    .unwrap();
    env.wait_for_event("bank::loan-1", "SignalAwaited")
        .await
        .unwrap();
    env.signal(
        "bank::loan-1",
        "approval",
        &json!({"approved": true, "reviewer": "grace"}),
    )
    .await
    .unwrap();
    let result: Value = env.result("bank::loan-1").await.unwrap();
    assert_eq!(result["outcome"], json!("approved"), "{result}");
    // The child (type `account-opening`, as the guest names it) ran on
    // the bank namespace's deployment, the only one there is.
    let child = env.runtime.history("bank::loan-1/account").await.unwrap();
    assert_eq!(child.last().unwrap().kind.name(), "ExecutionCompleted");
}
