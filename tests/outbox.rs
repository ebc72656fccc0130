//! The outbox on real IndexedDB: a transaction is on disk before its persist runs (and, once it
//! is, later attempts do not wait for another write), a burst of mutations shares one write, and
//! records carry their owner. Stored as segments (one record per write, see `Outbox` in
//! src/js_helpers.js): superseded records go, a reload finds each transaction's newest state,
//! an erased one stays erased, and a record of the first schema is still read.
#![cfg(target_arch = "wasm32")]

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::*;
use serde_json::json;
use tandem::storage::{
    Adoption, CacheContents, IndexedDbStorage, LocalFuture, LostHandler, Storage, StorageError, WriteBatch,
};
use tandem::TandemClient;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// The real storage, recording each write's batch once it is durable.
struct Recording {
    inner: IndexedDbStorage,
    durable: Rc<RefCell<Vec<WriteBatch>>>,
}

impl Storage for Recording {
    fn load_cache(&self) -> LocalFuture<Result<CacheContents, StorageError>> {
        self.inner.load_cache()
    }

    fn adopt(&self, me: &str, live: &[String], reclaim_own: bool) -> LocalFuture<Result<Adoption, StorageError>> {
        self.inner.adopt(me, live, reclaim_own)
    }

    fn write(&self, batch: WriteBatch) -> LocalFuture<Result<(), StorageError>> {
        let written = self.inner.write(batch.clone());
        let durable = self.durable.clone();
        Box::pin(async move {
            written.await?;
            durable.borrow_mut().push(batch);
            Ok(())
        })
    }

    fn on_lost(&self, handler: LostHandler) {
        self.inner.on_lost(handler)
    }

    fn close(&self) {
        self.inner.close()
    }
}

async fn recording_client(db: &str) -> (TandemClient, Rc<RefCell<Vec<WriteBatch>>>) {
    let durable = Rc::new(RefCell::new(Vec::new()));
    let storage = Recording { inner: IndexedDbStorage::open(db, 5_000).await.unwrap(), durable: durable.clone() };
    let client = TandemClient::open_with_storage(js(json!({"database": db})), Rc::new(storage)).await.unwrap();
    (client, durable)
}

fn stored_state(batches: &[WriteBatch], id: &str) -> Option<String> {
    let record = batches.iter().flat_map(|b| &b.put).rfind(|s| s.id == id)?;
    let tx: serde_json::Value = serde_json::from_str(&record.json).unwrap();
    Some(tx["state"].as_str().unwrap().to_string())
}

#[wasm_bindgen_test]
async fn a_transaction_is_on_disk_before_its_persist_is_called() {
    let db = unique_db("write-ahead");
    let (client, durable) = recording_client(&db).await;
    // At each persist call: what had reached the disk for that transaction by then.
    let seen_on_disk: Rc<RefCell<Vec<Option<String>>>> = Rc::default();
    let persist = {
        let (durable, seen) = (durable.clone(), seen_on_disk.clone());
        Persist::new(move |id, _| {
            seen.borrow_mut().push(stored_state(&durable.borrow(), id));
            Answer::Resolve
        })
    };
    let todos = local_todos(&client, &persist);
    let ids: Vec<String> =
        (0..3).map(|i| todos.insert(js(json!({"id": i})), JsValue::UNDEFINED).unwrap().id()).collect();
    wait_until("all completed", 2_000.0, || ids.iter().all(|id| state_of(&client, id) == "completed")).await;
    assert_eq!(*seen_on_disk.borrow(), vec![Some("persisting".to_string()); 3]);
    let owners: Vec<String> = durable.borrow().iter().flat_map(|b| b.put.iter().map(|s| s.owner.clone())).collect();
    assert!(owners.iter().all(|o| *o == client.client_id()), "every record names its owner");
    client.close().await.ok();
    delete_database(&db).await;
}

#[wasm_bindgen_test]
async fn a_queued_transaction_already_on_disk_is_persisted_without_waiting_for_another_write() {
    let db = unique_db("on-disk");
    let (client, durable) = recording_client(&db).await;
    // Per persist call: the transaction id and its state on disk at that moment.
    type Seen = Vec<(String, Option<String>)>;
    let seen_on_disk: Rc<RefCell<Seen>> = Rc::default();
    let persist = {
        let (durable, seen) = (durable.clone(), seen_on_disk.clone());
        Persist::new(move |id, _| {
            seen.borrow_mut().push((id.to_string(), stored_state(&durable.borrow(), id)));
            Answer::Resolve
        })
    };
    let todos = local_todos(&client, &persist);
    let first = todos.insert(js(json!({"id": "a", "n": 0})), JsValue::UNDEFINED).unwrap().id();
    // Queued behind `first` (same key): written once as queued, in the same burst.
    let second = todos.update(js(json!("a")), js(json!({"n": 1})), JsValue::UNDEFINED).unwrap().id();
    wait_until("both completed", 2_000.0, || state_of(&client, &second) == "completed").await;
    assert_eq!(state_of(&client, &first), "completed");
    assert_eq!(
        *seen_on_disk.borrow(),
        vec![
            (first.clone(), Some("persisting".to_string())),
            // Its mutations were on disk already: the write of its attempt did not hold it.
            (second.clone(), Some("queued".to_string())),
        ]
    );
    wait_until("the last write", 2_000.0, || stored_state(&durable.borrow(), &second).as_deref() == Some("completed"))
        .await;
    client.close().await.ok();
    delete_database(&db).await;
}

#[wasm_bindgen_test]
async fn a_burst_of_mutations_is_written_in_one_storage_transaction() {
    let db = unique_db("burst");
    let (client, durable) = recording_client(&db).await;
    let persist = Persist::holding();
    let todos = local_todos(&client, &persist);
    for i in 0..100 {
        todos.insert(js(json!({"id": i})), JsValue::UNDEFINED).unwrap();
    }
    wait_until("written", 2_000.0, || !durable.borrow().is_empty()).await;
    assert_eq!(durable.borrow()[0].put.len(), 100, "one write for the whole burst");
    client.close().await.ok();
    delete_database(&db).await;
}

/// A turn of the microtask queue: a write issued in it cannot complete meanwhile (its `complete`
/// event is a task).
async fn microtask() {
    wasm_bindgen_futures::JsFuture::from(js_sys::Promise::resolve(&JsValue::NULL)).await.unwrap();
}

#[wasm_bindgen_test]
async fn mutations_made_while_a_write_is_in_flight_share_the_next_write() {
    let db = unique_db("in-flight");
    let (client, durable) = recording_client(&db).await;
    let persist = Persist::holding();
    let todos = local_todos(&client, &persist);
    todos.insert(js(json!({"id": 0})), JsValue::UNDEFINED).unwrap();
    microtask().await; // Its write is issued.
    for i in 1..=10 {
        todos.insert(js(json!({"id": i})), JsValue::UNDEFINED).unwrap();
        microtask().await; // Each asks for a flush while that write is in flight.
    }
    wait_until("all written", 2_000.0, || durable.borrow().iter().map(|b| b.put.len()).sum::<usize>() >= 11).await;
    let sizes: Vec<usize> = durable.borrow().iter().map(|b| b.put.len()).collect();
    assert_eq!(sizes, [1, 10], "the ten made meanwhile go in one write, after the first");
    wait_until("all persisting", 2_000.0, || persist.calls().len() == 11).await;
    client.close().await.ok();
    delete_database(&db).await;
}

/// Plain IndexedDB access to a database's `outbox` store, as an older build or another tab has it.
fn raw_outbox() -> js_sys::Function {
    js_sys::Function::new_with_args(
        "name, rewrite",
        "return new Promise((resolve, reject) => {
           const open = indexedDB.open(name);
           open.onerror = () => reject(open.error);
           open.onsuccess = () => {
             const db = open.result, tx = db.transaction(['outbox'], 'readwrite'), store = tx.objectStore('outbox');
             const all = store.getAll();
             all.onsuccess = () => { if (rewrite) rewrite(store, all.result); };
             tx.oncomplete = () => { db.close(); resolve(all.result); };
             tx.onerror = () => reject(tx.error);
           };
         });",
    )
}

/// The records in `db`'s outbox; `rewrite(store, records)` may change them in the same transaction.
async fn outbox_records(db: &str, rewrite: &JsValue) -> Vec<JsValue> {
    let promise: js_sys::Promise = raw_outbox().call2(&JsValue::NULL, &db.into(), rewrite).unwrap().unchecked_into();
    let records: js_sys::Array = wasm_bindgen_futures::JsFuture::from(promise).await.unwrap().unchecked_into();
    records.iter().collect()
}

#[wasm_bindgen_test]
async fn each_write_is_one_record_and_a_reload_finds_every_transaction_in_its_newest_state() {
    let db = unique_db("segments");
    let a = open(json!({"database": db})).await;
    let persist = Persist::resolving();
    let todos = local_todos(&a, &persist);
    let mut ids = Vec::new();
    for burst in 0..5 {
        for i in 0..20 {
            ids.push(todos.insert(js(json!({"id": burst * 20 + i})), JsValue::UNDEFINED).unwrap().id());
        }
        wait_until("the burst completed", 2_000.0, || ids.iter().all(|id| state_of(&a, id) == "completed")).await;
        sleep(20).await; // The completed states are on disk.
    }
    let last = todos.update(js(json!(0)), js(json!({"n": 1})), JsValue::UNDEFINED).unwrap().id();
    wait_until("the last completed", 2_000.0, || state_of(&a, &last) == "completed").await;
    sleep(20).await;
    let records = outbox_records(&db, &JsValue::UNDEFINED).await;
    // Each burst wrote its pending and its completed states; the pending ones are gone.
    assert!(records.len() <= 7, "{} records for 101 transactions in 12 writes", records.len());
    let stored: usize = records.iter().map(|r| js_sys::Array::from(&get(r, "ids")).length() as usize).sum();
    assert!(stored >= 101, "every transaction has a copy: {stored}");
    a.close().await.ok();

    let b = open(json!({"database": db})).await;
    let b_persist = Persist::resolving();
    let _todos = local_todos(&b, &b_persist);
    for id in ids.iter().chain([&last]) {
        assert_eq!(state_of(&b, id), "completed", "{id} comes back in its newest state");
    }
    sleep(50).await;
    assert!(b_persist.calls().is_empty(), "nothing is sent again");
    b.close().await.ok();
    delete_database(&db).await;
}

#[wasm_bindgen_test]
async fn a_transaction_dropped_from_history_does_not_come_back_after_a_reload() {
    let db = unique_db("erased");
    let options = json!({"database": db, "history": {"maxFinished": 2}});
    let a = open(options.clone()).await;
    let persist = Persist::resolving();
    let todos = local_todos(&a, &persist);
    // Two in one write (one stays in history, one is dropped), then three more on their own.
    let mut ids = vec![
        todos.insert(js(json!({"id": "a"})), JsValue::UNDEFINED).unwrap().id(),
        todos.insert(js(json!({"id": "b"})), JsValue::UNDEFINED).unwrap().id(),
    ];
    for n in 0..3 {
        wait_until("completed", 2_000.0, || ids.iter().all(|id| state_of_or_pruned(&a, id))).await;
        sleep(20).await;
        ids.push(todos.update(js(json!("a")), js(json!({"n": n})), JsValue::UNDEFINED).unwrap().id());
    }
    wait_until("completed", 2_000.0, || ids.iter().all(|id| state_of_or_pruned(&a, id))).await;
    sleep(20).await;
    a.close().await.ok();

    // Opened keeping all history: what it finds is what is stored.
    let b = open(json!({"database": db})).await;
    let _todos = local_todos(&b, &persist);
    let known: Vec<bool> = ids.iter().map(|id| !b.transaction(id).unwrap().is_undefined()).collect();
    assert_eq!(known, [false, false, false, true, true], "only the last two are in the stored history");
    b.close().await.ok();
    delete_database(&db).await;
}

/// Completed, or already dropped from history.
fn state_of_or_pruned(client: &TandemClient, id: &str) -> bool {
    let record = client.transaction(id).unwrap();
    record.is_undefined() || get_str(&record, "state") == "completed"
}

#[wasm_bindgen_test]
async fn a_record_of_the_first_schema_is_recovered() {
    let db = unique_db("first-schema");
    let a = open(json!({"database": db})).await;
    let todos = local_todos(&a, &Persist::holding());
    let t1 = todos.insert(js(json!({"id": "a"})), JsValue::UNDEFINED).unwrap().id();
    sleep(20).await;
    a.close().await.ok();
    // As an older build stored it: one record per transaction, keyed by its id.
    let rewrite = js_sys::Function::new_with_args(
        "store, records",
        "for (const r of records) {
           store.delete(r.id);
           store.put({ id: r.ids[0], owner: r.owner, tx: r.tx });
         }",
    );
    let records = outbox_records(&db, &rewrite).await;
    assert_eq!(records.len(), 1);

    let b = open(json!({"database": db})).await;
    let b_persist = Persist::resolving();
    let b_todos = local_todos(&b, &b_persist);
    wait_until("B completed t1", 2_000.0, || state_of(&b, &t1) == "completed").await;
    assert_eq!(b_persist.count(&t1), 1);
    sleep(20).await;
    // A record no longer needed goes with the next write.
    let t2 = b_todos.insert(js(json!({"id": "b"})), JsValue::UNDEFINED).unwrap().id();
    wait_until("B completed t2", 2_000.0, || state_of(&b, &t2) == "completed").await;
    sleep(20).await;
    let records = outbox_records(&db, &JsValue::UNDEFINED).await;
    assert!(records.iter().all(|r| get(r, "ids").is_array()), "the old record was superseded and deleted");
    b.close().await.ok();
    delete_database(&db).await;
}
