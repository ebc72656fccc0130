//! The IndexedDB storage.
//!
//! Written against web-sys directly: what we need is four object stores, `put`/`delete`/
//! `getAll`, and full control of the connection's events (`blocked`, `versionchange`, `close`)
//! and of transaction completion. A wrapper crate would add a dozen crates (tokio, six proc-macro
//! crates) to the build for less control; the adapter here is two promise helpers.
//!
//! Rules kept throughout:
//! * a write counts only once its IndexedDB transaction fired `complete` (strict durability);
//! * an IndexedDB transaction awaits nothing but its own requests, so it never auto-commits
//!   half-way;
//! * every request of a write is issued synchronously in `write`, so writes reach the database
//!   in call order (IndexedDB runs overlapping read-write transactions in creation order).
//!
//! Schema (version [`DB_VERSION`]):
//! * `outbox`: one record per write, a *segment* `{id: [number, owner], owner, ids, tx}` keyed
//!   by `id`, indexed by `owner`; `tx` the JSON records of `ids` joined by U+0001 (see `Outbox`
//!   in src/js_helpers.js). The first schema's `{id, owner, tx}`, one transaction keyed by its
//!   id, is still read;
//! * `owners`: per owner group (the client id that wrote the records), the client id holding
//!   it now — adoption rewrites this short list, never the records themselves;
//! * `synced`: record JSON keyed by `[collection, key]`;
//! * `meta`: `position:<collection>` → sync position string.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use js_sys::{Array, Function, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    DomException, Event, IdbDatabase, IdbFactory, IdbKeyRange, IdbObjectStoreParameters, IdbOpenDbRequest, IdbRequest,
    IdbTransaction, IdbTransactionMode,
};

use super::{
    plan_adoption, Adoption, CacheContents, CacheOp, LocalFuture, LostHandler, Storage, StorageError, StorageErrorKind,
    StoredTx, WriteBatch, CACHE_ROW_SEPARATOR,
};

/// Between the JSON texts of an outbox segment's transactions (see [`CACHE_ROW_SEPARATOR`]).
const SEGMENT_SEPARATOR: char = CACHE_ROW_SEPARATOR;

/// The schema version this build creates and expects.
pub const DB_VERSION: u32 = 1;

const OUTBOX: &str = "outbox";
const OWNERS: &str = "owners";
const SYNCED: &str = "synced";
const META: &str = "meta";
const OWNER_INDEX: &str = "owner";
const POSITION_PREFIX: &str = "position:";

// The helpers are in src/js_helpers.js, beside the ones `calls.rs` uses (why one module: see there).
#[wasm_bindgen(module = "/src/js_helpers.js")]
extern "C" {
    /// The outbox's segments: one record per write (src/js_helpers.js says why and how).
    type Outbox;
    #[wasm_bindgen(constructor)]
    fn new() -> Outbox;
    /// Issues a write's outbox requests (the segment of `ids`, their `texts` joined by
    /// `separator`, with tombstones of `erased`; deletions; this writer's `owners` entry) and
    /// returns its plan, for `written`. Throws what a request throws.
    #[allow(clippy::too_many_arguments)]
    #[wasm_bindgen(method, catch)]
    fn write(
        this: &Outbox,
        outbox: &web_sys::IdbObjectStore,
        owners: &web_sys::IdbObjectStore,
        writer: &str,
        ids: &Array,
        texts: &str,
        erased: &Array,
        separator: char,
    ) -> Result<JsValue, JsValue>;
    /// Whether the write of `plan` committed.
    #[wasm_bindgen(method)]
    fn written(this: &Outbox, plan: &JsValue, ok: bool);
    /// The live copies in adopted groups' records (`groups`, their `getAll` results), as
    /// `[id, text, …]`, once the adoption committed.
    #[wasm_bindgen(method)]
    fn read(this: &Outbox, groups: &Array, separator: char) -> Array;
    /// `[records, positions]`: `records` is `[collection, rows, …]`, `rows` a collection's record
    /// texts in key order joined by `separator`, read per collection with `getAll`, the
    /// collections found by a key cursor that skips each one's keys (reading every key, an array
    /// per record, as well as every value, and crossing each record into wasm as a string of its
    /// own, was most of a cold start with 100k cached records); `positions` is `[collection,
    /// position, …]` from `meta`. Requests of one read-only transaction: all of them see the
    /// same state.
    #[wasm_bindgen(js_name = readCache)]
    fn read_cache(
        synced: &web_sys::IdbObjectStore,
        meta: &web_sys::IdbObjectStore,
        separator: char,
        position_prefix: &str,
    ) -> Promise;
}

#[wasm_bindgen]
extern "C" {
    /// `IDBDatabase`, for the one method web-sys has only behind its unstable APIs.
    #[wasm_bindgen(js_name = IDBDatabase)]
    type DatabaseWithOptions;

    /// `db.transaction(stores, mode, {durability})`.
    #[wasm_bindgen(method, catch, js_name = transaction)]
    fn transaction_with_options(
        this: &DatabaseWithOptions,
        stores: &Array,
        mode: &str,
        options: &JsValue,
    ) -> Result<IdbTransaction, JsValue>;
}

pub struct IndexedDbStorage {
    inner: Rc<Inner>,
    // Kept alive while the connection can fire them; detached on drop.
    _on_versionchange: Closure<dyn FnMut(Event)>,
    _on_close: Closure<dyn FnMut(Event)>,
}

struct Inner {
    name: String,
    /// `None` once closed, lost, or handed over to a newer version.
    db: RefCell<Option<IdbDatabase>>,
    lost: RefCell<Option<LostHandler>>,
    /// Which outbox records hold what (see `Outbox` in src/js_helpers.js).
    outbox: Outbox,
}

impl Inner {
    fn lose(&self, error: StorageError) {
        if let Some(db) = self.db.borrow_mut().take() {
            db.close();
        }
        let handler = self.lost.borrow().clone();
        if let Some(handler) = handler {
            handler(error);
        }
    }
}

impl IndexedDbStorage {
    /// Opens (creating or upgrading) the database. An upgrade that another tab's connection
    /// blocks, or an open that never answers, fails after `timeout_ms`.
    pub async fn open(name: &str, timeout_ms: u32) -> Result<IndexedDbStorage, StorageError> {
        Self::open_versioned(name, DB_VERSION, timeout_ms).await
    }

    /// [`Self::open`] at a given schema version: lets tests play a newer build.
    pub async fn open_versioned(name: &str, version: u32, timeout_ms: u32) -> Result<IndexedDbStorage, StorageError> {
        let db = open_database(name, version, timeout_ms).await?;
        let inner = Rc::new(Inner {
            name: name.to_string(),
            db: RefCell::new(Some(db.clone())),
            lost: RefCell::new(None),
            outbox: Outbox::new(),
        });
        // A newer version wants the database: let go at once so its upgrade is not blocked.
        let on_versionchange = {
            let inner: Weak<Inner> = Rc::downgrade(&inner);
            Closure::<dyn FnMut(Event)>::new(move |_| {
                if let Some(inner) = inner.upgrade() {
                    inner.lose(StorageError::new(
                        StorageErrorKind::VersionChange,
                        format!("another tab opened a newer version of IndexedDB database `{}`", inner.name),
                    ));
                }
            })
        };
        let on_close = {
            let inner: Weak<Inner> = Rc::downgrade(&inner);
            Closure::<dyn FnMut(Event)>::new(move |_| {
                if let Some(inner) = inner.upgrade() {
                    inner.lose(StorageError::new(
                        StorageErrorKind::ConnectionLost,
                        format!("the browser closed the connection to IndexedDB database `{}`", inner.name),
                    ));
                }
            })
        };
        db.set_onversionchange(Some(on_versionchange.as_ref().unchecked_ref()));
        db.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(IndexedDbStorage { inner, _on_versionchange: on_versionchange, _on_close: on_close })
    }

    /// Deletes a database (tests use unique names and clean up after themselves).
    pub async fn delete_database(name: &str) -> Result<(), StorageError> {
        let factory = factory()?;
        let request = factory.delete_database(name).map_err(|e| unavailable(&e))?;
        let request: &IdbRequest = request.unchecked_ref();
        request_future(request).await.map_err(|_| read_error(request))?;
        Ok(())
    }

    fn transaction(&self, stores: &[&str], mode: IdbTransactionMode) -> Result<IdbTransaction, StorageError> {
        self.transaction_with(stores, mode, "strict")
    }

    /// `durability` applies to read-write transactions: "strict" for what must be on disk when
    /// `complete` fires, "relaxed" where losing the commit in an OS crash is harmless.
    fn transaction_with(
        &self,
        stores: &[&str],
        mode: IdbTransactionMode,
        durability: &str,
    ) -> Result<IdbTransaction, StorageError> {
        let db = self.inner.db.borrow();
        let db = db
            .as_ref()
            .ok_or_else(|| StorageError::new(StorageErrorKind::ConnectionLost, "the IndexedDB connection is closed"))?;
        let names: Array = stores.iter().map(|s| JsValue::from_str(s)).collect();
        let options = js_sys::Object::new();
        let mode_str = match mode {
            IdbTransactionMode::Readwrite => {
                // Strict: `complete` fires only once the data is flushed to disk.
                crate::convert::set(&options, "durability", &durability.into());
                "readwrite"
            }
            _ => "readonly",
        };
        db.unchecked_ref::<DatabaseWithOptions>().transaction_with_options(&names, mode_str, &options).map_err(|e| {
            let (name, message) = exception_parts(&e);
            StorageError::from_write_failure(&name, &message)
        })
    }
}

impl Drop for IndexedDbStorage {
    fn drop(&mut self) {
        if let Some(db) = self.inner.db.borrow_mut().take() {
            db.set_onversionchange(None);
            db.set_onclose(None);
            db.close();
        }
    }
}

impl Storage for IndexedDbStorage {
    fn load_cache(&self) -> LocalFuture<Result<CacheContents, StorageError>> {
        let issued = (|| -> Result<_, StorageError> {
            let tx = self.transaction(&[SYNCED, META], IdbTransactionMode::Readonly)?;
            let synced = tx.object_store(SYNCED).map_err(|e| read_failed(&e))?;
            let meta = tx.object_store(META).map_err(|e| read_failed(&e))?;
            Ok(JsFuture::from(read_cache(&synced, &meta, CACHE_ROW_SEPARATOR, POSITION_PREFIX)))
        })();
        Box::pin(async move {
            let read: Array = issued?.await.map_err(|e| read_failed(&e))?.unchecked_into();
            let pairs = |list: JsValue| {
                let list: Array = list.unchecked_into();
                (0..list.length()).step_by(2).filter_map(move |at| {
                    let text: js_sys::JsString = list.get(at + 1).dyn_into().ok()?;
                    Some((list.get(at).as_string()?, crate::convert::string_from_js(&text)))
                })
            };
            Ok(CacheContents { records: pairs(read.get(0)).collect(), positions: pairs(read.get(1)).collect() })
        })
    }

    fn adopt(&self, me: &str, live: &[String], reclaim_own: bool) -> LocalFuture<Result<Adoption, StorageError>> {
        let me = me.to_string();
        let live = live.to_vec();
        let inner = self.inner.clone();
        let issued = (|| -> Result<_, StorageError> {
            // Relaxed: this only moves groups to a new holder. Other instances see the commit at
            // once (adopters are serialised by the adopt lock and this transaction); an OS crash
            // that loses it loses this instance too, and the groups are simply adopted again. The
            // records this instance goes on with are re-saved under its own id (strictly) before
            // any of their persist calls runs. Saves one flush to disk on every start.
            let tx = self.transaction_with(&[OUTBOX, OWNERS], IdbTransactionMode::Readwrite, "relaxed")?;
            let owners = tx.object_store(OWNERS).map_err(|e| read_failed(&e))?;
            let groups = owners.get_all_keys().map_err(|e| read_failed(&e))?;
            let holders = owners.get_all().map_err(|e| read_failed(&e))?;
            let listed = (request_future(&groups), request_future(&holders));
            let done = transaction_future(&tx);
            Ok((tx, owners, groups, holders, listed, done))
        })();
        Box::pin(async move {
            let (tx, owners, groups, holders, listed, done) = issued?;
            // One read-write transaction: the holders read here cannot change before the
            // rewrite below commits, and a second adopter's transaction runs after this one.
            listed.0.await.map_err(|_| read_error(&groups))?;
            listed.1.await.map_err(|_| read_error(&holders))?;
            let strings = |request: &IdbRequest| -> Result<Vec<String>, StorageError> {
                let result = request.result().map_err(|e| read_failed(&e))?;
                Ok(result.unchecked_into::<Array>().iter().map(|v| v.as_string().unwrap_or_default()).collect())
            };
            let entries: Vec<(String, String)> = strings(&groups)?.into_iter().zip(strings(&holders)?).collect();
            let plan = plan_adoption(&me, &live, &entries, reclaim_own);
            let mut adoption = Adoption { live_owners: plan.live_holders, ..Default::default() };
            if plan.adopt.is_empty() {
                tx.abort().ok(); // Nothing to write: no need to wait for a strict commit.
                return Ok(adoption);
            }
            let outbox = tx.object_store(OUTBOX).map_err(|e| read_failed(&e))?;
            let index = outbox.index(OWNER_INDEX).map_err(|e| read_failed(&e))?;
            let mut requests = Vec::with_capacity(plan.adopt.len());
            let groups = Array::new();
            for group in &plan.adopt {
                let request = index.get_all_with_key(&JsValue::from_str(group)).map_err(|e| read_failed(&e))?;
                let future = request_future(&request);
                requests.push((group, request, future));
            }
            for (group, request, future) in requests {
                future.await.map_err(|_| read_error(&request))?;
                let records = request.result().map_err(|e| read_failed(&e))?.unchecked_into::<Array>();
                let key = JsValue::from_str(group);
                if records.length() == 0 {
                    owners.delete(&key).map_err(|e| read_failed(&e))?; // Emptied since: forget it.
                    continue;
                }
                // The records stay as they are: the group changes hands, whatever its size.
                owners.put_with_key(&JsValue::from_str(&me), &key).map_err(|e| read_failed(&e))?;
                groups.push(&records);
            }
            #[allow(deprecated)] // web-sys marks `commit` deprecated; it only ends the wait early.
            tx.commit().ok();
            done.await.map_err(|_| transaction_error(&tx))?;
            // Now this instance's to run: the adopter is their owner.
            let live = inner.outbox.read(&groups, SEGMENT_SEPARATOR);
            let mut at = 0;
            while let (Some(id), Some(json)) = (live.get(at).as_string(), live.get(at + 1).as_string()) {
                adoption.adopted.push(StoredTx { id, owner: me.clone(), json });
                at += 2;
            }
            Ok(adoption)
        })
    }

    fn write(&self, batch: WriteBatch) -> LocalFuture<Result<(), StorageError>> {
        // A batch's records are all its writer's (see `WriteBatch`).
        debug_assert!(batch.put.iter().all(|stored| stored.owner == batch.writer), "one writer per batch");
        // What the outbox planned (see `Outbox.write`), told whether the write committed.
        let mut plan = JsValue::UNDEFINED;
        let issued = (|| -> Result<IdbTransaction, StorageError> {
            let tx = self.transaction(&[OUTBOX, OWNERS, SYNCED, META], IdbTransactionMode::Readwrite)?;
            let fail = |e: JsValue| {
                tx.abort().ok();
                let (name, message) = exception_parts(&e);
                StorageError::from_write_failure(&name, &message)
            };
            let (ids, erased) = (Array::new(), Array::new());
            let mut texts = String::with_capacity(batch.put.iter().map(|stored| stored.json.len() + 1).sum());
            for stored in &batch.put {
                if !texts.is_empty() {
                    texts.push(SEGMENT_SEPARATOR);
                }
                ids.push(&JsValue::from_str(&stored.id));
                texts.push_str(&stored.json);
            }
            for id in &batch.erase {
                erased.push(&JsValue::from_str(id));
            }
            // A writer is alive, so it holds its own group: the outbox says so with its first
            // segment only (nothing else rewrites a live holder's entry), not with every write.
            let outbox = tx.object_store(OUTBOX).map_err(&fail)?;
            let owners = tx.object_store(OWNERS).map_err(&fail)?;
            plan = self
                .inner
                .outbox
                .write(&outbox, &owners, &batch.writer, &ids, &texts, &erased, SEGMENT_SEPARATOR)
                .map_err(&fail)?;
            if !batch.cache.is_empty() {
                let synced = tx.object_store(SYNCED).map_err(&fail)?;
                let meta = tx.object_store(META).map_err(&fail)?;
                for op in batch.cache.iter() {
                    match op {
                        CacheOp::Clear { collection } => {
                            let range = collection_range(collection).map_err(&fail)?;
                            synced.delete(&range).map_err(&fail)?;
                        }
                        CacheOp::Put { collection, key_field, records } => {
                            for record in records {
                                // The engine refuses a batch with a keyless record: none here.
                                let Ok(key) = record.key(key_field) else { continue };
                                let json = tandem_core::protocol::json_text(&**record);
                                synced
                                    .put_with_key(&JsValue::from_str(&json), &cache_key(collection, &key))
                                    .map_err(&fail)?;
                            }
                        }
                        CacheOp::Delete { collection, key } => {
                            synced.delete(&cache_key(collection, key)).map_err(&fail)?;
                        }
                        CacheOp::Position { collection, position } => {
                            let key = JsValue::from_str(&format!("{POSITION_PREFIX}{collection}"));
                            match position {
                                Some(p) => meta.put_with_key(&JsValue::from_str(p), &key).map(drop),
                                None => meta.delete(&key).map(drop),
                            }
                            .map_err(&fail)?;
                        }
                    }
                }
            }
            Ok(tx)
        })();
        let done = issued.as_ref().ok().map(|tx| {
            let done = transaction_future(tx);
            #[allow(deprecated)] // Commit now rather than when this task ends.
            tx.commit().ok();
            done
        });
        let inner = self.inner.clone();
        Box::pin(async move {
            let outcome = match issued {
                Ok(tx) => done.expect("issued").await.map(drop).map_err(|_| transaction_error(&tx)),
                Err(error) => Err(error),
            };
            if !plan.is_undefined() {
                inner.outbox.written(&plan, outcome.is_ok());
            }
            outcome
        })
    }

    fn on_lost(&self, handler: LostHandler) {
        *self.inner.lost.borrow_mut() = Some(handler);
    }

    fn close(&self) {
        if let Some(db) = self.inner.db.borrow_mut().take() {
            db.close(); // Transactions already issued still complete.
        }
    }
}

fn factory() -> Result<IdbFactory, StorageError> {
    Reflect::get(&js_sys::global(), &"indexedDB".into())
        .ok()
        .and_then(|f| f.dyn_into::<IdbFactory>().ok())
        .ok_or_else(|| StorageError::new(StorageErrorKind::Unavailable, "IndexedDB is not available in this context"))
}

async fn open_database(name: &str, version: u32, timeout_ms: u32) -> Result<IdbDatabase, StorageError> {
    let factory = factory()?;
    let request = factory.open_with_u32(name, version).map_err(|e| unavailable(&e))?;
    let blocked = Rc::new(Cell::new(false));
    let on_upgrade = Closure::once_into_js({
        let request = request.clone();
        move |_: Event| create_stores(&request)
    });
    request.set_onupgradeneeded(Some(on_upgrade.unchecked_ref()));
    let on_blocked = Closure::once_into_js({
        let blocked = blocked.clone();
        move |_: Event| blocked.set(true)
    });
    request.set_onblocked(Some(on_blocked.unchecked_ref()));
    let opened = request_promise(&request);
    // Race the open against a timer: an upgrade blocked by a tab that never closes its
    // connection would otherwise wait forever.
    let timed_out = JsValue::from_str("tandem:open-timeout");
    let (timer, timeout) = delay_promise(timeout_ms, timed_out.clone());
    let outcome = JsFuture::from(Promise::race(&Array::of2(&opened, &timeout))).await;
    drop(timer);
    match outcome {
        Ok(value) if value == timed_out => {
            // Whatever happens later, this open is abandoned: close a connection that arrives late.
            let late = Closure::once_into_js({
                let request = request.clone();
                move |_: Event| {
                    if let Ok(db) = request.result().and_then(|r| r.dyn_into::<IdbDatabase>()) {
                        db.close();
                    }
                }
            });
            request.set_onsuccess(Some(late.unchecked_ref()));
            let (kind, why) = if blocked.get() {
                (StorageErrorKind::Blocked, "the upgrade is blocked by another tab that keeps an older version open")
            } else {
                (StorageErrorKind::Unavailable, "opening it did not finish")
            };
            Err(StorageError::new(kind, format!("IndexedDB database `{name}`: {why} (gave up after {timeout_ms} ms)")))
        }
        Ok(_) => request.result().and_then(|r| r.dyn_into::<IdbDatabase>()).map_err(|e| unavailable(&e)),
        Err(_) => {
            let error = request.error().ok().flatten();
            let (name, message) = error.map(|e| (e.name(), e.message())).unwrap_or_default();
            Err(StorageError::new(
                StorageErrorKind::Unavailable,
                format!("opening IndexedDB failed: {name}: {message}"),
            ))
        }
    }
}

/// The upgrade: creates whatever store this version has and the database lacks.
fn create_stores(request: &IdbOpenDbRequest) {
    let Ok(db) = request.result().and_then(|r| r.dyn_into::<IdbDatabase>()) else {
        return;
    };
    let existing = db.object_store_names();
    if !existing.contains(OUTBOX) {
        let params = IdbObjectStoreParameters::new();
        params.set_key_path(&JsValue::from_str("id"));
        if let Ok(outbox) = db.create_object_store_with_optional_parameters(OUTBOX, &params) {
            outbox.create_index_with_str(OWNER_INDEX, "owner").ok();
        }
    }
    for store in [OWNERS, SYNCED, META] {
        if !existing.contains(store) {
            db.create_object_store(store).ok();
        }
    }
}

/// A promise settled by a request's `success` (resolve) or `error` (reject) event.
fn request_promise(request: &IdbRequest) -> Promise {
    Promise::new(&mut |resolve: Function, reject: Function| {
        request.set_onsuccess(Some(&resolve));
        request.set_onerror(Some(&reject));
    })
}

fn request_future(request: &IdbRequest) -> JsFuture {
    JsFuture::from(request_promise(request))
}

/// Resolves on `complete`; rejects on `abort`, which follows any failed request or commit.
fn transaction_future(tx: &IdbTransaction) -> JsFuture {
    JsFuture::from(Promise::new(&mut |resolve: Function, reject: Function| {
        tx.set_oncomplete(Some(&resolve));
        tx.set_onabort(Some(&reject));
    }))
}

/// A promise resolving to `value` after `ms`, and the timer (dropping it cancels the timer).
fn delay_promise(ms: u32, value: JsValue) -> (gloo_timers::callback::Timeout, Promise) {
    let (promise, resolve, _) = crate::tasks::promise_with_resolvers();
    let timer = gloo_timers::callback::Timeout::new(ms, move || {
        resolve.call1(&JsValue::UNDEFINED, &value).ok();
    });
    (timer, promise)
}

fn cache_key(collection: &str, key: &str) -> JsValue {
    Array::of2(&JsValue::from_str(collection), &JsValue::from_str(key)).into()
}

/// Every `[collection, key]`: arrays sort after strings, so `[collection, []]` bounds them.
fn collection_range(collection: &str) -> Result<IdbKeyRange, JsValue> {
    let lower = Array::of1(&JsValue::from_str(collection));
    let upper = Array::of2(&JsValue::from_str(collection), &Array::new());
    IdbKeyRange::bound(&lower, &upper)
}

fn exception_parts(error: &JsValue) -> (String, String) {
    match error.dyn_ref::<DomException>() {
        Some(e) => (e.name(), e.message()),
        None => {
            let field = |name: &str| Reflect::get(error, &name.into()).ok().and_then(|v| v.as_string());
            (field("name").unwrap_or_else(|| "Error".into()), field("message").unwrap_or_default())
        }
    }
}

fn unavailable(error: &JsValue) -> StorageError {
    let (name, message) = exception_parts(error);
    StorageError::new(StorageErrorKind::Unavailable, format!("opening IndexedDB failed: {name}: {message}"))
}

fn read_failed(error: &JsValue) -> StorageError {
    let (name, message) = exception_parts(error);
    StorageError::new(StorageErrorKind::ReadFailed, format!("{name}: {message}"))
}

fn read_error(request: &IdbRequest) -> StorageError {
    match request.error().ok().flatten() {
        Some(e) => StorageError::new(StorageErrorKind::ReadFailed, format!("{}: {}", e.name(), e.message())),
        None => StorageError::new(StorageErrorKind::ReadFailed, "an IndexedDB request failed"),
    }
}

fn transaction_error(tx: &IdbTransaction) -> StorageError {
    match tx.error() {
        Some(e) => StorageError::from_write_failure(&e.name(), &e.message()),
        None => StorageError::new(StorageErrorKind::WriteFailed, "the IndexedDB transaction was aborted"),
    }
}
