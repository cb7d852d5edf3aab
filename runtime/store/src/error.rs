use weft_core::ComponentId;

/// What can go wrong in a store. Callers act on the variant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The workflow id already has a running execution.
    #[error("workflow id `{0}` already has a running execution")]
    AlreadyRunning(String),
    /// The workflow id has closed runs and its id-reuse policy forbids
    /// another.
    #[error("workflow id `{0}` cannot be reused: {1}")]
    IdReuseRejected(String, &'static str),
    /// No such execution.
    #[error("execution not found: {0}")]
    NotFound(String),
    /// The request contradicts itself (a caller bug); nothing was written.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// No such component.
    #[error("component {0} is not deployed")]
    ComponentNotFound(ComponentId),
    /// A transition did not start at the stored end of history: another
    /// writer appended first. The caller must reload.
    #[error(
        "history conflict for execution {key}: expected next index {expected}, transition starts at {got}"
    )]
    Conflict {
        /// Internal execution key.
        key: u64,
        /// Stored history length.
        expected: u64,
        /// Index the transition claimed.
        got: u64,
    },
    /// Stored data could not be decoded.
    #[error("corrupt record in {table}: {reason}")]
    Corrupt {
        /// Table name.
        table: &'static str,
        /// Decoder message.
        reason: String,
    },
    /// The database failed (disk full, I/O error, ...). Nothing of the
    /// failed operation was committed.
    #[error("storage failure: {0}")]
    Storage(String),
    /// The storage engine itself failed (I/O, a full disk, a damaged
    /// file), with its error kept as the source. Nothing of the failed
    /// operation was committed.
    #[error("storage failure: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A payload could not be sealed or opened: a key missing from the
    /// keyring or not the right one (named by its id), an erased
    /// execution, a sealed field that failed authentication.
    #[error("{0}")]
    Protection(weft_protect::ProtectError),
    /// The store's writer has stopped (the runtime is shutting down).
    #[error("store is closed")]
    Closed,
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Backend(Box::new(e))
            }
        }
    )*};
}
storage_from!(
    weft_core::CodecError,
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storage_engine_error_keeps_its_source() {
        let io = std::io::Error::other("No space left on device");
        let e = StoreError::from(redb::StorageError::Io(io));
        assert!(e.to_string().contains("No space left on device"), "{e}");
        let source = std::error::Error::source(&e).expect("a source");
        assert!(source.downcast_ref::<redb::StorageError>().is_some());
    }
}
