//! Starting in the background, recovery after a reload and adoption of other instances' work.
//!
//! A client works in memory from the moment it is created. Its start runs in the background:
//! take the instance lock, open storage, load the synced cache, adopt the outbox records of
//! instances that are gone (the previous page load is one of them), then write everything
//! accepted meanwhile. Until then the driver keeps what it would have written (dirty records,
//! cache changes) and holds its persist calls, so the write-ahead rule holds from the first
//! mutation: nothing reaches the network before it is on disk.
//!
//! The synced cache is older than anything the sync layer delivers in this session, so the
//! sync setups of collections created before it was loaded wait for it: they then get the
//! stored sync position (to resume from), and their data lands on top of the cached data. The
//! cache goes into such collections as upserts; since persist calls wait for the start too, no
//! transaction of this session has completed by then, so the cache only ever goes under
//! unfinished work (held, or re-merged, like any sync change). Stored records wait ("parked")
//! until their collections exist; they are restored over the cached synced data, and pending
//! work resumes with the same transaction ids (the idempotency keys).
//!
//! Later, a live instance that closes leaves records behind: the survivors watch the locks of
//! owners they saw and check periodically, so those records are adopted by exactly one of them.

use std::rc::Rc;

use js_sys::{Function, Promise};
use tandem_core::Transaction;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::driver::{cached_batch, unreadable_transaction, Driver};
use crate::errors::Error;
use crate::storage::{CacheContents, LocalFuture, Storage, StorageError, StorageErrorKind};
use crate::tabs::{self, acquire, adopt_lock_name, client_lock_name, held_lock_names, live_owners, Watches};
use crate::tasks::{next_task, promise, spawn};
use crate::timers::now;

/// Opens the storage a client starts with (IndexedDB, or what a test provides).
pub type StorageOpening = LocalFuture<Opened>;
/// The outcome of opening storage.
pub type Opened = Result<Rc<dyn Storage>, StorageError>;

/// What the background start needs.
pub struct StorageStart {
    pub opening: StorageOpening,
    /// The app chose the client id: another live instance holding it is an error.
    pub given_id: bool,
    pub adopt_interval_ms: u32,
}

/// What waits for the synced cache while the client starts.
#[derive(Default)]
pub struct CachePending {
    /// Collections whose sync position the app set meanwhile: newer than the cached one.
    positions_set: Vec<String>,
    /// The sync setups of collections created meanwhile. They start once the cache is in, so a
    /// setup gets the stored sync position (to resume from) and its data always lands on top of
    /// the older cached data, never under it.
    setups: Vec<(String, Function)>,
}

impl CachePending {
    pub fn position_set(&mut self, collection: &str) {
        if !self.positions_set.iter().any(|c| c == collection) {
            self.positions_set.push(collection.to_string());
        }
    }
}

impl Driver {
    /// Starts the client's storage in the background (see the module comment); `ready()`
    /// settles when it is done.
    pub(crate) fn start_storage(self: &Rc<Self>, start: StorageStart) {
        self.begin_startup();
        let driver = self.clone();
        let startup = promise(async move {
            // Resolves (never rejects) with the error `ready` rejects with, if any: a rejection
            // nobody listens to would be reported as unhandled.
            Ok(match driver.run_startup(start).await {
                Ok(()) => JsValue::UNDEFINED,
                Err(error) => error.into(),
            })
        });
        *self.startup.borrow_mut() = Some(startup);
    }

    async fn run_startup(self: &Rc<Self>, start: StorageStart) -> Result<(), Error> {
        // Opening the database reads and writes no record, so it runs while the lock is taken.
        let opening = started_now(start.opening);
        // The lock comes first: every record this instance writes names it as owner, and a
        // record whose owner holds no lock is up for adoption.
        let manager = tabs::lock_manager();
        match &manager {
            Some(manager) => {
                let name = client_lock_name(&self.database, &self.client_id);
                match acquire(manager, &name, true).await {
                    Ok(Some(lock)) => self.tabs.borrow_mut().client_lock = Some(lock),
                    Ok(None) if start.given_id => {
                        let in_use = || Error::ClientIdInUse {
                            client_id: self.client_id.clone(),
                            database: self.database.clone(),
                        };
                        self.report(in_use());
                        spawn(async move {
                            if let Ok(storage) = opening.await {
                                storage.close();
                            }
                        });
                        self.finish_startup(false).await;
                        return Err(in_use());
                    }
                    Ok(None) => {} // A random id collided: vanishingly rare, and harmless here.
                    Err(e) => self.report(locks_unavailable(&format!("{e:?}"))),
                }
                let mut tabs = self.tabs.borrow_mut();
                tabs.manager = Some(manager.clone());
                tabs.watches = Watches::new(manager.clone()).map(Rc::new);
            }
            None => self.report(locks_unavailable("navigator.locks is missing")),
        }
        match opening.await {
            Ok(storage) => {
                self.attach_storage(storage);
                // A client closed meanwhile only writes what it accepted (in `close`).
                if !self.closed.get() {
                    self.load_cache().await;
                    self.clone().adopt_orphans().await;
                    self.start_adoption_interval(start.adopt_interval_ms);
                }
            }
            Err(error) => self.report(error.into()),
        }
        let stored = self.storage().is_some();
        self.finish_startup(stored).await;
        Ok(())
    }

    /// Ends the start: with storage, writes everything accepted so far, then runs the persist
    /// calls held meanwhile; without, forgets what it kept to write and runs them.
    async fn finish_startup(self: &Rc<Self>, stored: bool) {
        self.cache_loaded(None); // If it never was: no storage, or closed meanwhile.
        if !stored {
            self.lose_storage();
        } else if !self.on_disk.borrow().is_empty() {
            // Recovered work resumes in a later task: the app renders the recovered records
            // before the resumed persist calls (which need not wait for the write) take the thread.
            next_task().await;
        }
        self.starting.set(false);
        if !self.closed.get() {
            self.clone().flush().await;
        }
    }

    /// Waits for the background start; `Err` with the error `ready` rejects with.
    pub(crate) async fn started(&self) -> Result<(), JsValue> {
        let Some(startup) = self.startup.borrow().clone() else {
            return Ok(());
        };
        match JsFuture::from(startup).await {
            Ok(error) if !error.is_undefined() => Err(error),
            _ => Ok(()),
        }
    }

    /// The promise behind `client.ready` (one per client, so it keeps its identity).
    pub(crate) fn ready(self: &Rc<Self>) -> Promise {
        if let Some(ready) = self.ready.borrow().clone() {
            return ready;
        }
        let driver = self.clone();
        let ready = promise(async move { driver.started().await.map(|()| JsValue::UNDEFINED) });
        *self.ready.borrow_mut() = Some(ready.clone());
        ready
    }

    /// Starts using `storage`; if it goes away by itself the client continues in memory.
    pub(crate) fn attach_storage(self: &Rc<Self>, storage: Rc<dyn Storage>) {
        let weak = Rc::downgrade(self);
        storage.on_lost(Rc::new(move |error: StorageError| {
            if let Some(driver) = weak.upgrade() {
                driver.lose_storage();
                driver.report(error.into());
            }
        }));
        *self.storage.borrow_mut() = Some(storage);
    }

    /// Reads the synced cache; each collection takes its part when it is created (those that
    /// exist already, at once).
    pub(crate) async fn load_cache(self: &Rc<Self>) {
        let Some(storage) = self.storage() else {
            return;
        };
        match storage.load_cache().await {
            Ok(contents) => self.cache_loaded(Some(contents)),
            Err(error) => {
                self.storage_failed(error);
                self.cache_loaded(None);
            }
        }
    }

    /// Hands the loaded cache (if any) to the collections, then starts the sync setups that
    /// waited for it. Does nothing once done.
    fn cache_loaded(self: &Rc<Self>, contents: Option<CacheContents>) {
        let Some(pending) = self.cache_pending.borrow_mut().take() else {
            return;
        };
        if let Some(contents) = contents {
            {
                let mut parked = self.parked.borrow_mut();
                for (collection, json) in contents.records {
                    parked.cache.entry(collection).push(json);
                }
                parked.positions.extend(contents.positions);
            }
            self.apply_cache_to_existing_collections(&pending.positions_set);
        }
        for (collection, setup) in pending.setups {
            if !self.closed.get() {
                self.start_sync(collection, setup);
            }
        }
    }

    /// Starts a collection's sync setup, after the synced cache is loaded if it is not yet.
    pub(crate) fn start_sync_after_cache(self: &Rc<Self>, collection: String, setup: Function) {
        if let Some(pending) = self.cache_pending.borrow_mut().as_mut() {
            pending.setups.push((collection, setup));
            return;
        }
        self.start_sync(collection, setup);
    }

    /// Collections created before the cache was loaded take their part now, as upserts (the
    /// cache never removes what this session put there). Their sync has not started yet (it
    /// waits for the cache), so nothing newer is overwritten; a position the app set meanwhile
    /// is kept.
    fn apply_cache_to_existing_collections(self: &Rc<Self>, positions_set: &[String]) {
        let names: Vec<std::sync::Arc<str>> = self.collections.borrow().iter().map(|(name, _)| name.clone()).collect();
        let mut errors = Vec::new();
        for name in names {
            let rows = self.parked.borrow_mut().cache.remove(&name).unwrap_or_default();
            let position = self.parked.borrow_mut().positions.remove(&name);
            let batch = cached_batch(&name, rows, &mut errors);
            if !batch.changes.is_empty() {
                if let Err(e) = self.engine_mut().and_then(|mut engine| Ok(engine.sync_received(now(), batch)?)) {
                    errors.push(e);
                }
            }
            if let Some(position) = position.filter(|_| !positions_set.iter().any(|c| **c == *name)) {
                if let Some(state) = self.collections.borrow_mut().get_mut(&name) {
                    state.position = Some(position);
                }
            }
        }
        self.callback_errors.borrow_mut().extend(errors);
        self.drain();
    }

    fn storage_failed(self: &Rc<Self>, error: StorageError) {
        if error.kind.is_fatal() {
            self.lose_storage();
        }
        self.report(error.into());
    }

    /// Adopts the records of instances that are gone. Passes never overlap; one requested
    /// while another runs is run right after it.
    pub(crate) async fn adopt_orphans(self: Rc<Self>) {
        {
            let mut tabs = self.tabs.borrow_mut();
            if tabs.adopting {
                tabs.adopt_again = true;
                return;
            }
            tabs.adopting = true;
        }
        loop {
            self.adoption_pass().await;
            let mut tabs = self.tabs.borrow_mut();
            if tabs.adopt_again && !self.closed.get() {
                tabs.adopt_again = false;
                continue;
            }
            tabs.adopting = false;
            break;
        }
    }

    async fn adoption_pass(self: &Rc<Self>) {
        if self.closed.get() {
            return;
        }
        let Some(storage) = self.storage() else {
            return;
        };
        let manager = self.tabs.borrow().manager.clone();
        let first = !std::mem::replace(&mut self.tabs.borrow_mut().adopted_once, true);
        let result = match manager {
            Some(manager) => {
                // Serialise adopters: the lock query and the rewrite below happen with no other
                // adopter in between.
                let lock = match acquire(&manager, &adopt_lock_name(&self.database), false).await {
                    Ok(lock) => lock,
                    Err(e) => return self.report(locks_failed(&e)),
                };
                if self.closed.get() {
                    return;
                }
                let held = match held_lock_names(&manager).await {
                    Ok(held) => held,
                    Err(e) => return self.report(locks_failed(&e)),
                };
                let live = live_owners(&self.database, held.iter().map(String::as_str));
                let result = storage.adopt(&self.client_id, &live, first).await;
                drop(lock); // After the rewrite committed.
                result
            }
            // No Web Locks: other instances cannot be seen, so this one takes everything.
            None => storage.adopt(&self.client_id, std::slice::from_ref(&self.client_id), first).await,
        };
        match result {
            Ok(adoption) => {
                let mut unreadable = Vec::new();
                {
                    let mut parked = self.parked.borrow_mut();
                    let mut on_disk = self.on_disk.borrow_mut();
                    for stored in adoption.adopted {
                        match Transaction::from_json(&stored.json) {
                            Ok(tx) => {
                                if !tx.state.is_terminal() {
                                    on_disk.insert(tx.id.clone());
                                }
                                parked.transactions.push(tx);
                            }
                            Err(e) => unreadable.push(unreadable_transaction(&stored.id, e)),
                        }
                    }
                }
                for error in unreadable {
                    self.report(error);
                }
                for owner in adoption.live_owners {
                    self.watch_owner(&owner);
                }
                self.restore_parked();
            }
            Err(error) => self.storage_failed(error),
        }
    }

    /// Restores the parked transactions whose collections all exist now.
    pub(crate) fn restore_parked(self: &Rc<Self>) {
        if self.closed.get() {
            return;
        }
        let ready: Vec<Transaction> = {
            let Ok(engine) = self.engine.try_borrow() else {
                return;
            };
            let mut parked = self.parked.borrow_mut();
            let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut parked.transactions)
                .into_iter()
                .partition(|tx| tx.mutations.iter().all(|m| engine.has_collection(&m.collection)));
            parked.transactions = waiting;
            ready
        };
        if ready.is_empty() {
            return;
        }
        match self.engine_mut() {
            Ok(mut engine) => {
                if let Err(e) = engine.restore(now(), ready) {
                    self.callback_errors.borrow_mut().push(e.into());
                }
            }
            Err(_) => self.parked.borrow_mut().transactions.extend(ready),
        }
        self.drain();
    }

    /// Adopts as soon as `owner` (a live instance with records) lets go of its lock.
    fn watch_owner(self: &Rc<Self>, owner: &str) {
        let Some(watches) = self.tabs.borrow().watches.clone() else {
            return;
        };
        let name = client_lock_name(&self.database, owner);
        let Some(released) = watches.watch(&name) else {
            return;
        };
        drop(watches); // The pending watch must not keep the watches (and their abort) alive.
        let weak = Rc::downgrade(self);
        spawn(async move {
            let released = released.await;
            let Some(driver) = weak.upgrade() else { return };
            if let Some(watches) = driver.tabs.borrow().watches.clone() {
                watches.ended(&name);
            }
            if released && !driver.closed.get() {
                driver.adopt_orphans().await;
            }
        });
    }

    /// Checks for orphaned records every `ms` (owners that appeared after the last check and
    /// closed since are found this way).
    pub(crate) fn start_adoption_interval(self: &Rc<Self>, ms: u32) {
        if ms == 0 || self.tabs.borrow().manager.is_none() {
            return;
        }
        let weak = Rc::downgrade(self);
        let interval = gloo_timers::callback::Interval::new(ms, move || {
            if let Some(driver) = weak.upgrade() {
                spawn(driver.adopt_orphans());
            }
        });
        self.tabs.borrow_mut().interval = Some(interval);
    }
}

/// Runs `opening` from the next microtask on, whether or not (and however late) its result is
/// awaited: Rust futures otherwise start only when first polled.
fn started_now(opening: StorageOpening) -> StorageOpening {
    let slot: Rc<std::cell::RefCell<Option<Opened>>> = Rc::default();
    let (done, resolve, _) = crate::tasks::promise_with_resolvers();
    let filled = slot.clone();
    spawn(async move {
        let outcome = opening.await;
        *filled.borrow_mut() = Some(outcome);
        resolve.call0(&JsValue::UNDEFINED).ok();
    });
    Box::pin(async move {
        JsFuture::from(done).await.ok();
        slot.borrow_mut().take().expect("filled before `done` resolves")
    })
}

fn locks_unavailable(why: &str) -> Error {
    Error::Storage(StorageError::new(
        StorageErrorKind::LocksUnavailable,
        format!("Web Locks are unavailable ({why}): this instance cannot tell other tabs apart and adopts every stored transaction"),
    ))
}

fn locks_failed(error: &JsValue) -> Error {
    let (name, message) = crate::errors::name_and_message(error);
    Error::Storage(StorageError::new(
        StorageErrorKind::LocksUnavailable,
        format!("Web Locks failed: {name}: {message}"),
    ))
}
