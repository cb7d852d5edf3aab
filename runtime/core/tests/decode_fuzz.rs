//! Structure-aware fuzzing of the stored-event decoder with proptest: any
//! bytes, and valid encodings cut, extended or with bytes changed, decode
//! to an event or to a typed error, never a panic; what decodes encodes
//! back to the same bytes.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

use proptest::prelude::*;
use weft_core::{
    ActivityOptions, Event, EventKind, FORMAT_VERSION, Failure, TimeoutKind, Timestamp,
    decode_event, encode_event,
};

fn event() -> impl Strategy<Value = Event> {
    let payload = prop::collection::vec(any::<u8>(), 0..64);
    let name = "[a-z]{0,12}";
    let kind = prop_oneof![
        (any::<u32>(), name, payload.clone()).prop_map(|(seq, name, input)| {
            EventKind::ActivityScheduled {
                seq,
                name,
                input,
                options: ActivityOptions::default(),
            }
        }),
        (any::<u32>(), any::<u32>(), payload.clone()).prop_map(|(seq, attempt, result)| {
            EventKind::ActivityCompleted {
                seq,
                attempt,
                result,
            }
        }),
        (any::<u32>(), any::<u32>(), name, any::<Option<u64>>()).prop_map(
            |(seq, attempt, message, retry)| EventKind::ActivityFailed {
                seq,
                attempt,
                failure: Failure::new("E", message),
                retry_at: retry.map(Timestamp),
            }
        ),
        (any::<u32>(), any::<u32>()).prop_map(|(seq, attempt)| EventKind::ActivityTimedOut {
            seq,
            attempt,
            kind: TimeoutKind::StartToClose,
            retry_at: None,
        }),
        (name, payload.clone())
            .prop_map(|(name, payload)| EventKind::SignalReceived { name, payload }),
        (any::<u32>(), payload)
            .prop_map(|(seq, value)| EventKind::SideEffectRecorded { seq, value }),
        any::<u32>().prop_map(|seq| EventKind::TimerFired { seq }),
        name.prop_map(|reason| EventKind::ExecutionTerminated { reason }),
    ];
    (any::<u64>(), kind).prop_map(|(at, kind)| Event::new(Timestamp(at), kind))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn any_bytes_decode_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_event(&bytes);
        let mut versioned = vec![FORMAT_VERSION];
        versioned.extend(&bytes);
        if let Ok(event) = decode_event(&versioned) {
            // Whatever decodes is an event that encodes again.
            prop_assert!(decode_event(&encode_event(&event).unwrap()).is_ok());
        }
    }

    #[test]
    fn altered_encodings_decode_or_fail_cleanly(
        event in event(),
        cut in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let good = encode_event(&event).unwrap();
        prop_assert_eq!(decode_event(&good).unwrap(), event);
        let _ = decode_event(&good[..cut.index(good.len())]);
        let mut changed = good.clone();
        let i = at.index(changed.len());
        changed[i] = byte;
        let _ = decode_event(&changed);
        let mut longer = good;
        longer.insert(i, byte);
        let _ = decode_event(&longer);
    }
}
