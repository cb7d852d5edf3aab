use crate::Event;

/// Version of the stored event encoding. Each stored event starts with it,
/// so a newer runtime can still read every history an older one wrote.
pub const FORMAT_VERSION: u8 = 2;

/// A stored event could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// Written by an unknown (newer) format.
    #[error(
        "event format version {0} is not supported (this build reads version {FORMAT_VERSION})"
    )]
    UnsupportedVersion(u8),
    /// Empty record.
    #[error("empty event record")]
    Empty,
    /// The bytes are not a valid event.
    #[error("corrupt event record: {0}")]
    Corrupt(#[from] postcard::Error),
}

/// Encode an event for storage: version byte, then postcard.
pub fn encode_event(event: &Event) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    // Serializing plain data into a Vec cannot fail.
    out.extend(postcard::to_allocvec(event).unwrap_or_default());
    out
}

/// The length of [`encode_event`]'s output, without encoding: what an
/// event adds to a history's size.
pub fn encoded_len(event: &Event) -> u64 {
    encoded_parts_len(event.at, &event.kind)
}

/// [`encoded_len`] of the event `(at, kind)`, without building it (postcard
/// writes a struct as its fields in order, as it writes a tuple).
pub(crate) fn encoded_parts_len(at: crate::Timestamp, kind: &crate::EventKind) -> u64 {
    let body = postcard::serialize_with_flavor(&(at, kind), postcard::ser_flavors::Size::default());
    // Counting the bytes of plain data cannot fail.
    1 + body.map_or(0, |n: usize| n as u64)
}

/// Decode an event written by [`encode_event`].
pub fn decode_event(bytes: &[u8]) -> Result<Event, CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        Some((&FORMAT_VERSION, body)) => Ok(postcard::from_bytes(body)?),
        Some((&v, _)) => Err(CodecError::UnsupportedVersion(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventKind, Failure, Timestamp};

    #[test]
    fn round_trip_and_version_check() {
        let e = Event::new(
            Timestamp(42),
            EventKind::ActivityFailed {
                seq: 3,
                attempt: 1,
                failure: Failure::new("Busy", "x"),
                retry_at: Some(Timestamp(9)),
            },
        );
        let bytes = encode_event(&e);
        assert_eq!(decode_event(&bytes).unwrap(), e);
        assert_eq!(encoded_len(&e), bytes.len() as u64);
        let mut future = bytes.clone();
        future[0] = FORMAT_VERSION + 1;
        assert!(matches!(
            decode_event(&future),
            Err(CodecError::UnsupportedVersion(_))
        ));
        assert!(matches!(
            decode_event(&bytes[..bytes.len() / 2]),
            Err(CodecError::Corrupt(_))
        ));
        assert!(matches!(decode_event(&[]), Err(CodecError::Empty)));
    }
}
