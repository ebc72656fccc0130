//! The driver: runs the engine's effect loop in the browser.
//!
//! Every input follows the same shape: borrow the engine, call it, drop the borrow, then
//! `drain`: poll every effect into local work, and only then act — user JS (subscribers,
//! persist, awaitSync, setup) never runs while the engine is borrowed, so a subscriber that
//! mutates works. Notifications go through one queue delivered in order, also when a
//! subscriber's own mutation adds to it.
//!
//! Writes: `SaveTransaction`/`EraseTransaction` mark transactions dirty; one `flush` (a
//! microtask after the drain, so a burst of mutations shares it) writes every dirty record as
//! it is then, with the synced-cache changes, in one storage transaction, and runs the
//! `Persist`/`AwaitSync` calls of those drains only after it completed: nothing reaches the
//! network before it is on disk. A transaction already on disk in an earlier version (written
//! by an earlier flush, or adopted from storage) has its mutations there, which never change, so
//! its calls run at once, while the write of its newer version (a new attempt) is in flight:
//! queued work and resumed work do not wait one strict commit per step. A crash meanwhile loses
//! at most the record of that attempt's start, and the reload re-runs it under the same
//! idempotency key. A failed write is reported and retried with the next flush; the
//! transactions keep running in memory.
//!
//! While storage opens in the background (see `recovery.rs`), the driver marks records dirty
//! and keeps cache changes as if it had storage, but flushes nothing: the start ends with the
//! flush that writes them all and then runs the calls held meanwhile.

use std::cell::{Cell, RefCell, RefMut};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;

use js_sys::{Array, Function, Promise};
use rustc_hash::{FxHashMap, FxHashSet};
use tandem_core::protocol::json_error;
use tandem_core::{
    CollectionConfig, Effect, Engine, Fields, Record, Strategy, SyncChange, Transaction, TransactionInput,
    TransactionState, TxId,
};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::change_objects::{ChangeObjects, Changes};
use crate::convert::{self, SyncUpdate};
use crate::errors::{self, Error, TransactionFailure};
use crate::merge::JsMerge;
use crate::recovery::CachePending;
use crate::storage::{CacheOp, Storage, StorageError, StoredTx, WriteBatch, CACHE_ROW_SEPARATOR};
use crate::tabs::{HeldLock, LockManager, Watches};
use crate::tasks::spawn;
use crate::timers::{now, WakeUp};
use crate::transaction::TransactionHandle;

/// Errors kept for the first `onError` subscriber when none is registered yet.
const UNREPORTED_LIMIT: usize = 32;

pub struct Driver {
    pub(crate) engine: RefCell<Engine>,
    pub(crate) client_id: String,
    pub(crate) database: String,
    pub(crate) collections: RefCell<Small<Arc<str>, CollectionState>>,
    tx_subscribers: RefCell<Subscribers>,
    error_subscribers: RefCell<Subscribers>,
    unreported: RefCell<Vec<JsValue>>,
    notices: RefCell<VecDeque<Notice>>,
    delivering: Cell<bool>,
    /// `None`: in memory only (by choice, or since storage failed).
    pub(crate) storage: RefCell<Option<Rc<dyn Storage>>>,
    dirty: RefCell<Dirty>,
    cache_ops: RefCell<Vec<CacheOp>>,
    calls: RefCell<Vec<Call>>,
    /// Unfinished transactions with a version of their record on disk (see the module comment).
    pub(crate) on_disk: RefCell<FxHashSet<TxId>>,
    flush_scheduled: Cell<bool>,
    /// A flush is writing (see `flush`).
    writing: Cell<bool>,
    wake_up: RefCell<WakeUp>,
    waiters: RefCell<Waiters>,
    pub(crate) closed: Cell<bool>,
    /// The collections' sync `close()` functions (with their `this`), called on close.
    pub(crate) sync_closers: RefCell<Vec<(Function, JsValue)>>,
    /// Loaded from storage, waiting for their collections to be created.
    pub(crate) parked: RefCell<Parked>,
    /// Errors raised inside engine calls (merge functions), reported after them.
    pub(crate) callback_errors: Rc<RefCell<Vec<Error>>>,
    pub(crate) tabs: RefCell<Tabs>,
    /// Per-transaction merge functions, registered once each by identity.
    merges: RefCell<Vec<(Function, String)>>,
    /// Storage is being opened in the background: keep what to write, flush nothing yet.
    pub(crate) starting: Cell<bool>,
    /// Settles when the background start is done (with the error `ready` rejects with).
    pub(crate) startup: RefCell<Option<Promise>>,
    pub(crate) ready: RefCell<Option<Promise>>,
    /// What waits for the synced cache to be loaded (`Some` until it is, while starting).
    pub(crate) cache_pending: RefCell<Option<CachePending>>,
    change_objects: RefCell<ChangeObjects>,
    /// What transaction handles call back.
    transaction_api: JsValue,
    /// What every persist and awaitSync call answers through (`calls::answer_for`).
    call_answer: JsValue,
}

/// Per collection: routing and notification state (the data lives in the engine).
pub struct CollectionState {
    /// Shared with the cache writes that name it.
    pub key_field: Arc<str>,
    /// Strategy of `insert`/`update`/`delete` unless a call says otherwise.
    pub strategy: Strategy,
    pub persist: Option<Function>,
    pub await_sync: Option<Function>,
    pub position: Option<String>,
    subscribers: Subscribers,
    /// Converted records, kept once a snapshot was asked for so a new snapshot only converts
    /// what changed; unchanged records keep their identity.
    js_records: Option<js_sys::Map>,
    /// The current snapshot; `None` once the data changed.
    snapshot: Option<JsValue>,
}

#[derive(Default)]
pub struct Parked {
    pub cache: Small<String, Vec<String>>,
    pub positions: Small<String, String>,
    pub transactions: Vec<Transaction>,
}

/// Multi-tab state (see `tabs.rs` and `recovery.rs`).
#[derive(Default)]
pub struct Tabs {
    pub manager: Option<LockManager>,
    pub client_lock: Option<HeldLock>,
    pub watches: Option<Rc<Watches>>,
    pub interval: Option<gloo_timers::callback::Interval>,
    pub adopting: bool,
    pub adopt_again: bool,
    /// The first pass (on start) also reclaims records held under this client's own id.
    pub adopted_once: bool,
}

/// A map for a handful of entries (collections, caches): a vector, searched linearly, which
/// also keeps hash-table code for more key types out of the wasm.
pub struct Small<K, V>(Vec<(K, V)>);

/// The settle functions (resolve, reject) of promises waiting on transactions, by transaction
/// id. Hashed, not a `Small`: an app may await thousands of transactions at once (bench
/// scenario 3 awaits 1000), and a list searched per call and per settle was quadratic.
pub type Waiters = FxHashMap<TxId, Vec<(Function, Function)>>;

impl<K, V> Default for Small<K, V> {
    fn default() -> Self {
        Small(Vec::new())
    }
}

/// Whether `k` is `key`: by address first (collections are named by one shared `Arc`).
fn same_key(k: &str, key: &str) -> bool {
    std::ptr::eq(k, key) || k == key
}

impl<K: std::borrow::Borrow<str>, V> Small<K, V> {
    pub fn get(&self, key: &str) -> Option<&V> {
        self.0.iter().find(|(k, _)| same_key(k.borrow(), key)).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.0.iter_mut().find(|(k, _)| same_key(k.borrow(), key)).map(|(_, v)| v)
    }

    pub fn remove(&mut self, key: &str) -> Option<V> {
        let index = self.0.iter().position(|(k, _)| k.borrow() == key)?;
        Some(self.0.swap_remove(index).1)
    }

    /// The entry of `key`, created with `V::default()` if missing.
    pub fn entry(&mut self, key: K) -> &mut V
    where
        V: Default,
    {
        let index = match self.0.iter().position(|(k, _)| k.borrow() == key.borrow()) {
            Some(index) => index,
            None => {
                self.0.push((key, V::default()));
                self.0.len() - 1
            }
        };
        &mut self.0[index].1
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn insert(&mut self, key: K, value: V) {
        match self.get_mut(key.borrow()) {
            Some(slot) => *slot = value,
            None => self.0.push((key, value)),
        }
    }
}

impl<K, V> Extend<(K, V)> for Small<K, V>
where
    K: std::borrow::Borrow<str>,
{
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, items: I) {
        for (k, v) in items {
            self.insert(k, v);
        }
    }
}

/// Transactions to write, each once. Known by the address of their id: the engine hands out
/// clones of one id per transaction, and one held here keeps its address from being reused.
/// (Hashing a 50-byte id per state change showed in an update's profile.)
#[derive(Default)]
struct Dirty {
    order: Vec<TxId>,
    set: FxHashSet<usize>,
}

impl Dirty {
    fn insert(&mut self, id: TxId) {
        if self.set.insert(Arc::as_ptr(&id) as *const u8 as usize) {
            self.order.push(id);
        }
    }

    fn take(&mut self) -> Vec<TxId> {
        self.set.clear();
        // Sized for a burst like this one: the next one's updates do not grow it step by step.
        let capacity = self.order.len();
        std::mem::replace(&mut self.order, Vec::with_capacity(capacity))
    }
}

/// Shared with the deliveries under way, which call the list as it was when they began (a
/// subscriber may subscribe or unsubscribe while called): a change copies it only then, and a
/// delivery takes it without copying a function (each copy is a JS reference-table slot).
#[derive(Default)]
struct Subscribers {
    next: u32,
    list: Rc<Vec<(u32, Function)>>,
}

impl Subscribers {
    fn add(&mut self, f: Function) -> u32 {
        self.next += 1;
        Rc::make_mut(&mut self.list).push((self.next, f));
        self.next
    }

    fn remove(&mut self, id: u32) {
        Rc::make_mut(&mut self.list).retain(|(i, _)| *i != id);
    }

    /// The subscribers as they are now.
    fn current(&self) -> Rc<Vec<(u32, Function)>> {
        self.list.clone()
    }
}

/// A write under way, with what it carries (to write again if it fails).
pub(crate) type IssuedWrite = (crate::storage::LocalFuture<Result<(), StorageError>>, Vec<TxId>, Rc<Vec<CacheOp>>);

enum Call {
    Persist { id: TxId, attempt: u32 },
    AwaitSync { id: TxId },
}

impl Call {
    fn transaction(&self) -> &TxId {
        match self {
            Call::Persist { id, .. } | Call::AwaitSync { id } => id,
        }
    }
}

enum Notice {
    Data { collection: Arc<str>, changes: Array },
    Transactions(Array),
    Settle { waiters: Vec<(Function, Function)>, outcome: Result<JsValue, JsValue> },
    Error(JsValue),
}

/// Appends `record` to the cache writes: to the last op if it puts records of the same
/// collection (a run of records is one op), else as a new op sized for `expected` records.
fn put_cached(ops: &mut Vec<CacheOp>, collection: &Arc<str>, key_field: &Arc<str>, record: Record, expected: usize) {
    if let Some(CacheOp::Put { collection: last, records, .. }) = ops.last_mut() {
        if last == collection {
            records.push(record);
            return;
        }
    }
    let mut records = Vec::with_capacity(expected);
    records.push(record);
    ops.push(CacheOp::Put { collection: collection.clone(), key_field: key_field.clone(), records });
}

pub struct CollectionSetup {
    pub name: String,
    pub key_field: String,
    pub strategy: Strategy,
    pub persist: Option<Function>,
    pub await_sync: Option<Function>,
    pub merge: Option<Function>,
    /// No sync layer: completed changes are the collection's synced data (and cached as such).
    pub local: bool,
}

impl Driver {
    pub fn new(engine: Engine, database: String) -> Rc<Driver> {
        Rc::new_cyclic(|driver| Driver {
            transaction_api: crate::transaction::api_for(driver.clone(), engine.client_id()),
            call_answer: crate::calls::answer_for(driver.clone()),
            client_id: engine.client_id().to_string(),
            engine: RefCell::new(engine),
            database,
            collections: RefCell::default(),
            tx_subscribers: RefCell::default(),
            error_subscribers: RefCell::default(),
            unreported: RefCell::default(),
            notices: RefCell::default(),
            delivering: Cell::new(false),
            storage: RefCell::new(None),
            dirty: RefCell::default(),
            cache_ops: RefCell::default(),
            calls: RefCell::default(),
            on_disk: RefCell::default(),
            flush_scheduled: Cell::new(false),
            writing: Cell::new(false),
            wake_up: RefCell::default(),
            waiters: RefCell::default(),
            closed: Cell::new(false),
            sync_closers: RefCell::new(Vec::new()),
            parked: RefCell::default(),
            callback_errors: Rc::default(),
            tabs: RefCell::default(),
            merges: RefCell::default(),
            starting: Cell::new(false),
            startup: RefCell::default(),
            ready: RefCell::default(),
            cache_pending: RefCell::default(),
            change_objects: RefCell::default(),
        })
    }

    /// From now until the background start ends, writes are kept for it.
    pub(crate) fn begin_startup(&self) {
        self.starting.set(true);
        *self.cache_pending.borrow_mut() = Some(CachePending::default());
    }

    pub(crate) fn is_starting(&self) -> bool {
        self.starting.get()
    }

    /// Whether effects are to be written: storage is attached, or is being opened.
    fn storing(&self) -> bool {
        self.starting.get() || self.storage.borrow().is_some()
    }

    pub(crate) fn engine_mut(&self) -> Result<RefMut<'_, Engine>, Error> {
        self.engine.try_borrow_mut().map_err(|_| Error::Reentrant)
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.closed.get() {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    pub(crate) fn storage(&self) -> Option<Rc<dyn Storage>> {
        self.storage.borrow().clone()
    }

    // ---- inputs ----

    /// Creates a collection; returns its name as the engine holds it, which finds it without
    /// comparing text (`Small::get`, `Engine::index_of`).
    pub fn add_collection(self: &Rc<Self>, setup: CollectionSetup) -> Result<Arc<str>, Error> {
        self.check_open()?;
        let CollectionSetup { name, key_field, strategy, persist, await_sync, merge, local } = setup;
        let shared_name = {
            let mut engine = self.engine_mut()?;
            if engine.has_collection(&name) {
                return Err(tandem_core::EngineError::DuplicateCollection { collection: name }.into());
            }
            let mut config = CollectionConfig::new(&name).key_field(&key_field);
            if local {
                config = config.local();
            }
            if let Some(merge) = merge {
                // Named after the collection: stored transactions find it again after a reload.
                let merge_name = format!("collection:{name}");
                engine.register_merge(&merge_name, Box::new(JsMerge::new(merge, self.callback_errors.clone())));
                config = config.merge(merge_name);
            }
            engine.create_collection(config)?;
            // The synced cache first (as a snapshot), so the restored optimistic changes below
            // are shown over the last synced data.
            let cached = self.parked.borrow_mut().cache.remove(&name);
            if let Some(rows) = cached {
                let batch = cached_batch(&name, rows, &mut self.callback_errors.borrow_mut()).as_snapshot();
                if let Err(e) = engine.sync_received(now(), batch) {
                    self.callback_errors.borrow_mut().push(e.into());
                }
            }
            engine.collection_name(&name).expect("just created")
        };
        let position = self.parked.borrow_mut().positions.remove(&name);
        self.collections.borrow_mut().insert(
            shared_name.clone(),
            CollectionState {
                key_field: Arc::from(key_field),
                strategy,
                persist,
                await_sync,
                position,
                subscribers: Subscribers::default(),
                js_records: None,
                snapshot: None,
            },
        );
        self.restore_parked();
        self.drain();
        Ok(shared_name)
    }

    /// Applies a transaction optimistically (at `now`, Unix ms) and schedules its persist.
    pub fn mutate(
        self: &Rc<Self>,
        now: u64,
        mut input: TransactionInput,
        merge: Option<Function>,
    ) -> Result<TxId, Error> {
        self.check_open()?;
        // Routed to its first collection's mutationFn, which decides whether it awaits sync.
        if let Some(first) = input.mutations.first() {
            input.await_sync =
                self.collections.borrow().get(&first.collection).is_some_and(|c| c.await_sync.is_some());
        }
        if let Some(merge) = merge {
            let name = self.merge_name(merge)?;
            input.strategy = Strategy::Parallel { merge: Some(name) };
        }
        let id = self.engine_mut()?.mutate(now, input)?;
        self.drain();
        Ok(id)
    }

    /// A per-transaction merge function, registered once per function.
    fn merge_name(&self, merge: Function) -> Result<String, Error> {
        let mut merges = self.merges.borrow_mut();
        if let Some((_, name)) = merges.iter().find(|(f, _)| js_sys::Object::is(f, &merge)) {
            return Ok(name.clone());
        }
        let name = format!("transaction:{}", merges.len() + 1);
        self.engine_mut()?.register_merge(&name, Box::new(JsMerge::new(merge.clone(), self.callback_errors.clone())));
        merges.push((merge, name.clone()));
        Ok(name)
    }

    /// A batch from the sync layer; also written to the synced cache.
    pub fn sync(self: &Rc<Self>, update: SyncUpdate) -> Result<(), Error> {
        if self.closed.get() {
            return Ok(()); // A closed instance ignores its sync layer.
        }
        let SyncUpdate { batch, position } = update;
        let collection: Arc<str> = Arc::from(batch.collection.as_str());
        let cache = if self.storing() { self.cache_ops_for(&collection, &batch) } else { Vec::new() };
        self.engine_mut()?.sync_received(now(), batch)?;
        {
            let mut cache_ops = self.cache_ops.borrow_mut();
            cache_ops.extend(cache);
            if let Some(position) = position {
                if let Some(state) = self.collections.borrow_mut().get_mut(&collection) {
                    state.position = position.clone();
                }
                if self.storing() {
                    cache_ops.push(CacheOp::Position { collection, position });
                }
            }
        }
        self.schedule_flush();
        self.drain();
        Ok(())
    }

    /// Subscribers' (and the kept records') view of changed records of `collection`.
    fn data_changed(&self, engine: &Engine, collection: Arc<str>, changes: Changes, notices: &mut VecDeque<Notice>) {
        let mut collections = self.collections.borrow_mut();
        let Some(state) = collections.get_mut(&collection) else {
            return;
        };
        state.snapshot = None;
        let subscribed = !state.subscribers.list.is_empty();
        if !subscribed && state.js_records.is_none() {
            return; // Nobody looks: convert nothing.
        }
        // The converted records, if kept, get the same objects as the subscribers.
        let messages = self.change_objects.borrow_mut().change_list(
            changes,
            &engine.reader(&collection),
            state.js_records.as_ref(),
        );
        if subscribed {
            notices.push_back(Notice::Data { collection, changes: messages });
        }
    }

    /// A local collection's synced record, for the synced cache.
    fn cache_local(&self, collection: Arc<str>, key: tandem_core::Key, record: Option<Record>) {
        let mut ops = self.cache_ops.borrow_mut();
        let Some(record) = record else {
            ops.push(CacheOp::Delete { collection, key });
            return;
        };
        let Some(key_field) = self.collections.borrow().get(&collection).map(|c| c.key_field.clone()) else {
            return;
        };
        put_cached(&mut ops, &collection, &key_field, record, 1);
    }

    /// The cache writes mirroring a batch: the synced records as the server sent them (shared
    /// with the engine, which may hold them back a while for keys that pending transactions
    /// lock), serialised only when written.
    fn cache_ops_for(&self, collection: &Arc<str>, batch: &tandem_core::SyncBatch<Record>) -> Vec<CacheOp> {
        let collections = self.collections.borrow();
        let Some(state) = collections.get(collection) else {
            return Vec::new();
        };
        let mut ops = Vec::new();
        if batch.snapshot {
            ops.push(CacheOp::Clear { collection: collection.clone() });
        }
        let key_field = state.key_field.clone();
        for (i, change) in batch.changes.iter().enumerate() {
            match change {
                SyncChange::Upsert(record) => {
                    put_cached(&mut ops, collection, &key_field, record.clone(), batch.changes.len() - i)
                }
                SyncChange::Delete(key) => ops.push(CacheOp::Delete { collection: collection.clone(), key: key.clone() }),
            }
        }
        ops
    }

    pub fn set_position(self: &Rc<Self>, collection: &str, position: Option<String>) -> Result<(), Error> {
        self.check_open()?;
        let mut collections = self.collections.borrow_mut();
        let state = collections
            .get_mut(collection)
            .ok_or_else(|| tandem_core::EngineError::UnknownCollection { collection: collection.into() })?;
        state.position = position.clone();
        drop(collections);
        if let Some(pending) = self.cache_pending.borrow_mut().as_mut() {
            pending.position_set(collection);
        }
        if self.storing() {
            self.cache_ops.borrow_mut().push(CacheOp::Position { collection: collection.into(), position });
            self.schedule_flush();
        }
        Ok(())
    }

    fn on_timer(self: &Rc<Self>) {
        self.wake_up.borrow_mut().fired();
        if self.closed.get() {
            return;
        }
        if let Ok(mut engine) = self.engine.try_borrow_mut() {
            engine.handle_timeout(now());
        }
        self.drain();
    }

    // ---- outputs ----

    /// Polls every effect, turns it into work, and delivers notifications. Does nothing while
    /// the engine is borrowed: the outer call drains then.
    pub fn drain(self: &Rc<Self>) {
        let Ok(mut engine) = self.engine.try_borrow_mut() else {
            return;
        };
        let storing = self.storing();
        let want_tx_events = !self.tx_subscribers.borrow().list.is_empty();
        let mut tx_events: Vec<JsValue> = Vec::new();
        // Queued straight behind the ones not delivered yet (no user code runs in this loop).
        let mut notices = self.notices.borrow_mut();
        let mut flush = false;
        while let Some(effect) = engine.poll_effect() {
            match effect {
                Effect::Persist { transaction, attempt } => {
                    self.calls.borrow_mut().push(Call::Persist { id: transaction, attempt });
                    flush = true;
                }
                Effect::AwaitSync { transaction } => {
                    self.calls.borrow_mut().push(Call::AwaitSync { id: transaction });
                    flush = true;
                }
                Effect::SaveTransaction { transaction } | Effect::EraseTransaction { transaction } => {
                    if storing {
                        self.dirty.borrow_mut().insert(transaction);
                        flush = true;
                    }
                }
                Effect::TransactionChanged { transaction, state } => {
                    if want_tx_events {
                        tx_events.push(convert::transaction_event(&transaction, state.as_str()));
                    }
                    if state.is_terminal() {
                        self.on_disk.borrow_mut().remove(&transaction);
                        if let Some(waiters) = self.waiters.borrow_mut().remove(&transaction) {
                            if let Some(tx) = engine.transaction(&transaction) {
                                notices.push_back(Notice::Settle { waiters, outcome: settle_outcome(tx) });
                            }
                        }
                    }
                }
                Effect::DataChanged { collection, changes } => {
                    self.data_changed(&engine, collection, Changes::Listed(&changes), &mut notices)
                }
                Effect::Loaded { collection, keys } => {
                    self.data_changed(&engine, collection, Changes::Loaded(&keys), &mut notices)
                }
                Effect::LocalSynced { collection, key, record } => {
                    // Written with the transactions' saves: a reload finds them in the cache.
                    if storing {
                        self.cache_local(collection, key, record);
                        flush = true;
                    }
                }
            }
        }
        let due = engine.poll_timeout();
        drop(engine);

        for error in self.callback_errors.borrow_mut().drain(..) {
            notices.push_back(Notice::Error(error.into()));
        }
        if !tx_events.is_empty() {
            notices.push_back(Notice::Transactions(tx_events.into_iter().collect()));
        }
        drop(notices);
        if flush {
            self.schedule_flush();
        }
        if !self.closed.get() {
            let weak = Rc::downgrade(self);
            self.wake_up.borrow_mut().arm(due, move || {
                if let Some(driver) = weak.upgrade() {
                    driver.on_timer();
                }
            });
        }
        self.deliver();
    }

    /// Delivers queued notifications in order. Re-entrant calls (a subscriber that mutates)
    /// only queue; the outer loop delivers their notifications after the current ones.
    fn deliver(self: &Rc<Self>) {
        if self.delivering.replace(true) {
            return;
        }
        loop {
            let notice = self.notices.borrow_mut().pop_front();
            let Some(notice) = notice else { break };
            match notice {
                Notice::Data { collection, changes } => {
                    let subscribers = self.collections.borrow().get(&collection).map(|c| c.subscribers.current());
                    for (_, f) in subscribers.iter().flat_map(|list| list.iter()) {
                        if let Err(thrown) = f.call1(&JsValue::UNDEFINED, &changes) {
                            self.queue_callback_error("SubscriberError", "a subscriber", Some(&collection), thrown);
                        }
                    }
                }
                Notice::Transactions(events) => {
                    let subscribers = self.tx_subscribers.borrow().current();
                    for (_, f) in subscribers.iter() {
                        if let Err(thrown) = f.call1(&JsValue::UNDEFINED, &events) {
                            self.queue_callback_error("SubscriberError", "a transaction subscriber", None, thrown);
                        }
                    }
                }
                Notice::Settle { waiters, outcome } => {
                    for (resolve, reject) in waiters {
                        match &outcome {
                            Ok(value) => resolve.call1(&JsValue::UNDEFINED, value),
                            Err(error) => reject.call1(&JsValue::UNDEFINED, error),
                        }
                        .ok();
                    }
                }
                Notice::Error(error) => {
                    let subscribers = self.error_subscribers.borrow().current();
                    if subscribers.is_empty() {
                        let mut unreported = self.unreported.borrow_mut();
                        if unreported.len() < UNREPORTED_LIMIT {
                            unreported.push(error);
                        }
                        continue;
                    }
                    for (_, f) in subscribers.iter() {
                        f.call1(&JsValue::UNDEFINED, &error).ok(); // An error handler's own error goes nowhere.
                    }
                }
            }
        }
        self.delivering.set(false);
    }

    fn queue_callback_error(&self, name: &'static str, what: &str, collection: Option<&str>, thrown: JsValue) {
        let (_, message) = errors::name_and_message(&thrown);
        let error =
            Error::Callback { name, what: what.into(), message, collection: collection.map(Into::into), cause: thrown };
        self.notices.borrow_mut().push_back(Notice::Error(error.into()));
    }

    /// Reports an error to `onError` subscribers (kept for the first one if there is none).
    pub fn report(self: &Rc<Self>, error: Error) {
        self.notices.borrow_mut().push_back(Notice::Error(error.into()));
        self.deliver();
    }

    // ---- writes and calls ----

    fn schedule_flush(self: &Rc<Self>) {
        if self.starting.get() {
            return; // The start ends with a flush.
        }
        if self.flush_scheduled.replace(true) {
            return;
        }
        let driver = self.clone();
        spawn(async move { driver.flush().await });
    }

    /// Writes what is dirty, then runs the calls that wait for it. One write at a time: a flush
    /// asked for while one is in flight is made by that one, once its write is done, with all
    /// that became dirty meanwhile. An isolated mutation is written at once; a stream of them in
    /// fewer, larger IndexedDB commits, each of which leaves the page's next work cold
    /// (bench/README.md).
    pub(crate) async fn flush(self: Rc<Self>) {
        if self.writing.replace(true) {
            // `flush_scheduled` stays set: the flush in flight goes again. The calls of
            // transactions on disk need no write: they run now (a queued transaction's next step
            // does not wait for a commit), the others wait for theirs.
            let (at_once, after_write) = self.take_calls();
            self.calls.borrow_mut().extend(after_write);
            for call in at_once {
                self.run_call(call);
            }
            return;
        }
        loop {
            self.flush_scheduled.set(false);
            if self.closed.get() {
                break;
            }
            let (at_once, after_write) = self.take_calls();
            let issued = self.issue_write();
            for call in at_once {
                self.run_call(call);
            }
            if let Some((written, ids, cache)) = issued {
                match written.await {
                    Ok(()) => self.written(&ids),
                    Err(error) => self.write_failed(error, ids, cache),
                }
            }
            if self.closed.get() {
                break;
            }
            for call in after_write {
                self.run_call(call);
            }
            if !self.flush_scheduled.get() {
                break;
            }
        }
        self.writing.set(false);
    }

    /// The calls to make: those of transactions on disk (which can run at once), and the others.
    fn take_calls(&self) -> (Vec<Call>, Vec<Call>) {
        let calls = {
            let mut calls = self.calls.borrow_mut();
            let capacity = calls.len(); // As `Dirty::take`.
            std::mem::replace(&mut *calls, Vec::with_capacity(capacity))
        };
        let on_disk = self.on_disk.borrow();
        calls.into_iter().partition(|call| on_disk.contains(call.transaction()))
    }

    /// Notes the unfinished transactions of a completed write as on disk.
    fn written(&self, ids: &[TxId]) {
        let Ok(engine) = self.engine.try_borrow() else {
            return; // Only a call into the engine's user code could hold it; the next write notes them.
        };
        let mut on_disk = self.on_disk.borrow_mut();
        for id in ids {
            match engine.transaction(id) {
                Some(tx) if !tx.state.is_terminal() => on_disk.insert(id.clone()),
                _ => on_disk.remove(id),
            };
        }
    }

    /// Issues one storage write of every dirty transaction (as it is now) and pending cache
    /// change. Returns the write's future and what it carried, for a retry if it fails.
    pub(crate) fn issue_write(self: &Rc<Self>) -> Option<IssuedWrite> {
        let storage = self.storage()?;
        let engine = self.engine.try_borrow().ok()?;
        let ids = self.dirty.borrow_mut().take();
        let cache = Rc::new(std::mem::take(&mut *self.cache_ops.borrow_mut()));
        if ids.is_empty() && cache.is_empty() {
            return None;
        }
        let mut batch = WriteBatch { writer: self.client_id.clone(), cache: Rc::clone(&cache), ..Default::default() };
        for id in &ids {
            match engine.transaction(id) {
                Some(tx) => batch.put.push(StoredTx {
                    id: id.to_string(),
                    owner: self.client_id.clone(),
                    json: tandem_core::protocol::json_text(tx),
                }),
                None => batch.erase.push(id.to_string()),
            }
        }
        drop(engine);
        Some((storage.write(batch), ids, cache))
    }

    fn write_failed(self: &Rc<Self>, error: StorageError, ids: Vec<TxId>, cache: Rc<Vec<CacheOp>>) {
        if error.kind.is_fatal() {
            self.lose_storage();
        } else {
            // Not on disk: write them again with the next flush, before anything newer.
            let mut dirty = self.dirty.borrow_mut();
            let newer = dirty.take();
            for id in ids.iter().cloned().chain(newer) {
                dirty.insert(id);
            }
            let mut cache_ops = self.cache_ops.borrow_mut();
            let newer = std::mem::take(&mut *cache_ops);
            let cache = Rc::try_unwrap(cache).unwrap_or_else(|shared| (*shared).clone());
            *cache_ops = cache.into_iter().chain(newer).collect();
        }
        let transaction_ids = ids.iter().map(|id| id.to_string()).collect();
        self.report(Error::StorageWrite { error, transaction_ids });
    }

    /// Storage is gone for good: continue in memory.
    pub(crate) fn lose_storage(&self) {
        if let Some(storage) = self.storage.borrow_mut().take() {
            storage.close();
        }
        self.dirty.borrow_mut().take();
        self.cache_ops.borrow_mut().clear();
    }

    fn run_call(self: &Rc<Self>, call: Call) {
        let (id, persist) = match &call {
            Call::Persist { id, .. } => (id, true),
            Call::AwaitSync { id } => (id, false),
        };
        // Look up what to call and with what, then let go of the engine before calling.
        let prepared = {
            let engine = self.engine.borrow();
            let Some(tx) = engine.transaction(id) else {
                return;
            };
            let current = match &call {
                Call::Persist { attempt, .. } => {
                    tx.state == TransactionState::Persisting && tx.current_attempt == *attempt
                }
                Call::AwaitSync { .. } => tx.state == TransactionState::PersistedAwaitingSync,
            };
            if !current {
                return; // Overtaken (a confirmation, a timeout) since the effect was polled.
            }
            let collections = self.collections.borrow();
            let route = tx.mutations.first().and_then(|m| collections.get(&m.collection));
            let function = route.and_then(|c| if persist { c.persist.clone() } else { c.await_sync.clone() });
            function.map(|f| {
                let attempt = match &call {
                    Call::Persist { attempt, .. } => Some(*attempt),
                    Call::AwaitSync { .. } => None,
                };
                (f, crate::calls::params(tx, attempt, &self.transaction_api), attempt)
            })
        };
        let Some((function, params, attempt)) = prepared else {
            // A collection without mutationFn (or without awaitSync) is local: done at once.
            match call {
                Call::Persist { id, attempt } => self.persisted(&id, attempt, Ok(())),
                Call::AwaitSync { id } => self.synced(&id),
            }
            return;
        };
        crate::calls::call(&function, &params, &self.call_answer, id, attempt);
    }

    /// A persist's (`attempt`) or an `awaitSync`'s outcome.
    pub(crate) fn answered(self: &Rc<Self>, id: &str, attempt: Option<u32>, outcome: Result<(), JsValue>) {
        if self.closed.get() {
            return; // A closed instance's late answers are not its business any more.
        }
        let Some(attempt) = attempt else {
            if let Err(thrown) = outcome {
                // Persist succeeded, so the server has the data; the sync will show it.
                let (_, message) = errors::name_and_message(&thrown);
                let collection = self.collection_of(id);
                self.report(Error::Callback {
                    name: "AwaitSyncError",
                    what: format!("awaitSync of transaction `{id}`"),
                    message,
                    collection,
                    cause: thrown,
                });
            }
            return self.synced(id);
        };
        self.persisted(id, attempt, outcome)
    }

    /// The collection of a transaction's first mutation, if it is still in history.
    fn collection_of(&self, id: &str) -> Option<String> {
        let engine = self.engine.try_borrow().ok()?;
        Some(engine.transaction(id)?.mutations.first()?.collection.to_string())
    }

    fn persisted(self: &Rc<Self>, id: &str, attempt: u32, outcome: Result<(), JsValue>) {
        if let Ok(mut engine) = self.engine_mut() {
            // Unknown only if pruned meanwhile: nothing left to do.
            let _ = match outcome {
                Ok(()) => engine.persist_succeeded(now(), id, attempt),
                Err(thrown) => engine.persist_failed(now(), id, attempt, errors::error_info(&thrown)),
            };
        }
        self.drain();
    }

    fn synced(self: &Rc<Self>, id: &str) {
        if let Ok(mut engine) = self.engine_mut() {
            let _ = engine.await_sync_done(now(), id);
        }
        self.drain();
    }

    // ---- reads ----

    /// The visible record of `key`; `key_js` is its JS string, if the caller has it.
    pub fn get(&self, collection: &str, key: &str, key_js: Option<&JsValue>) -> Result<JsValue, Error> {
        let collections = self.collections.try_borrow().map_err(|_| Error::Reentrant)?;
        if let Some(records) = collections.get(collection).and_then(|c| c.js_records.as_ref()) {
            return Ok(records.get(&key_js.cloned().unwrap_or_else(|| JsValue::from_str(key))));
        }
        let engine = self.engine.try_borrow().map_err(|_| Error::Reentrant)?;
        Ok(match engine.get(collection, key) {
            Some(record) => self.change_objects.borrow_mut().record_to_js(record, key, key_js),
            None => JsValue::UNDEFINED,
        })
    }

    /// `{ [key]: record }`, the same object until the collection's data changes.
    pub fn snapshot(&self, collection: &str) -> Result<JsValue, Error> {
        let mut collections = self.collections.borrow_mut();
        let state = collections
            .get_mut(collection)
            .ok_or_else(|| tandem_core::EngineError::UnknownCollection { collection: collection.into() })?;
        if let Some(snapshot) = &state.snapshot {
            return Ok(snapshot.clone());
        }
        let records = match &state.js_records {
            Some(records) => records.clone(),
            None => {
                let engine = self.engine.try_borrow().map_err(|_| Error::Reentrant)?;
                let records = js_sys::Map::new();
                // A loop, not `collect`: its size-hint machinery for this iterator costs the wasm ~0.8 KB.
                let mut keys: Vec<tandem_core::Key> = Vec::new();
                for (key, _) in engine.records(collection) {
                    keys.push(key.clone());
                }
                self.change_objects.borrow_mut().fill_records(&keys, &engine.reader(collection), &records);
                state.js_records = Some(records.clone());
                records
            }
        };
        // Not `expect`: that would link `JsValue`'s `Debug` for a failure that cannot happen.
        let snapshot: JsValue =
            js_sys::Object::from_entries(&records).unwrap_or_else(|_| unreachable!("a Map has entries")).into();
        js_sys::Object::freeze(snapshot.unchecked_ref::<js_sys::Object>());
        state.snapshot = Some(snapshot.clone());
        Ok(snapshot)
    }

    pub fn subscribe(&self, collection: &str, f: Function) -> Result<u32, Error> {
        let mut collections = self.collections.borrow_mut();
        let state = collections
            .get_mut(collection)
            .ok_or_else(|| tandem_core::EngineError::UnknownCollection { collection: collection.into() })?;
        Ok(state.subscribers.add(f))
    }

    pub fn unsubscribe(&self, collection: &str, id: u32) {
        if let Some(state) = self.collections.borrow_mut().get_mut(collection) {
            state.subscribers.remove(id);
        }
    }

    pub fn subscribe_transactions(&self, f: Function) -> u32 {
        self.tx_subscribers.borrow_mut().add(f)
    }

    pub fn unsubscribe_transactions(&self, id: u32) {
        self.tx_subscribers.borrow_mut().remove(id);
    }

    /// Adds an error subscriber; it first receives the errors nobody has seen yet.
    pub fn on_error(self: &Rc<Self>, f: Function) -> u32 {
        let id = self.error_subscribers.borrow_mut().add(f);
        let unreported = std::mem::take(&mut *self.unreported.borrow_mut());
        self.notices.borrow_mut().extend(unreported.into_iter().map(Notice::Error));
        self.deliver();
        id
    }

    pub fn off_error(&self, id: u32) {
        self.error_subscribers.borrow_mut().remove(id);
    }

    /// The handle of a transaction `mutate` created.
    pub fn transaction_handle(&self, id: &str) -> TransactionHandle {
        crate::transaction::handle(&self.transaction_api, &self.client_id, id)
    }

    /// `f` of the transaction's record, if it is still in history.
    pub fn with_transaction(&self, id: &str, f: impl FnOnce(&Transaction) -> JsValue) -> Option<JsValue> {
        self.engine.try_borrow().ok()?.transaction(id).map(f)
    }

    /// A promise settling when the transaction completes (with its record) or fails (with a
    /// `TransactionFailedError`).
    pub fn settled(&self, id: &str) -> Result<Promise, Error> {
        let engine = self.engine.try_borrow().map_err(|_| Error::Reentrant)?;
        let tx = engine
            .transaction(id)
            .ok_or_else(|| tandem_core::EngineError::UnknownTransaction { id: id.to_string() })?;
        if tx.state.is_terminal() {
            return Ok(match settle_outcome(tx) {
                Ok(value) => Promise::resolve(&value),
                Err(error) => Promise::reject(&error),
            });
        }
        let key = tx.id.clone();
        drop(engine);
        let (promise, resolve, reject) = crate::tasks::promise_with_resolvers();
        self.waiters.borrow_mut().entry(key).or_default().push((resolve, reject));
        Ok(promise)
    }

    // ---- closing ----

    /// Stops everything this instance runs: timers, lock watches, calls into user code. The
    /// dirty records are written first; the returned future resolves once that write is done,
    /// and only then is the client lock released (so an adopter sees the final state). Closed
    /// while its storage is still opening, it waits for the storage and writes then: nothing
    /// accepted is lost.
    pub fn close(self: &Rc<Self>) -> impl std::future::Future<Output = ()> {
        let first = !self.closed.replace(true);
        self.wake_up.borrow_mut().cancel();
        // The sync layers' connections end with the client (user code: no borrow is held).
        let closers = std::mem::take(&mut *self.sync_closers.borrow_mut());
        for (close, this) in closers {
            if let Err(thrown) = close.call0(&this) {
                let (_, message) = errors::name_and_message(&thrown);
                self.report(Error::Reported { message, error: thrown });
            }
        }
        let startup = if self.starting.get() { self.startup.borrow().clone() } else { None };
        // Issued at once when possible: writes commit in call order, before whatever the page
        // does next.
        let write = if first && startup.is_none() { self.issue_write() } else { None };
        let detached = if startup.is_none() { Some(self.detach()) } else { None };
        let driver = self.clone();
        async move {
            let (write, (lock, storage)) = match startup {
                Some(startup) => {
                    JsFuture::from(startup).await.ok();
                    (if first { driver.issue_write() } else { None }, driver.detach())
                }
                None => (write, detached.expect("detached when not starting")),
            };
            if let Some((written, _, _)) = write {
                written.await.ok();
            }
            if let Some(storage) = storage {
                storage.close();
            }
            drop(lock);
        }
    }

    /// Takes the lock and storage and stops the adoption timer and lock watches.
    fn detach(&self) -> (Option<HeldLock>, Option<Rc<dyn Storage>>) {
        let mut tabs = self.tabs.borrow_mut();
        tabs.interval = None;
        tabs.watches = None; // Aborts pending watches.
        (tabs.client_lock.take(), self.storage.borrow_mut().take())
    }
}

/// What a transaction's `settled()` promise settles with.
fn settle_outcome(tx: &Transaction) -> Result<JsValue, JsValue> {
    match (&tx.state, &tx.error) {
        (TransactionState::Failed, Some(error)) => Err(Error::TransactionFailed(Box::new(TransactionFailure {
            transaction_id: tx.id.to_string(),
            cause_transaction_id: error.transaction_id.as_ref().map(|id| id.to_string()),
            message: error.message.clone(),
            cause: error.error.clone(),
        }))
        .into()),
        _ => Ok(convert::transaction_to_js(tx)),
    }
}

/// The synced cache's rows of a collection as a sync batch: each row one record's JSON text or
/// several joined by [`CACHE_ROW_SEPARATOR`]; records that cannot be read are reported in
/// `errors` and left out.
pub(crate) fn cached_batch(collection: &str, rows: Vec<String>, errors: &mut Vec<Error>) -> tandem_core::SyncBatch<Record> {
    let mut batch = tandem_core::SyncBatch::<Record>::of(collection);
    for joined in &rows {
        for json in joined.split(CACHE_ROW_SEPARATOR) {
            match Fields::parse(json) {
                Ok(Some(record)) => batch.changes.push(SyncChange::Upsert(Record::new(record))),
                Ok(None) => errors.push(unreadable(&format!("a cached record of `{collection}`"), "not an object")),
                Err(e) => errors.push(unreadable(&format!("a cached record of `{collection}`"), json_error(&e))),
            }
        }
    }
    batch
}

pub(crate) fn unreadable(what: &str, error: impl std::fmt::Display) -> Error {
    Error::Storage(StorageError::new(
        crate::storage::StorageErrorKind::ReadFailed,
        format!("{what} could not be read back: {error}"),
    ))
}

pub(crate) fn unreadable_transaction(id: &str, error: String) -> Error {
    unreadable(&format!("stored transaction `{id}`"), error)
}

/// Calls user code that may return a promise (or throw): the outcome once it settled.
pub(crate) async fn call_async(function: &Function, argument: &JsValue) -> Result<JsValue, JsValue> {
    let returned = function.call1(&JsValue::UNDEFINED, argument)?;
    JsFuture::from(Promise::resolve(&returned)).await
}
