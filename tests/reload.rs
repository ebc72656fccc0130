//! Recovery after a reload, on real IndexedDB: instance A is closed mid-persist (as a closed
//! tab), instance B opens the same database and finishes A's work.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use serde_json::json;
use tandem::{Collection, TandemClient};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn todos(client: &TandemClient, persist: &Persist, await_sync: Option<&js_sys::Function>, sync: JsValue) -> Collection {
    client
        .collection(object(&[("id", "todos".into()), ("sync", sync), ("mutationFn", mutation_fn(persist, await_sync))]))
        .unwrap()
}

#[wasm_bindgen_test]
async fn a_reload_finishes_each_pending_transaction_exactly_once_with_the_same_ids() {
    let db = unique_db("reload");
    let a = open(json!({"database": db})).await;
    let a_persist = Persist::holding(); // A's network never answers.
    let (sync, _) = sync_with(Some(json!([{"id": "x", "n": 0}])));
    let a_todos = todos(&a, &a_persist, None, sync);
    sleep(0).await;
    let t1 = a_todos.insert(js(json!({"id": "y", "n": 1})), JsValue::UNDEFINED).unwrap().id();
    let t2 = a_todos.update(js(json!("x")), js(json!({"n": 2})), JsValue::UNDEFINED).unwrap().id();
    let t3 = a_todos.update(js(json!("x")), js(json!({"n": 3})), JsValue::UNDEFINED).unwrap().id();
    wait_until("A is persisting t1 and t2", 2_000.0, || a_persist.is_held(&t1) && a_persist.is_held(&t2)).await;
    assert_eq!(state_of(&a, &t3), "queued");
    a.close().await.ok(); // The tab goes away mid-persist.
    let a_calls = a_persist.calls().len();

    let b = open(json!({"database": db})).await;
    let b_persist = Persist::resolving();
    let (never_loads, _) = sync_with(None);
    let b_todos = todos(&b, &b_persist, None, never_loads);
    assert_eq!(json(&b_todos.get(js(json!("x"))).unwrap())["n"], 3, "A's optimistic state is back at once");
    assert_eq!(json(&b_todos.get(js(json!("y"))).unwrap())["n"], 1);

    wait_until("B completed all three", 3_000.0, || {
        [&t1, &t2, &t3].iter().all(|id| !b.transaction(id).unwrap().is_undefined() && state_of(&b, id) == "completed")
    })
    .await;
    sleep(50).await;
    for id in [&t1, &t2, &t3] {
        assert_eq!(b_persist.count(id), 1, "{id} persisted once by B, with A's id as idempotency key");
    }
    assert_eq!(b_persist.calls().len(), 3);
    assert_eq!(a_persist.calls().len(), a_calls, "the closed instance runs nothing more");
    let attempts = json(&get(&b.transaction(&t1).unwrap(), "attempts"));
    assert_eq!(attempts[0]["interrupted"], true, "A's attempt is marked interrupted");
    assert_eq!(get_str(&b.transaction(&t1).unwrap(), "client"), a.client_id(), "the creator stays the client");
    b.close().await.ok();
    delete_database(&db).await;
}

#[wasm_bindgen_test]
async fn a_transaction_persisted_and_awaiting_sync_at_the_reload_is_not_sent_again() {
    let db = unique_db("awaiting");
    let a = open(json!({"database": db})).await;
    let a_persist = Persist::resolving();
    let (sync, _) = sync_with(Some(json!([{"id": "x", "n": 0}])));
    let a_todos = todos(&a, &a_persist, Some(&never()), sync);
    sleep(0).await;
    let t1 = a_todos.update(js(json!("x")), js(json!({"n": 1})), JsValue::UNDEFINED).unwrap().id();
    wait_until("t1 awaits sync", 2_000.0, || state_of(&a, &t1) == "persisted_awaiting_sync").await;
    a.close().await.ok();

    let b = open(json!({"database": db})).await;
    let b_persist = Persist::resolving();
    let (never_loads, _) = sync_with(None);
    let _b_todos = todos(&b, &b_persist, Some(&never()), never_loads);
    assert_eq!(state_of(&b, &t1), "completed", "assumed synced (seed 004)");
    sleep(50).await;
    assert_eq!(b_persist.calls().len(), 0, "not sent again");
    b.close().await.ok();
    delete_database(&db).await;
}

#[wasm_bindgen_test]
async fn the_last_synced_data_and_pending_changes_show_after_a_reload_before_any_sync() {
    let db = unique_db("cache");
    let a = open(json!({"database": db})).await;
    let a_persist = Persist::holding();
    let (sync, on_update) = sync_with(Some(json!([{"id": "x", "n": 0}, {"id": "y", "n": 0}, {"id": "gone", "n": 0}])));
    let a_todos = todos(&a, &a_persist, None, sync);
    sleep(0).await;
    push_update(&on_update, json!({"changes": [{"type": "delete", "key": "gone"}], "position": "heads-7"})).unwrap();
    a_todos.update(js(json!("x")), js(json!({"n": 1})), JsValue::UNDEFINED).unwrap();
    a.close().await.ok();

    let (shown, position) = reopened_before_any_sync(&db).await;
    assert_eq!(
        shown,
        json!({"x": {"id": "x", "n": 1}, "y": {"id": "y", "n": 0}}),
        "cached synced data with A's pending change on top, before the sync answered"
    );
    assert_eq!(position.as_deref(), Some("heads-7"));
}

/// A batch's puts and deletes reach the cache in the batch's order, whatever runs they form.
#[wasm_bindgen_test]
async fn the_cache_keeps_the_order_of_a_batch_that_puts_and_deletes_the_same_keys() {
    let db = unique_db("order");
    let a = open(json!({"database": db})).await;
    let (sync, on_update) = sync_with(Some(json!([{"id": "x", "n": 0}, {"id": "z", "n": 0}])));
    let _todos = todos(&a, &Persist::holding(), None, sync);
    sleep(0).await;
    let changes = json!([
        {"type": "upsert", "value": {"id": "x", "n": 1}}, {"type": "delete", "key": "x"},
        {"type": "delete", "key": "z"}, {"type": "upsert", "value": {"id": "z", "n": 2}},
        {"type": "upsert", "value": {"id": "w", "n": 3}},
    ]);
    push_update(&on_update, json!({"changes": changes, "position": "heads-9"})).unwrap();
    a.close().await.ok();

    let (shown, position) = reopened_before_any_sync(&db).await;
    assert_eq!(shown, json!({"z": {"id": "z", "n": 2}, "w": {"id": "w", "n": 3}}));
    assert_eq!(position.as_deref(), Some("heads-9"));
}

/// What a page reopening `db` shows before its sync answers (the sync never does): the
/// collection's records and its stored sync position. The database is deleted after.
async fn reopened_before_any_sync(db: &str) -> (serde_json::Value, Option<String>) {
    let b = open(json!({"database": db})).await;
    let (never_loads, _) = sync_with(None);
    let b_todos = todos(&b, &Persist::holding(), None, never_loads);
    let seen = (json(&b_todos.snapshot().unwrap()), b_todos.sync_position());
    b.close().await.ok();
    delete_database(db).await;
    seen
}

/// The engine holds a sync update back while a pending transaction locks its key; the synced
/// cache must still get the server's record (its sync position moves past it).
#[wasm_bindgen_test]
async fn a_sync_update_held_back_by_a_pending_transaction_is_cached_as_the_server_sent_it() {
    let db = unique_db("held");
    let a = open(json!({"database": db})).await;
    let a_persist = Persist::holding();
    let (sync, on_update) = sync_with(Some(json!([{"id": "x", "n": 0}])));
    let a_todos = todos(&a, &a_persist, None, sync);
    sleep(0).await;
    a_todos.update(js(json!("x")), js(json!({"n": 1})), JsValue::UNDEFINED).unwrap();
    let from_server = json!({"id": "x", "n": 5, "title": "from the server"});
    push_update(&on_update, json!({"changes": [{"type": "upsert", "value": from_server}], "position": "heads-8"})).unwrap();
    a.close().await.ok();

    let (shown, position) = reopened_before_any_sync(&db).await;
    assert_eq!(
        shown,
        json!({"x": {"id": "x", "n": 1, "title": "from the server"}}),
        "the server's record from the cache, with A's pending change on top"
    );
    assert_eq!(position.as_deref(), Some("heads-8"));
}

#[wasm_bindgen_test]
async fn work_adopted_after_one_reload_survives_the_next() {
    let db = unique_db("twice");
    let (never_loads, _) = sync_with(None);
    let a = open(json!({"database": db})).await;
    let a_todos = todos(&a, &Persist::holding(), None, never_loads.clone());
    let t1 = a_todos.insert(js(json!({"id": "y"})), JsValue::UNDEFINED).unwrap().id();
    let t2 = a_todos.insert(js(json!({"id": "z"})), JsValue::UNDEFINED).unwrap().id();
    sleep(20).await;
    a.close().await.ok();

    // The second page load adopts both: it runs t1's collection and goes away mid-persist…
    let b = open(json!({"database": db})).await;
    let b_persist = Persist::holding();
    let _b_todos = todos(&b, &b_persist, None, never_loads.clone());
    wait_until("B persists t1", 2_000.0, || b_persist.is_held(&t1)).await;
    b.close().await.ok();
    // …and a third one that never creates the collection holds them without running them.
    let idle = open(json!({"database": db})).await;
    sleep(20).await;
    idle.close().await.ok();

    let c = open(json!({"database": db})).await;
    let c_persist = Persist::resolving();
    let _c_todos = todos(&c, &c_persist, None, never_loads);
    let done = |id: &str| !c.transaction(id).unwrap().is_undefined() && state_of(&c, id) == "completed";
    wait_until("C completed both", 2_000.0, || done(&t1) && done(&t2)).await;
    assert_eq!((c_persist.count(&t1), c_persist.count(&t2)), (1, 1));
    let attempts = json(&get(&c.transaction(&t1).unwrap(), "attempts"));
    assert_eq!(attempts.as_array().unwrap().len(), 3, "A's and B's interrupted attempts, then C's");
    c.close().await.ok();
    delete_database(&db).await;
}

/// A collection without a sync layer: its completed changes are its data, and a reload finds
/// them (they went to the synced cache with the transactions' saves).
#[wasm_bindgen_test]
async fn a_local_collections_data_survives_a_reload() {
    let db = unique_db("local");
    let a = open(json!({"database": db})).await;
    let notes = a.collection(object(&[("id", "notes".into())])).unwrap();
    notes.insert(js(json!([{"id": "x", "n": 1}, {"id": "y", "n": 1}, {"id": "gone"}])), JsValue::UNDEFINED).unwrap();
    notes.update(js(json!("x")), js(json!({"n": 2})), JsValue::UNDEFINED).unwrap();
    let last = notes.delete(js(json!("gone")), JsValue::UNDEFINED).unwrap().id();
    wait_until("completed", 2_000.0, || state_of(&a, &last) == "completed").await;
    a.close().await.ok();

    let b = open(json!({"database": db})).await;
    let notes = b.collection(object(&[("id", "notes".into())])).unwrap();
    JsFuture::from(b.ready()).await.unwrap();
    assert_eq!(json(&notes.snapshot().unwrap()), json!({"x": {"id": "x", "n": 2}, "y": {"id": "y", "n": 1}}));
    b.close().await.ok();
    delete_database(&db).await;
}
