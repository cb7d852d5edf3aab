//! The shared transaction as one write operation sees it.
//!
//! The writer applies a batch of operations in one transaction, and an
//! operation that fails for a logical reason (a conflict, an id in use) is
//! answered alone while the rest of the batch commits. That is only sound
//! if the failed operation wrote nothing. [`Txn`] makes it checkable: every
//! table it opens is a [`TableMut`] whose mutations go through it and mark
//! the operation as having written (its `Deref` to the table gives only
//! the reading methods, which take `&self`). The writer treats a logical
//! error after a write as fatal and rolls the whole batch back, so partial
//! writes can never be committed (`writer.rs`).

use redb::{AccessGuard, Key, StorageError, Table, TableDefinition, TableError, Value};
use std::borrow::Borrow;
use std::cell::Cell;
use std::ops::{Deref, RangeBounds};
use weft_protect::Protector;

/// One operation's view of the batch's write transaction, and the
/// protector that seals what it writes.
pub(crate) struct Txn<'a> {
    txn: &'a redb::WriteTransaction,
    wrote: Cell<bool>,
    protector: &'a Protector,
}

impl<'a> Txn<'a> {
    pub(crate) fn new(txn: &'a redb::WriteTransaction, protector: &'a Protector) -> Self {
        Txn {
            txn,
            wrote: Cell::new(false),
            protector,
        }
    }

    /// What seals and opens the payloads this operation writes and reads.
    pub(crate) fn protector(&self) -> &'a Protector {
        self.protector
    }

    /// Open `table` for reading and writing.
    pub(crate) fn open_table<K: Key + 'static, V: Value + 'static>(
        &self,
        table: TableDefinition<K, V>,
    ) -> Result<TableMut<'_, K, V>, TableError> {
        Ok(TableMut {
            table: self.txn.open_table(table)?,
            wrote: &self.wrote,
        })
    }

    /// True once the operation changed a table.
    pub(crate) fn wrote(&self) -> bool {
        self.wrote.get()
    }
}

/// A table opened by a [`Txn`]: reads through `Deref`, writes through the
/// methods below, which mark the operation as having written.
pub(crate) struct TableMut<'t, K: Key + 'static, V: Value + 'static> {
    table: Table<'t, K, V>,
    wrote: &'t Cell<bool>,
}

impl<'t, K: Key + 'static, V: Value + 'static> Deref for TableMut<'t, K, V> {
    type Target = Table<'t, K, V>;

    fn deref(&self) -> &Self::Target {
        &self.table
    }
}

impl<K: Key + 'static, V: Value + 'static> TableMut<'_, K, V> {
    /// [`Table::insert`].
    pub(crate) fn insert<'k, 'v>(
        &mut self,
        key: impl Borrow<K::SelfType<'k>>,
        value: impl Borrow<V::SelfType<'v>>,
    ) -> Result<Option<AccessGuard<'_, V>>, StorageError> {
        self.wrote.set(true);
        self.table.insert(key, value)
    }

    /// [`Table::remove`].
    pub(crate) fn remove<'k>(
        &mut self,
        key: impl Borrow<K::SelfType<'k>>,
    ) -> Result<Option<AccessGuard<'_, V>>, StorageError> {
        self.wrote.set(true);
        self.table.remove(key)
    }

    /// [`Table::retain_in`].
    pub(crate) fn retain_in<'a, KR, F>(
        &mut self,
        range: impl RangeBounds<KR> + 'a,
        predicate: F,
    ) -> Result<(), StorageError>
    where
        KR: Borrow<K::SelfType<'a>> + 'a,
        F: for<'f> FnMut(K::SelfType<'f>, V::SelfType<'f>) -> bool,
    {
        self.wrote.set(true);
        self.table.retain_in(range, predicate)
    }
}
