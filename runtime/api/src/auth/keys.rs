//! API keys: `weft_<id>_<secret>`, with a 12-hex-digit public id and 32
//! random bytes of secret (64 hex digits). The store keeps the id, a name,
//! the grants, the expiry and a keyed BLAKE3 hash of the secret; the key
//! itself is shown once, when it is created. A fast hash is right here
//! (unlike for passwords): the secret is 256 random bits, so there is
//! nothing to guess, and checking a key costs well under a microsecond.

use super::grants::{Grant, Principal, parse_grants};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use weft_core::Timestamp;
use weft_server::{ApiKeyRecord, Runtime, RuntimeError};
use zeroize::Zeroizing;

const PREFIX: &str = "weft_";
const ID_BYTES: usize = 6;
const SECRET_BYTES: usize = 32;

/// Whether `token` has an API key's shape (rather than a JWT's).
pub(crate) fn looks_like_api_key(token: &str) -> bool {
    token.starts_with(PREFIX)
}

fn secret_hash(secret: &[u8]) -> [u8; 32] {
    blake3::Hasher::new_derive_key("weft 2026 api key secret")
        .update(secret)
        .finalize()
        .into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A key just created: its record (as stored) and the key itself.
pub struct NewApiKey {
    /// What the store keeps.
    pub record: ApiKeyRecord,
    /// The key: give it to its user now, it cannot be shown again.
    pub secret: Zeroizing<String>,
}

/// Make a new API key named `name` with `grants`, expiring at `expires`.
/// Nothing is stored: the caller stores `record`.
pub fn create_api_key(
    name: &str,
    grants: &[String],
    now: Timestamp,
    expires: Option<Timestamp>,
) -> Result<NewApiKey, String> {
    if name.trim().is_empty() {
        return Err("an API key needs a name (what or who it is for)".into());
    }
    if grants.is_empty() {
        return Err("an API key needs at least one grant (`--role namespace:role`)".into());
    }
    parse_grants(grants)?;
    let mut random = Zeroizing::new([0u8; ID_BYTES + SECRET_BYTES]);
    getrandom::fill(random.as_mut())
        .map_err(|e| format!("no OS randomness for an API key: {e}"))?;
    let (id, secret) = random.split_at(ID_BYTES);
    let id = hex(id);
    let key = Zeroizing::new(format!("{PREFIX}{id}_{}", hex(secret)));
    Ok(NewApiKey {
        record: ApiKeyRecord {
            id,
            name: name.to_owned(),
            secret_hash: secret_hash(secret),
            roles: grants.to_vec(),
            created: now,
            expires,
            revoked: None,
        },
        secret: key,
    })
}

struct Known {
    record: ApiKeyRecord,
    principal: Arc<Principal>,
}

/// The server's API keys, in memory (loaded from the store at start, kept
/// current by the key RPCs, which write the store first).
pub struct ApiKeys {
    by_id: RwLock<HashMap<String, Known>>,
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey")
            .field("id", &self.record.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl ApiKeys {
    pub(crate) fn empty() -> ApiKeys {
        ApiKeys {
            by_id: RwLock::new(HashMap::new()),
        }
    }

    pub(crate) async fn load(runtime: &Runtime) -> Result<ApiKeys, RuntimeError> {
        let keys = ApiKeys::empty();
        for record in runtime.api_keys().await? {
            keys.insert(record);
        }
        Ok(keys)
    }

    /// Remember `record` (a new or revoked key), replacing its old state.
    /// A record with grants this build cannot parse is kept with none.
    pub fn insert(&self, record: ApiKeyRecord) {
        let grants: Vec<Grant> = parse_grants(&record.roles).unwrap_or_else(|e| {
            tracing::warn!(key = %record.id, "API key has an unreadable grant; it gets none: {e}");
            Vec::new()
        });
        let principal = Arc::new(Principal {
            identity: format!("key:{} ({})", record.id, record.name),
            method: "api-key",
            grants,
        });
        self.by_id
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(record.id.clone(), Known { record, principal });
    }

    /// The principal `token` (a `weft_...` key) authenticates as at `now`,
    /// or why not. The messages never echo the secret.
    pub(crate) fn verify(&self, token: &str, now: Timestamp) -> Result<Arc<Principal>, String> {
        let malformed = || "the API key is malformed (expected weft_<id>_<secret>)".to_owned();
        let rest = token.strip_prefix(PREFIX).ok_or_else(malformed)?;
        let (id, secret) = rest.split_once('_').ok_or_else(malformed)?;
        let secret = Zeroizing::new(unhex(secret).ok_or_else(malformed)?);
        if id.len() != ID_BYTES * 2 || secret.len() != SECRET_BYTES {
            return Err(malformed());
        }
        let keys = self.by_id.read().unwrap_or_else(|p| p.into_inner());
        let unknown = || format!("API key {id} is not known to this server");
        let known = keys.get(id).ok_or_else(unknown)?;
        // blake3::Hash compares in constant time.
        if blake3::Hash::from(secret_hash(&secret)) != blake3::Hash::from(known.record.secret_hash)
        {
            return Err(unknown());
        }
        if let Some(at) = known.record.revoked {
            return Err(format!("API key {id} was revoked (at {} ms)", at.0));
        }
        if let Some(at) = known.record.expires
            && at <= now
        {
            return Err(format!("API key {id} expired (at {} ms)", at.0));
        }
        Ok(known.principal.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_verifies_until_it_expires_or_is_revoked_and_a_changed_one_never() {
        let keys = ApiKeys::empty();
        let new = create_api_key(
            "ci",
            &["payments:writer".into()],
            Timestamp(1_000),
            Some(Timestamp(5_000)),
        )
        .unwrap();
        let key = new.secret.to_string();
        assert!(!key.contains(&hex(&new.record.secret_hash)));
        keys.insert(new.record.clone());
        let who = keys.verify(&key, Timestamp(2_000)).unwrap();
        assert_eq!(who.identity, format!("key:{} (ci)", new.record.id));

        let mut flipped = key.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        let e = keys
            .verify(std::str::from_utf8(&flipped).unwrap(), Timestamp(2_000))
            .unwrap_err();
        assert!(e.contains("not known"), "{e}");
        assert!(
            keys.verify("weft_abc", Timestamp(0))
                .unwrap_err()
                .contains("malformed")
        );

        let e = keys.verify(&key, Timestamp(5_000)).unwrap_err();
        assert!(e.contains("expired"), "{e}");

        let mut revoked = new.record;
        revoked.revoked = Some(Timestamp(3_000));
        keys.insert(revoked);
        let e = keys.verify(&key, Timestamp(2_000)).unwrap_err();
        assert!(e.contains("revoked"), "{e}");
    }

    #[test]
    fn a_key_needs_a_name_and_good_grants() {
        assert!(create_api_key("", &["*:admin".into()], Timestamp(0), None).is_err());
        assert!(create_api_key("x", &[], Timestamp(0), None).is_err());
        let e = create_api_key("x", &["a:root".into()], Timestamp(0), None).unwrap_err();
        assert!(e.contains("root"), "{e}");
    }
}
