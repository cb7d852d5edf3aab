use crate::Event;

/// Version of the stored event encoding. Each stored event starts with it,
/// so a newer runtime can still read every history an older one wrote.
///
/// - 3: an event is (time, kind, caller).
/// - 2: an event is (time, kind); read as having no caller.
pub const FORMAT_VERSION: u8 = 3;

/// The previous version, still read.
const FORMAT_VERSION_2: u8 = 2;

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
    /// The event could not be encoded (never silently written empty).
    #[error("cannot encode an event: {0}")]
    Encode(postcard::Error),
}

/// Encode an event for storage: version byte, then postcard.
pub fn encode_event(event: &Event) -> Result<Vec<u8>, CodecError> {
    postcard::to_extend(event, vec![FORMAT_VERSION]).map_err(CodecError::Encode)
}

/// The length of [`encode_event`]'s output, without encoding: what an
/// event adds to a history's size.
pub fn encoded_len(event: &Event) -> u64 {
    let body = postcard::serialize_with_flavor(event, postcard::ser_flavors::Size::default());
    // Counting the bytes of plain data cannot fail.
    1 + body.map_or(0, |n: usize| n as u64)
}

/// [`encoded_len`] of the event `(at, kind)` with no caller, without
/// building it (postcard writes a struct as its fields in order, as it
/// writes a tuple).
pub(crate) fn encoded_parts_len(at: crate::Timestamp, kind: &crate::EventKind) -> u64 {
    let no_caller: Option<crate::Caller> = None;
    let body = postcard::serialize_with_flavor(
        &(at, kind, no_caller),
        postcard::ser_flavors::Size::default(),
    );
    // Counting the bytes of plain data cannot fail.
    1 + body.map_or(0, |n: usize| n as u64)
}

/// Decode an event written by [`encode_event`].
pub fn decode_event(bytes: &[u8]) -> Result<Event, CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        Some((&FORMAT_VERSION, body)) => Ok(postcard::from_bytes(body)?),
        Some((&FORMAT_VERSION_2, body)) => {
            let (at, kind) = postcard::from_bytes(body)?;
            Ok(Event::new(at, kind))
        }
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
        let bytes = encode_event(&e).unwrap();
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

    #[test]
    fn reads_version_2_events_as_having_no_caller() {
        let kind = EventKind::CancelRequested {
            reason: "customer asked".into(),
        };
        let mut v2 = vec![FORMAT_VERSION_2];
        v2.extend(postcard::to_allocvec(&(Timestamp(7), &kind)).unwrap());
        assert_eq!(
            decode_event(&v2).unwrap(),
            Event::new(Timestamp(7), kind.clone())
        );

        let by = Event::new(Timestamp(7), kind).by(Some(crate::Caller::new("key:ab12 (ops)")));
        let bytes = encode_event(&by).unwrap();
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode_event(&bytes).unwrap(), by);
        assert_eq!(encoded_len(&by), bytes.len() as u64);
    }
}
