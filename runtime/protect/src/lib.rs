//! Data protection for weft: what keeps a payload secret at rest and a
//! history honest.
//!
//! - [`Keyring`] holds the key-encryption keys (KEKs), named by id, one of
//!   them current, and the checkpoint signing key; [`KeyProvider`] is the
//!   seam where a KMS plugs in instead.
//! - [`Protector`] is what a store holds: it makes each new execution's
//!   data key (wrapped by the current KEK) and opens the [`RunCipher`] of
//!   an existing one, naming the key id when it cannot.
//! - [`stored`] is the stored event format (version 4): an event's secret
//!   fields sealed with its run's data key under a nonce derived from its
//!   position, and a link to the previous chain value.
//! - [`verify`] checks a run's chain and names the first broken link.
//!
//! Nothing here does IO except reading and writing a keyring file.
//!
//! ```
//! use weft_protect::{Keyring, Protector, stored};
//! use weft_core::{ChainHash, Event, EventKind, Timestamp};
//!
//! let protector = Protector::new(std::sync::Arc::new(Keyring::generate("k1").unwrap()));
//! let key = protector.new_data_key().unwrap();
//! let cipher = protector.cipher(&key).unwrap();
//! let event = Event::new(Timestamp(1), EventKind::ExecutionCompleted { result: b"\"Ada\"".to_vec() });
//! let bytes = stored::encode_event(&event, 3, &ChainHash::ZERO, &cipher).unwrap();
//! assert!(!bytes.windows(3).any(|w| w == b"Ada"));
//! assert_eq!(stored::decode_event(&bytes, 3, &cipher).unwrap(), event);
//! ```

pub mod checkpoint;
mod cipher;
mod error;
pub mod export;
mod keyring;
pub mod stored;
pub mod verify;

pub use cipher::{ERASED, Place, Protector, RunCipher};
pub use error::ProtectError;
pub use keyring::{DEV_KEYRING, KeyProvider, Keyring};
