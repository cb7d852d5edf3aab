//! Signed checkpoints: a Merkle tree over chain heads, its root signed
//! with Ed25519, so that whoever can write the database still cannot
//! rewrite a history, and its chain, unnoticed once a checkpoint that
//! covers it was published.
//!
//! A *closed* checkpoint covers the executions that closed since the one
//! before (their final heads); an *open* checkpoint covers the running
//! executions (their heads so far). A leaf is
//! `BLAKE3(0x00 || exec key || events || head)`, a node
//! `BLAKE3(0x01 || left || right)`, the tree shaped as in RFC 6962 (the
//! left subtree holds the largest power of two below the leaf count), so
//! one execution's inclusion is proved by a path of log2(n) hashes. The
//! signature covers `weft checkpoint v1 || seq || at || kind || leaves ||
//! root`.

use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use weft_core::{ChainHash, ExecKey, Timestamp};

/// What a checkpoint covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// Final heads of executions that closed since the previous one.
    Closed,
    /// Heads of running executions, so far.
    Open,
}

impl Kind {
    /// `closed` or `open`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Closed => "closed",
            Kind::Open => "open",
        }
    }
}

/// One execution's place in a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leaf {
    /// The execution's key.
    pub key: ExecKey,
    /// Events its head covers.
    pub events: u64,
    /// Its chain after those events.
    pub head: ChainHash,
}

impl Leaf {
    /// The leaf's hash.
    pub fn hash(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(&[0]);
        h.update(&self.key.to_le_bytes());
        h.update(&self.events.to_le_bytes());
        h.update(&self.head.0);
        *h.finalize().as_bytes()
    }
}

fn node(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&[1]);
    h.update(left);
    h.update(right);
    *h.finalize().as_bytes()
}

/// The largest power of two below `n` (n > 1).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// The Merkle root over `leaves` (hashes), all zero for none.
pub fn root(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves.len() {
        0 => [0; 32],
        1 => leaves[0],
        n => {
            let k = split(n);
            node(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The path that proves leaf `index` is in the tree over `leaves`, from
/// the leaf's sibling up.
pub fn proof(leaves: &[[u8; 32]], index: usize) -> Vec<[u8; 32]> {
    let n = leaves.len();
    if n <= 1 || index >= n {
        return Vec::new();
    }
    let k = split(n);
    let (mut path, sibling) = if index < k {
        (proof(&leaves[..k], index), root(&leaves[k..]))
    } else {
        (proof(&leaves[k..], index - k), root(&leaves[..k]))
    };
    path.push(sibling);
    path
}

/// The root a proof gives for `leaf` at `index` of `count`, `None` if the
/// path does not fit those numbers.
pub fn root_from_proof(
    leaf: [u8; 32],
    index: usize,
    count: usize,
    path: &[[u8; 32]],
) -> Option<[u8; 32]> {
    if index >= count {
        return None;
    }
    if count == 1 {
        return path.is_empty().then_some(leaf);
    }
    let (sibling, rest) = path.split_last()?;
    let k = split(count);
    if index < k {
        Some(node(&root_from_proof(leaf, index, k, rest)?, sibling))
    } else {
        Some(node(
            sibling,
            &root_from_proof(leaf, index - k, count - k, rest)?,
        ))
    }
}

/// A signed checkpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Its number (closed and open checkpoints count separately).
    pub seq: u64,
    /// When it was made.
    pub at: Timestamp,
    /// What it covers.
    pub kind: Kind,
    /// The executions it covers, in leaf order, with what each leaf says.
    pub leaves: Vec<Leaf>,
    /// The Merkle root over the leaves.
    pub root: [u8; 32],
    /// The Ed25519 signature of [`message`].
    pub signature: Vec<u8>,
    /// The public key it was signed with (informational: a verifier
    /// checks against the key it was given, `weft audit pubkey`).
    pub public_key: [u8; 32],
}

impl Checkpoint {
    /// Where execution `key` is in this checkpoint: its leaf index, the
    /// leaf, and the path that proves it under the root; `None` if the
    /// checkpoint does not cover it.
    pub fn inclusion(&self, key: ExecKey) -> Option<(usize, Leaf, Vec<[u8; 32]>)> {
        let index = self.leaves.iter().position(|l| l.key == key)?;
        let hashes: Vec<[u8; 32]> = self.leaves.iter().map(Leaf::hash).collect();
        Some((index, self.leaves[index], proof(&hashes, index)))
    }
}

/// What a checkpoint's signature covers.
pub fn message(seq: u64, at: Timestamp, kind: Kind, leaves: u64, root: &[u8; 32]) -> Vec<u8> {
    let mut m = b"weft checkpoint v1".to_vec();
    m.extend(seq.to_le_bytes());
    m.extend(at.0.to_le_bytes());
    m.push(match kind {
        Kind::Closed => 0,
        Kind::Open => 1,
    });
    m.extend(leaves.to_le_bytes());
    m.extend(root);
    m
}

/// Whether `signature` over `message` verifies under `public_key`.
pub fn signature_holds(public_key: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
    let (Ok(key), Ok(signature)) = (
        VerifyingKey::from_bytes(public_key),
        Signature::from_slice(signature),
    ) else {
        return false;
    };
    key.verify(message, &signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<[u8; 32]> {
        (0..n)
            .map(|i| {
                Leaf {
                    key: i as u64,
                    events: 3,
                    head: ChainHash::ZERO.next(&[i as u8]),
                }
                .hash()
            })
            .collect()
    }

    #[test]
    fn every_leaf_of_every_size_proves_and_a_wrong_one_does_not() {
        for n in 1..=17 {
            let l = leaves(n);
            let r = root(&l);
            for i in 0..n {
                let p = proof(&l, i);
                assert!(p.len() <= 5);
                assert_eq!(root_from_proof(l[i], i, n, &p), Some(r), "n={n} i={i}");
                let other = l[(i + 1) % n];
                if n > 1 {
                    assert_ne!(root_from_proof(other, i, n, &p), Some(r));
                }
                // (The count is not bound by the path: the signed message
                // carries it, and verifiers take it from there.)
            }
        }
        assert_ne!(root(&leaves(3)), root(&leaves(4)));
    }

    #[test]
    fn signatures_verify_and_forgeries_do_not() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let public = key.verifying_key().to_bytes();
        let m = message(1, Timestamp(5), Kind::Closed, 3, &[7; 32]);
        let sig = ed25519_dalek::Signer::sign(&key, &m).to_bytes();
        assert!(signature_holds(&public, &m, &sig));
        let other = message(1, Timestamp(5), Kind::Closed, 3, &[8; 32]);
        assert!(!signature_holds(&public, &other, &sig));
        let mut forged = sig;
        forged[0] ^= 1;
        assert!(!signature_holds(&public, &m, &forged));
        let stranger = ed25519_dalek::SigningKey::from_bytes(&[1; 32])
            .verifying_key()
            .to_bytes();
        assert!(!signature_holds(&stranger, &m, &sig));
        assert!(!signature_holds(&public, &m, &sig[..10]));
    }
}
