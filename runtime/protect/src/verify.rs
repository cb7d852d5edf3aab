//! Checking a run's chain: recompute it over the stored events, compare
//! every link and the head, and name the first place it breaks.

use crate::stored::decode_skeleton;
use weft_core::{ChainHash, hex};

/// Where and how a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Broken {
    /// Event `index`'s link does not match the chain before it: this
    /// event, or one before it, was changed, dropped, moved or inserted.
    #[error(
        "event {index}: broken link: expected {expected} (the chain before it), found {found}: \
         event {index} or one before it was changed, dropped, moved or inserted"
    )]
    Link {
        /// The event.
        index: u64,
        /// The prefix the chain gives.
        expected: String,
        /// The prefix the event stores.
        found: String,
    },
    /// Event `index` cannot be decoded (or was written before chains).
    #[error("event {index}: {reason}")]
    Undecodable {
        /// The event.
        index: u64,
        /// Why.
        reason: String,
    },
    /// The run was written before chains (row format 3 or older): there is
    /// nothing to verify.
    #[error("this run was written before histories were chained: it cannot be verified")]
    Unchained,
    /// The inclusion proof does not lead to the checkpoint's signed root.
    #[error("checkpoint {seq}: the inclusion proof does not lead to its signed root")]
    Proof {
        /// The checkpoint.
        seq: u64,
    },
    /// The checkpoint's signature does not verify under the key.
    #[error("checkpoint {seq}: bad signature (not made by the key {key})")]
    Signature {
        /// The checkpoint.
        seq: u64,
        /// The public key checked against, hex.
        key: String,
    },
    /// The export is not well formed.
    #[error("malformed export: {0}")]
    Malformed(String),
    /// Every link holds but the chain does not end where the record (or a
    /// signed checkpoint) says: events were cut from the end, or the
    /// whole chain was rebuilt.
    #[error(
        "after {events} events the chain is {found}, but {against} says {expected} (events missing at the end, or the history was rewritten)"
    )]
    Head {
        /// Events checked.
        events: u64,
        /// The head expected.
        expected: String,
        /// The head found.
        found: String,
        /// What gave the expected head: `the execution record`, `checkpoint 7`.
        against: String,
    },
}

/// Recompute the chain from `origin` over `stored` (each event's bytes as
/// stored, in order), checking every link. Returns the head.
pub fn chain<'a>(
    origin: ChainHash,
    stored: impl IntoIterator<Item = &'a [u8]>,
) -> Result<(ChainHash, u64), Broken> {
    let mut prev = origin;
    let mut n = 0u64;
    for bytes in stored {
        let skeleton = decode_skeleton(bytes).map_err(|e| Broken::Undecodable {
            index: n,
            reason: e.to_string(),
        })?;
        let Some(link) = skeleton.link else {
            return Err(Broken::Undecodable {
                index: n,
                reason: "stored in a format without a chain link (written before chains)".into(),
            });
        };
        if link != prev.link() {
            return Err(Broken::Link {
                index: n,
                expected: hex(&prev.link()),
                found: hex(&link),
            });
        }
        prev = prev.next(bytes);
        n += 1;
    }
    Ok((prev, n))
}

/// [`chain`], then check the head against `expected` (from `against`).
pub fn verify_run<'a>(
    origin: ChainHash,
    stored: impl IntoIterator<Item = &'a [u8]>,
    expected: ChainHash,
    against: &str,
) -> Result<u64, Broken> {
    let (head, events) = chain(origin, stored)?;
    if head != expected {
        return Err(Broken::Head {
            events,
            expected: expected.to_hex(),
            found: head.to_hex(),
            against: against.to_owned(),
        });
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RunCipher;
    use crate::stored::encode_event;
    use weft_core::{Event, EventKind, Timestamp};

    fn run(n: u64) -> (Vec<Vec<u8>>, ChainHash) {
        let mut prev = ChainHash::ZERO;
        let mut out = Vec::new();
        for i in 0..n {
            let e = Event::new(Timestamp(i), EventKind::TimerFired { seq: i as u32 });
            let bytes = encode_event(&e, i, &prev, &RunCipher::Plain).unwrap();
            prev = prev.next(&bytes);
            out.push(bytes);
        }
        (out, prev)
    }

    fn check(events: &[Vec<u8>], head: ChainHash) -> Result<u64, Broken> {
        verify_run(
            ChainHash::ZERO,
            events.iter().map(Vec::as_slice),
            head,
            "the record",
        )
    }

    #[test]
    fn intact_chain_verifies() {
        let (events, head) = run(5);
        assert_eq!(check(&events, head), Ok(5));
    }

    #[test]
    fn each_tampering_is_named() {
        let (events, head) = run(5);
        let mut flipped = events.clone();
        // The time of event 2 (the first byte after the version and link).
        flipped[2][1 + weft_core::LINK_LEN] ^= 1;
        assert!(matches!(
            check(&flipped, head),
            Err(Broken::Link { index: 3, .. })
        ));

        let mut dropped = events.clone();
        dropped.remove(2);
        assert!(matches!(
            check(&dropped, head),
            Err(Broken::Link { index: 2, .. })
        ));

        let mut swapped = events.clone();
        swapped.swap(1, 2);
        assert!(matches!(
            check(&swapped, head),
            Err(Broken::Link { index: 1, .. })
        ));

        let truncated = &events[..4];
        assert!(matches!(
            check(truncated, head),
            Err(Broken::Head { events: 4, .. })
        ));

        let mut garbage = events.clone();
        garbage[0] = vec![4, 1, 2];
        assert!(matches!(
            check(&garbage, head),
            Err(Broken::Undecodable { index: 0, .. })
        ));
    }
}
