//! The hash chain over an execution's stored history.
//!
//! Every stored event extends its run's chain: `h[i] = BLAKE3(h[i-1] ||
//! stored bytes of event i)` (in BLAKE3's derive-key mode, so the chain
//! cannot be confused with any other hash weft computes). The chain covers
//! the bytes as stored (ciphertext included), so re-wrapping a data key or
//! erasing one leaves it valid. A run's chain starts from its origin: zero
//! for a new execution, the previous run's head for a continued run, the
//! old run's hash at the cut point for a reset. The head after the last
//! event is kept with the execution record and signed in checkpoints.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The context string of the chain's hash (BLAKE3 derive-key mode).
const CONTEXT: &str = "weft 2026-12 history chain v1";

/// Bytes of the previous hash each stored event carries (its link): they
/// let a verifier name the first event whose link breaks. Detection rests
/// on the full head, which the record keeps and checkpoints sign; the link
/// only localizes, so a prefix is enough (a random corruption matches a
/// 64-bit prefix once in 2^64 times, and is then caught one event later or
/// at the head).
pub const LINK_LEN: usize = 8;

/// One value of a chain.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChainHash(pub [u8; 32]);

impl ChainHash {
    /// The origin of a new execution's first run.
    pub const ZERO: ChainHash = ChainHash([0; 32]);

    /// The chain after an event stored as `stored`.
    pub fn next(&self, stored: &[u8]) -> ChainHash {
        let mut hasher = blake3::Hasher::new_derive_key(CONTEXT);
        hasher.update(&self.0);
        hasher.update(stored);
        ChainHash(*hasher.finalize().as_bytes())
    }

    /// The link the next event stores.
    pub fn link(&self) -> [u8; LINK_LEN] {
        let mut link = [0; LINK_LEN];
        link.copy_from_slice(&self.0[..LINK_LEN]);
        link
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Parse 64 hex digits.
    pub fn from_hex(s: &str) -> Option<ChainHash> {
        let bytes = unhex(s)?;
        Some(ChainHash(bytes.try_into().ok()?))
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainHash({})", self.to_hex())
    }
}

impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The bytes of an even-length hex string, `None` if it is not one.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_depends_on_every_byte_and_the_order() {
        let a = ChainHash::ZERO.next(b"one").next(b"two");
        let b = ChainHash::ZERO.next(b"two").next(b"one");
        let c = ChainHash::ZERO.next(b"one").next(b"twp");
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, ChainHash::ZERO.next(b"one").next(b"two"));
        assert_ne!(
            ChainHash::ZERO.next(b"one"),
            ChainHash([1; 32]).next(b"one")
        );
    }

    #[test]
    fn hex_round_trips() {
        let h = ChainHash::ZERO.next(b"x");
        assert_eq!(ChainHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(ChainHash::from_hex("abc"), None);
        assert_eq!(ChainHash::from_hex("zz"), None);
        assert_eq!(unhex("00ff"), Some(vec![0, 255]));
    }
}
