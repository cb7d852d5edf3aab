use thiserror::Error;

/// Why a payload could not be sealed or opened, or a key not used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProtectError {
    /// The keyring does not hold the key-encryption key a data key is
    /// wrapped with.
    #[error(
        "key `{kek}` is not in the keyring: data wrapped with it cannot be read until the key is restored"
    )]
    MissingKey {
        /// The key id.
        kek: String,
    },
    /// The key with this id does not open the data key: not the key the
    /// data was written with, or the wrapped key was altered.
    #[error(
        "key `{kek}` does not open this data key (a different key under the same id, or the stored key was altered)"
    )]
    WrongKey {
        /// The key id.
        kek: String,
    },
    /// The execution was erased: its data key is gone for good.
    #[error("the execution was erased: its payloads can no longer be read")]
    Erased,
    /// A sealed payload failed authentication: altered, or sealed under
    /// another key or at another position.
    #[error(
        "a sealed payload at {at} failed authentication (altered, or not sealed under this execution's key)"
    )]
    Tampered {
        /// Where: `event 7`, `inbox row`, ...
        at: String,
    },
    /// The operating system gave no randomness for a new key or nonce.
    #[error("no randomness from the operating system for a new key: {0}")]
    Randomness(#[from] getrandom::Error),
    /// Stored bytes are not in a format this build reads.
    #[error("{0}")]
    Corrupt(String),
    /// A keyring file or value is invalid.
    #[error("keyring: {0}")]
    Keyring(String),
}
