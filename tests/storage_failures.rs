//! Storage failures surface as `StorageError` events with a `kind`; the client keeps working in
//! memory and never drops an accepted mutation. Real IndexedDB underneath; a failure is
//! injected by wrapping it.
#![cfg(target_arch = "wasm32")]

mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::*;
use js_sys::{Function, Promise, Reflect};
use serde_json::json;
use tandem::storage::{
    Adoption, CacheContents, IndexedDbStorage, LocalFuture, LostHandler, Storage, StorageError, StorageErrorKind,
    WriteBatch,
};
use tandem::TandemClient;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// The real IndexedDB storage, whose writes fail with a quota error while `full` is set.
struct QuotaExceeded {
    inner: IndexedDbStorage,
    full: Rc<Cell<bool>>,
}

impl Storage for QuotaExceeded {
    fn load_cache(&self) -> LocalFuture<Result<CacheContents, StorageError>> {
        self.inner.load_cache()
    }

    fn adopt(&self, me: &str, live: &[String], reclaim_own: bool) -> LocalFuture<Result<Adoption, StorageError>> {
        self.inner.adopt(me, live, reclaim_own)
    }

    fn write(&self, batch: WriteBatch) -> LocalFuture<Result<(), StorageError>> {
        if self.full.get() {
            // What the IndexedDB storage reports when the browser aborts with this exception.
            let error = StorageError::from_write_failure("QuotaExceededError", "the quota has been exceeded");
            return Box::pin(async move { Err(error) });
        }
        self.inner.write(batch)
    }

    fn on_lost(&self, handler: LostHandler) {
        self.inner.on_lost(handler)
    }

    fn close(&self) {
        self.inner.close()
    }
}

fn kinds(errors: &[JsValue]) -> Vec<String> {
    errors
        .iter()
        .map(|e| format!("{}:{}", get_str(e, "name"), get(e, "kind").as_string().unwrap_or_default()))
        .collect()
}

#[wasm_bindgen_test]
async fn a_quota_failure_is_reported_and_nothing_accepted_is_lost() {
    let db = unique_db("quota");
    let full = Rc::new(Cell::new(false));
    let storage = QuotaExceeded { inner: IndexedDbStorage::open(&db, 5_000).await.unwrap(), full: full.clone() };
    let client = TandemClient::open_with_storage(js(json!({"database": db})), Rc::new(storage)).await.unwrap();
    let errors = collect_errors(&client);
    let persist = Persist::resolving();
    let collection = local_todos(&client, &persist);

    full.set(true);
    let t1 = collection.insert(js(json!({"id": "a"})), JsValue::UNDEFINED).unwrap().id();
    wait_until("the failure was reported", 2_000.0, || !errors.borrow().is_empty()).await;
    let error = errors.borrow()[0].clone();
    assert_eq!(kinds(std::slice::from_ref(&error)), vec!["StorageError:quota"]);
    assert!(json(&get(&error, "transactionIds")).as_array().unwrap().contains(&json!(t1)));
    assert!(!collection.get(js(json!("a"))).unwrap().is_undefined(), "the in-memory state is intact");
    wait_until("t1 completed in memory", 2_000.0, || state_of(&client, &t1) == "completed").await;
    assert_eq!(client.persistence(), "indexeddb", "a full disk is not a lost database: writes are retried");

    full.set(false);
    let t2 = collection.insert(js(json!({"id": "b"})), JsValue::UNDEFINED).unwrap().id();
    wait_until("t2 completed", 2_000.0, || state_of(&client, &t2) == "completed").await;
    client.close().await.ok();

    // What reached the disk: t1 was written again with the next write.
    let reopened = open(json!({"database": db})).await;
    let _todos = local_todos(&reopened, &Persist::resolving());
    for id in [&t1, &t2] {
        assert_eq!(state_of(&reopened, id), "completed", "{id} is in the stored history");
    }
    reopened.close().await.ok();
    delete_database(&db).await;
}

/// Opens `name` at `version` with plain IndexedDB, as an old tab would, ignoring
/// `versionchange` (so it blocks upgrades).
async fn raw_open(name: &str, version: u32) -> web_sys::IdbDatabase {
    let factory: web_sys::IdbFactory = Reflect::get(&js_sys::global(), &"indexedDB".into()).unwrap().unchecked_into();
    let request = factory.open_with_u32(name, version).unwrap();
    let opened = Promise::new(&mut |resolve: Function, reject: Function| {
        request.set_onsuccess(Some(&resolve));
        request.set_onerror(Some(&reject));
    });
    JsFuture::from(opened).await.unwrap();
    request.result().unwrap().unchecked_into()
}

#[wasm_bindgen_test]
async fn an_upgrade_blocked_by_an_old_tab_gives_up_after_the_timeout() {
    let db = unique_db("blocked");
    let old_tab = raw_open(&db, 1).await;
    let started = js_sys::Date::now();
    let result = IndexedDbStorage::open_versioned(&db, 2, 150).await;
    let waited = js_sys::Date::now() - started;
    let error = result.err().expect("the upgrade cannot proceed while the old tab holds version 1");
    assert_eq!(error.kind, StorageErrorKind::Blocked);
    assert!((150.0..2_000.0).contains(&waited), "gave up after the timeout, not never: {waited} ms");
    old_tab.close();
    delete_database(&db).await;
}

#[wasm_bindgen_test]
async fn a_newer_version_in_another_tab_makes_the_client_let_go_and_continue_in_memory() {
    let db = unique_db("newer");
    let client = open(json!({"database": db})).await;
    let errors = collect_errors(&client);
    let persist = Persist::resolving();
    let todos = local_todos(&client, &persist);

    // A newer build opens the database: this client must not block its upgrade.
    let newer = IndexedDbStorage::open_versioned(&db, 2, 2_000).await;
    assert!(newer.is_ok(), "not blocked: {:?}", newer.err());
    wait_until("the client reported it", 1_000.0, || !errors.borrow().is_empty()).await;
    assert_eq!(kinds(&errors.borrow()), vec!["StorageError:version_change"]);
    assert_eq!(client.persistence(), "memory");

    let id = todos.insert(js(json!({"id": "a"})), JsValue::UNDEFINED).unwrap().id();
    wait_until("completed in memory", 2_000.0, || state_of(&client, &id) == "completed").await;
    client.close().await.ok();
    drop(newer);
    delete_database(&db).await;
}
