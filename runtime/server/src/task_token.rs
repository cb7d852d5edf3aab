//! Signed task tokens: what a remote worker gets with a leased attempt and
//! hands back with its report.
//!
//! A token names the attempt (execution, command, attempt), the queue it
//! was leased from (so its namespace) and when it expires, and carries a
//! BLAKE3 keyed MAC over all of that under the server's token key. A worker
//! can report only on an attempt the server handed out, in the namespace it
//! reports from, until the token expires; anything else (a guessed tuple, a
//! flipped bit, a token replayed into another namespace) is refused before
//! the store is touched.
//!
//! Wire form (version 1): `01 | key u64 | seq u32 | attempt u32 |
//! expires_ms u64 | queue_len u16 | queue | mac[32]`, integers big-endian.

use crate::RuntimeError;
use weft_core::{Timestamp, namespace};
use weft_store::ExecKey;
use zeroize::Zeroize;

const VERSION: u8 = 1;
const MAC_LEN: usize = 32;
/// Version, key, seq, attempt, expiry, queue length.
const HEADER_LEN: usize = 1 + 8 + 4 + 4 + 8 + 2;

/// The server's secret for task tokens. Never printed, zeroed on drop.
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl TokenKey {
    /// A key from 32 secret bytes (a key file's content, say). Tokens
    /// signed under one key are refused under any other.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        // Separate the MAC key from whatever else the secret may be used
        // for later.
        TokenKey(blake3::derive_key("weft 2026 task token mac", &bytes))
    }

    /// A fresh random key (tokens then live as long as this process).
    pub fn random() -> Result<Self, RuntimeError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| RuntimeError::internal("no OS randomness for the task token key", e))?;
        let key = TokenKey::from_bytes(bytes);
        bytes.zeroize();
        Ok(key)
    }

    fn mac(&self, body: &[u8]) -> blake3::Hash {
        blake3::keyed_hash(&self.0, body)
    }
}

impl Drop for TokenKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

/// One leased attempt, as a token names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskToken {
    pub(crate) key: ExecKey,
    pub(crate) seq: u32,
    pub(crate) attempt: u32,
    /// The namespaced queue it was leased from.
    pub(crate) queue: String,
    /// After this, reports with the token are refused.
    pub(crate) expires: Timestamp,
}

impl TaskToken {
    /// The wire form, signed with `key`.
    pub(crate) fn seal(&self, key: &TokenKey) -> Vec<u8> {
        let queue = self.queue.as_bytes();
        let queue_len = u16::try_from(queue.len()).unwrap_or(u16::MAX);
        let queue = &queue[..usize::from(queue_len)];
        let mut out = Vec::with_capacity(HEADER_LEN + queue.len() + MAC_LEN);
        out.push(VERSION);
        out.extend_from_slice(&self.key.to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.attempt.to_be_bytes());
        out.extend_from_slice(&self.expires.0.to_be_bytes());
        out.extend_from_slice(&queue_len.to_be_bytes());
        out.extend_from_slice(queue);
        let mac = key.mac(&out);
        out.extend_from_slice(mac.as_bytes());
        out
    }

    /// Check a token a worker handed back from `namespace` at `now`: it must
    /// parse, carry this server's MAC, name a queue of `namespace`, and not
    /// have expired. The MAC is checked first and in constant time, so
    /// nothing is learned from a forged token but that it is one.
    pub(crate) fn open(
        bytes: &[u8],
        key: &TokenKey,
        namespace: &str,
        now: Timestamp,
    ) -> Result<TaskToken, RuntimeError> {
        let malformed = |why: &str| RuntimeError::Invalid(format!("malformed task token: {why}"));
        if bytes.len() < HEADER_LEN + MAC_LEN {
            return Err(malformed("too short"));
        }
        if bytes[0] != VERSION {
            return Err(malformed("unknown version"));
        }
        let (body, mac) = bytes.split_at(bytes.len() - MAC_LEN);
        let mut given = [0u8; MAC_LEN];
        given.copy_from_slice(mac);
        // `blake3::Hash` compares in constant time.
        if key.mac(body) != blake3::Hash::from_bytes(given) {
            return Err(RuntimeError::PermissionDenied(
                "task token refused: it was not issued by this server, or it was altered".into(),
            ));
        }
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&body[at..at + 8]);
            u64::from_be_bytes(b)
        };
        let u32_at = |at: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&body[at..at + 4]);
            u32::from_be_bytes(b)
        };
        let queue_len = usize::from(u16::from_be_bytes([body[25], body[26]]));
        let queue = body
            .get(HEADER_LEN..)
            .filter(|q| q.len() == queue_len)
            .and_then(|q| std::str::from_utf8(q).ok())
            .ok_or_else(|| malformed("bad queue name"))?;
        let token = TaskToken {
            key: u64_at(1),
            seq: u32_at(9),
            attempt: u32_at(13),
            expires: Timestamp(u64_at(17)),
            queue: queue.to_owned(),
        };
        let (token_namespace, queue_name) = namespace::split(&token.queue);
        let namespace = if namespace.is_empty() {
            namespace::DEFAULT_NAMESPACE
        } else {
            namespace
        };
        if token_namespace != namespace {
            return Err(RuntimeError::PermissionDenied(format!(
                "task token refused: it was issued for queue `{queue_name}` of namespace \
                 `{token_namespace}`, and this report comes from namespace `{namespace}`"
            )));
        }
        if now > token.expires {
            return Err(RuntimeError::StaleTask(format!(
                "task token of activity task {}/{} attempt {} expired at {} ms",
                token.key, token.seq, token.attempt, token.expires.0
            )));
        }
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(queue: &str) -> TaskToken {
        TaskToken {
            key: 7,
            seq: 3,
            attempt: 2,
            queue: queue.into(),
            expires: Timestamp(1_000),
        }
    }

    #[test]
    fn a_sealed_token_opens_only_unaltered_under_its_key_namespace_and_time() {
        let key = TokenKey::from_bytes([9; 32]);
        let t = token("payments::charges");
        let sealed = t.seal(&key);
        assert_eq!(
            TaskToken::open(&sealed, &key, "payments", Timestamp(999)).unwrap(),
            t
        );
        // Every single flipped bit is caught.
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(
                TaskToken::open(&bad, &key, "payments", Timestamp(1)).is_err(),
                "byte {i}"
            );
        }
        let other = TokenKey::from_bytes([8; 32]);
        let e = TaskToken::open(&sealed, &other, "payments", Timestamp(1)).unwrap_err();
        assert!(matches!(e, RuntimeError::PermissionDenied(_)), "{e}");
        let e = TaskToken::open(&sealed, &key, "default", Timestamp(1)).unwrap_err();
        assert!(e.to_string().contains("namespace `payments`"), "{e}");
        let e = TaskToken::open(&sealed, &key, "payments", Timestamp(1_001)).unwrap_err();
        assert!(matches!(e, RuntimeError::StaleTask(_)), "{e}");
        // The default namespace's queues carry no prefix.
        let sealed = token("main").seal(&key);
        assert!(TaskToken::open(&sealed, &key, "", Timestamp(1)).is_ok());
        assert!(TaskToken::open(&sealed, &key, "default", Timestamp(1)).is_ok());
        // The old, unsigned 16-byte form is refused.
        let e = TaskToken::open(&[0; 16], &key, "", Timestamp(1)).unwrap_err();
        assert!(e.to_string().contains("malformed"), "{e}");
        assert_eq!(format!("{key:?}"), "TokenKey(<redacted>)");
    }
}
