//! The conformance suite against `RedbStore`.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

use weft_store::RedbStore;

/// A redb database in a temporary directory, encrypted with a keyring
/// kept for its reopenings.
struct Redb(tempfile::TempDir, weft_protect::Protector);

impl weft_store_conformance::Backend for Redb {
    type Store = RedbStore;

    async fn fresh() -> Self {
        Redb(
            tempfile::tempdir().unwrap(),
            weft_protect::Protector::ephemeral().unwrap(),
        )
    }

    async fn open(&self) -> RedbStore {
        RedbStore::open(self.0.path().join("weft.redb"), self.1.clone()).unwrap()
    }
}

weft_store_conformance::suite!(Redb);
