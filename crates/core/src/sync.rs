//! Input from the sync step: server-confirmed records.
//!
//! A change to a key locked by an ordered transaction is held until the lock is released.
//! A completed transaction's mutations leave a key's overlay only when a sync change that
//! reflects them reaches the synced layer — one that arrived after its persist succeeded, or in
//! the batch confirming it — so the visible record never flickers back to old data.

use std::sync::Arc;

use rustc_hash::FxHashSet;
use serde_json::Value;

use crate::engine::{Engine, HeldChange};
use crate::effect::Effect;
use crate::error::SyncError;
use crate::record::{into_record, key_from, Fields, Key, Record, RecordProblem, Records};
use crate::transaction::TransactionState;

/// One server-side change to one record. An upsert carries the record's whole new value (an
/// object with the collection's key field): a JSON value (the default, as drivers have handed
/// it over so far), or [`Fields`] parsed straight into the engine's record form, which spares
/// the engine a conversion (see `Fields::parse`).
#[derive(Clone, Debug, PartialEq)]
pub enum SyncChange<R = Value> {
    Upsert(R),
    Delete(Key),
}

/// A batch of sync changes for one collection, applied atomically.
#[derive(Clone, Debug, PartialEq)]
pub struct SyncBatch<R = Value> {
    pub collection: String,
    pub changes: Vec<SyncChange<R>>,
    /// Transactions the server confirms are contained in this batch (the echo of their write):
    /// they complete, and their optimistic layer gives way to this data.
    pub confirms: Vec<String>,
    /// The batch is the collection's whole state: records it does not mention are deleted.
    pub snapshot: bool,
    /// The newest HLC timestamp in the batch, so later local writes order after it.
    pub max_timestamp: Option<u64>,
}

impl<R> Default for SyncBatch<R> {
    fn default() -> Self {
        SyncBatch {
            collection: String::new(),
            changes: Vec::new(),
            confirms: Vec::new(),
            snapshot: false,
            max_timestamp: None,
        }
    }
}

impl SyncBatch {
    /// A batch whose upserts are JSON values.
    pub fn new(collection: impl Into<String>) -> Self {
        Self::of(collection)
    }
}

impl<R> SyncBatch<R> {
    /// A batch whose upserts are `R`s (`SyncBatch::<Fields>::of(..)`).
    pub fn of(collection: impl Into<String>) -> Self {
        SyncBatch { collection: collection.into(), ..Default::default() }
    }

    pub fn upsert(mut self, record: R) -> Self {
        self.changes.push(SyncChange::Upsert(record));
        self
    }

    pub fn delete(mut self, key: &str) -> Self {
        self.changes.push(SyncChange::Delete(Key::from(key)));
        self
    }

    pub fn confirming(mut self, transaction: impl Into<String>) -> Self {
        self.confirms.push(transaction.into());
        self
    }

    pub fn as_snapshot(mut self) -> Self {
        self.snapshot = true;
        self
    }
}

/// What a sync upsert can carry: a `serde_json::Value`, [`Fields`] or a [`Record`] (sealed).
pub trait UpsertRecord: sealed::Sealed {
    /// The record and its key, shared with `known`'s if it holds the record already.
    #[doc(hidden)]
    fn into_keyed(self, key_field: &str, known: Option<&Records>) -> Result<(Key, Record), RecordProblem>;
}

impl UpsertRecord for Value {
    fn into_keyed(self, key_field: &str, known: Option<&Records>) -> Result<(Key, Record), RecordProblem> {
        into_record(self, key_field, known)
    }
}

impl UpsertRecord for Fields {
    fn into_keyed(self, key_field: &str, known: Option<&Records>) -> Result<(Key, Record), RecordProblem> {
        let key = key_from(self.get(key_field), known)?;
        Ok((key, Arc::new(self)))
    }
}

/// A record already shared (`Arc`): the engine keeps this very allocation, so a driver can hold
/// on to what it handed over (e.g. to write it to a cache) without a copy.
impl UpsertRecord for Record {
    fn into_keyed(self, key_field: &str, known: Option<&Records>) -> Result<(Key, Record), RecordProblem> {
        let key = key_from(self.get(key_field), known)?;
        Ok((key, self))
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for serde_json::Value {}
    impl Sealed for crate::record::Fields {}
    impl Sealed for crate::record::Record {}
}

impl Engine {
    /// Applies a batch from the sync step. Refused as a whole if any record is malformed.
    pub fn sync_received<R: UpsertRecord>(&mut self, now: u64, batch: SyncBatch<R>) -> Result<(), SyncError> {
        let c = self
            .index_of(&batch.collection)
            .ok_or_else(|| SyncError::UnknownCollection { collection: batch.collection.clone() })?;
        let collection = &self.collections[c as usize];
        let empty = collection.synced.is_empty() && collection.held.is_empty() && collection.overlay.is_empty();
        if empty
            && self.objects.is_empty()
            && self.dirty.is_empty()
            && batch.confirms.is_empty()
            && batch.changes.iter().all(|change| matches!(change, SyncChange::Upsert(_)))
        {
            return self.load_into_empty(now, c, batch);
        }
        let mut changes: Vec<(Key, Option<Record>)> = Vec::with_capacity(batch.changes.len());
        for (index, change) in batch.changes.into_iter().enumerate() {
            changes.push(match change {
                SyncChange::Upsert(value) => {
                    let known = Some(&collection.synced);
                    let (key, record) = value.into_keyed(&collection.key_field, known).map_err(|problem| {
                        SyncError::InvalidRecord { collection: batch.collection.clone(), index, problem }
                    })?;
                    (key, Some(record))
                }
                SyncChange::Delete(key) => (key, None),
            });
        }
        // A snapshot removes what it does not mention, if anything is known at all (a first
        // load into an empty collection builds no set of its keys).
        let anything_known =
            !(collection.synced.is_empty() && collection.held.is_empty() && collection.overlay.is_empty());
        if batch.snapshot && anything_known {
            // Owned keys (reference-count increments): the same set type as below, so the wasm
            // client carries one copy of its code.
            let mentioned: FxHashSet<Key> = changes.iter().map(|(k, _)| k.clone()).collect();
            let gone: Vec<Key> = collection
                .synced
                .keys()
                .chain(collection.held.keys())
                // Keys known only from the overlay (a completed insert the server no longer has).
                .chain(collection.overlay.keys())
                .filter(|k| !mentioned.contains(*k))
                .cloned()
                .collect::<FxHashSet<Key>>()
                .into_iter()
                .collect();
            changes.extend(gone.into_iter().map(|k| (k, None)));
        }

        if changes.len() > 1024 {
            // A big batch: grow the synced map and the dirty list once, not by doublings (the
            // map by the records it may add: a re-sent snapshot of known keys adds none).
            let synced = &mut self.collections[c as usize].synced;
            synced.reserve(changes.len().saturating_sub(synced.len()));
            self.dirty.reserve(changes.len());
            self.dirty_set.reserve(changes.len());
        }
        self.sync_seq += 1;
        let arrival = self.sync_seq;
        if let Some(timestamp) = batch.max_timestamp {
            self.hlc.observe(timestamp);
        }
        // Confirmed transactions complete first, releasing their locks, so their own echo is
        // applied rather than held. Transactions queued behind them start only after the batch.
        for id in &batch.confirms {
            let Some(seq) = self.tx_ids.get(id.as_str()) else { continue };
            if Self::is_running(self.txs[&seq].tx.state) {
                let internal = &mut self.txs.get_mut(&seq).expect("exists").internal;
                if internal.observe_from == 0 || internal.observe_from > arrival {
                    internal.observe_from = arrival;
                }
                self.complete(seq, now);
            }
        }
        for (key, value) in changes {
            if self.is_locked_object(&(c, key.clone())) {
                self.collections[c as usize].held.insert(key, HeldChange { value, arrival });
            } else {
                self.apply_synced(c, key, value, arrival);
            }
        }
        self.settle(now);
        Ok(())
    }

    /// A batch of records into a collection holding nothing, with no transaction running (a
    /// first load): every record is an insert, so none needs the dirty-key tracking that
    /// compares each key's record before and after (whose list and set cost ~3 MB at 100k
    /// records). Refused as a whole, as any batch, leaving the collection empty.
    fn load_into_empty<R: UpsertRecord>(&mut self, now: u64, c: u32, batch: SyncBatch<R>) -> Result<(), SyncError> {
        let SyncBatch { collection: name, changes, max_timestamp, .. } = batch;
        let collection = &mut self.collections[c as usize];
        collection.synced.reserve(changes.len());
        let (synced, key_field) = (&mut collection.synced, &collection.key_field);
        // Collected in place where the batch's entries are as big as keys (the wasm client's
        // shared records): the list of keys takes no memory of its own.
        let keys = changes
            .into_iter()
            .enumerate()
            .filter_map(|(index, change)| {
                let SyncChange::Upsert(value) = change else { unreachable!("only upserts are loaded") };
                match value.into_keyed(key_field, None) {
                    // A key repeated in the batch: its last record stands, listed once.
                    Ok((key, record)) => synced.insert(key.clone(), record).is_none().then_some(Ok(key)),
                    Err(problem) => Some(Err(SyncError::InvalidRecord { collection: name.clone(), index, problem })),
                }
            })
            .collect::<Result<Vec<Key>, SyncError>>();
        let keys = match keys {
            Ok(keys) => keys,
            Err(error) => {
                collection.synced = Records::default();
                return Err(error);
            }
        };
        collection.visible_len = keys.len();
        self.sync_seq += 1;
        if let Some(timestamp) = max_timestamp {
            self.hlc.observe(timestamp);
        }
        if !keys.is_empty() {
            self.effects.push_back(Effect::Loaded { collection: collection.name.clone(), keys });
        }
        self.settle(now);
        Ok(())
    }

    /// Applies the change held for a key whose lock was just released.
    pub(crate) fn apply_held(&mut self, c: u32, key: &Key) {
        if let Some(held) = self.collections[c as usize].held.remove(key) {
            self.apply_synced(c, key.clone(), held.value, held.arrival);
        }
    }

    fn apply_synced(&mut self, c: u32, key: Key, value: Option<Record>, arrival: u64) {
        // Before the synced record changes: the notice compares with what is visible now.
        self.mark_dirty(c, &key);
        let collection = &mut self.collections[c as usize];
        match value {
            Some(record) => collection.synced.insert(key.clone(), record),
            None => collection.synced.remove(&key),
        };
        // An emptied entry goes at the end of the input (the key is marked).
        if let Some(overlaid) = collection.overlay.get_mut(&key) {
            let txs = &mut self.txs;
            let finished = &mut self.finished;
            overlaid.entries.retain(|r| {
                let slot = txs.get_mut(&r.tx).expect("overlay names live transactions");
                let observed = slot.tx.state == TransactionState::Completed && slot.internal.observe_from <= arrival;
                if observed {
                    slot.internal.overlay_entries -= 1;
                    if slot.internal.overlay_entries == 0 {
                        finished.push_back(r.tx);
                    }
                }
                !observed
            });
        }
    }
}
