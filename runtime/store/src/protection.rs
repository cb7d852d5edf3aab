//! What every backend applies to what it writes, so no payload reaches the
//! disk in plaintext and every history is chained: records with their
//! protection, history events in the stored format 4, and inbox and task
//! rows with their secret fields sealed. Backend-neutral: a backend only
//! moves these bytes.

use crate::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use weft_core::{Event, ExecutionRecord, HasSecrets, Protection};
use weft_protect::{Place, ProtectError, Protector, RunCipher, stored};

/// Row version of a record written before chains: the record alone.
const RECORD_V1: u8 = 1;
/// Row version of a record with its protection: the record (memo values
/// sealed), its [`Protection`], and the sealed memo values.
const RECORD_V2: u8 = 2;
/// Row version of an inbox or task row written before sealing: postcard
/// (the layout of `redb/rows.rs`).
const ROW_V1: u8 = 1;
/// Row version of an inbox or task row with its secret fields sealed:
/// the value with them emptied, then their ciphertext (if any).
const ROW_V2: u8 = 2;

impl From<ProtectError> for StoreError {
    fn from(e: ProtectError) -> Self {
        StoreError::Protection(e)
    }
}

fn corrupt(table: &'static str, reason: impl ToString) -> StoreError {
    StoreError::Corrupt {
        table,
        reason: reason.to_string(),
    }
}

/// The cipher of `record`'s execution: plaintext for one written before
/// chains.
pub(crate) fn cipher(
    protector: &Protector,
    record: &ExecutionRecord,
) -> Result<RunCipher, StoreError> {
    match &record.protection {
        None => Ok(RunCipher::Plain),
        Some(p) => Ok(protector.cipher(&p.key)?),
    }
}

/// Encode an execution record row.
pub(crate) fn encode_record(
    record: &ExecutionRecord,
    protector: &Protector,
) -> Result<Vec<u8>, StoreError> {
    let encode_err = |e: postcard::Error| StoreError::Storage(format!("encoding a record: {e}"));
    let Some(protection) = &record.protection else {
        return postcard::to_extend(record, vec![RECORD_V1]).map_err(encode_err);
    };
    let mut sealed = None;
    let mut skeleton;
    let mut value = record;
    // An erased record's memo was scrubbed with its key; nothing to seal.
    if !record.memo.is_empty() && !matches!(protection.key, weft_core::DataKey::Erased { .. }) {
        skeleton = record.clone();
        sealed = protector
            .cipher(&protection.key)?
            .seal(&mut skeleton, Place::Row)?;
        value = &skeleton;
    }
    let out = postcard::to_extend(value, vec![RECORD_V2]).map_err(encode_err)?;
    postcard::to_extend(&(protection, sealed), out).map_err(encode_err)
}

/// Decode an execution record row.
pub(crate) fn decode_record(
    bytes: &[u8],
    protector: &Protector,
) -> Result<ExecutionRecord, StoreError> {
    decode_record_with(bytes, protector, true)
}

/// Decode an execution record row for a listing: a memo that cannot be
/// opened (its key is missing) reads as that error instead of failing the
/// whole listing.
pub(crate) fn decode_listed(
    bytes: &[u8],
    protector: &Protector,
) -> Result<ExecutionRecord, StoreError> {
    decode_record_with(bytes, protector, false)
}

fn decode_record_with(
    bytes: &[u8],
    protector: &Protector,
    strict: bool,
) -> Result<ExecutionRecord, StoreError> {
    const TABLE: &str = "executions";
    match bytes.split_first() {
        Some((&RECORD_V1, body)) => postcard::from_bytes(body).map_err(|e| corrupt(TABLE, e)),
        Some((&RECORD_V2, body)) => {
            let (mut record, rest): (ExecutionRecord, _) =
                postcard::take_from_bytes(body).map_err(|e| corrupt(TABLE, e))?;
            let (protection, sealed): (Protection, Option<Vec<u8>>) =
                postcard::from_bytes(rest).map_err(|e| corrupt(TABLE, e))?;
            if let Some(sealed) = sealed {
                let opened = protector
                    .cipher(&protection.key)
                    .and_then(|c| c.open(&mut record, &sealed, Place::Row));
                match opened {
                    Ok(()) => {}
                    Err(e) if strict => return Err(e.into()),
                    Err(e) => {
                        let shown = format!("<unreadable: {e}>");
                        record.memo.values_mut().for_each(|v| v.clone_from(&shown));
                    }
                }
            }
            record.protection = Some(protection);
            Ok(record)
        }
        Some((v, _)) => Err(corrupt(
            TABLE,
            format!("row layout version {v} is not one this build reads"),
        )),
        None => Err(corrupt(TABLE, "empty row")),
    }
}

/// Encode `events`, appended to `record`'s history from `first_index`
/// (the record's `next_event` before them), and advance the record's chain
/// head over them. A run written before chains keeps format 3.
pub(crate) fn encode_events(
    record: &mut ExecutionRecord,
    first_index: u64,
    events: &[Event],
    cipher: &RunCipher,
) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut out = Vec::with_capacity(events.len());
    match &mut record.protection {
        None => {
            for event in events {
                out.push(weft_core::encode_event(event)?);
            }
        }
        Some(protection) => {
            for (i, event) in events.iter().enumerate() {
                let bytes =
                    stored::encode_event(event, first_index + i as u64, &protection.head, cipher)?;
                protection.head = protection.head.next(&bytes);
                out.push(bytes);
            }
        }
    }
    Ok(out)
}

/// Decode history event `index`.
pub(crate) fn decode_event(
    bytes: &[u8],
    index: u64,
    cipher: &RunCipher,
) -> Result<Event, StoreError> {
    stored::decode_event(bytes, index, cipher).map_err(|e| match e {
        ProtectError::Corrupt(reason) => corrupt("history", format!("event {index}: {reason}")),
        e => StoreError::Protection(e),
    })
}

/// An inbox or task row as stored: the value with its secret fields taken
/// out, and their ciphertext. Scheduling reads and rewrites the value
/// (a lease, a cancel flag) without a key and without re-sealing.
#[derive(Debug, Clone)]
pub(crate) struct SealedRow<T> {
    /// The value; its secret fields are empty if `sealed` is set.
    pub(crate) value: T,
    sealed: Option<Vec<u8>>,
}

impl<T: HasSecrets + Serialize + DeserializeOwned> SealedRow<T> {
    /// `value` with its secret fields sealed by `cipher`.
    pub(crate) fn seal(mut value: T, cipher: &RunCipher) -> Result<Self, StoreError> {
        let sealed = cipher.seal(&mut value, Place::Row)?;
        Ok(SealedRow { value, sealed })
    }

    /// The row's bytes.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, StoreError> {
        postcard::to_extend(&(&self.value, &self.sealed), vec![ROW_V2])
            .map_err(|e| StoreError::Storage(format!("encoding a row: {e}")))
    }

    /// Decode a row of `table`.
    pub(crate) fn decode(table: &'static str, bytes: &[u8]) -> Result<Self, StoreError> {
        match bytes.split_first() {
            Some((&ROW_V1, body)) => Ok(SealedRow {
                value: postcard::from_bytes(body).map_err(|e| corrupt(table, e))?,
                sealed: None,
            }),
            Some((&ROW_V2, body)) => {
                let (value, sealed) = postcard::from_bytes(body).map_err(|e| corrupt(table, e))?;
                Ok(SealedRow { value, sealed })
            }
            Some((v, _)) => Err(corrupt(
                table,
                format!("row layout version {v} is not one this build reads"),
            )),
            None => Err(corrupt(table, "empty row")),
        }
    }

    /// The row with `f` applied to its value (whose secret fields `f`
    /// must leave as they are: they stay sealed).
    pub(crate) fn map(self, f: impl FnOnce(T) -> T) -> Self {
        SealedRow {
            value: f(self.value),
            sealed: self.sealed,
        }
    }

    /// The value with its secret fields opened by `cipher`.
    pub(crate) fn open(self, cipher: &RunCipher) -> Result<T, StoreError> {
        let SealedRow { mut value, sealed } = self;
        if let Some(sealed) = sealed {
            cipher.open(&mut value, &sealed, Place::Row)?;
        }
        Ok(value)
    }
}
