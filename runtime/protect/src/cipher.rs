//! Per-execution data keys and the cipher that seals an execution's
//! secret fields.

use crate::{KeyProvider, ProtectError};
use aes_gcm_siv::Aes256GcmSiv;
use aes_gcm_siv::aead::{Aead, Payload};
use std::sync::{Arc, RwLock};
use weft_core::{DataKey, HasSecrets, Secret};
use zeroize::Zeroizing;

/// What a payload of an erased execution reads as: a JSON string, so
/// every viewer shows it as what it is.
pub const ERASED: &[u8] = b"\"<erased>\"";

/// What a store holds to protect what it writes: the key provider, or
/// nothing when encryption is off (the chain is kept either way). Clones
/// share it, and [`Protector::replace`] swaps the keys for all of them (a
/// reloaded keyring).
#[derive(Clone)]
pub struct Protector {
    keys: Arc<RwLock<Keys>>,
}

struct Keys {
    provider: Option<Arc<dyn KeyProvider>>,
    /// The signer's public key, computed once (every close asks).
    signing: Option<[u8; 32]>,
}

impl std::fmt::Debug for Protector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Protector")
            .field("current", &self.current_key())
            .finish()
    }
}

impl Protector {
    /// Encrypt new executions with data keys wrapped by `provider`'s
    /// current key.
    pub fn new(provider: Arc<dyn KeyProvider>) -> Self {
        Protector {
            keys: Arc::new(RwLock::new(Keys {
                signing: provider.signing_public_key(),
                provider: Some(provider),
            })),
        }
    }

    /// Use `provider` from now on, in every clone (a reloaded keyring:
    /// new data keys are wrapped with its current key; data wrapped by
    /// keys it still holds stays readable).
    pub fn replace(&self, provider: Arc<dyn KeyProvider>) {
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        keys.signing = provider.signing_public_key();
        keys.provider = Some(provider);
    }

    fn provider(&self) -> Option<Arc<dyn KeyProvider>> {
        // The keys stay valid if a holder panicked.
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        keys.provider.clone()
    }

    /// Encryption with a fresh in-memory keyring (tests and benchmarks:
    /// clones share the ring, so a reopened store reads what it wrote).
    pub fn ephemeral() -> Result<Self, ProtectError> {
        Ok(Protector::new(Arc::new(crate::Keyring::generate(
            "ephemeral",
        )?)))
    }

    /// Encryption with the development keyring of data directory `dir`
    /// (`keyring.toml`, created on first use: then the path is returned,
    /// for the caller to say so).
    pub fn for_data_dir(
        dir: &std::path::Path,
    ) -> Result<(Self, Option<std::path::PathBuf>), ProtectError> {
        let path = dir.join(crate::keyring::DEV_KEYRING);
        let (ring, created) = crate::Keyring::load_or_create(&path, "dev-1")?;
        Ok((Protector::new(Arc::new(ring)), created.then_some(path)))
    }

    /// Encryption off: new executions are stored in plaintext (chained
    /// still). Existing encrypted ones cannot be read.
    pub fn off() -> Self {
        Protector {
            keys: Arc::new(RwLock::new(Keys {
                provider: None,
                signing: None,
            })),
        }
    }

    /// The checkpoint signer's public key, `None` if nothing signs.
    pub fn signing_public_key(&self) -> Option<[u8; 32]> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).signing
    }

    /// Sign a checkpoint's message (`checkpoint::message`).
    pub fn sign(&self, message: &[u8]) -> Option<[u8; 64]> {
        self.provider()?.sign(message)
    }

    /// The id of the key new data keys are wrapped with, `None` when
    /// encryption is off.
    pub fn current_key(&self) -> Option<String> {
        self.provider().map(|p| p.current().to_owned())
    }

    /// A new execution's data key: fresh, wrapped by the current key.
    pub fn new_data_key(&self) -> Result<DataKey, ProtectError> {
        Ok(self.new_run()?.0)
    }

    /// A new execution's data key, and its cipher (without unwrapping what
    /// was just wrapped).
    pub fn new_run(&self) -> Result<(DataKey, RunCipher), ProtectError> {
        let Some(provider) = self.provider() else {
            return Ok((DataKey::Plaintext, RunCipher::Plain));
        };
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut())?;
        let kek = provider.current().to_owned();
        let wrapped = provider.wrap(&kek, &key)?;
        let cipher = RunCipher::Sealed(Box::new(crate::keyring::aes(&key)));
        Ok((DataKey::Wrapped { kek, wrapped }, cipher))
    }

    /// The cipher of an execution whose data key is `key`.
    pub fn cipher(&self, key: &DataKey) -> Result<RunCipher, ProtectError> {
        match key {
            DataKey::Plaintext => Ok(RunCipher::Plain),
            DataKey::Erased { .. } => Ok(RunCipher::Erased),
            DataKey::Wrapped { kek, wrapped } => {
                let provider = self
                    .provider()
                    .ok_or_else(|| ProtectError::MissingKey { kek: kek.clone() })?;
                let key = provider.unwrap(kek, wrapped)?;
                Ok(RunCipher::Sealed(Box::new(crate::keyring::aes(&key))))
            }
        }
    }

    /// `key` wrapped by the current key instead, if it is wrapped by
    /// another: what a re-wrap stores. The data key itself, and so every
    /// ciphertext and chain hash, stays the same.
    pub fn rewrap(&self, key: &DataKey) -> Result<Option<DataKey>, ProtectError> {
        let (Some(provider), DataKey::Wrapped { kek, wrapped }) = (self.provider(), key) else {
            return Ok(None);
        };
        let current = provider.current();
        if kek == current {
            return Ok(None);
        }
        let plain = provider.unwrap(kek, wrapped)?;
        Ok(Some(DataKey::Wrapped {
            kek: current.to_owned(),
            wrapped: provider.wrap(current, &plain)?,
        }))
    }
}

/// Where a sealed value sits, which picks its nonce.
#[derive(Debug, Clone, Copy)]
pub enum Place {
    /// History event `index`: the nonce is derived from the position, so
    /// nothing is stored for it (AES-GCM-SIV keeps a repeated nonce safe).
    Event(u64),
    /// A row that is rewritten (inbox, task, record): a random nonce,
    /// stored in front of the ciphertext.
    Row,
}

impl Place {
    fn describe(self) -> String {
        match self {
            Place::Event(i) => format!("event {i}"),
            Place::Row => "a row".to_owned(),
        }
    }
}

const NONCE_LEN: usize = 12;

/// An execution's cipher, opened from its data key.
pub enum RunCipher {
    /// Stored in plaintext.
    Plain,
    /// AES-256-GCM-SIV under the execution's data key.
    Sealed(Box<Aes256GcmSiv>),
    /// Erased: nothing can be sealed, and secrets open as [`ERASED`].
    Erased,
}

impl RunCipher {
    /// Take `value`'s secret fields out and seal them, leaving the fields
    /// empty. `None`: nothing to seal (no secrets, or plaintext, in which
    /// case the fields stay).
    pub fn seal<T: HasSecrets>(
        &self,
        value: &mut T,
        place: Place,
    ) -> Result<Option<Vec<u8>>, ProtectError> {
        let cipher = match self {
            RunCipher::Plain => return Ok(None),
            RunCipher::Erased => return Err(ProtectError::Erased),
            RunCipher::Sealed(c) => c,
        };
        let secrets = value.take_secrets();
        if secrets.is_empty() {
            return Ok(None);
        }
        let plain = Zeroizing::new(
            postcard::to_allocvec(&secrets)
                .map_err(|e| ProtectError::Corrupt(format!("encoding secrets: {e}")))?,
        );
        let (nonce, mut out) = match place {
            Place::Event(index) => (event_nonce(index), Vec::new()),
            Place::Row => {
                let mut nonce = [0u8; NONCE_LEN];
                getrandom::fill(&mut nonce)?;
                (nonce, nonce.to_vec())
            }
        };
        let sealed = cipher
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: &plain,
                    aad: &ad(place),
                },
            )
            .map_err(|_| ProtectError::Corrupt("sealing failed".into()))?;
        out.extend(sealed);
        Ok(Some(out))
    }

    /// Put the secrets `sealed` holds back into `value` (whose fields
    /// [`RunCipher::seal`] emptied). An erased execution's secrets read as
    /// [`ERASED`].
    pub fn open<T: HasSecrets>(
        &self,
        value: &mut T,
        sealed: &[u8],
        place: Place,
    ) -> Result<(), ProtectError> {
        let cipher = match self {
            RunCipher::Sealed(c) => c,
            RunCipher::Erased => {
                value.visit_secrets(&mut |s| match s {
                    Secret::Bytes(b) => *b = ERASED.to_vec(),
                    Secret::Text(t) => *t = "<erased>".to_owned(),
                });
                return Ok(());
            }
            RunCipher::Plain => {
                return Err(ProtectError::Corrupt(format!(
                    "{} is sealed, but its execution has no data key",
                    place.describe()
                )));
            }
        };
        let tampered = || ProtectError::Tampered {
            at: place.describe(),
        };
        let (nonce, body) = match place {
            Place::Event(index) => (event_nonce(index), sealed),
            Place::Row => {
                let (nonce, body) = sealed
                    .split_first_chunk::<NONCE_LEN>()
                    .ok_or_else(tampered)?;
                (*nonce, body)
            }
        };
        let plain = Zeroizing::new(
            cipher
                .decrypt(
                    &nonce.into(),
                    Payload {
                        msg: body,
                        aad: &ad(place),
                    },
                )
                .map_err(|_| tampered())?,
        );
        let secrets: Vec<Vec<u8>> = postcard::from_bytes(&plain).map_err(|_| tampered())?;
        value
            .put_secrets(secrets)
            .map_err(|e| ProtectError::Corrupt(format!("{}: {e}", place.describe())))
    }
}

fn event_nonce(index: u64) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[0] = 1;
    nonce[1..9].copy_from_slice(&index.to_le_bytes());
    nonce
}

/// Associated data: what kind of place a ciphertext belongs to, so one
/// sealed for a row never opens as an event or the other way round.
fn ad(place: Place) -> [u8; 9] {
    let mut ad = [0u8; 9];
    match place {
        Place::Event(index) => {
            ad[0] = 1;
            ad[1..].copy_from_slice(&index.to_le_bytes());
        }
        Place::Row => ad[0] = 2,
    }
    ad
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Keyring;
    use weft_core::{Event, EventKind, Failure, Timestamp};

    fn event() -> Event {
        Event::new(
            Timestamp(5),
            EventKind::ActivityFailed {
                seq: 1,
                attempt: 2,
                failure: Failure::new("Declined", "card of Ada Lovelace declined"),
                retry_at: None,
            },
        )
    }

    #[test]
    fn seal_open_and_what_breaks_it() {
        let protector = Protector::new(Arc::new(Keyring::generate("k1").unwrap()));
        let key = protector.new_data_key().unwrap();
        let cipher = protector.cipher(&key).unwrap();
        for place in [Place::Event(4), Place::Row] {
            let mut e = event();
            let sealed = cipher.seal(&mut e, place).unwrap().unwrap();
            assert_ne!(e, event());
            assert!(!sealed.windows(3).any(|w| w == b"Ada"));
            let mut back = e.clone();
            cipher.open(&mut back, &sealed, place).unwrap();
            assert_eq!(back, event());
            let mut flipped = sealed.clone();
            *flipped.last_mut().unwrap() ^= 1;
            assert!(matches!(
                cipher.open(&mut e.clone(), &flipped, place),
                Err(ProtectError::Tampered { .. })
            ));
        }
        // Moved to another position, or under another execution's key.
        let mut e = event();
        let sealed = cipher.seal(&mut e, Place::Event(4)).unwrap().unwrap();
        assert!(
            cipher
                .open(&mut e.clone(), &sealed, Place::Event(5))
                .is_err()
        );
        let other = protector
            .cipher(&protector.new_data_key().unwrap())
            .unwrap();
        assert!(
            other
                .open(&mut e.clone(), &sealed, Place::Event(4))
                .is_err()
        );
        // Erased: reads as erased, never as garbage.
        RunCipher::Erased
            .open(&mut e, &sealed, Place::Event(4))
            .unwrap();
        let EventKind::ActivityFailed { failure, .. } = &e.kind else {
            unreachable!()
        };
        assert_eq!(failure.message, "<erased>");
    }

    #[test]
    fn plaintext_and_rewrap() {
        let off = Protector::off();
        assert_eq!(off.new_data_key().unwrap(), DataKey::Plaintext);
        let mut e = event();
        assert!(
            RunCipher::Plain
                .seal(&mut e, Place::Event(0))
                .unwrap()
                .is_none()
        );
        assert_eq!(e, event(), "plaintext keeps the fields");

        let mut ring = Keyring::generate("k1").unwrap();
        let old = Protector::new(Arc::new(Keyring::from_toml(&ring.to_toml()).unwrap()))
            .new_data_key()
            .unwrap();
        ring.rotate("k2").unwrap();
        let protector = Protector::new(Arc::new(ring));
        let new = protector.rewrap(&old).unwrap().expect("moved to k2");
        let DataKey::Wrapped { kek, .. } = &new else {
            unreachable!()
        };
        assert_eq!(kek, "k2");
        assert!(protector.rewrap(&new).unwrap().is_none());
        let (a, b) = (
            protector.cipher(&old).unwrap(),
            protector.cipher(&new).unwrap(),
        );
        let mut e = event();
        let sealed = a.seal(&mut e, Place::Event(1)).unwrap().unwrap();
        b.open(&mut e, &sealed, Place::Event(1)).unwrap();
        assert_eq!(e, event(), "the same data key under the new wrap");
    }
}
