//! Keyrings: the key-encryption keys that wrap every execution's data key,
//! and the key that signs checkpoints.
//!
//! A keyring is a small TOML file (or the same text in an environment
//! variable):
//!
//! ```toml
//! current = "k2"
//! signing = "<64 hex digits: an Ed25519 secret key>"
//! [keys]
//! k1 = "<64 hex digits>"
//! k2 = "<64 hex digits>"
//! ```
//!
//! Rotation adds a key and makes it current: new data keys are wrapped
//! with it, and old ones stay readable while their key is in the ring.

use crate::ProtectError;
use aes_gcm_siv::Aes256GcmSiv;
use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use std::collections::BTreeMap;
use std::path::Path;
use weft_core::{hex, unhex};
use zeroize::Zeroizing;

/// What a store asks of the keys: wrap a new data key with the current
/// key-encryption key, and unwrap one by its key's id. A KMS implements
/// this to keep the key-encryption keys out of the process.
pub trait KeyProvider: Send + Sync {
    /// The id of the key new data keys are wrapped with.
    fn current(&self) -> &str;
    /// `key` sealed by the key-encryption key `kek`.
    fn wrap(&self, kek: &str, key: &[u8; 32]) -> Result<Vec<u8>, ProtectError>;
    /// The data key `wrapped` seals, by the key-encryption key `kek`.
    fn unwrap(&self, kek: &str, wrapped: &[u8]) -> Result<Zeroizing<[u8; 32]>, ProtectError>;
    /// The public key checkpoints are signed with; `None` if this provider
    /// does not sign.
    fn signing_public_key(&self) -> Option<[u8; 32]> {
        None
    }
    /// An Ed25519 signature of `message` (a checkpoint), if this provider
    /// signs.
    fn sign(&self, message: &[u8]) -> Option<[u8; 64]> {
        let _ = message;
        None
    }
}

/// The file name of a data directory's development keyring.
pub const DEV_KEYRING: &str = "keyring.toml";

/// What a wrapped data key is bound to (AEAD associated data).
const WRAP_AD: &[u8] = b"weft data key v1";
/// The nonce of every wrap: data keys are random and never repeat, and
/// AES-GCM-SIV reveals nothing but the equality of equal plaintexts under
/// a repeated nonce, so a fixed nonce is safe here (RFC 8452, section 9)
/// and saves storing 12 bytes per execution.
const WRAP_NONCE: [u8; 12] = [0; 12];

/// Key-encryption keys by id, the current one, and the signing key.
pub struct Keyring {
    current: String,
    keys: BTreeMap<String, (Zeroizing<[u8; 32]>, Aes256GcmSiv)>,
    signing: Option<Zeroizing<[u8; 32]>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key bytes.
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .field("signing", &self.signing.is_some())
            .finish()
    }
}

/// The AES-256-GCM-SIV cipher of a 256-bit key.
pub(crate) fn aes(key: &[u8; 32]) -> Aes256GcmSiv {
    Aes256GcmSiv::new(&(*key).into())
}

fn random_key() -> Result<Zeroizing<[u8; 32]>, ProtectError> {
    let mut key = Zeroizing::new([0u8; 32]);
    getrandom::fill(key.as_mut())?;
    Ok(key)
}

fn check_id(id: &str) -> Result<(), ProtectError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ProtectError::Keyring(format!(
            "key id `{id}` must be 1-64 letters, digits, `-`, `_` or `.`"
        )))
    }
}

fn parse_key(what: &str, value: &str) -> Result<Zeroizing<[u8; 32]>, ProtectError> {
    let bytes = Zeroizing::new(unhex(value.trim()).unwrap_or_default());
    let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
        ProtectError::Keyring(format!("{what} is not 64 hex digits (a 256-bit key)"))
    })?;
    Ok(Zeroizing::new(key))
}

impl Keyring {
    /// A new keyring with one fresh key `id` (current) and a fresh signing
    /// key.
    pub fn generate(id: &str) -> Result<Keyring, ProtectError> {
        check_id(id)?;
        let mut ring = Keyring {
            current: id.to_owned(),
            keys: BTreeMap::new(),
            signing: Some(random_key()?),
        };
        ring.insert(id, random_key()?);
        Ok(ring)
    }

    fn insert(&mut self, id: &str, key: Zeroizing<[u8; 32]>) {
        let cipher = aes(&key);
        self.keys.insert(id.to_owned(), (key, cipher));
    }

    /// Parse a keyring's TOML text.
    pub fn from_toml(text: &str) -> Result<Keyring, ProtectError> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            current: String,
            signing: Option<String>,
            keys: BTreeMap<String, String>,
        }
        let file: File =
            toml::from_str(text).map_err(|e| ProtectError::Keyring(e.message().to_owned()))?;
        let mut ring = Keyring {
            current: file.current,
            keys: BTreeMap::new(),
            signing: file
                .signing
                .map(|s| parse_key("the signing key", &s))
                .transpose()?,
        };
        for (id, value) in &file.keys {
            check_id(id)?;
            ring.insert(id, parse_key(&format!("key `{id}`"), value)?);
        }
        if !ring.keys.contains_key(&ring.current) {
            return Err(ProtectError::Keyring(format!(
                "the current key `{}` is not under [keys]",
                ring.current
            )));
        }
        Ok(ring)
    }

    /// The keyring's TOML text (secret: it holds every key).
    pub fn to_toml(&self) -> String {
        let mut out = String::from(
            "# weft keyring: key-encryption keys and the checkpoint signing key.\n\
             # Anyone with this file can read every payload: keep it secret.\n",
        );
        out.push_str(&format!("current = \"{}\"\n", self.current));
        if let Some(signing) = &self.signing {
            out.push_str(&format!("signing = \"{}\"\n", hex(signing.as_ref())));
        }
        out.push_str("\n[keys]\n");
        for (id, (key, _)) in &self.keys {
            out.push_str(&format!("\"{id}\" = \"{}\"\n", hex(key.as_ref())));
        }
        out
    }

    /// Read a keyring file.
    pub fn load(path: &Path) -> Result<Keyring, ProtectError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ProtectError::Keyring(format!("cannot read {}: {e}", path.display())))?;
        Keyring::from_toml(&text)
            .map_err(|e| ProtectError::Keyring(format!("{}: {e}", path.display())))
    }

    /// Write the keyring to `path`, readable by its owner only, replacing
    /// the file atomically (a crash leaves the old or the new ring, never
    /// half of one).
    pub fn save(&self, path: &Path) -> Result<(), ProtectError> {
        let fail = |e: std::io::Error| {
            ProtectError::Keyring(format!("cannot write {}: {e}", path.display()))
        };
        let tmp = path.with_extension("tmp");
        {
            use std::io::Write;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&tmp).map_err(fail)?;
            file.write_all(self.to_toml().as_bytes()).map_err(fail)?;
            file.sync_all().map_err(fail)?;
        }
        std::fs::rename(&tmp, path).map_err(fail)
    }

    /// The keyring at `path`, created (with one key `first_id` and a
    /// signing key) if there is no file yet; true if it was created.
    pub fn load_or_create(path: &Path, first_id: &str) -> Result<(Keyring, bool), ProtectError> {
        if path.exists() {
            return Ok((Keyring::load(path)?, false));
        }
        let ring = Keyring::generate(first_id)?;
        ring.save(path)?;
        Ok((ring, true))
    }

    /// Add a fresh key `id` and make it current.
    pub fn rotate(&mut self, id: &str) -> Result<(), ProtectError> {
        check_id(id)?;
        if self.keys.contains_key(id) {
            return Err(ProtectError::Keyring(format!("key `{id}` already exists")));
        }
        self.insert(id, random_key()?);
        self.current = id.to_owned();
        Ok(())
    }

    /// Remove key `id` (data wrapped with it becomes unreadable). The
    /// current key cannot be removed.
    pub fn remove(&mut self, id: &str) -> Result<(), ProtectError> {
        if id == self.current {
            return Err(ProtectError::Keyring(format!(
                "key `{id}` is current; rotate to a new key first"
            )));
        }
        self.keys
            .remove(id)
            .map(|_| ())
            .ok_or_else(|| ProtectError::MissingKey { kek: id.to_owned() })
    }

    /// The key ids, in order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// The checkpoint signing key's secret bytes, if the ring has one.
    pub fn signing_seed(&self) -> Option<&[u8; 32]> {
        self.signing.as_deref()
    }

    /// Give the ring a fresh signing key if it has none.
    pub fn ensure_signing(&mut self) -> Result<bool, ProtectError> {
        if self.signing.is_some() {
            return Ok(false);
        }
        self.signing = Some(random_key()?);
        Ok(true)
    }

    fn cipher(&self, kek: &str) -> Result<&Aes256GcmSiv, ProtectError> {
        self.keys
            .get(kek)
            .map(|(_, c)| c)
            .ok_or_else(|| ProtectError::MissingKey {
                kek: kek.to_owned(),
            })
    }
}

impl KeyProvider for Keyring {
    fn current(&self) -> &str {
        &self.current
    }

    fn signing_public_key(&self) -> Option<[u8; 32]> {
        let seed = self.signing.as_deref()?;
        Some(
            ed25519_dalek::SigningKey::from_bytes(seed)
                .verifying_key()
                .to_bytes(),
        )
    }

    fn sign(&self, message: &[u8]) -> Option<[u8; 64]> {
        let key = ed25519_dalek::SigningKey::from_bytes(self.signing.as_deref()?);
        Some(ed25519_dalek::Signer::sign(&key, message).to_bytes())
    }

    fn wrap(&self, kek: &str, key: &[u8; 32]) -> Result<Vec<u8>, ProtectError> {
        let payload = Payload {
            msg: key,
            aad: WRAP_AD,
        };
        self.cipher(kek)?
            .encrypt(&WRAP_NONCE.into(), payload)
            .map_err(|_| ProtectError::Corrupt("wrapping a data key failed".into()))
    }

    fn unwrap(&self, kek: &str, wrapped: &[u8]) -> Result<Zeroizing<[u8; 32]>, ProtectError> {
        let payload = Payload {
            msg: wrapped,
            aad: WRAP_AD,
        };
        let plain = Zeroizing::new(
            self.cipher(kek)?
                .decrypt(&WRAP_NONCE.into(), payload)
                .map_err(|_| ProtectError::WrongKey {
                    kek: kek.to_owned(),
                })?,
        );
        let key: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| ProtectError::WrongKey {
                kek: kek.to_owned(),
            })?;
        Ok(Zeroizing::new(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_unwrap_rotate_remove() {
        let mut ring = Keyring::generate("k1").unwrap();
        let dek = [7u8; 32];
        let w1 = ring.wrap("k1", &dek).unwrap();
        assert_eq!(w1.len(), 48);
        ring.rotate("k2").unwrap();
        assert_eq!(ring.current(), "k2");
        assert_eq!(*ring.unwrap("k1", &w1).unwrap(), dek);
        let w2 = ring.wrap("k2", &dek).unwrap();
        assert_ne!(w1, w2);
        assert!(ring.remove("k2").is_err(), "the current key stays");
        ring.remove("k1").unwrap();
        match ring.unwrap("k1", &w1) {
            Err(ProtectError::MissingKey { kek }) => assert_eq!(kek, "k1"),
            other => panic!("{other:?}"),
        }
        let mut bad = w2.clone();
        bad[0] ^= 1;
        assert!(matches!(
            ring.unwrap("k2", &bad),
            Err(ProtectError::WrongKey { .. })
        ));
    }

    #[test]
    fn toml_round_trip_and_errors() {
        let mut ring = Keyring::generate("k1").unwrap();
        ring.rotate("k2").unwrap();
        let text = ring.to_toml();
        let back = Keyring::from_toml(&text).unwrap();
        assert_eq!(back.current(), "k2");
        assert_eq!(back.ids().collect::<Vec<_>>(), ["k1", "k2"]);
        let dek = [1u8; 32];
        assert_eq!(
            *back.unwrap("k1", &ring.wrap("k1", &dek).unwrap()).unwrap(),
            dek
        );
        assert!(format!("{ring:?}").len() < 200, "no key bytes in Debug");
        assert!(!format!("{ring:?}").contains(&text[text.len() - 20..]));

        let missing = "current = \"k9\"\n[keys]\nk1 = \"00\"\n";
        assert!(Keyring::from_toml(missing).is_err());
        let short = "current = \"k1\"\n[keys]\nk1 = \"00\"\n";
        let err = Keyring::from_toml(short).unwrap_err().to_string();
        assert!(err.contains("64 hex digits"), "{err}");
        assert!(Keyring::generate("bad id!").is_err());
    }

    #[test]
    fn load_or_create_creates_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.toml");
        let (first, created) = Keyring::load_or_create(&path, "dev-1").unwrap();
        assert!(created);
        let (again, created) = Keyring::load_or_create(&path, "other").unwrap();
        assert!(!created);
        assert_eq!(again.current(), "dev-1");
        assert_eq!(again.to_toml(), first.to_toml());
    }

    #[test]
    fn save_is_private_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.toml");
        let ring = Keyring::generate("k1").unwrap();
        ring.save(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(Keyring::load(&path).unwrap().current(), "k1");
    }
}
