//! What the engine asks its driver to do, drained with [`crate::Engine::poll_effect`].

use crate::record::{Key, Record};
use std::sync::Arc;

use crate::transaction::{TransactionState, TxId};

#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Run the user's persist for this transaction; report back with `persist_succeeded` or
    /// `persist_failed` quoting `attempt`.
    Persist { transaction: TxId, attempt: u32 },
    /// Run the user's await-sync step; report back with `await_sync_done`.
    AwaitSync { transaction: TxId },
    /// Write the transaction's current record (from `Engine::transaction`) to durable storage.
    SaveTransaction { transaction: TxId },
    /// Remove the transaction's record from durable storage (pruned from history).
    EraseTransaction { transaction: TxId },
    /// Monitoring: a transaction entered `state`.
    TransactionChanged { transaction: TxId, state: TransactionState },
    /// Visible records of `collection` changed: only these keys.
    DataChanged { collection: Arc<str>, changes: Vec<KeyChange> },
    /// Records were loaded into `collection` while it was empty: each key, in the order the
    /// sync batch had them, is an inserted record. (A first load's keys without a change kind
    /// each: at 100k records that is 0.4 MB less to hold at the moment memory peaks.)
    Loaded { collection: Arc<str>, keys: Vec<Key> },
    /// A local collection's synced record of `key` is now `record` (`None`: deleted): completed
    /// transactions' changes were folded into it. Store it where synced data is kept (e.g. the
    /// synced cache, with the transactions' saves), or it is gone after a reload.
    LocalSynced { collection: Arc<str>, key: Key, record: Option<Record> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    Insert,
    Update,
    Delete,
}

#[derive(Clone, Debug, PartialEq)]
pub struct KeyChange {
    pub key: Key,
    pub kind: ChangeKind,
    /// The visible record after the change (`None` for a delete): what a driver shows,
    /// without looking the key up again.
    pub record: Option<Record>,
}
