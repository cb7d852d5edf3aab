//! A history as stored, with its chain and the proof of its inclusion in
//! a signed checkpoint, as the API sends it (`GetAuditedHistory`).

use crate::pb;
use weft_core::{ChainHash, DataKey};
use weft_store::AuditedHistory;

/// The wire form of `audited` (the API's answer; `weft audit verify
/// --offline` builds the same from the database).
pub fn audited_history(audited: AuditedHistory) -> pb::AuditedHistory {
    let AuditedHistory {
        record,
        stored,
        checkpoint,
    } = audited;
    let protection = record.protection.as_ref();
    let data_key = match protection.map(|p| &p.key) {
        None | Some(DataKey::Plaintext) => "plaintext".to_owned(),
        Some(DataKey::Wrapped { kek, .. }) => format!("wrapped:{kek}"),
        Some(DataKey::Erased { .. }) => "erased".to_owned(),
    };
    let proof = checkpoint.and_then(|c| {
        let (index, leaf, path) = c.inclusion(record.key)?;
        Some(pb::CheckpointProof {
            seq: c.seq,
            at_ms: c.at.0,
            kind: c.kind.name().to_owned(),
            leaf_index: index as u64,
            leaf_count: c.leaves.len() as u64,
            leaf_events: leaf.events,
            leaf_head: leaf.head.0.to_vec(),
            root: c.root.to_vec(),
            path: path.into_iter().map(|h| h.to_vec()).collect(),
            signature: c.signature,
            public_key: c.public_key.to_vec(),
        })
    });
    pb::AuditedHistory {
        workflow_id: record.id.workflow_id.clone(),
        run_id: record.id.run_id.clone(),
        exec_key: record.key,
        chained: protection.is_some(),
        origin: protection
            .map_or(ChainHash::ZERO, |p| p.origin())
            .0
            .to_vec(),
        head: protection.map_or(ChainHash::ZERO, |p| p.head).0.to_vec(),
        stored,
        status: format!("{:?}", record.status),
        data_key,
        checkpoint: proof,
    }
}
