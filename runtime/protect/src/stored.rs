//! The stored event format, version 4: an event as a history row (or a
//! sealed history's entry) holds it.
//!
//! `[4] [link: LINK_LEN bytes] [postcard of (at, kind, caller, sealed)]`
//!
//! The link is the prefix of the chain value before this event
//! ([`weft_core::ChainHash::link`]). `kind` is the event with its secret
//! fields ([`weft_core::HasSecrets`]) emptied and `sealed` their
//! AES-256-GCM-SIV ciphertext under the run's data key, with the nonce
//! derived from the event's index; a plaintext run keeps the fields and
//! has no `sealed`. Versions 2 and 3 (no link, no sealing, written before
//! chains) are still read.

use crate::cipher::Place;
use crate::{ProtectError, RunCipher};
use weft_core::{Caller, ChainHash, Event, EventKind, LINK_LEN, Timestamp};

/// The stored event format version this build writes.
pub const FORMAT: u8 = 4;

type Body = (Timestamp, EventKind, Option<Caller>, Option<Vec<u8>>);

/// Encode `event`, the run's event `index`, whose chain so far is `prev`.
pub fn encode_event(
    event: &Event,
    index: u64,
    prev: &ChainHash,
    cipher: &RunCipher,
) -> Result<Vec<u8>, ProtectError> {
    let mut skeleton = event.clone();
    let sealed = cipher.seal(&mut skeleton, Place::Event(index))?;
    let mut out = Vec::with_capacity(64 + sealed.as_ref().map_or(0, Vec::len));
    out.push(FORMAT);
    out.extend(prev.link());
    let Event { at, kind, caller } = skeleton;
    postcard::to_extend(&(at, kind, caller, sealed), out)
        .map_err(|e| ProtectError::Corrupt(format!("cannot encode event {index}: {e}")))
}

/// A stored event without its secrets opened: the event with its secret
/// fields empty, and their ciphertext if it has any.
#[derive(Debug)]
pub struct Skeleton {
    /// The event; secret fields empty if `sealed` is set.
    pub event: Event,
    /// The sealed secret fields.
    pub sealed: Option<Vec<u8>>,
    /// The link to the previous chain value (`None` before format 4).
    pub link: Option<[u8; LINK_LEN]>,
}

/// Decode a stored event without opening its secrets: what a verifier or
/// an erased execution's viewer reads, needing no key.
pub fn decode_skeleton(bytes: &[u8]) -> Result<Skeleton, ProtectError> {
    match bytes.split_first() {
        Some((&FORMAT, rest)) => {
            let (link, body) = rest.split_first_chunk::<LINK_LEN>().ok_or_else(|| {
                ProtectError::Corrupt("stored event shorter than its link".into())
            })?;
            let (at, kind, caller, sealed): Body = postcard::from_bytes(body)
                .map_err(|e| ProtectError::Corrupt(format!("corrupt stored event: {e}")))?;
            Ok(Skeleton {
                event: Event { at, kind, caller },
                sealed,
                link: Some(*link),
            })
        }
        _ => Ok(Skeleton {
            event: weft_core::decode_event(bytes)
                .map_err(|e| ProtectError::Corrupt(e.to_string()))?,
            sealed: None,
            link: None,
        }),
    }
}

/// Decode the stored event `index` of a run with `cipher`.
pub fn decode_event(bytes: &[u8], index: u64, cipher: &RunCipher) -> Result<Event, ProtectError> {
    let Skeleton {
        mut event, sealed, ..
    } = decode_skeleton(bytes)?;
    if let Some(sealed) = sealed {
        cipher.open(&mut event, &sealed, Place::Event(index))?;
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Keyring, Protector};
    use std::sync::Arc;

    #[test]
    fn round_trip_link_and_old_formats() {
        let protector = Protector::new(Arc::new(Keyring::generate("k1").unwrap()));
        let cipher = protector
            .cipher(&protector.new_data_key().unwrap())
            .unwrap();
        let prev = ChainHash::ZERO.next(b"x");
        let event = Event::new(
            Timestamp(9),
            EventKind::SignalReceived {
                name: "approve".into(),
                payload: b"{\"by\":\"Ada Lovelace\"}".to_vec(),
            },
        )
        .by(Some(Caller::new("key:ab (ops)")));
        let bytes = encode_event(&event, 2, &prev, &cipher).unwrap();
        assert!(!bytes.windows(3).any(|w| w == b"Ada"));
        assert_eq!(decode_event(&bytes, 2, &cipher).unwrap(), event);
        let skeleton = decode_skeleton(&bytes).unwrap();
        assert_eq!(skeleton.link, Some(prev.link()));
        assert_eq!(
            skeleton.event.caller, event.caller,
            "identities stay readable"
        );
        assert!(
            matches!(&skeleton.event.kind, EventKind::SignalReceived { name, payload } if name == "approve" && payload.is_empty())
        );

        // Plaintext runs: readable with no key, and still linked.
        let plain = encode_event(&event, 2, &prev, &RunCipher::Plain).unwrap();
        assert_eq!(decode_event(&plain, 2, &RunCipher::Plain).unwrap(), event);
        assert!(plain.windows(3).any(|w| w == b"Ada"));

        // Format 3, as runs written before chains hold it.
        let v3 = weft_core::encode_event(&event).unwrap();
        assert_eq!(decode_event(&v3, 2, &cipher).unwrap(), event);
        assert_eq!(decode_skeleton(&v3).unwrap().link, None);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let protector = Protector::new(Arc::new(Keyring::generate("k1").unwrap()));
        let cipher = protector
            .cipher(&protector.new_data_key().unwrap())
            .unwrap();
        let event = Event::new(
            Timestamp(1),
            EventKind::ExecutionCompleted {
                result: b"42".to_vec(),
            },
        );
        let bytes = encode_event(&event, 0, &ChainHash::ZERO, &cipher).unwrap();
        for n in 0..bytes.len() {
            assert!(
                decode_event(&bytes[..n], 0, &cipher).is_err(),
                "prefix of {n} bytes"
            );
        }
    }
}
