//! The outbox on real IndexedDB: a transaction is on disk before its persist runs (and, once it
//! is, later attempts do not wait for another write), a burst of mutations shares one write, and
//! records carry their owner.
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
    let todos =
        client.collection(object(&[("id", "todos".into()), ("mutationFn", mutation_fn(&persist, None))])).unwrap();
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
    let todos =
        client.collection(object(&[("id", "todos".into()), ("mutationFn", mutation_fn(&persist, None))])).unwrap();
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
    let todos =
        client.collection(object(&[("id", "todos".into()), ("mutationFn", mutation_fn(&persist, None))])).unwrap();
    for i in 0..100 {
        todos.insert(js(json!({"id": i})), JsValue::UNDEFINED).unwrap();
    }
    wait_until("written", 2_000.0, || !durable.borrow().is_empty()).await;
    assert_eq!(durable.borrow()[0].put.len(), 100, "one write for the whole burst");
    client.close().await.ok();
    delete_database(&db).await;
}
