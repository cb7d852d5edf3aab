//! Histories as stored: the rows of an open run, and the one sealed
//! (compressed) row of a closed one.

use super::rows::{decode, encode};
use crate::StoreError;
use crate::model::ExecKey;
use crate::protection::decode_event;
use redb::ReadableTable;
use weft_core::Event;
use weft_protect::RunCipher;

/// Layout tag of a sealed history: the length of the postcard list of the
/// run's encoded events (each still carries its own format version), u32
/// little-endian, then that list as one zstd frame.
const SEALED_V1: u8 = 1;

thread_local! {
    // A zstd context allocates about a megabyte: one per thread that seals
    // or reads sealed histories, not one per history.
    static COMPRESSOR: std::cell::Cell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::Cell::new(None) };
    static DECOMPRESSOR: std::cell::Cell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::Cell::new(None) };
}

/// Seal a closed run's encoded events into one row.
pub(crate) fn seal(rows: &[Vec<u8>]) -> Result<Vec<u8>, StoreError> {
    let plain = encode(&rows)?;
    let len = u32::try_from(plain.len())
        .map_err(|_| StoreError::Storage("a history over 4 GiB cannot be sealed".into()))?;
    let frame = COMPRESSOR.with(|slot| {
        // Level 1: as small as level 3 on these histories (315 against 307
        // bytes a payment), and cheaper.
        let mut c = match slot.take() {
            Some(c) => c,
            None => zstd::bulk::Compressor::new(1)?,
        };
        let frame = c.compress(&plain);
        slot.set(Some(c));
        frame
    });
    let frame = frame.map_err(|e| StoreError::Storage(format!("sealing a history: {e}")))?;
    let mut out = Vec::with_capacity(5 + frame.len());
    out.push(SEALED_V1);
    out.extend(len.to_le_bytes());
    out.extend(frame);
    Ok(out)
}

/// The encoded events of a sealed history, in order.
pub(crate) fn unseal(bytes: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        table: "sealed_history",
        reason,
    };
    let Some((&SEALED_V1, rest)) = bytes.split_first() else {
        return Err(corrupt(format!("unknown layout {:?}", bytes.first())));
    };
    let (len, frame) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| corrupt("truncated row".into()))?;
    let len = u32::from_le_bytes(*len) as usize;
    let plain = DECOMPRESSOR.with(|slot| {
        let mut d = match slot.take() {
            Some(d) => d,
            None => zstd::bulk::Decompressor::new()?,
        };
        let plain = d.decompress(frame, len);
        slot.set(Some(d));
        plain
    });
    let plain = plain.map_err(|e| corrupt(e.to_string()))?;
    decode("sealed_history", &plain)
}

/// The encoded events of execution `key`, undecoded: its sealed part (if
/// it closed), then its rows. What sealing starts from.
pub(crate) fn encoded_history(
    sealed: &impl ReadableTable<u64, &'static [u8]>,
    rows: &impl ReadableTable<(u64, u64), &'static [u8]>,
    key: ExecKey,
) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut events = match sealed.get(key)? {
        Some(blob) => unseal(blob.value())?,
        None => Vec::new(),
    };
    for row in rows.range((key, 0)..=(key, u64::MAX))? {
        events.push(row?.1.value().to_vec());
    }
    Ok(events)
}

/// The history of execution `key`: its sealed part (if it closed), then
/// its rows.
pub(crate) fn read_history(
    sealed: &impl ReadableTable<u64, &'static [u8]>,
    rows: &impl ReadableTable<(u64, u64), &'static [u8]>,
    key: ExecKey,
    capacity: usize,
    cipher: &RunCipher,
) -> Result<Vec<Event>, StoreError> {
    let mut history = Vec::with_capacity(capacity);
    if let Some(blob) = sealed.get(key)? {
        for event in unseal(blob.value())? {
            let index = history.len() as u64;
            history.push(decode_event(&event, index, cipher)?);
        }
    }
    for row in rows.range((key, 0)..=(key, u64::MAX))? {
        let (k, v) = row?;
        history.push(decode_event(v.value(), k.value().1, cipher)?);
    }
    Ok(history)
}
