//! The encodings of stored values: versioned rows, and plain postcard.

use crate::StoreError;

/// Layout version of the rows written by [`encode_row`]: the postcard
/// layout of today's records. A record whose shape changes gets a new
/// version, and its decoder keeps reading the old one.
pub(crate) const ROW_VERSION: u8 = 1;

/// A row of the executions, inbox, activity task, namespace, API key and
/// audit tables: a layout version byte, then postcard. [`decode_row`]
/// refuses a version it does not know rather than misread it.
pub(crate) fn encode_row<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    let out = vec![ROW_VERSION];
    postcard::to_extend(value, out).map_err(|e| StoreError::Storage(format!("encoding a row: {e}")))
}

/// Decode a row written by [`encode_row`].
pub(crate) fn decode_row<T: serde::de::DeserializeOwned>(
    table: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&ROW_VERSION, body)) => decode(table, body),
        Some((v, _)) => Err(StoreError::Corrupt {
            table,
            reason: format!("row layout version {v} is not one this build reads ({ROW_VERSION})"),
        }),
        None => Err(StoreError::Corrupt {
            table,
            reason: "empty row".into(),
        }),
    }
}

/// Encode as plain postcard.
pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(value).map_err(|e| StoreError::Storage(format!("encoding: {e}")))
}

/// Decode plain postcard (a sealed history's list, a row's body).
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    table: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        table,
        reason: e.to_string(),
    })
}
