//! Access control end to end: `weft server` processes with real TLS
//! handshakes, API keys and JWTs; each role against each RPC family, bad
//! credentials, the audit log, and the caller recorded in history.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

mod common;

use common::*;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Stdio;
use tokio::process::Command;
use tonic::Code;
use weft_api::pb;

/// The families of RPCs, one call each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    /// reader: list executions of `payments`.
    ListPayments,
    /// reader: describe the namespace `loans`.
    DescribeLoans,
    /// writer: start an execution in `payments`.
    StartPayment,
    /// admin of the namespace: deploy into `payments`.
    DeployPayments,
    /// system admin: create a namespace.
    CreateNamespace,
    /// system admin: read the audit log.
    ReadAudit,
    /// worker: poll `pay-q` of `payments`.
    PollPayQ,
    /// worker: poll another queue of `payments`.
    PollOtherQ,
    /// worker: poll `pay-q` of `loans`.
    PollLoansPayQ,
    /// anyone: health.
    Health,
}

const ALL: [Call; 10] = [
    Call::ListPayments,
    Call::DescribeLoans,
    Call::StartPayment,
    Call::DeployPayments,
    Call::CreateNamespace,
    Call::ReadAudit,
    Call::PollPayQ,
    Call::PollOtherQ,
    Call::PollLoansPayQ,
    Call::Health,
];

async fn call(client: &mut weft_api::Client, which: Call, n: usize) -> Result<(), Code> {
    let poll = |namespace: &str, queue: &str| pb::PollActivityTaskRequest {
        namespace: namespace.into(),
        task_queue: queue.into(),
        identity: "matrix".into(),
        wait_ms: 1,
    };
    let done = match which {
        Call::ListPayments => client
            .list_workflows(pb::ListWorkflowsRequest {
                namespace: "payments".into(),
                ..Default::default()
            })
            .await
            .map(drop),
        Call::DescribeLoans => client
            .describe_namespace(pb::DescribeNamespaceRequest {
                name: "loans".into(),
            })
            .await
            .map(drop),
        Call::StartPayment => {
            let mut req = start(
                &format!("matrix-{n}"),
                "loan-approval",
                json!({"application_id": "m", "applicant": "ada", "amount_cents": 1}),
            );
            req.namespace = "payments".into();
            client.start_workflow(req).await.map(drop)
        }
        Call::DeployPayments => client
            .deploy_component(pb::DeployComponentRequest {
                namespace: "payments".into(),
                workflow_type: "loan-approval".into(),
                component: std::fs::read(guest("loan-approval")).unwrap(),
                mask: Vec::new(),
            })
            .await
            .map(drop),
        Call::CreateNamespace => client
            .create_namespace(pb::CreateNamespaceRequest {
                namespace: Some(pb::Namespace {
                    name: format!("ns-{n}"),
                    ..Default::default()
                }),
            })
            .await
            .map(drop),
        Call::ReadAudit => client
            .list_audit_log(pb::ListAuditLogRequest::default())
            .await
            .map(drop),
        Call::PollPayQ => client
            .poll_activity_task(poll("payments", "pay-q"))
            .await
            .map(drop),
        Call::PollOtherQ => client
            .poll_activity_task(poll("payments", "other-q"))
            .await
            .map(drop),
        Call::PollLoansPayQ => client
            .poll_activity_task(poll("loans", "pay-q"))
            .await
            .map(drop),
        Call::Health => client.health(pb::HealthRequest {}).await.map(drop),
    };
    done.map_err(|status| status.code())
}

/// An API key made through the API by `admin`.
async fn key(admin: &mut weft_api::Client, name: &str, roles: &[&str]) -> (String, String) {
    let made = admin
        .create_api_key(pb::CreateApiKeyRequest {
            name: name.into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            expires_in_seconds: 0,
        })
        .await
        .unwrap()
        .into_inner();
    (made.key.unwrap().id, made.secret)
}

/// A key that expired before the server started, written into `data_dir`.
async fn expired_key(data_dir: &Path) -> String {
    use weft_store::Store;
    std::fs::create_dir_all(data_dir).unwrap();
    let store =
        weft_store::RedbStore::open(data_dir.join("weft.redb"), weft_protect::Protector::off())
            .unwrap();
    let new = weft_api::auth::create_api_key(
        "old",
        &["*:admin".into()],
        weft_core::Timestamp(1_000),
        Some(weft_core::Timestamp(2_000)),
    )
    .unwrap();
    store.put_api_key(new.record).await.unwrap();
    store.close().await;
    new.secret.to_string()
}

#[tokio::test]
async fn each_role_may_make_exactly_the_calls_it_grants_and_bad_credentials_none() {
    let dir = tempfile::tempdir().unwrap();
    let expired = expired_key(dir.path()).await;
    let dev = Dev::start_mtls(dir.path()).await;
    let mut admin = dev.client().await;
    for ns in ["payments", "loans"] {
        admin
            .create_namespace(pb::CreateNamespaceRequest {
                namespace: Some(pb::Namespace {
                    name: ns.into(),
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }
    call(&mut admin, Call::DeployPayments, 0).await.unwrap();

    let (_, reader) = key(&mut admin, "reader", &["payments:reader", "loans:reader"]).await;
    let (_, writer) = key(&mut admin, "writer", &["payments:writer"]).await;
    let (_, worker) = key(&mut admin, "worker", &["payments:worker:pay-q"]).await;
    let (_, ns_admin) = key(&mut admin, "payments-admin", &["payments:admin"]).await;
    let (revoked_id, revoked) = key(&mut admin, "leaver", &["*:admin"]).await;
    admin
        .revoke_api_key(pb::RevokeApiKeyRequest { id: revoked_id })
        .await
        .unwrap();
    // Right shape, unknown id and secret.
    let forged = format!("weft_0123456789ab_{}", "00".repeat(32));

    use Call::*;
    let ok = Ok(());
    let denied = Err(Code::PermissionDenied);
    // (credential, calls it may make); every other call is denied.
    let grants: [(&str, Option<&str>, &[Call]); 5] = [
        (
            "reader",
            Some(&reader),
            &[ListPayments, DescribeLoans, Health],
        ),
        (
            "writer",
            Some(&writer),
            &[ListPayments, StartPayment, Health],
        ),
        ("worker", Some(&worker), &[PollPayQ, Health]),
        (
            "payments admin",
            Some(&ns_admin),
            &[
                ListPayments,
                StartPayment,
                DeployPayments,
                PollPayQ,
                PollOtherQ,
                Health,
            ],
        ),
        ("system admin", dev.api_key.as_deref(), &ALL),
    ];
    let mut n = 1;
    for (who, credential, allowed) in grants {
        let mut client = dev.client_with(credential).await;
        for which in ALL {
            n += 1;
            let expected = if allowed.contains(&which) { ok } else { denied };
            assert_eq!(
                call(&mut client, which, n).await,
                expected,
                "{who}: {which:?}"
            );
        }
    }
    for (who, credential) in [
        ("no credential", None),
        ("a forged key", Some(forged.as_str())),
        ("a revoked key", Some(revoked.as_str())),
        ("an expired key", Some(expired.as_str())),
        ("not a key", Some("hunter2")),
    ] {
        let mut client = dev.client_with(credential).await;
        for which in ALL {
            n += 1;
            let expected = match which {
                Health => ok,
                _ => Err(Code::Unauthenticated),
            };
            assert_eq!(
                call(&mut client, which, n).await,
                expected,
                "{who}: {which:?}"
            );
        }
    }

    // The denial names the grant that was missing.
    let mut as_reader = dev.client_with(Some(&reader)).await;
    let e = as_reader
        .terminate_workflow(pb::TerminateWorkflowRequest {
            namespace: "payments".into(),
            workflow_id: "matrix-0".into(),
            reason: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("`payments:writer`"), "{}", e.message());
    let mut anonymous = dev.client_with(None).await;
    let e = call(&mut anonymous, ListPayments, 0).await.unwrap_err();
    assert_eq!(e, Code::Unauthenticated);
}

#[tokio::test]
async fn a_worker_key_reports_only_on_tasks_of_its_queue_and_a_bad_token_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let dev = Dev::start_mtls(dir.path()).await;
    let mut admin = dev.client().await;
    deploy(&dev, "payment", "payment-workflow").await;
    let (_, ours) = key(&mut admin, "ours", &["default:worker:remote-q"]).await;
    let (_, theirs) = key(&mut admin, "theirs", &["default:worker:other-q"]).await;
    let mut req = start(
        "pay-remote",
        "payment",
        json!({"account": "acc-9", "amount_cents": 100, "currency": "EUR"}),
    );
    req.task_queue = "remote-q".into();
    admin.start_workflow(req).await.unwrap();

    let mut worker = dev.client_with(Some(&ours)).await;
    let task = loop {
        let polled = worker
            .poll_activity_task(pb::PollActivityTaskRequest {
                task_queue: "remote-q".into(),
                identity: "ours".into(),
                wait_ms: 10_000,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        if let Some(task) = polled.task {
            break task;
        }
    };
    let before = history(&mut admin, "pay-remote").await.len();

    // Another queue's worker cannot report on this task, even with its token.
    let mut other = dev.client_with(Some(&theirs)).await;
    let e = other
        .complete_activity_task(pb::CompleteActivityTaskRequest {
            task_token: task.task_token.clone(),
            result: b"{}".to_vec(),
            namespace: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{}", e.message());
    assert!(
        e.message().contains("default:worker:remote-q"),
        "{}",
        e.message()
    );
    // A token with a flipped bit, or reported from another namespace, is refused.
    let mut tampered = task.task_token.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    for (token, namespace) in [(tampered, ""), (task.task_token.clone(), "payments")] {
        let e = worker
            .complete_activity_task(pb::CompleteActivityTaskRequest {
                task_token: token,
                result: b"{}".to_vec(),
                namespace: namespace.into(),
            })
            .await
            .unwrap_err();
        assert!(
            matches!(e.code(), Code::PermissionDenied | Code::InvalidArgument),
            "{e:?}"
        );
    }
    assert_eq!(
        history(&mut admin, "pay-remote").await.len(),
        before,
        "nothing changed"
    );
    // Its own worker reports fine.
    worker
        .fail_activity_task(pb::FailActivityTaskRequest {
            task_token: task.task_token,
            failure: Some(pb::Failure {
                error_type: "Busy".into(),
                message: "try later".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn the_audit_log_and_the_history_name_who_terminated_and_why_and_who_was_refused() {
    let dir = tempfile::tempdir().unwrap();
    let dev = Dev::start_mtls(dir.path()).await;
    deploy(&dev, "loan-approval", "loan-approval").await;
    let mut admin = dev.client().await;
    let (writer_id, writer) = key(&mut admin, "ops-desk", &["default:writer"]).await;
    let (reader_id, reader) = key(&mut admin, "auditor", &["default:reader"]).await;
    let as_key = |key: &str| {
        let mut args = dev.connection_args();
        let at = args.iter().position(|a| a == "--api-key").unwrap();
        args[at + 1] = key.to_owned();
        args
    };
    let cli = |args: Vec<String>, more: &[&str]| {
        let mut all = args;
        all.extend(more.iter().map(|s| (*s).to_owned()));
        async move {
            let all: Vec<&str> = all.iter().map(String::as_str).collect();
            weft(&all).await
        }
    };

    let input = json!({"application_id": "l-7", "applicant": "ada", "amount_cents": 5}).to_string();
    let (ok, out, err) = cli(
        as_key(&writer),
        &[
            "workflow",
            "start",
            "--type",
            "loan-approval",
            "--id",
            "loan-7",
            "--input",
            &input,
        ],
    )
    .await;
    assert!(ok, "{out}{err}");
    // The reader may not terminate: refused, named, and audited.
    let (ok, _, err) = cli(
        as_key(&reader),
        &["workflow", "terminate", "loan-7", "--reason", "tidying up"],
    )
    .await;
    assert!(!ok);
    assert!(
        err.contains("PermissionDenied") && err.contains("default:writer"),
        "{err}"
    );
    let (ok, out, err) = cli(
        as_key(&writer),
        &[
            "workflow",
            "terminate",
            "loan-7",
            "--reason",
            "fraud suspected",
        ],
    )
    .await;
    assert!(ok, "{out}{err}");

    let writer_identity = format!("key:{writer_id} (ops-desk)");
    let reader_identity = format!("key:{reader_id} (auditor)");
    let (ok, out, err) = dev.cli(&["-o", "json", "audit", "log"]).await;
    assert!(ok, "{err}");
    let entries: Vec<Value> = serde_json::from_str(&out).unwrap();
    let find = |rpc: &str, identity: &str| {
        entries
            .iter()
            .find(|e| e["rpc"] == rpc && e["identity"] == identity)
            .unwrap_or_else(|| panic!("no {rpc} by {identity} in {entries:#?}"))
            .clone()
    };
    let terminated = find("TerminateWorkflow", &writer_identity);
    assert_eq!(terminated["outcome"], "ok");
    assert_eq!(terminated["target"], "loan-7");
    assert_eq!(terminated["namespace"], "default");
    let refused = find("TerminateWorkflow", &reader_identity);
    assert!(
        refused["outcome"]
            .as_str()
            .unwrap()
            .starts_with("denied: PermissionDenied"),
        "{refused}"
    );
    find("StartWorkflow", &writer_identity);
    assert!(
        entries.iter().any(|e| e["rpc"] == "CreateApiKey"
            && e["target"] == "ops-desk"
            && e["outcome"] == "ok"),
        "{entries:#?}"
    );
    // No payload in the log: the input's applicant never appears.
    assert!(!out.contains("ada"), "{out}");
    // Filtered by identity.
    let (ok, out, _) = dev
        .cli(&["-o", "json", "audit", "log", "--identity", &reader_identity])
        .await;
    assert!(ok);
    let mine: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert!(
        !mine.is_empty()
            && mine
                .iter()
                .all(|e| e["identity"] == reader_identity.as_str())
    );

    // The history records the same identity with the start and the
    // termination, and `workflow show` prints it.
    let (ok, out, err) = dev.cli(&["-o", "json", "workflow", "show", "loan-7"]).await;
    assert!(ok, "{err}");
    let export: Value = serde_json::from_str(&out).unwrap();
    let events = export["events"].as_array().unwrap();
    let first = &events[0];
    assert_eq!(
        first["caller"]["identity"],
        writer_identity.as_str(),
        "{first}"
    );
    let last = events.last().unwrap();
    assert_eq!(
        last["kind"]["ExecutionTerminated"]["reason"],
        "fraud suspected"
    );
    assert_eq!(
        last["caller"]["identity"],
        writer_identity.as_str(),
        "{last}"
    );
    let (ok, out, _) = dev.cli(&["workflow", "show", "loan-7"]).await;
    assert!(ok);
    assert!(out.contains(&format!("[by {writer_identity}]")), "{out}");

    // `weft auth whoami` says who the key is.
    let (ok, out, err) = cli(as_key(&reader), &["auth", "whoami"]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains(&reader_identity) && out.contains("default:reader"),
        "{out}"
    );
}

/// Create the namespace `payments`.
async fn create_payments(admin: &mut weft_api::Client) {
    admin
        .create_namespace(pb::CreateNamespaceRequest {
            namespace: Some(pb::Namespace {
                name: "payments".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
}

/// Sign `claims` with an HMAC secret.
fn hs256(secret: &[u8], claims: &Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(secret).unwrap();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &key,
    )
    .unwrap()
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A `weft server` in JWT mode on loopback (plaintext there is allowed).
async fn jwt_server(data: &Path, env: &[(&str, String)]) -> Dev {
    let mut command = Command::new(WEFT);
    command
        .arg("server")
        .env("WEFT_SERVER_LISTEN", "127.0.0.1:0")
        .env("WEFT_SERVER_DATA_DIR", data)
        .env("WEFT_SECURITY_KEYRING", keyring(data))
        .env("WEFT_SECURITY_AUTH", "jwt")
        .env("WEFT_SECURITY_JWT_ISSUER", "https://idp.bank.example")
        .env("WEFT_SECURITY_JWT_AUDIENCE", "weft");
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let address = listening_address(&mut child).await;
    Dev {
        child,
        address,
        tls: None,
        api_key: None,
    }
}

#[tokio::test]
async fn jwts_are_checked_for_signature_issuer_audience_and_expiry_and_map_to_grants() {
    let dir = tempfile::tempdir().unwrap();
    let secret = b"a shared secret of more than thirty-two bytes".to_vec();
    let secret_file = dir.path().join("jwt-secret");
    std::fs::write(&secret_file, &secret).unwrap();
    let dev = jwt_server(
        &dir.path().join("data"),
        &[(
            "WEFT_SECURITY_JWT_HMAC_SECRET_FILE",
            secret_file.to_str().unwrap().to_owned(),
        )],
    )
    .await;
    let claims = |sub: &str, aud: &str, exp: u64, permissions: &[&str]| {
        json!({"sub": sub, "iss": "https://idp.bank.example", "aud": aud, "exp": exp,
               "permissions": permissions})
    };
    let later = now_s() + 3600;
    let admin = hs256(&secret, &claims("ops", "weft", later, &["*:admin"]));
    create_payments(&mut dev.client_with(Some(&admin)).await).await;
    let good = hs256(
        &secret,
        &claims("grace", "weft", later, &["payments:reader"]),
    );
    let mut client = dev.client_with(Some(&good)).await;
    assert_eq!(call(&mut client, Call::ListPayments, 0).await, Ok(()));
    assert_eq!(
        call(&mut client, Call::StartPayment, 1).await,
        Err(Code::PermissionDenied)
    );
    let me = client
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.identity, "jwt:grace");
    assert_eq!(me.roles, ["payments:reader"]);

    for (what, token) in [
        (
            "expired",
            hs256(
                &secret,
                &claims("grace", "weft", now_s() - 3600, &["*:admin"]),
            ),
        ),
        (
            "wrong audience",
            hs256(&secret, &claims("grace", "other", later, &["*:admin"])),
        ),
        (
            "wrong issuer",
            hs256(
                &secret,
                &json!({"sub": "x", "iss": "https://evil.example", "aud": "weft", "exp": later}),
            ),
        ),
        (
            "another secret",
            hs256(
                b"another secret, also long enough to pass",
                &claims("grace", "weft", later, &["*:admin"]),
            ),
        ),
        ("garbage", "not.a.jwt".to_owned()),
    ] {
        let mut client = dev.client_with(Some(&token)).await;
        assert_eq!(
            call(&mut client, Call::ListPayments, 0).await,
            Err(Code::Unauthenticated),
            "{what}"
        );
    }
}

#[tokio::test]
async fn a_jwks_key_is_chosen_by_kid_and_a_token_of_an_unknown_key_is_refused() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pair.public_key_raw());
    let jwks =
        json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k1", "alg": "EdDSA"}]});
    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(&jwks_file, jwks.to_string()).unwrap();
    let dev = jwt_server(
        &dir.path().join("data"),
        &[(
            "WEFT_SECURITY_JWT_JWKS_FILE",
            jwks_file.to_str().unwrap().to_owned(),
        )],
    )
    .await;
    let sign = |kid: &str, permissions: &[&str]| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(kid.into());
        let claims = json!({"sub": "svc-settlement", "iss": "https://idp.bank.example",
            "aud": "weft", "exp": now_s() + 600, "permissions": permissions});
        let key = jsonwebtoken::EncodingKey::from_ed_der(&pair.serialize_der());
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    };
    create_payments(&mut dev.client_with(Some(&sign("k1", &["*:admin"]))).await).await;
    let mut client = dev
        .client_with(Some(&sign("k1", &["payments:writer"])))
        .await;
    let e = call(&mut client, Call::CreateNamespace, 0).await;
    assert_eq!(e, Err(Code::PermissionDenied), "a writer");
    assert_eq!(call(&mut client, Call::ListPayments, 0).await, Ok(()));
    let mut client = dev
        .client_with(Some(&sign("k2", &["payments:writer"])))
        .await;
    assert_eq!(
        call(&mut client, Call::ListPayments, 0).await,
        Err(Code::Unauthenticated)
    );
}

#[tokio::test]
async fn a_mapped_client_certificate_is_an_identity_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let (ok, _, err) = weft(&[
        "certs",
        "dev",
        "--out",
        certs.to_str().unwrap(),
        "--client",
        "ops.bank.example",
    ])
    .await;
    assert!(ok, "{err}");
    let config = dir.path().join("weft.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n\n[security]\ntls_cert = {:?}\n\
             tls_key = {:?}\ntls_client_ca = {:?}\n\n[security.certificate_grants]\n\
             \"ops.bank.example\" = [\"default:reader\"]\n",
            dir.path().join("data"),
            certs.join("server.pem"),
            certs.join("server-key.pem"),
            certs.join("ca.pem"),
        ),
    )
    .unwrap();
    let mut child = Command::new(WEFT)
        .args(["server", "--config", config.to_str().unwrap()])
        .env("WEFT_SECURITY_KEYRING", keyring(dir.path()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let address = listening_address(&mut child).await;
    let dev = Dev {
        child,
        address,
        tls: Some(weft_api::ClientTls {
            ca: Some(certs.join("ca.pem")),
            cert: Some(certs.join("client.pem")),
            key: Some(certs.join("client-key.pem")),
            server_name: None,
        }),
        api_key: None,
    };
    let mut client = dev.client_with(None).await;
    let me = client
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.identity, "cert:ops.bank.example");
    assert_eq!(me.method, "certificate");
    let e = client
        .start_workflow(start("x", "payment", json!({})))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // A bad bearer credential is refused even with a good certificate.
    let mut client = dev.client_with(Some("weft_nope")).await;
    let e = client.who_am_i(pb::WhoAmIRequest {}).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
}
