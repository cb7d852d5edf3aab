//! The conformance suite against `RedbStore`.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed assertion

use weft_store::RedbStore;

/// A redb database in a temporary directory.
struct Redb(tempfile::TempDir);

impl weft_store_conformance::Backend for Redb {
    type Store = RedbStore;

    async fn fresh() -> Self {
        Redb(tempfile::tempdir().unwrap())
    }

    async fn open(&self) -> RedbStore {
        RedbStore::open(self.0.path().join("weft.redb")).unwrap()
    }
}

weft_store_conformance::suite!(Redb);
