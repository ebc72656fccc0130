//! The engine's state and the calls every input shares: effect queue, dirty-key tracking,
//! accessors. The inputs themselves live in one file each (mutate, lifecycle, sync, restore).

use std::borrow::Borrow;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::hash::Hash;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::config::{CollectionConfig, EngineConfig, HistoryPolicy};
use crate::effect::{ChangeKind, Effect, KeyChange};
use crate::error::EngineError;
use crate::hlc::Hlc;
use crate::merge::Merge;
use crate::record::{Fields, Key, Record};
use crate::retry::{RetryPolicy, SplitMix64};
use crate::transaction::{MutationKind, Transaction, TransactionState};
use crate::tx_ids::TxIds;
use crate::tx_table::TxTable;

/// An object that ordered transactions lock: a key of a collection (by index).
pub(crate) type ObjRef = (u32, Key);

/// An object's unfinished ordered transactions and its lock.
#[derive(Default)]
pub(crate) struct ObjectQueue {
    /// Oldest first. A new ordered transaction queues behind the last; all of them are kept
    /// because any one may fail first and the others must still be waited for.
    pub chain: smallvec::SmallVec<[u64; 2]>,
    /// How many running ordered transactions hold the object's lock (0: not locked).
    pub locks: u32,
}

/// A key's overlay: almost always one mutation, kept inline.
pub(crate) type Overlay = smallvec::SmallVec<[MutationRef; 1]>;

/// A mutation in the overlay of a key: transaction sequence number and mutation index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct MutationRef {
    pub tx: u64,
    pub index: u32,
}

pub(crate) struct Collection {
    pub name: Arc<str>,
    pub key_field: String,
    pub merge: Option<String>,
    /// No sync layer: completed transactions' changes are folded into `synced`.
    pub local: bool,
    /// What the server has confirmed.
    pub synced: FxHashMap<Key, Record>,
    /// Number of visible records.
    pub visible_len: usize,
    /// Per key with pending changes: its mutations over `synced` and what the app sees. Every
    /// other key shows its synced record, so the visible layer costs memory only for keys with
    /// an overlay, and an update finds both in one entry.
    pub overlay: FxHashMap<Key, Overlaid>,
    /// Sync changes to keys locked by an ordered transaction, applied when the lock is released.
    /// Only the latest matters: sync changes carry whole records.
    pub held: FxHashMap<Key, HeldChange>,
}

/// A key's overlay and the record it shows.
#[derive(Default)]
pub(crate) struct Overlaid {
    /// The mutations applied over `synced`, in creation order: those of unfinished
    /// transactions, and of completed ones whose data the synced layer has not shown yet.
    /// Emptied during an input, the entry stays (showing what it showed, as the "before" of the
    /// change notice) until the input's end drops it.
    pub entries: Overlay,
    pub shown: Shown,
}

/// What a key with an overlay shows.
#[derive(Default)]
pub(crate) enum Shown {
    /// Its synced record: the overlay was added in this input and not applied yet.
    #[default]
    Synced,
    Record(Record),
    /// No record (the overlay deletes it, or inserts nothing over a missing one).
    Nothing,
}

impl Collection {
    /// The visible record.
    pub fn visible(&self, key: &str) -> Option<&Record> {
        self.visible_entry(key).and_then(|(_, record)| record)
    }

    /// The key as the collection holds it (to share its allocation), with its visible record.
    pub fn visible_entry(&self, key: &str) -> Option<(&Key, Option<&Record>)> {
        if let Some((known, overlaid)) = self.overlay.get_key_value(key) {
            match &overlaid.shown {
                Shown::Record(record) => return Some((known, Some(record))),
                Shown::Nothing => return Some((known, None)),
                Shown::Synced => {}
            }
        }
        self.synced.get_key_value(key).map(|(known, record)| (known, Some(record)))
    }

    /// Every visible record, in no particular order: the synced ones without an overlay,
    /// then the overlaid ones.
    pub fn visible_records(&self) -> impl Iterator<Item = (&Key, &Record)> {
        let shown = |key: &Key| self.overlay.get(key).is_none_or(|o| matches!(o.shown, Shown::Synced));
        let overlaid = self.overlay.iter().filter_map(|(key, o)| match &o.shown {
            Shown::Record(record) => Some((key, record)),
            _ => None,
        });
        self.synced.iter().filter(move |(key, _)| shown(key)).chain(overlaid)
    }

    /// Sets the visible record of a key after its overlay changed; a key left without an
    /// overlay shows its synced record again.
    fn show(&mut self, key: Key, visible: Option<Record>, has_overlay: bool) {
        if !has_overlay {
            if !self.overlay.is_empty() {
                remove_draining(&mut self.overlay, &key);
            }
            return;
        }
        let shown = match visible {
            Some(record) => Shown::Record(record),
            None => Shown::Nothing,
        };
        match self.overlay.get_mut(&key) {
            Some(overlaid) => overlaid.shown = shown,
            None => unreachable!("a key with an overlay has an entry"),
        }
    }
}

/// Removes `key` from a map that fills and drains again and again (the overlays, the lock
/// queues), and clears the map once it is empty. hashbrown leaves a tombstone where it removes
/// from a full group; once they use up the free slots, the next insert rehashes the whole table.
/// Clearing an empty map drops them: it was 5% of an update in the bench, whose maps drain
/// between bursts of 20 updates, as an app's do between its bursts.
pub(crate) fn remove_draining<K, Q, V>(map: &mut FxHashMap<K, V>, key: &Q) -> Option<V>
where
    K: Borrow<Q> + Hash + Eq,
    Q: Hash + Eq + ?Sized,
{
    let removed = map.remove(key);
    if map.is_empty() {
        map.clear();
    }
    removed
}

pub(crate) struct HeldChange {
    pub value: Option<Record>,
    /// Sequence number of the sync batch it arrived in.
    pub arrival: u64,
}

/// A sorted set of sequence numbers, usually one or two: a `SmallVec` rather than a `BTreeSet<u64>`,
/// whose code costs the wasm client ~3 KB gzipped.
#[derive(Default)]
pub(crate) struct SeqSet(smallvec::SmallVec<[u64; 2]>);

impl SeqSet {
    pub fn insert(&mut self, seq: u64) {
        if let Err(at) = self.0.binary_search(&seq) {
            self.0.insert(at, seq);
        }
    }

    pub fn remove(&mut self, seq: &u64) {
        if let Ok(at) = self.0.binary_search(seq) {
            self.0.remove(at);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The largest.
    pub fn last(&self) -> Option<&u64> {
        self.0.last()
    }

    /// In ascending order.
    pub fn iter(&self) -> std::slice::Iter<'_, u64> {
        self.0.iter()
    }
}

/// Engine bookkeeping about a transaction that is not part of its stored record.
#[derive(Default)]
pub(crate) struct TxInternal {
    /// Unfinished ordered transactions this one is queued behind.
    pub waiting_on: SeqSet,
    /// Transactions queued behind this one.
    pub dependents: Vec<u64>,
    /// Distinct objects it touches (ordered strategy only); usually one.
    pub objects: smallvec::SmallVec<[ObjRef; 1]>,
    pub holds_locks: bool,
    /// A sync batch with a sequence number at least this shows this transaction's data.
    pub observe_from: u64,
    /// Its mutations still in some key's overlay.
    pub overlay_entries: usize,
    /// When its timer (next retry, or attempt deadline) fires.
    pub timer: Option<u64>,
    /// A `SaveTransaction` for it is queued and not polled yet.
    pub save_queued: bool,
}

pub(crate) struct TxSlot {
    pub tx: Transaction,
    pub internal: TxInternal,
}

// Every update allocates one: kept on dlmalloc's exact-size lists (chunks under 256 bytes, a
// request of at most 244 on wasm32) rather than its tree of large free chunks, whose search was
// a quarter of `admit`'s allocation time in Chromium's profile (see `Transaction::error`).
#[cfg(target_pointer_width = "32")]
const _: () = assert!(std::mem::size_of::<TxSlot>() <= 244, "TxSlot must stay a small dlmalloc chunk");

/// The transaction engine. See the crate docs and GUIDE §2 for how a driver runs it.
pub struct Engine {
    pub(crate) client_id: Arc<str>,
    pub(crate) retry: RetryPolicy,
    pub(crate) attempt_timeout_ms: Option<u64>,
    pub(crate) history: HistoryPolicy,
    pub(crate) rng: SplitMix64,
    pub(crate) hlc: Hlc,
    pub(crate) collections: Vec<Collection>,
    pub(crate) collection_index: FxHashMap<String, u32>,
    pub(crate) merges: FxHashMap<String, Box<dyn Merge>>,
    /// All transactions by sequence number, i.e. in creation order.
    pub(crate) txs: TxTable,
    pub(crate) tx_ids: TxIds,
    pub(crate) next_seq: u64,
    /// Per object touched by unfinished ordered transactions: those transactions and the lock
    /// (one map, so a mutation's object is found once for both).
    pub(crate) objects: FxHashMap<ObjRef, ObjectQueue>,
    /// (due time, transaction) for retries and attempt deadlines, earliest first. A cleared
    /// timer stays in the heap until it reaches the top, where `prune_timers` drops it: every
    /// change leaves a live timer (one equal to its transaction's `timer`) on top. (A heap, not
    /// a `BTreeSet`, whose code costs the wasm client ~2 KB gzipped.)
    pub(crate) timers: BinaryHeap<Reverse<(u64, u64)>>,
    /// Queued transactions whose blockers finished during this call; started at its end.
    pub(crate) ready: BinaryHeap<Reverse<u64>>,
    /// Sequence number of the last sync batch received.
    pub(crate) sync_seq: u64,
    pub(crate) effects: VecDeque<Effect>,
    /// The transactions of the `SaveTransaction` effects in `effects`, in order (each has
    /// `save_queued` set until its effect is polled).
    pub(crate) saves: VecDeque<u64>,
    /// Keys whose visible record may have changed, with the record visible when first marked
    /// (what their change notice compares against).
    pub(crate) dirty: Vec<(u32, Key, Option<Record>)>,
    /// The keys of `dirty[..dirty_indexed]` as a set, for the duplicate check once there are
    /// more than a few. Caught up only when that check runs: a batch whose keys are known to be
    /// new (one transaction's first marks) never builds it.
    pub(crate) dirty_set: FxHashSet<(u32, Key)>,
    pub(crate) dirty_indexed: usize,
    /// Finished transactions no longer in any overlay, oldest first: pruning candidates.
    pub(crate) finished: VecDeque<u64>,
    pub(crate) empty_record: Record,
}

impl Engine {
    pub fn new(config: EngineConfig) -> Self {
        let client_id: Arc<str> = Arc::from(config.client_id);
        Engine {
            tx_ids: TxIds::new(client_id.clone()),
            client_id,
            retry: config.retry,
            attempt_timeout_ms: config.attempt_timeout_ms,
            history: config.history,
            rng: SplitMix64::new(config.seed),
            hlc: Hlc::new(),
            collections: Vec::new(),
            collection_index: FxHashMap::default(),
            merges: FxHashMap::default(),
            txs: TxTable::default(),
            next_seq: 1,
            objects: FxHashMap::default(),
            timers: BinaryHeap::new(),
            ready: BinaryHeap::new(),
            sync_seq: 0,
            effects: VecDeque::new(),
            saves: VecDeque::new(),
            dirty: Vec::new(),
            dirty_set: FxHashSet::default(),
            dirty_indexed: 0,
            finished: VecDeque::new(),
            empty_record: Arc::new(Fields::new()),
        }
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    pub fn create_collection(&mut self, config: CollectionConfig) -> Result<(), EngineError> {
        if self.collection_index.contains_key(&config.name) {
            return Err(EngineError::DuplicateCollection { collection: config.name });
        }
        let index = self.collections.len() as u32;
        self.collection_index.insert(config.name.clone(), index);
        self.collections.push(Collection {
            name: Arc::from(config.name),
            key_field: config.key_field,
            merge: config.merge,
            local: config.local,
            synced: FxHashMap::default(),
            visible_len: 0,
            overlay: FxHashMap::default(),
            held: FxHashMap::default(),
        });
        Ok(())
    }

    /// Registers a merge that parallel transactions and collections can name.
    pub fn register_merge(&mut self, name: impl Into<String>, merge: Box<dyn Merge>) {
        self.merges.insert(name.into(), merge);
    }

    // ---- outputs ----

    pub fn poll_effect(&mut self) -> Option<Effect> {
        let effect = self.effects.pop_front()?;
        if let Effect::SaveTransaction { .. } = &effect {
            let seq = self.saves.pop_front().expect("a save per SaveTransaction");
            if let Some(slot) = self.txs.get_mut(&seq) {
                slot.internal.save_queued = false;
            }
        }
        Some(effect)
    }

    /// The next instant (ms) at which the engine wants `handle_timeout`.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.timers.peek().map(|&Reverse((due, _))| due)
    }

    // ---- reads ----

    /// The visible record.
    pub fn get(&self, collection: &str, key: &str) -> Option<&Record> {
        self.collection(collection)?.visible(key)
    }

    /// A reader of a collection's visible records by key (for many reads: the collection is
    /// looked up once).
    pub fn reader<'a>(&'a self, collection: &str) -> impl Fn(&str) -> Option<&'a Record> + 'a {
        let collection = self.collection(collection);
        move |key| collection?.visible(key)
    }

    /// The record as the server last confirmed it.
    pub fn get_synced(&self, collection: &str, key: &str) -> Option<&Record> {
        self.collection(collection)?.synced.get(key)
    }

    /// All visible records of a collection, in no particular order.
    pub fn records(&self, collection: &str) -> impl Iterator<Item = (&Key, &Record)> {
        self.collection(collection).into_iter().flat_map(|c| c.visible_records())
    }

    /// All synced records of a collection, in no particular order (for a synced-data cache).
    pub fn synced_records(&self, collection: &str) -> impl Iterator<Item = (&Key, &Record)> {
        self.collection(collection).into_iter().flat_map(|c| c.synced.iter())
    }

    pub fn len(&self, collection: &str) -> usize {
        self.collection(collection).map_or(0, |c| c.visible_len)
    }

    pub fn has_collection(&self, collection: &str) -> bool {
        self.index_of(collection).is_some()
    }

    /// Whether an ordered transaction holds `key` (its sync updates are being held).
    pub fn is_locked(&self, collection: &str, key: &str) -> bool {
        self.index_of(collection).is_some_and(|c| self.is_locked_object(&(c, Key::from(key))))
    }

    pub(crate) fn is_locked_object(&self, object: &ObjRef) -> bool {
        self.objects.get(object).is_some_and(|queue| queue.locks > 0)
    }

    pub fn transaction(&self, id: &str) -> Option<&Transaction> {
        self.tx_ids.get(id).map(|seq| &self.txs[&seq].tx)
    }

    /// Every transaction the engine knows, in creation order.
    pub fn transactions(&self) -> impl Iterator<Item = &Transaction> {
        self.txs.values().map(|slot| &slot.tx)
    }

    /// The newest HLC timestamp issued or observed.
    pub fn last_timestamp(&self) -> u64 {
        self.hlc.last()
    }

    // ---- shared internals ----

    pub(crate) fn collection(&self, name: &str) -> Option<&Collection> {
        self.index_of(name).map(|i| &self.collections[i as usize])
    }

    /// The index of collection `name`. An app has a few: compared in turn (by address first: a
    /// driver may name them with [`Engine::collection_name`]), hashed only beyond that.
    pub(crate) fn index_of(&self, name: &str) -> Option<u32> {
        const SCANNED: usize = 8;
        if self.collections.len() <= SCANNED {
            let same = |c: &Collection| std::ptr::eq(&*c.name, name) || *c.name == *name;
            return self.collections.iter().position(same).map(|i| i as u32);
        }
        self.collection_index.get(name).copied()
    }

    /// The engine's own copy of a collection's name: naming the collection with it (in a
    /// mutation, say) finds it without comparing text.
    pub fn collection_name(&self, name: &str) -> Option<Arc<str>> {
        self.collection(name).map(|c| c.name.clone())
    }

    /// Notes that the visible record of `key` may change: call it before changing its synced
    /// record (the notice compares with the record visible now).
    pub(crate) fn mark_dirty(&mut self, collection: u32, key: &Key) {
        // A few keys (one mutation's) are checked in the list; the set takes over for batches.
        const LISTED: usize = 16;
        if self.dirty.len() < LISTED {
            if self.dirty.iter().any(|(c, k, _)| *c == collection && k == key) {
                return;
            }
        } else {
            for (c, k, _) in &self.dirty[self.dirty_indexed..] {
                self.dirty_set.insert((*c, k.clone()));
            }
            self.dirty_indexed = self.dirty.len();
            if !self.dirty_set.insert((collection, key.clone())) {
                return;
            }
            self.dirty_indexed += 1; // The key pushed below is in the set already.
        }
        let before = self.collections[collection as usize].visible(key).cloned();
        self.dirty.push((collection, key.clone(), before));
    }

    /// Records a state change: updated time, a monitoring event and a save of the record.
    pub(crate) fn touch(&mut self, seq: u64, now: u64) {
        let slot = self.txs.get_mut(&seq).expect("touched transaction exists");
        slot.tx.updated_at = now;
        let (id, state) = (slot.tx.id.clone(), slot.tx.state);
        let save = !std::mem::replace(&mut slot.internal.save_queued, true);
        self.effects.push_back(Effect::TransactionChanged { transaction: id.clone(), state });
        if save {
            self.effects.push_back(Effect::SaveTransaction { transaction: id });
            self.saves.push_back(seq);
        }
    }

    pub(crate) fn set_timer(&mut self, seq: u64, due: u64) {
        self.clear_timer(seq);
        // Cleared timers deep in the heap: dropped once they outnumber the transactions.
        if self.timers.len() >= 64 && self.timers.len() > 2 * self.tx_ids.len() {
            let txs = &self.txs;
            self.timers.retain(|&Reverse((due, seq))| txs.get(&seq).is_some_and(|s| s.internal.timer == Some(due)));
        }
        self.timers.push(Reverse((due, seq)));
        self.txs.get_mut(&seq).expect("timed transaction exists").internal.timer = Some(due);
    }

    pub(crate) fn clear_timer(&mut self, seq: u64) {
        if self.txs.get_mut(&seq).and_then(|s| s.internal.timer.take()).is_some() {
            self.prune_timers();
        }
    }

    /// Drops cleared timers from the top of `timers`.
    pub(crate) fn prune_timers(&mut self) {
        while let Some(&Reverse((due, seq))) = self.timers.peek() {
            if self.txs.get(&seq).is_some_and(|s| s.internal.timer == Some(due)) {
                break;
            }
            self.timers.pop();
        }
    }

    pub(crate) fn seq_of(&self, id: &str) -> Result<u64, EngineError> {
        self.tx_ids
            .get(id)
            .ok_or_else(|| EngineError::UnknownTransaction { id: id.to_string() })
    }

    /// Ends every input: starts transactions whose blockers finished, recomputes the visible
    /// records of dirty keys and reports the changed ones, prunes history.
    pub(crate) fn settle(&mut self, now: u64) {
        self.settle_after(now, None);
    }

    /// [`Engine::settle`] of the input that created transaction `created` (`mutate`).
    pub(crate) fn settle_after(&mut self, now: u64, created: Option<u64>) {
        self.start_ready(now);
        self.flush_changes(created);
        self.prune_history(now);
    }

    fn flush_changes(&mut self, created: Option<u64>) {
        if self.dirty.is_empty() {
            return;
        }
        let mut dirty = std::mem::take(&mut self.dirty);
        // A transaction of one mutation, just validated, was the only change: the record it
        // made is the key's visible one, unless a merge computes it. (Its mutation was made
        // from the visible record, which is what the overlay before it gives.)
        let mut known = created.filter(|_| dirty.len() == 1 && self.merges.is_empty()).and_then(|seq| {
            let [only] = self.txs[&seq].tx.mutations.as_slice() else { return None };
            // The dirty key is the one admission marked for it (the very same key).
            Arc::ptr_eq(&dirty[0].1, &only.key).then(|| (only.kind != MutationKind::Delete).then(|| only.modified.clone()))
        });
        self.dirty_indexed = 0;
        // `clear()` costs the set's capacity, which a big batch leaves at 100k+: start afresh then.
        if self.dirty_set.capacity() > 1024 {
            self.dirty_set = FxHashSet::default();
        } else if !self.dirty_set.is_empty() {
            self.dirty_set.clear();
        }
        // Per collection, in collection order; almost always one.
        let mut changes: smallvec::SmallVec<[(u32, Vec<KeyChange>); 1]> = smallvec::SmallVec::new();
        // A big batch's list is sized once rather than grown by doublings.
        let first_capacity = if dirty.len() > 1024 { dirty.len() } else { 1 };
        for (c, key, before) in dirty.drain(..) {
            let (next, has_overlay) = match known.take() {
                Some(next) => (next, true),
                None => self.compute_visible(c, &key),
            };
            let collection = &mut self.collections[c as usize];
            let kind = match (&before, &next) {
                (None, None) => None,
                (None, Some(_)) => Some(ChangeKind::Insert),
                (Some(_), None) => Some(ChangeKind::Delete),
                (Some(old), Some(new)) if Arc::ptr_eq(old, new) || old == new => None,
                (Some(_), Some(_)) => Some(ChangeKind::Update),
            };
            let record = kind.and_then(|_| next.clone());
            // Keys with an overlay keep their visible record; the others show the synced one.
            collection.show(key.clone(), next, has_overlay);
            let Some(kind) = kind else { continue };
            match kind {
                ChangeKind::Insert => collection.visible_len += 1,
                ChangeKind::Delete => collection.visible_len -= 1,
                ChangeKind::Update => {}
            }
            let change = KeyChange { key, kind, record };
            match changes.iter_mut().find(|(collection, _)| *collection == c) {
                Some((_, list)) => list.push(change),
                None => {
                    let mut list = Vec::with_capacity(first_capacity);
                    list.push(change);
                    // In collection order (kept by inserting in place: no sort for a list
                    // that almost always has one entry).
                    let at = changes.iter().position(|(other, _)| *other > c).unwrap_or(changes.len());
                    changes.insert(at, (c, list));
                }
            }
        }
        // Keep the buffer (recomputing never marks keys dirty), unless a big batch grew it: it
        // would hold on to 24 bytes per key of that batch for good.
        if dirty.capacity() <= 1024 {
            self.dirty = dirty;
        }
        for (c, changes) in changes {
            let collection = self.collections[c as usize].name.clone();
            self.effects.push_back(Effect::DataChanged { collection, changes });
        }
    }

    pub(crate) fn is_running(state: TransactionState) -> bool {
        matches!(
            state,
            TransactionState::Pending | TransactionState::Persisting | TransactionState::PersistedAwaitingSync
        )
    }
}
