//! Masking is total: on any bytes, any JSON and any path text it returns
//! (never panics), what it returns for a masked payload is JSON, and a
//! value a path names never comes out, wherever else it was copied.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

use proptest::prelude::*;
use serde_json::{Value, json};
use weft_core::mask::{HistoryMask, JsonPath, MaskPolicy, mask_json};
use weft_core::{Event, EventKind, Failure, Timestamp};

const MARK: &str = "ADA-LOVELACE-7731";

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-zA-Z0-9 ]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn path_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,24}",
        prop::collection::vec(
            prop_oneof![
                "\\.[a-z]{1,6}",
                Just(".*".to_owned()),
                Just("[*]".to_owned()),
                "\\[[0-9]{1,2}\\]",
                "\\[\"[a-z ]{0,6}\"\\]",
            ],
            0..5
        )
        .prop_map(|parts| format!("${}", parts.concat())),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn any_bytes_are_masked_to_json(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let path = JsonPath::parse("$.a").unwrap();
        let out = mask_json(&bytes, [&path]);
        if serde_json::from_slice::<Value>(&bytes).is_err() {
            prop_assert_eq!(out, b"\"***\"".to_vec());
        } else {
            prop_assert!(serde_json::from_slice::<Value>(&out).is_ok());
        }
    }

    #[test]
    fn any_path_text_parses_or_is_refused(text in path_text(), value in json_value()) {
        if let Ok(path) = JsonPath::parse(&text) {
            let payload = serde_json::to_vec(&value).unwrap();
            let out = mask_json(&payload, [&path]);
            prop_assert!(serde_json::from_slice::<Value>(&out).is_ok());
        }
    }

    #[test]
    fn a_named_value_never_comes_out(
        value in json_value(),
        key in "[a-z]{1,6}",
        copied in any::<bool>(),
    ) {
        let mut root = json!({"other": value});
        root[&key] = json!({"name": MARK});
        let input = serde_json::to_vec(&root).unwrap();
        let path = JsonPath::parse(&format!("$.{key}")).unwrap();
        let out = String::from_utf8(mask_json(&input, [&path])).unwrap();
        prop_assert!(!out.contains(MARK), "{}", out);

        // Copied into a failure message, a side effect and memo.
        let policy = MaskPolicy::from_rules(&[format!("$.{key}")]).unwrap();
        let mut history = vec![Event::new(Timestamp(0), EventKind::ExecutionStarted {
            workflow_type: "t".into(),
            component: Default::default(),
            input,
            random_seed: [0; 32],
            task_queue: "q".into(),
        })];
        if copied {
            history.push(Event::new(Timestamp(1), EventKind::SideEffectRecorded {
                seq: 0,
                value: serde_json::to_vec(&json!({"x": [MARK]})).unwrap(),
            }));
            history.push(Event::new(Timestamp(2), EventKind::ExecutionFailed {
                failure: Failure::new("E", format!("bad {MARK}!")),
            }));
        }
        let mask = HistoryMask::new(policy, |_| None, &history);
        for e in &history {
            let shown = format!("{:?}", mask.event(e));
            prop_assert!(!shown.contains(MARK), "{}", shown);
        }
    }
}
