//! The sync layer's side of the facade: `setup({onUpdate})`, the update formats it accepts,
//! confirmations, and updates to keys a running transaction holds.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use serde_json::json;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn updates_are_record_arrays_or_change_batches_and_bad_ones_throw_typed_errors() {
    let client = open(json!({"persistence": "memory"})).await;
    let (sync, on_update) = sync_with(Some(json!([{"id": "a", "n": 1}, {"id": "b", "n": 1}])));
    let todos = client.collection(object(&[("id", "todos".into()), ("sync", sync)])).unwrap();
    sleep(0).await;
    assert_eq!(todos.size(), 2, "the data setup resolved with is the initial snapshot");

    push_update(&on_update, json!([{"id": "c", "n": 1}])).unwrap();
    push_update(
        &on_update,
        json!({"changes": [{"type": "delete", "key": "a"}, {"type": "upsert", "value": {"id": "b", "n": 2}}]}),
    )
    .unwrap();
    assert_eq!(json(&todos.snapshot().unwrap()), json!({"b": {"id": "b", "n": 2}, "c": {"id": "c", "n": 1}}));

    push_update(&on_update, json!({"snapshot": true, "changes": [{"type": "upsert", "value": {"id": "z"}}]})).unwrap();
    assert_eq!(json(&todos.snapshot().unwrap()), json!({"z": {"id": "z"}}), "a snapshot replaces everything");

    let error = push_update(&on_update, json!([{"id": "ok"}, {"no": "key"}])).expect_err("malformed");
    assert_eq!(get_str(&error, "name"), "InvalidRecordError");
    assert_eq!(get(&error, "index").as_f64(), Some(1.0));
    assert!(todos.get(js(json!("ok"))).unwrap().is_undefined(), "a refused batch applies nothing");
}

#[wasm_bindgen_test]
async fn a_confirming_batch_completes_the_transaction_awaiting_sync() {
    let client = open(json!({"persistence": "memory"})).await;
    let persist = Persist::resolving();
    let (sync, on_update) = sync_with(Some(json!([{"id": "a", "n": 0}])));
    let todos = client
        .collection(object(&[
            ("id", "todos".into()),
            ("sync", sync),
            ("mutationFn", mutation_fn(&persist, Some(&never()))),
        ]))
        .unwrap();
    sleep(0).await;
    let seen = collect_changes(&todos);
    let id = todos.update(js(json!("a")), js(json!({"n": 1})), JsValue::UNDEFINED).unwrap().id();
    wait_until("awaiting sync", 1_000.0, || state_of(&client, &id) == "persisted_awaiting_sync").await;

    push_update(&on_update, json!({"changes": [{"type": "upsert", "value": {"id": "a", "n": 1}}], "confirms": [id]}))
        .unwrap();
    assert_eq!(state_of(&client, &id), "completed");
    assert_eq!(seen.borrow().len(), 1, "the server's echo of our own write changes nothing visible");
}

#[wasm_bindgen_test]
async fn an_update_to_a_key_held_by_a_running_transaction_waits_for_it() {
    let client = open(json!({"persistence": "memory"})).await;
    let persist = Persist::holding();
    let (sync, on_update) = sync_with(Some(json!([{"id": "a", "n": 0, "title": "old"}])));
    let todos = client
        .collection(object(&[("id", "todos".into()), ("sync", sync), ("mutationFn", mutation_fn(&persist, None))]))
        .unwrap();
    sleep(0).await;
    let id = todos.update(js(json!("a")), js(json!({"n": 1})), JsValue::UNDEFINED).unwrap().id();
    wait_until("persisting", 1_000.0, || persist.is_held(&id)).await;

    push_update(&on_update, json!([{"id": "a", "n": 0, "title": "new"}])).unwrap();
    assert_eq!(json(&todos.get(js(json!("a"))).unwrap())["title"], "old", "held while the key is locked");
    persist.reject(&id, "NonRetriableError", "no");
    wait_until("failed", 1_000.0, || state_of(&client, &id) == "failed").await;
    assert_eq!(json(&todos.get(js(json!("a"))).unwrap()), json!({"id": "a", "n": 0, "title": "new"}));
}

#[wasm_bindgen_test]
async fn closing_the_client_closes_each_sync_layer_once() {
    let client = open(json!({"persistence": "memory"})).await;
    let (sync, _on_update) = sync_with(None);
    let closed = Rc::new(Cell::new(0u32));
    let count = closed.clone();
    // `this` must be the sync config, as for a method call.
    let this_seen = Rc::new(RefCell::new(JsValue::UNDEFINED));
    let this_out = this_seen.clone();
    let close = Closure::<dyn FnMut(JsValue)>::new(move |this: JsValue| {
        count.set(count.get() + 1);
        *this_out.borrow_mut() = this;
    })
    .into_js_value();
    // A plain function forwarding its `this`, so the closure above can see it.
    let forward = js_sys::Function::new_with_args("f", "return function () { f(this) }")
        .call1(&JsValue::NULL, &close)
        .unwrap();
    js_sys::Reflect::set(&sync, &"close".into(), &forward).unwrap();
    client.collection(object(&[("id", "todos".into()), ("sync", sync.clone())])).unwrap();
    sleep(0).await;
    assert_eq!(closed.get(), 0);

    wasm_bindgen_futures::JsFuture::from(client.close()).await.unwrap();
    wasm_bindgen_futures::JsFuture::from(client.close()).await.unwrap();
    assert_eq!(closed.get(), 1, "closed with the client, once");
    assert!(js_sys::Object::is(&this_seen.borrow(), &sync), "called as a method of the sync config");
}
