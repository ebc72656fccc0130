//! No IndexedDB at all (private modes, sandboxed frames): the client reports it and works in
//! memory. In a file of its own: it hides `indexedDB` from the page, and the tests of one file
//! run concurrently in one page.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use js_sys::Reflect;
use serde_json::json;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn without_indexeddb_the_client_reports_it_and_works_in_memory() {
    // Private modes and sandboxed frames have no IndexedDB: hide it.
    let global = js_sys::global();
    let descriptor = js_sys::Object::new();
    Reflect::set(&descriptor, &"value".into(), &JsValue::UNDEFINED).unwrap();
    Reflect::set(&descriptor, &"configurable".into(), &JsValue::TRUE).unwrap();
    js_sys::Object::define_property(global.unchecked_ref::<js_sys::Object>(), &"indexedDB".into(), &descriptor);
    let client = open(json!({"database": unique_db("none")})).await;
    Reflect::delete_property(global.unchecked_ref::<js_sys::Object>(), &"indexedDB".into()).unwrap();

    let errors = collect_errors(&client);
    let reported: Vec<(String, String)> =
        errors.borrow().iter().map(|e| (get_str(e, "name"), get_str(e, "kind"))).collect();
    assert_eq!(reported, vec![("StorageError".to_string(), "unavailable".to_string())], "kept for the first onError");
    assert_eq!(client.persistence(), "memory");
    let persist = Persist::resolving();
    let todos =
        client.collection(object(&[("id", "todos".into()), ("mutationFn", mutation_fn(&persist, None))])).unwrap();
    let id = todos.insert(js(json!({"id": "a"})), JsValue::UNDEFINED).unwrap().id();
    wait_until("completed in memory", 2_000.0, || state_of(&client, &id) == "completed").await;
    client.close().await.ok();
}
