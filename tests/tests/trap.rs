//! A guest that panics fails alone; the runtime keeps serving.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

use serde_json::json;
use weft_core::EventKind;
use weft_server::WorkflowOutcome;
use weft_tests::{StartGuest, TestRuntime, echo_activities, event_names};

#[tokio::test(start_paused = true)]
async fn trapping_workflow_fails_with_its_message_while_another_completes() {
    let t = TestRuntime::new(echo_activities()).await;
    let doomed = t
        .start_guest("guest-trap", "trap", "trap-1", json!("out of ideas"))
        .await;
    let fine = t
        .start_guest(
            "guest-concurrent",
            "concurrent",
            "fine-1",
            json!(["a", "b"]),
        )
        .await;

    let WorkflowOutcome::Failed(failure) = t.runtime.result(&doomed).await.unwrap() else {
        panic!("a panicking guest must fail")
    };
    assert_eq!(failure.error_type, "Panic");
    assert!(
        failure.message.contains("guest gave up: out of ideas"),
        "{}",
        failure.message
    );
    // The report points into the guest: the panicking source file.
    assert!(
        failure.message.contains("src/lib.rs"),
        "{}",
        failure.message
    );

    let history = t.runtime.history(&doomed).await.unwrap();
    assert_eq!(
        event_names(&history),
        [
            "ExecutionStarted",
            "ActivityScheduled",
            "ActivityStarted",
            "ActivityCompleted",
            "ExecutionFailed"
        ]
    );
    let Some(EventKind::ExecutionFailed { failure: recorded }) = history.last().map(|e| &e.kind)
    else {
        unreachable!()
    };
    assert_eq!(recorded, &failure);

    assert!(matches!(
        t.runtime.result(&fine).await.unwrap(),
        WorkflowOutcome::Completed(_)
    ));
}

#[tokio::test]
async fn malformed_component_is_rejected_with_a_clear_error() {
    let t = TestRuntime::new(echo_activities()).await;
    let err = t
        .runtime
        .deploy("junk", b"\0asm not really".to_vec())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("invalid workflow component"),
        "{err}"
    );
    // Whatever the bytes, the reason is about a binary component: never a
    // parse of them as WebAssembly text.
    let random: Vec<u8> = (0..64u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    let valid = weft_tests::guest("guest-trap");
    let cases: [(&[u8], &str); 6] = [
        (b"", "not a WebAssembly component: the file is empty"),
        (&random, "not a WebAssembly component: bad magic"),
        (
            b"(component)",
            "looks like WebAssembly text, which weft does not take",
        ),
        (b"\0asm\x01\x00\x00\x00", "it is a core module"),
        (b"\0asm\x0d\x00", "truncated at byte 6"),
        (
            &valid[..valid.len() / 2],
            "not a valid WebAssembly component",
        ),
    ];
    for (bytes, says) in cases {
        let err = t.engine.check(bytes).unwrap_err().to_string();
        assert!(err.contains(says), "{says}: {err}");
        assert!(!err.contains("utf-8") && !err.contains("expected"), "{err}");
    }
    // Unknown types are refused by name.
    let start = t
        .runtime
        .start_workflow(weft_server::StartWorkflow {
            workflow_id: "x".into(),
            workflow_type: "junk".into(),
            input: b"null".to_vec(),
            task_queue: None,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        start.to_string().contains("unknown workflow type `junk`"),
        "{start}"
    );
}

#[tokio::test]
async fn component_with_filesystem_and_socket_imports_is_refused_naming_them() {
    let t = TestRuntime::new(echo_activities()).await;
    let err = t
        .runtime
        .deploy("forbidden", weft_tests::guest("guest-forbidden"))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("import `wasi:filesystem/"), "{message}");
    assert!(
        message.contains("a workflow has no filesystem"),
        "{message}"
    );
    assert!(message.contains("import `wasi:sockets/"), "{message}");
    assert!(message.contains("cannot do network I/O"), "{message}");
    // Well-behaved components pass the same check.
    let report = t
        .engine
        .check(&weft_tests::guest("guest-clock-random"))
        .unwrap();
    assert!(
        report
            .imports
            .iter()
            .any(|i| i.starts_with("weft:workflow/host@")),
        "{report:?}"
    );
    assert!(
        report
            .imports
            .iter()
            .any(|i| i.starts_with("wasi:random/random@")),
        "{report:?}"
    );
    assert_eq!(report.exports, ["query", "run"]);
}

#[tokio::test]
async fn components_needing_threads_or_shared_memory_are_refused() {
    let t = TestRuntime::new(echo_activities()).await;
    let shared = wat::parse_str("(component (core module (memory 1 1 shared)))").unwrap();
    let err = t.engine.check(&shared).unwrap_err().to_string();
    assert!(err.contains("invalid workflow component"), "{err}");
    assert!(err.contains("threads must be enabled"), "{err}");
    // A component that exports no `run` is not a workflow.
    let empty = wat::parse_str("(component)").unwrap();
    let err = t.engine.check(&empty).unwrap_err().to_string();
    assert!(err.contains("does not export `run`"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_long_panic_message_keeps_its_type_and_location() {
    let t = TestRuntime::new(echo_activities()).await;
    let message = "why ".repeat(2_000);
    let id = t
        .start_guest("guest-trap", "trap", "long-panic", json!(message))
        .await;
    let WorkflowOutcome::Failed(failure) = t.runtime.result(&id).await.unwrap() else {
        panic!("a panicking guest must fail")
    };
    assert_eq!(failure.error_type, "Panic", "{}", failure.message);
    assert!(
        failure.message.contains("panicked at") && failure.message.contains("src/lib.rs:"),
        "{}",
        failure.message
    );
    assert!(
        failure.message.contains("more bytes of output cut"),
        "{}",
        failure.message
    );
    assert!(failure.message.len() < 8_192, "{}", failure.message.len());
    // The cut message replays to the same failure.
    let history = t.runtime.history(&id).await.unwrap();
    t.engine
        .replay(weft_core::ExecutionId::new(&id, "r"), history)
        .await
        .unwrap();
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Component validation, fuzzed: random bytes, and a real component
    /// cut short or with a byte changed, are accepted or refused with an
    /// error; the engine never panics (and a refusal says what it is).
    #[test]
    fn validation_never_panics_on_altered_components(
        random in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..128),
        at in proptest::prelude::any::<proptest::sample::Index>(),
        byte in proptest::prelude::any::<u8>(),
    ) {
        static ENGINE: std::sync::OnceLock<(weft_engine::WorkflowEngine, Vec<u8>)> =
            std::sync::OnceLock::new();
        let (engine, valid) = ENGINE.get_or_init(|| {
            let engine = weft_engine::WorkflowEngine::new(weft_engine::EngineConfig::default());
            (engine.unwrap(), weft_tests::guest("guest-trap"))
        });
        let err = engine.check(&random).unwrap_err().to_string();
        proptest::prop_assert!(err.contains("invalid workflow component"), "{}", err);
        let i = at.index(valid.len());
        let _ = engine.check(&valid[..i]);
        let mut changed = valid.clone();
        changed[i] = byte;
        let _ = engine.check(&changed);
        let _ = weft_engine::interpreter_of(&changed);
    }
}
