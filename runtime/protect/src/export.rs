//! A history exported for an auditor (`weft workflow show --output json`,
//! `weft audit verify --history <file>`): its events as stored, its
//! chain, and the proof that a signed checkpoint covers it. Verifiable
//! with nothing but the signer's public key.

use crate::checkpoint::{self, Kind, Leaf};
use crate::verify::{Broken, chain};
use serde::{Deserialize, Serialize};
use weft_core::{ChainHash, ExecKey, Timestamp, hex, unhex};

/// An exported history's chain part (bytes as lower-case hex).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedChain {
    /// The workflow id.
    pub workflow_id: String,
    /// The run id.
    pub run_id: String,
    /// The execution's key (part of its checkpoint leaf).
    pub exec_key: ExecKey,
    /// False for a run written before chains.
    pub chained: bool,
    /// Where its chain starts.
    pub origin: String,
    /// Its head, as its record holds it.
    pub head: String,
    /// Each event as stored.
    pub stored: Vec<String>,
    /// Its status when exported.
    pub status: String,
    /// `wrapped:<key id>`, `plaintext` or `erased`.
    pub data_key: String,
    /// The checkpoint that covers it, if one does yet.
    pub checkpoint: Option<ExportedCheckpoint>,
}

/// The checkpoint covering an exported history, with its inclusion proof.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedCheckpoint {
    /// Its number.
    pub seq: u64,
    /// When it was signed, ms since the epoch.
    pub at_ms: u64,
    /// `closed` or `open`.
    pub kind: String,
    /// The execution's leaf: its index, the leaf count, the events its
    /// head covers, and that head.
    pub leaf_index: u64,
    /// Leaves in the checkpoint.
    pub leaf_count: u64,
    /// Events the leaf's head covers.
    pub leaf_events: u64,
    /// The head the checkpoint signed.
    pub leaf_head: String,
    /// The signed Merkle root.
    pub root: String,
    /// Sibling hashes from the leaf up.
    pub path: Vec<String>,
    /// The Ed25519 signature.
    pub signature: String,
    /// The key the server says signed it (check it against the one the
    /// operator published).
    pub public_key: String,
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Events whose chain holds.
    pub events: u64,
    /// The checkpoint that signs (a prefix of) it: seq, kind, events it
    /// covers. `None`: no checkpoint covers it yet (the chain holds
    /// against the record only).
    pub checkpoint: Option<(u64, &'static str, u64)>,
    /// True if the signature was checked against a key the verifier was
    /// given, false if only against the one in the export.
    pub pinned: bool,
}

fn bytes32(what: &str, s: &str) -> Result<[u8; 32], Broken> {
    unhex(s)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Broken::Malformed(format!("{what} is not 32 bytes of hex")))
}

/// Verify `exported`: its chain over every stored event against its head,
/// the checkpoint's head against the chain, the leaf's inclusion in the
/// signed root, and the signature, by `trusted` if given (else by the key
/// in the export, which only shows the export is self-consistent).
pub fn verify(exported: &ExportedChain, trusted: Option<&[u8; 32]>) -> Result<Verified, Broken> {
    if !exported.chained {
        return Err(Broken::Unchained);
    }
    let stored: Vec<Vec<u8>> = exported
        .stored
        .iter()
        .enumerate()
        .map(|(i, s)| unhex(s).ok_or_else(|| Broken::Malformed(format!("event {i} is not hex"))))
        .collect::<Result<_, _>>()?;
    let origin = ChainHash(bytes32("origin", &exported.origin)?);
    let head = ChainHash(bytes32("head", &exported.head)?);
    let (found, events) = chain(origin, stored.iter().map(Vec::as_slice))?;
    if found != head {
        return Err(Broken::Head {
            events,
            expected: head.to_hex(),
            found: found.to_hex(),
            against: "the execution record".into(),
        });
    }
    let Some(c) = &exported.checkpoint else {
        return Ok(Verified {
            events,
            checkpoint: None,
            pinned: false,
        });
    };
    let kind = match c.kind.as_str() {
        "closed" => Kind::Closed,
        "open" => Kind::Open,
        other => return Err(Broken::Malformed(format!("checkpoint kind `{other}`"))),
    };
    let against = format!("checkpoint {} ({})", c.seq, kind.name());
    let signed_head = ChainHash(bytes32("leaf_head", &c.leaf_head)?);
    let covered = usize::try_from(c.leaf_events).unwrap_or(usize::MAX);
    if covered > stored.len() {
        return Err(Broken::Head {
            events,
            expected: signed_head.to_hex(),
            found: format!("only {events} events"),
            against,
        });
    }
    let (prefix, _) = chain(origin, stored[..covered].iter().map(Vec::as_slice))?;
    if prefix != signed_head || (kind == Kind::Closed && covered != stored.len()) {
        return Err(Broken::Head {
            events: covered as u64,
            expected: signed_head.to_hex(),
            found: prefix.to_hex(),
            against,
        });
    }
    let leaf = Leaf {
        key: exported.exec_key,
        events: c.leaf_events,
        head: signed_head,
    };
    let path: Vec<[u8; 32]> = c
        .path
        .iter()
        .map(|h| bytes32("a proof hash", h))
        .collect::<Result<_, _>>()?;
    let root = bytes32("root", &c.root)?;
    let proved = checkpoint::root_from_proof(
        leaf.hash(),
        usize::try_from(c.leaf_index).unwrap_or(usize::MAX),
        usize::try_from(c.leaf_count).unwrap_or(0),
        &path,
    );
    if proved != Some(root) {
        return Err(Broken::Proof { seq: c.seq });
    }
    let embedded = bytes32("public_key", &c.public_key)?;
    let key = trusted.unwrap_or(&embedded);
    let signature = unhex(&c.signature).unwrap_or_default();
    let message = checkpoint::message(c.seq, Timestamp(c.at_ms), kind, c.leaf_count, &root);
    if !checkpoint::signature_holds(key, &message, &signature) {
        return Err(Broken::Signature {
            seq: c.seq,
            key: hex(key),
        });
    }
    Ok(Verified {
        events,
        checkpoint: Some((c.seq, kind.name(), c.leaf_events)),
        pinned: trusted.is_some(),
    })
}
