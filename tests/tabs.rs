//! Several live instances on one IndexedDB database (as several tabs): work left by a closed
//! instance is adopted by exactly one live instance; a live instance's work is never taken.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use serde_json::json;
use tandem::{Collection, TandemClient};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn todos(client: &TandemClient, persist: &Persist) -> Collection {
    let (sync, _) = sync_with(Some(json!([{"id": "x", "n": 0}])));
    client
        .collection(object(&[("id", "todos".into()), ("sync", sync), ("mutationFn", mutation_fn(persist, None))]))
        .unwrap()
}

fn knows(client: &TandemClient, id: &str) -> bool {
    !client.transaction(id).unwrap().is_undefined()
}

/// Opens another instance (`options`), which takes transaction `id` over and completes it,
/// calling its persist exactly once.
async fn completed_once_by_a_new_instance(options: serde_json::Value, id: &str) {
    let client = open(options).await;
    let persist = Persist::resolving();
    let _todos = todos(&client, &persist);
    wait_until("the new instance completed it", 3_000.0, || knows(&client, id) && state_of(&client, id) == "completed")
        .await;
    assert_eq!(persist.count(id), 1);
    client.close().await.ok();
}

#[wasm_bindgen_test]
async fn an_orphaned_outbox_is_adopted_by_exactly_one_of_two_live_instances() {
    let db = unique_db("orphan");
    let a = open(json!({"database": db})).await;
    let a_persist = Persist::holding();
    let a_todos = todos(&a, &a_persist);
    sleep(0).await;
    let ids: Vec<String> =
        (0..4).map(|i| a_todos.insert(js(json!({"id": format!("r{i}")})), JsValue::UNDEFINED).unwrap().id()).collect();
    wait_until("A persists all four", 2_000.0, || ids.iter().all(|id| a_persist.is_held(id))).await;
    a.close().await.ok();

    // B and C start at the same time and race for A's outbox.
    let options = json!({"database": db, "adoptIntervalMs": 50});
    let (b, c) = (Spawned::new(open(options.clone())), Spawned::new(open(options)));
    let (b, c) = (b.take().await, c.take().await);
    let (b_persist, c_persist) = (Persist::resolving(), Persist::resolving());
    let (_b_todos, _c_todos) = (todos(&b, &b_persist), todos(&c, &c_persist));

    wait_until("all four completed somewhere", 3_000.0, || {
        ids.iter().all(|id| [&b, &c].iter().any(|x| knows(x, id) && state_of(x, id) == "completed"))
    })
    .await;
    sleep(150).await; // Several adoption intervals: nothing more may happen.
    for id in &ids {
        assert_eq!(b_persist.count(id) + c_persist.count(id), 1, "{id} persisted exactly once in all");
        assert!(knows(&b, id) != knows(&c, id), "{id} adopted by exactly one instance");
    }
    b.close().await.ok();
    c.close().await.ok();
    delete_database(&db).await;
}

#[wasm_bindgen_test]
async fn a_live_instances_work_is_never_taken_and_is_adopted_once_it_closes() {
    let db = unique_db("live");
    let a = open(json!({"database": db})).await;
    let a_persist = Persist::holding();
    let a_todos = todos(&a, &a_persist);
    sleep(0).await;
    let t1 = a_todos.update(js(json!("x")), js(json!({"n": 1})), JsValue::UNDEFINED).unwrap().id();
    wait_until("A persists t1", 2_000.0, || a_persist.is_held(&t1)).await;
    sleep(20).await; // A's write of t1 is on disk.

    // A long interval: adoption after A closes must come from watching A's lock.
    let b = open(json!({"database": db, "adoptIntervalMs": 60_000})).await;
    let b_persist = Persist::resolving();
    let b_todos = todos(&b, &b_persist);
    sleep(100).await;
    assert!(!knows(&b, &t1), "A is alive: its transaction stays with A");
    assert_eq!(json(&b_todos.get(js(json!("x"))).unwrap())["n"], 0);
    assert_eq!(state_of(&a, &t1), "persisting");

    a.close().await.ok();
    wait_until("B adopted and completed t1", 3_000.0, || knows(&b, &t1) && state_of(&b, &t1) == "completed").await;
    assert_eq!(b_persist.count(&t1), 1);
    b.close().await.ok();
    delete_database(&db).await;
}

#[wasm_bindgen_test]
async fn an_app_chosen_client_id_is_exclusive_and_its_next_page_load_takes_over_its_work() {
    let db = unique_db("fixed-id");
    let a = open(json!({"database": db, "clientId": "device-1"})).await;
    let a_todos = todos(&a, &Persist::holding());
    sleep(0).await;
    let t1 = a_todos.update(js(json!("x")), js(json!({"n": 1})), JsValue::UNDEFINED).unwrap().id();

    let error = match tandem::TandemClient::open(js(json!({"database": db, "clientId": "device-1"}))).await {
        Ok(_) => panic!("a second live instance with the same id"),
        Err(error) => error,
    };
    assert_eq!(get_str(&error, "name"), "ClientIdInUseError");
    assert_eq!(get_str(&error, "clientId"), "device-1");

    a.close().await.ok();
    completed_once_by_a_new_instance(json!({"database": db, "clientId": "device-1"}), &t1).await;
    delete_database(&db).await;
}

/// Counts `IDBObjectStore.put` calls by store name until `restore()`.
fn count_puts() -> JsValue {
    js_sys::Function::new_no_args(
        "const counts = {}, put = IDBObjectStore.prototype.put;
         IDBObjectStore.prototype.put = function (...args) {
           counts[this.name] = (counts[this.name] ?? 0) + 1;
           return put.apply(this, args);
         };
         return { counts, restore() { IDBObjectStore.prototype.put = put; } };",
    )
    .call0(&JsValue::NULL)
    .unwrap()
}

#[wasm_bindgen_test]
async fn an_instance_claims_its_group_once_and_what_it_writes_later_is_still_adopted() {
    let db = unique_db("claim-once");
    let puts = count_puts();
    let a = open(json!({"database": db})).await;
    let a_persist = Persist::holding();
    let a_todos = todos(&a, &a_persist);
    sleep(0).await;
    // Three transactions, each written and finished on its own.
    for n in 1..=3 {
        let id = a_todos.update(js(json!("x")), js(json!({"n": n})), JsValue::UNDEFINED).unwrap().id();
        wait_until("A persists it", 2_000.0, || a_persist.is_held(&id)).await;
        a_persist.resolve(&id);
        wait_until("completed", 2_000.0, || state_of(&a, &id) == "completed").await;
        sleep(20).await; // Its completed record is on disk.
    }
    // A fourth, written after the first writes: left pending when A closes.
    let t4 = a_todos.update(js(json!("x")), js(json!({"n": 4})), JsValue::UNDEFINED).unwrap().id();
    wait_until("A persists t4", 2_000.0, || a_persist.is_held(&t4)).await;
    let counts = get(&puts, "counts");
    let restore: js_sys::Function = get(&puts, "restore").unchecked_into();
    restore.call0(&puts).unwrap();
    let count = |store: &str| get(&counts, store).as_f64().unwrap_or(0.0);
    assert_eq!(count("owners"), 1.0, "A's entry in `owners` is written by its first write only");
    assert!(count("outbox") >= 7.0, "every write puts its records: {}", count("outbox"));

    a.close().await.ok();
    completed_once_by_a_new_instance(json!({"database": db}), &t4).await;
    delete_database(&db).await;
}
