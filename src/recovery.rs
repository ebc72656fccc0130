//! Recovery after a reload and adoption of other instances' work.
//!
//! On start: load the synced cache, then adopt the outbox records of instances that are gone
//! (the previous page load is one of them). Records wait ("parked") until their collections
//! exist; `client.collection()` restores them over the cached synced data, and pending work
//! resumes with the same transaction ids (the idempotency keys).
//!
//! Later, a live instance that closes leaves records behind: the survivors watch the locks of
//! owners they saw and check periodically, so those records are adopted by exactly one of them.

use std::rc::Rc;

use tandem_core::Transaction;
use wasm_bindgen_futures::spawn_local;

use crate::driver::{unreadable_transaction, Driver};
use crate::errors::Error;
use crate::storage::{Storage, StorageError, StorageErrorKind};
use crate::tabs::{acquire, adopt_lock_name, client_lock_name, held_lock_names, live_owners};
use crate::timers::now;

impl Driver {
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

    /// Reads the synced cache; each collection takes its part when it is created.
    pub(crate) async fn load_cache(self: &Rc<Self>) {
        let Some(storage) = self.storage() else {
            return;
        };
        match storage.load_cache().await {
            Ok(contents) => {
                let mut parked = self.parked.borrow_mut();
                for (collection, json) in contents.records {
                    parked.cache.entry(collection).push(json);
                }
                parked.positions.extend(contents.positions);
            }
            Err(error) => self.storage_failed(error),
        }
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
                    for stored in adoption.adopted {
                        match serde_json::from_str::<Transaction>(&stored.json) {
                            Ok(tx) => parked.transactions.push(tx),
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
        spawn_local(async move {
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
                spawn_local(driver.adopt_orphans());
            }
        });
        self.tabs.borrow_mut().interval = Some(interval);
    }
}

fn locks_failed(error: &wasm_bindgen::JsValue) -> Error {
    let (name, message) = crate::errors::name_and_message(error);
    Error::Storage(StorageError::new(
        StorageErrorKind::LocksUnavailable,
        format!("Web Locks failed: {name}: {message}"),
    ))
}
