//! A client is usable the moment it is created: storage opens in the background, and then the
//! work of the meantime is written, the outbox recovered and the synced cache loaded — without
//! ever putting older cached data over newer sync data. On real IndexedDB; the storage of some
//! tests opens only when the test says so.
#![cfg(target_arch = "wasm32")]

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::*;
use js_sys::{Function, Promise};
use serde_json::json;
use tandem::storage::{
    Adoption, CacheContents, IndexedDbStorage, LocalFuture, LostHandler, Storage, StorageError, WriteBatch,
};
use tandem::{Collection, TandemClient};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
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

/// A client whose IndexedDB opens only once `open_storage` is called.
struct Gated {
    client: TandemClient,
    open_storage: Function,
    durable: Rc<RefCell<Vec<WriteBatch>>>,
}

fn gated_client(db: &str) -> Gated {
    let mut gate = None;
    let opened = Promise::new(&mut |resolve, _| gate = Some(resolve));
    let durable: Rc<RefCell<Vec<WriteBatch>>> = Rc::default();
    let opening = {
        let (db, durable) = (db.to_string(), durable.clone());
        Box::pin(async move {
            JsFuture::from(opened).await.ok();
            let inner = IndexedDbStorage::open(&db, 5_000).await?;
            Ok(Rc::new(Recording { inner, durable }) as Rc<dyn Storage>)
        })
    };
    let client = TandemClient::create_with_storage(js(json!({"database": db})), opening).unwrap();
    Gated { client, open_storage: gate.unwrap(), durable }
}

async fn ready(client: &TandemClient) -> Result<JsValue, JsValue> {
    JsFuture::from(client.ready()).await
}

fn todos(client: &TandemClient, persist: &Persist, sync: Option<JsValue>) -> Collection {
    let mut fields = vec![("id", "todos".into()), ("mutationFn", mutation_fn(persist, None))];
    if let Some(sync) = sync {
        fields.push(("sync", sync));
    }
    client.collection(object(&fields)).unwrap()
}

fn stored_state(batches: &[WriteBatch], id: &str) -> Option<String> {
    let record = batches.iter().flat_map(|b| &b.put).rfind(|s| s.id == id)?;
    let tx: serde_json::Value = serde_json::from_str(&record.json).unwrap();
    Some(tx["state"].as_str().unwrap().to_string())
}

fn value(collection: &Collection, key: &str) -> serde_json::Value {
    json(&collection.get(js(json!(key))).unwrap())
}

#[wasm_bindgen_test]
async fn mutations_made_before_storage_opened_reach_the_disk_before_their_persist_and_survive_a_reload() {
    let db = unique_db("early");
    let a = gated_client(&db);
    // At each persist call: what had reached the disk for that transaction by then.
    let seen_on_disk: Rc<RefCell<Vec<Option<String>>>> = Rc::default();
    let a_persist = {
        let (durable, seen) = (a.durable.clone(), seen_on_disk.clone());
        Persist::new(move |id, _| {
            seen.borrow_mut().push(stored_state(&durable.borrow(), id));
            Answer::Hold // A's network never answers: the work is still pending at the reload.
        })
    };
    let a_todos = todos(&a.client, &a_persist, None);
    let t1 = a_todos.insert(js(json!({"id": "a", "n": 1})), JsValue::UNDEFINED).unwrap().id();
    let t2 = a_todos.insert(js(json!({"id": "b", "n": 1})), JsValue::UNDEFINED).unwrap().id();
    assert_eq!(value(&a_todos, "a")["n"], 1, "visible at once, in memory");
    assert_eq!(a.client.persistence(), "opening");

    sleep(50).await;
    assert!(a_persist.calls().is_empty(), "no persist before the transaction is on disk");
    assert!(a.durable.borrow().is_empty());

    a.open_storage.call0(&JsValue::UNDEFINED).unwrap();
    ready(&a.client).await.unwrap();
    assert_eq!(a.client.persistence(), "indexeddb");
    for id in [&t1, &t2] {
        assert_eq!(stored_state(&a.durable.borrow(), id).as_deref(), Some("persisting"), "{id} is on disk once ready");
    }
    wait_until("A persists both", 2_000.0, || a_persist.is_held(&t1) && a_persist.is_held(&t2)).await;
    assert_eq!(*seen_on_disk.borrow(), vec![Some("persisting".to_string()); 2], "written before the network saw them");
    a.client.close().await.ok(); // The tab goes away mid-persist.

    let b = open(json!({"database": db})).await;
    let b_persist = Persist::resolving();
    let b_todos = todos(&b, &b_persist, None);
    assert_eq!(value(&b_todos, "a")["n"], 1, "restored after the reload");
    assert_eq!(value(&b_todos, "b")["n"], 1);
    wait_until("B completed both", 2_000.0, || state_of(&b, &t1) == "completed" && state_of(&b, &t2) == "completed")
        .await;
    assert_eq!((b_persist.count(&t1), b_persist.count(&t2)), (1, 1));
    b.close().await.ok();
    delete_database(&db).await;
}

#[wasm_bindgen_test]
async fn a_client_closed_before_its_storage_opened_still_writes_what_it_accepted() {
    let db = unique_db("close-early");
    let a = gated_client(&db);
    let a_todos = todos(&a.client, &Persist::holding(), None);
    let t1 = a_todos.insert(js(json!({"id": "a"})), JsValue::UNDEFINED).unwrap().id();
    let closing = Spawned::new(JsFuture::from(a.client.close()));
    sleep(20).await;
    assert!(!closing.is_ready(), "closing waits for the storage");
    a.open_storage.call0(&JsValue::UNDEFINED).unwrap();
    closing.take().await.ok();
    assert_eq!(stored_state(&a.durable.borrow(), &t1).as_deref(), Some("persisting"));

    let b = open(json!({"database": db})).await;
    let b_persist = Persist::resolving();
    let _b_todos = todos(&b, &b_persist, None);
    wait_until("B completed t1", 2_000.0, || {
        !b.transaction(&t1).unwrap().is_undefined() && state_of(&b, &t1) == "completed"
    })
    .await;
    assert_eq!(b_persist.count(&t1), 1);
    b.close().await.ok();
    delete_database(&db).await;
}

/// `sync: {setup}` whose setup never resolves and records what it is called with.
fn recording_sync() -> (JsValue, Rc<RefCell<Vec<JsValue>>>) {
    let calls: Rc<RefCell<Vec<JsValue>>> = Rc::default();
    let seen = calls.clone();
    let setup = Closure::<dyn FnMut(JsValue) -> JsValue>::new(move |params: JsValue| {
        seen.borrow_mut().push(params);
        Promise::new(&mut |_, _| {}).into()
    });
    (object(&[("setup", setup.into_js_value())]), calls)
}

#[wasm_bindgen_test]
async fn a_sync_set_up_before_storage_opened_starts_from_the_stored_position_over_the_cached_data() {
    let db = unique_db("setup-after-cache");
    let a = open(json!({"database": db})).await;
    let notes_options = |sync: JsValue| object(&[("id", "notes".into()), ("sync", sync)]);
    let (todos_sync, todos_update) = sync_with(Some(json!([{"id": "x", "n": 0}, {"id": "y", "n": 0}, {"id": "z"}])));
    let (notes_sync, notes_update) = sync_with(Some(json!([{"id": "n1"}])));
    todos(&a, &Persist::holding(), Some(todos_sync));
    a.collection(notes_options(notes_sync)).unwrap();
    sleep(0).await;
    push_update(&todos_update, json!({"changes": [], "position": "p1"})).unwrap();
    push_update(&notes_update, json!({"changes": [], "position": "n-p1"})).unwrap();
    a.close().await.ok(); // Cached: todos x, y, z at p1; notes n1 at n-p1.

    let b = gated_client(&db);
    let (todos_sync, setups) = recording_sync();
    let b_todos = todos(&b.client, &Persist::holding(), Some(todos_sync));
    let (notes_sync, _) = recording_sync();
    let b_notes = b.client.collection(notes_options(notes_sync)).unwrap();
    b_notes.set_sync_position(Some("set-by-the-app".into())).unwrap(); // Newer than the cached one.
    sleep(30).await;
    assert!(setups.borrow().is_empty(), "the setup waits for the cache");

    b.open_storage.call0(&JsValue::UNDEFINED).unwrap();
    ready(&b.client).await.unwrap();
    assert_eq!(setups.borrow().len(), 1);
    assert_eq!(get(&setups.borrow()[0], "position").as_string().as_deref(), Some("p1"), "it resumes from the cache");
    assert_eq!(b_todos.sync_position().as_deref(), Some("p1"));
    assert_eq!(b_notes.sync_position().as_deref(), Some("set-by-the-app"), "the app's own position is kept");
    assert_eq!(b_notes.size(), 1);
    assert_eq!(b_todos.size(), 3, "the cached data is shown meanwhile");

    let on_update: js_sys::Function = get(&setups.borrow()[0], "onUpdate").into();
    let newer = json!({"changes": [{"type": "upsert", "value": {"id": "x", "n": 5}}, {"type": "delete", "key": "z"}]});
    on_update.call1(&JsValue::UNDEFINED, &js(newer)).unwrap();
    assert_eq!(
        json(&b_todos.snapshot().unwrap()),
        json!({"x": {"id": "x", "n": 5}, "y": {"id": "y", "n": 0}}),
        "what the sync delivers lands on top of the cache"
    );
    b.client.close().await.ok();
    delete_database(&db).await;
}

#[wasm_bindgen_test]
async fn a_collection_created_before_storage_opened_gets_the_cache_and_the_recovered_work() {
    let db = unique_db("recover-late");
    let a = open(json!({"database": db})).await;
    let (sync, _) = sync_with(Some(json!([{"id": "x", "n": 0}])));
    let a_todos = todos(&a, &Persist::holding(), Some(sync));
    sleep(0).await;
    let t1 = a_todos.update(js(json!("x")), js(json!({"n": 1})), JsValue::UNDEFINED).unwrap().id();
    a.close().await.ok();

    let b = TandemClient::create(js(json!({"database": db}))).unwrap();
    let b_persist = Persist::resolving();
    let (never_loads, _) = sync_with(None);
    let b_todos = todos(&b, &b_persist, Some(never_loads));
    let changes = collect_changes(&b_todos);
    assert_eq!(b_todos.size(), 0, "nothing is known before storage opened");
    ready(&b).await.unwrap();
    assert_eq!(value(&b_todos, "x")["n"], 1, "the cached record with A's pending change on top");
    assert!(!changes.borrow().is_empty(), "subscribers hear of it");
    wait_until("B completed t1", 2_000.0, || state_of(&b, &t1) == "completed").await;
    assert_eq!(b_persist.count(&t1), 1);
    b.close().await.ok();
    delete_database(&db).await;
}

#[wasm_bindgen_test]
async fn a_created_client_whose_chosen_id_is_in_use_rejects_ready_and_works_in_memory() {
    let db = unique_db("create-in-use");
    let a = open(json!({"database": db, "clientId": "device-1"})).await;
    let b = TandemClient::create(js(json!({"database": db, "clientId": "device-1"}))).unwrap();
    let errors = collect_errors(&b);
    let persist = Persist::resolving();
    let b_todos = todos(&b, &persist, None);
    let t1 = b_todos.insert(js(json!({"id": "a"})), JsValue::UNDEFINED).unwrap().id();

    let error = ready(&b).await.expect_err("the id is held by A");
    assert_eq!(get_str(&error, "name"), "ClientIdInUseError");
    assert_eq!(errors.borrow().iter().map(|e| get_str(e, "name")).collect::<Vec<_>>(), vec!["ClientIdInUseError"]);
    assert_eq!(b.persistence(), "memory");
    wait_until("t1 completed in memory", 2_000.0, || state_of(&b, &t1) == "completed").await;
    b.close().await.ok();
    a.close().await.ok();
    delete_database(&db).await;
}

#[wasm_bindgen_test]
async fn a_memory_client_is_ready_at_once() {
    let client = TandemClient::create(js(json!({"persistence": "memory"}))).unwrap();
    assert_eq!(client.persistence(), "memory");
    ready(&client).await.unwrap();
    let first: JsValue = client.ready().into();
    assert!(js_sys::Object::is(&first, &client.ready().into()), "`ready` keeps its identity");
    client.close().await.ok();
}

/// The synced cache read back straight from storage: each collection's records (found per
/// collection, "a" and "ab" apart) in key order, and the positions.
#[wasm_bindgen_test]
async fn the_synced_cache_reads_back_per_collection_in_key_order_with_the_positions() {
    use std::sync::Arc;
    use tandem::storage::{CacheOp, CACHE_ROW_SEPARATOR};
    use tandem_core::Fields;

    let db = unique_db("cache-read-back");
    let storage = IndexedDbStorage::open(&db, 5_000).await.unwrap();
    let put = |collection: &str, ids: &[&str]| CacheOp::Put {
        collection: collection.into(),
        key_field: "id".into(),
        records: ids
            .iter()
            .map(|id| Arc::new(Fields::parse(&format!(r#"{{"id":"{id}","in":"{collection}"}}"#)).unwrap().unwrap()))
            .collect(),
    };
    let position =
        |collection: &str, at: &str| CacheOp::Position { collection: collection.into(), position: Some(at.into()) };
    let cache = vec![
        put("b", &["2", "1"]),
        put("ab", &["x"]),
        put("a", &["k2", "k1", "k10"]),
        position("a", "pa"),
        position("b", "pb"),
    ];
    storage.write(WriteBatch { cache: Rc::new(cache), ..Default::default() }).await.unwrap();

    let contents = storage.load_cache().await.unwrap();
    let read: Vec<(String, Vec<serde_json::Value>)> = contents
        .records
        .iter()
        .map(|(c, rows)| {
            (c.clone(), rows.split(CACHE_ROW_SEPARATOR).map(|r| serde_json::from_str(r).unwrap()).collect())
        })
        .collect();
    let ids =
        |c: &str, ids: &[&str]| (c.to_string(), ids.iter().map(|id| json!({"id": id, "in": c})).collect::<Vec<_>>());
    assert_eq!(read, vec![ids("a", &["k1", "k10", "k2"]), ids("ab", &["x"]), ids("b", &["1", "2"])]);
    let mut positions = contents.positions.clone();
    positions.sort();
    assert_eq!(positions, vec![("a".to_string(), "pa".to_string()), ("b".to_string(), "pb".to_string())]);
    storage.close();
    delete_database(&db).await;
}
