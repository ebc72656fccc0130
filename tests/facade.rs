//! The JS facade: typed errors, changed-keys-only notifications, snapshot identity,
//! re-entrant subscribers, all-or-nothing multi-collection transactions, HLC timestamps.
#![cfg(target_arch = "wasm32")]

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::*;
use serde_json::json;
use tandem::{Collection, TandemClient};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

async fn memory_client() -> TandemClient {
    open(json!({"persistence": "memory"})).await
}

/// A local collection (no mutationFn: transactions complete at once) with synced records.
async fn todos(client: &TandemClient, records: serde_json::Value) -> Collection {
    let (sync, _) = sync_with(Some(records));
    let todos = client.collection(object(&[("id", "todos".into()), ("sync", sync)])).unwrap();
    sleep(0).await; // setup resolves in a microtask
    todos
}

fn expect_error(result: Result<impl Sized, JsValue>, name: &str) -> JsValue {
    let error = match result {
        Ok(_) => panic!("expected a {name}"),
        Err(error) => error,
    };
    assert!(error.is_instance_of::<js_sys::Error>(), "a real Error: {:?}", json(&error));
    assert_eq!(get_str(&error, "name"), name);
    error
}

#[wasm_bindgen_test]
async fn refused_mutations_throw_errors_with_a_stable_name_and_their_context() {
    let client = memory_client().await;
    let todos = todos(&client, json!([{"id": "a", "title": "x"}])).await;

    let e = expect_error(todos.insert(js(json!({"id": "a"})), JsValue::UNDEFINED), "DuplicateKeyError");
    assert_eq!((get_str(&e, "collection"), get_str(&e, "key")), ("todos".into(), "a".into()));

    let e = expect_error(todos.update(js(json!("zz")), js(json!({"x": 1})), JsValue::UNDEFINED), "MissingKeyError");
    assert_eq!((get_str(&e, "collection"), get_str(&e, "key")), ("todos".into(), "zz".into()));
    // What the TypeScript layer calls: the same error, returned; a transaction when it works.
    let returned = todos.update_or_error(js(json!("zz")), js(json!({"x": 1})), JsValue::UNDEFINED);
    let e = expect_error(Err::<(), _>(returned), "MissingKeyError");
    assert_eq!((get_str(&e, "collection"), get_str(&e, "key")), ("todos".into(), "zz".into()));
    let returned = todos.update_or_error(js(json!("a")), js(json!({"x": 1})), JsValue::UNDEFINED);
    assert!(!returned.is_instance_of::<js_sys::Error>() && get_str(&returned, "id").starts_with(&client.client_id()));
    assert_eq!(json(&todos.get(js(json!("a"))).unwrap()), json!({"id": "a", "title": "x", "x": 1}));

    let e = expect_error(
        todos.insert(js(json!([{"id": "b"}, {"title": "no id"}])), JsValue::UNDEFINED),
        "InvalidRecordError",
    );
    assert_eq!(get(&e, "index").as_f64(), Some(1.0));
    assert!(todos.get(js(json!("b"))).unwrap().is_undefined(), "all or nothing: the valid record was not applied");

    let e = expect_error(
        client.mutate(js(json!([{"type": "delete", "collection": "nope", "key": "a"}])), JsValue::UNDEFINED),
        "UnknownCollectionError",
    );
    assert_eq!(get_str(&e, "collection"), "nope");

    let e = expect_error(client.collection(js(json!({"id": "todos"}))), "DuplicateCollectionError");
    assert_eq!(get_str(&e, "collection"), "todos");

    expect_error(client.collection(js(json!({"id": "x", "strategy": "sideways"}))), "InvalidArgumentError");
}

/// `get` builds the record from wasm memory, giving the key field the caller's key string:
/// only when the field is that string, not for a number key of a string field or the reverse.
#[wasm_bindgen_test]
async fn get_returns_what_json_parse_would_give_for_string_and_number_keys() {
    let client = memory_client().await;
    let record = json!({"id": "7", "n": 7, "nested": {"a": [1, "x", null]}, "t": "7", "e": "é"});
    let todos = todos(&client, json!([record, {"id": 42, "s": "42"}])).await;
    for key in [json!("7"), json!(7)] {
        let got = todos.get(js(key.clone())).unwrap();
        assert_eq!(json(&got), record, "get({key})");
        assert!(js_sys::Reflect::get(&got, &"id".into()).unwrap().is_string(), "the key field stays a string");
    }
    for key in [json!(42), json!("42")] {
        let got = todos.get(js(key.clone())).unwrap();
        assert_eq!(json(&got), json!({"id": 42, "s": "42"}), "get({key})");
    }
    let proto = js_sys::JSON::parse(r#"{"id": "p", "__proto__": {"polluted": true}}"#).unwrap();
    todos.insert(proto, JsValue::UNDEFINED).unwrap();
    let got = todos.get(js(json!("p"))).unwrap();
    assert_eq!(js_sys::JSON::stringify(&got).unwrap().as_string().unwrap(), r#"{"id":"p","__proto__":{"polluted":true}}"#);
    assert!(js_sys::Reflect::get(&got, &"polluted".into()).unwrap().is_undefined(), "an own property, not the prototype");
}

#[wasm_bindgen_test]
async fn records_keep_the_key_order_they_were_written_in_and_non_objects_are_invalid_records() {
    let client = memory_client().await;
    let todos = todos(&client, json!([])).await;
    let parse = |text: &str| js_sys::JSON::parse(text).unwrap();
    let text = |value: JsValue| js_sys::JSON::stringify(&value).unwrap().as_string().unwrap();

    todos.insert(parse(r#"{"title":"x","id":"a","done":false}"#), JsValue::UNDEFINED).unwrap();
    assert_eq!(text(todos.get(js(json!("a"))).unwrap()), r#"{"title":"x","id":"a","done":false}"#);
    todos.update(js(json!("a")), parse(r#"{"z":1,"done":true}"#), JsValue::UNDEFINED).unwrap();
    assert_eq!(text(todos.get(js(json!("a"))).unwrap()), r#"{"title":"x","id":"a","done":true,"z":1}"#);

    let e = expect_error(todos.insert(js(json!([{"id": "b"}, 5])), JsValue::UNDEFINED), "InvalidRecordError");
    assert_eq!((get_str(&e, "collection"), get(&e, "index").as_f64()), ("todos".into(), Some(1.0)));
    assert!(get_str(&e, "message").contains("is not a JSON object"));
    let e = expect_error(
        client.mutate(js(json!([{"type": "delete", "collection": "todos", "key": "a"},
                                {"type": "insert", "collection": "todos", "value": "text"}])), JsValue::UNDEFINED),
        "InvalidRecordError",
    );
    assert_eq!(get(&e, "index").as_f64(), Some(1.0));
    assert!(todos.get(js(json!("b"))).unwrap().is_undefined() && !todos.get(js(json!("a"))).unwrap().is_undefined());
}

#[wasm_bindgen_test]
async fn subscribers_receive_only_the_changed_keys_with_their_new_values() {
    let client = memory_client().await;
    let todos = todos(&client, json!([{"id": "a", "n": 1}, {"id": "b", "n": 2}, {"id": "c", "n": 3}])).await;
    let seen = collect_changes(&todos);

    todos.update(js(json!("b")), js(json!({"n": 20})), JsValue::UNDEFINED).unwrap();
    todos.insert(js(json!({"id": "d", "n": 4})), JsValue::UNDEFINED).unwrap();
    todos.delete(js(json!("a")), JsValue::UNDEFINED).unwrap();

    assert_eq!(
        *seen.borrow(),
        vec![
            json!([{"type": "update", "key": "b", "value": {"id": "b", "n": 20}}]),
            json!([{"type": "insert", "key": "d", "value": {"id": "d", "n": 4}}]),
            json!([{"type": "delete", "key": "a"}]),
        ],
        "delivered synchronously, one list per change, nothing about untouched keys"
    );
    assert_eq!(json(&todos.get(js(json!("b"))).unwrap()), json!({"id": "b", "n": 20}));
    assert_eq!(todos.size(), 3);
}

/// Change lists are built property by property (src/change_objects.rs): every kind of JSON
/// value must come out as `JSON.parse` would give it, and a kept snapshot must hold the very
/// objects the subscribers got.
#[wasm_bindgen_test]
async fn change_values_are_what_json_parse_would_give_and_the_snapshot_shares_them() {
    let client = memory_client().await;
    let todos = todos(&client, json!([])).await;
    todos.snapshot().unwrap(); // from now on the converted records are kept
    let seen = Rc::new(RefCell::new(Vec::<JsValue>::new()));
    let sink = seen.clone();
    let listener = Closure::<dyn FnMut(JsValue)>::new(move |changes: JsValue| sink.borrow_mut().push(changes));
    todos.subscribe(listener.as_ref().unchecked_ref::<js_sys::Function>().clone()).unwrap();
    listener.forget();

    let long = "x".repeat(300);
    let record = json!({
        "id": "é-1", "ascii": "plain", "empty": "", "accents": "héllo ✓ 😀", "long": long,
        "half": 1.5, "negative": -7, "beyond_2_53": 9007199254740993u64, "yes": true, "none": null,
        "nested": {"a": [1, {"b": null}], "s": "ü"}, "list": ["a", 2, false],
    });
    todos.insert(js(record.clone()), JsValue::UNDEFINED).unwrap();
    todos.update(js(json!("é-1")), js(json!({"ascii": "changed", "list": []})), JsValue::UNDEFINED).unwrap();

    let seen = seen.borrow();
    let inserted = get(&js_sys::Array::from(&seen[0]).get(0), "value");
    let mut expected = record.clone();
    expected["beyond_2_53"] = json!(9007199254740992u64); // the nearest double, as JSON.parse reads it
    assert_eq!(json(&inserted), expected);
    assert_eq!(
        js_sys::Object::keys(inserted.unchecked_ref::<js_sys::Object>()).iter().map(|k| k.as_string().unwrap()).collect::<Vec<_>>(),
        record.as_object().unwrap().keys().cloned().collect::<Vec<_>>(),
        "the order the record was written in"
    );
    assert_eq!(get_str(&inserted, "accents"), "héllo ✓ 😀");
    assert_eq!(get_str(&inserted, "long"), long);

    let change = js_sys::Array::from(&seen[1]).get(0);
    assert_eq!(get_str(&change, "type"), "update");
    assert_eq!(get_str(&change, "key"), "é-1");
    let updated = get(&change, "value");
    expected["ascii"] = json!("changed");
    expected["list"] = json!([]);
    assert_eq!(json(&updated), expected);
    assert!(js_sys::Object::is(&get(&todos.snapshot().unwrap(), "é-1"), &updated), "the snapshot holds the same object");
}

#[wasm_bindgen_test]
async fn a_batch_long_enough_to_be_encoded_in_one_piece_keeps_every_character() {
    let client = memory_client().await;
    let todos = todos(&client, json!([])).await;
    // Texts of thousands of characters cross by one `TextEncoder.encodeInto`: 1-, 2-, 3- and
    // 4-byte UTF-8 characters (a surrogate pair in JS) at every position of the text.
    let titles: Vec<String> = (0..600).map(|i| format!("{i} h\u{e9}llo \u{2713} \u{1f600} {}", "\u{e9}".repeat(i % 7))).collect();
    let records: Vec<serde_json::Value> =
        titles.iter().enumerate().map(|(i, t)| json!({"id": format!("k{i}"), "t": t})).collect();
    todos.insert(js(json!(records)), JsValue::UNDEFINED).unwrap();
    assert_eq!(todos.size(), 600);
    for (i, title) in titles.iter().enumerate() {
        assert_eq!(get_str(&todos.get(js(json!(format!("k{i}")))).unwrap(), "t"), *title);
    }
}

#[wasm_bindgen_test]
async fn a_long_change_list_has_every_value_as_json_parse_would_give_it() {
    let client = memory_client().await;
    let todos = todos(&client, json!([])).await;
    let changes = collect_changes(&todos);
    // Long enough to have its strings batched: ASCII and not, short and long, a field equal
    // to the key that is not the key field, nested values, numbers.
    let records: Vec<serde_json::Value> = (0..40)
        .map(|i| {
            json!({
                "id": format!("k{i}"), "title": format!("todo {i}"), "same": format!("k{i}"),
                "accents": format!("h\u{e9}llo {i}"), "long": "y".repeat(300 + i), "empty": "",
                "n": i, "nested": {"s": format!("n{i}")}, "done": i % 2 == 0, "__proto__": {"p": i},
            })
        })
        .collect();
    todos.insert(js(json!(records)), JsValue::UNDEFINED).unwrap();
    todos.delete(js(json!(["k3", "k4"])), JsValue::UNDEFINED).unwrap();
    let changes = changes.borrow();
    let inserted: Vec<serde_json::Value> = changes[0].as_array().unwrap().clone();
    assert_eq!(inserted.len(), 40);
    for (change, record) in inserted.iter().zip(&records) {
        assert_eq!(change, &json!({"type": "insert", "key": record["id"], "value": record}));
    }
    assert_eq!(changes[1], json!([{"type": "delete", "key": "k3"}, {"type": "delete", "key": "k4"}]));
}

/// Records of more shapes than get ids (64) carry their field names: every one still comes out
/// whole, in change lists, `get` and a first snapshot.
#[wasm_bindgen_test]
async fn records_of_many_shapes_come_out_whole() {
    let client = memory_client().await;
    let todos = todos(&client, json!([])).await;
    let changes = collect_changes(&todos);
    let records: Vec<serde_json::Value> = (0..100)
        .map(|i| json!({"id": format!("k{i}"), format!("field {i}"): i, "__proto__": {"p": i}, "t": "é"}))
        .collect();
    for record in &records {
        todos.insert(js(record.clone()), JsValue::UNDEFINED).unwrap();
    }
    // `get` before any snapshot: built from the engine's record, not read from kept objects.
    for (i, record) in records.iter().enumerate() {
        assert_eq!(json(&todos.get(js(json!(format!("k{i}")))).unwrap()), *record);
    }
    let snapshot = todos.snapshot().unwrap();
    let changes = changes.borrow();
    for (i, record) in records.iter().enumerate() {
        assert_eq!(changes[i], json!([{"type": "insert", "key": record["id"], "value": record}]));
        assert_eq!(json(&get(&snapshot, &format!("k{i}"))), *record);
    }
}

/// An update's key and changes cross in one call when the key is a string (src/update_input.rs);
/// a number key, changes that are not an object or not JSON, non-ASCII and long texts (past the
/// buffer's first size) all still work or fail as they did, with nothing applied on failure.
#[wasm_bindgen_test]
async fn an_update_takes_any_key_and_refuses_changes_that_are_not_a_json_object() {
    let client = memory_client().await;
    let todos = todos(&client, json!([{"id": "é", "n": 0}, {"id": 7, "n": 0}])).await;
    let long = "ü".repeat(5000);
    todos.update(js(json!("é")), js(json!({"n": 1, "long": long})), JsValue::UNDEFINED).unwrap();
    assert_eq!(json(&todos.get(js(json!("é"))).unwrap()), json!({"id": "é", "n": 1, "long": long}));
    todos.update(js(json!(7)), js(json!({"n": 2})), JsValue::UNDEFINED).unwrap();
    assert_eq!(json(&todos.get(js(json!("7"))).unwrap()), json!({"id": 7, "n": 2}));

    for changes in [js(json!(5)), js(json!([1])), JsValue::NULL, JsValue::UNDEFINED] {
        let e = expect_error(todos.update(js(json!("é")), changes, JsValue::UNDEFINED), "InvalidArgumentError");
        assert!(get_str(&e, "message").contains("`changes` must be an object"), "{}", get_str(&e, "message"));
    }
    let bigint = js_sys::Object::new();
    js_sys::Reflect::set(&bigint, &"n".into(), &js_sys::BigInt::from(1u32).into()).unwrap();
    let e = expect_error(todos.update(js(json!("é")), bigint.into(), JsValue::UNDEFINED), "InvalidArgumentError");
    assert!(get_str(&e, "message").contains("not JSON data"), "{}", get_str(&e, "message"));
    expect_error(todos.update(js(json!(true)), js(json!({"n": 3})), JsValue::UNDEFINED), "InvalidArgumentError");
    assert_eq!(json(&todos.get(js(json!("é"))).unwrap())["n"], json!(1), "nothing refused was applied");
}

/// Updates that set the same fields as the one before take its field names (src/update_input.rs):
/// the same names, fewer, more, the same in another order and a refused value in between all
/// set exactly what they name.
#[wasm_bindgen_test]
async fn updates_setting_the_fields_of_the_one_before_or_others_set_what_they_name() {
    let client = memory_client().await;
    let todos = todos(&client, json!([{"id": "a", "n": 0, "done": false, "title": "t"}])).await;
    let (n, text) = (|n: u32| JsValue::from(n), |s: &str| JsValue::from(s));
    let steps = [
        (object(&[("n", n(1)), ("done", true.into())]), json!({"id": "a", "n": 1, "done": true, "title": "t"})),
        (object(&[("n", n(2)), ("done", false.into())]), json!({"id": "a", "n": 2, "done": false, "title": "t"})),
        (object(&[("n", n(3))]), json!({"id": "a", "n": 3, "done": false, "title": "t"})),
        (object(&[("n", n(4)), ("title", text("u"))]), json!({"id": "a", "n": 4, "done": false, "title": "u"})),
        (object(&[("title", text("v")), ("n", n(5))]), json!({"id": "a", "n": 5, "done": false, "title": "v"})),
        (
            object(&[("title", text("w")), ("n", n(6)), ("extra", js(json!([1])))]),
            json!({"id": "a", "n": 6, "done": false, "title": "w", "extra": [1]}),
        ),
    ];
    for (changes, after) in steps {
        todos.update(js(json!("a")), changes, JsValue::UNDEFINED).unwrap();
        assert_eq!(json(&todos.get(js(json!("a"))).unwrap()), after);
    }
    let refused = object(&[("title", text("x")), ("n", js_sys::BigInt::from(7u32).into()), ("extra", js(json!([2])))]);
    expect_error(todos.update(js(json!("a")), refused, JsValue::UNDEFINED), "InvalidArgumentError");
    let changes = object(&[("title", text("y")), ("n", n(8)), ("extra", JsValue::NULL)]);
    todos.update(js(json!("a")), changes, JsValue::UNDEFINED).unwrap();
    let after = json!({"id": "a", "n": 8, "done": false, "title": "y", "extra": null});
    assert_eq!(json(&todos.get(js(json!("a"))).unwrap()), after, "the refused update changed nothing");
}

#[wasm_bindgen_test]
async fn a_snapshot_keeps_its_identity_until_the_data_changes() {
    let client = memory_client().await;
    let (sync, on_update) = sync_with(Some(json!([{"id": "a", "n": 1}, {"id": "b", "n": 2}])));
    let todos = client.collection(object(&[("id", "todos".into()), ("sync", sync)])).unwrap();
    sleep(0).await;

    let first = todos.snapshot().unwrap();
    assert!(js_sys::Object::is(&first, &todos.snapshot().unwrap()), "unchanged data, same object");
    assert_eq!(json(&first), json!({"a": {"id": "a", "n": 1}, "b": {"id": "b", "n": 2}}));

    // The server sends what we already have: nothing visible changed.
    push_update(&on_update, json!([{"id": "a", "n": 1}])).unwrap();
    assert!(js_sys::Object::is(&first, &todos.snapshot().unwrap()), "a sync that changes nothing keeps it");

    todos.update(js(json!("b")), js(json!({"n": 3})), JsValue::UNDEFINED).unwrap();
    let second = todos.snapshot().unwrap();
    assert!(!js_sys::Object::is(&first, &second), "changed data, new object");
    assert_eq!(json(&get(&second, "b")), json!({"id": "b", "n": 3}));
    assert!(js_sys::Object::is(&get(&first, "a"), &get(&second, "a")), "an unchanged record keeps its identity");
    assert!(js_sys::Object::is_frozen(second.unchecked_ref::<js_sys::Object>()), "snapshots are read-only");
}

#[wasm_bindgen_test]
async fn a_subscriber_that_mutates_has_its_change_delivered_after_the_current_one() {
    let client = memory_client().await;
    let todos = Rc::new(todos(&client, json!([{"id": "a", "n": 1}])).await);
    // The first subscriber reacts to `a` by inserting `b` (re-entering the client).
    let reacted = Rc::new(RefCell::new(false));
    let reactor = {
        let (todos, reacted) = (todos.clone(), reacted.clone());
        Closure::<dyn FnMut(JsValue)>::new(move |_changes: JsValue| {
            if !reacted.replace(true) {
                todos.insert(js(json!({"id": "b", "n": 2})), JsValue::UNDEFINED).unwrap();
            }
        })
    };
    todos.subscribe(reactor.into_js_value().unchecked_into()).unwrap();
    let seen = collect_changes(&todos);

    todos.update(js(json!("a")), js(json!({"n": 10})), JsValue::UNDEFINED).unwrap();

    let keys: Vec<String> = seen.borrow().iter().map(|list| list[0]["key"].as_str().unwrap().to_string()).collect();
    assert_eq!(keys, vec!["a", "b"], "every subscriber sees the changes in the order they happened");
    assert_eq!(json(&todos.get(js(json!("b"))).unwrap()), json!({"id": "b", "n": 2}));
}

#[wasm_bindgen_test]
async fn a_multi_collection_transaction_is_all_or_nothing_and_routed_to_its_first_collection() {
    let client = memory_client().await;
    let lists_persist = Persist::resolving();
    let todos_persist = Persist::resolving();
    let (lists_sync, _) = sync_with(Some(json!([{"id": "l1", "count": 0}])));
    let _lists = client
        .collection(object(&[
            ("id", "lists".into()),
            ("sync", lists_sync),
            ("mutationFn", mutation_fn(&lists_persist, None)),
        ]))
        .unwrap();
    let todos = client
        .collection(object(&[("id", "todos".into()), ("mutationFn", mutation_fn(&todos_persist, None))]))
        .unwrap();
    sleep(0).await;

    let refused = client.mutate(
        js(json!([
            {"type": "insert", "collection": "todos", "value": {"id": "t1"}},
            {"type": "update", "collection": "lists", "key": "missing", "changes": {"count": 1}},
        ])),
        JsValue::UNDEFINED,
    );
    expect_error(refused, "MissingKeyError");
    assert!(todos.get(js(json!("t1"))).unwrap().is_undefined(), "nothing of a refused transaction applies");

    let tx = client
        .mutate(
            js(json!([
                {"type": "update", "collection": "lists", "key": "l1", "changes": {"count": 1}},
                {"type": "insert", "collection": "todos", "value": {"id": "t1", "list": "l1"}},
            ])),
            JsValue::UNDEFINED,
        )
        .unwrap();
    wait_until("the transaction completed", 2_000.0, || tx.state().as_deref() == Some("completed")).await;
    assert_eq!(lists_persist.count(&tx.id()), 1, "persisted by its first collection's mutationFn");
    assert_eq!(todos_persist.calls().len(), 0);
    let changes = json(&get(&lists_persist.params()[0], "changes"));
    assert_eq!(changes, json!({"lists": {"l1": {"count": 1}}, "todos": {"t1": {"id": "t1", "list": "l1"}}}));
}

#[wasm_bindgen_test]
async fn transactions_carry_increasing_hybrid_logical_clock_timestamps() {
    let client = memory_client().await;
    let (sync, on_update) = sync_with(Some(json!([{"id": "a"}])));
    let todos = client.collection(object(&[("id", "todos".into()), ("sync", sync)])).unwrap();
    sleep(0).await;
    let before = js_sys::Date::now();
    let t1 = todos.update(js(json!("a")), js(json!({"n": 1})), JsValue::UNDEFINED).unwrap();
    let t2 = todos.update(js(json!("a")), js(json!({"n": 2})), JsValue::UNDEFINED).unwrap();
    let ts = |t: &tandem::TransactionHandle| get(&t.to_json(), "timestamp").as_f64().unwrap();
    assert!(ts(&t1) < ts(&t2), "strictly increasing within the same millisecond");
    assert!(ts(&t1) >= before.trunc() * 1000.0, "Unix microseconds");
    assert_eq!(client.last_timestamp(), ts(&t2));

    // A sync batch from a client whose clock runs ahead moves ours past it.
    let ahead = (js_sys::Date::now() * 1000.0).trunc() + 60_000_000.0;
    push_update(&on_update, json!({"changes": [], "maxTimestamp": ahead})).unwrap();
    let t3 = todos.update(js(json!("a")), js(json!({"n": 3})), JsValue::UNDEFINED).unwrap();
    assert_eq!(ts(&t3), ahead + 1.0);
}

/// An update's changes come in as `JSON.stringify` gives them: what it drops is dropped,
/// numbers keep their value, nested values go through their `toJSON`. (Whether a number stays an
/// integer is not visible from JS: src/update_input.rs tests that.)
#[wasm_bindgen_test]
async fn an_updates_changes_come_in_as_json_stringify_gives_them() {
    let client = memory_client().await;
    let todos = todos(&client, json!([{"id": "a", "keep": 1}])).await;
    let changes = js_sys::Function::new_no_args(
        "return { i: 5, f: 1.5, neg: -3, zero: -0, big: 1e21, u64: 2 ** 63, past: 2 ** 64, min: -(2 ** 63), \
         nan: NaN, inf: -Infinity, s: 'h\\u00e9llo \\u2713', empty: '', t: true, no: false, n: null, u: undefined, \
         fn() {}, [Symbol('x')]: 1, d: new Date(0), nested: { a: [1, { b: undefined }] }, \
         gone: { toJSON() { return undefined } }, __proto__: null }",
    )
    .call0(&JsValue::UNDEFINED)
    .unwrap();
    let text = |value: &JsValue| js_sys::JSON::stringify(value).unwrap().as_string().unwrap();
    let expected = format!(r#"{{"id":"a","keep":1,{}"#, &text(&changes)[1..]);
    todos.update(js(json!("a")), changes, JsValue::UNDEFINED).unwrap();
    assert_eq!(text(&todos.get(js(json!("a"))).unwrap()), expected);
}

/// A handle is the id and the client: every read goes to the client's record of it, and the
/// id (spelt from the timestamp only when read) is the record's.
#[wasm_bindgen_test]
async fn a_transaction_handle_reads_the_clients_record_of_it() {
    let client = memory_client().await;
    let persist = Persist::holding();
    let todos = client
        .collection(object(&[("id", "todos".into()), ("mutationFn", mutation_fn(&persist, None))]))
        .unwrap();
    let tx = todos.insert(js(json!({"id": "a"})), JsValue::UNDEFINED).unwrap();
    let record = tx.to_json();
    assert_eq!(tx.id(), get_str(&record, "id"));
    assert!(tx.id().starts_with(&format!("{}-", client.client_id())), "{}", tx.id());
    assert_eq!(get(&record, "timestamp").as_f64().map(|t| t.to_string()), tx.id().rsplit('-').next().map(String::from));
    let text = |value: &JsValue| js_sys::JSON::stringify(value).unwrap().as_string().unwrap();
    assert_eq!(text(&tx), text(&record), "JSON.stringify(handle) is the record");
    wait_until("the persist call", 2_000.0, || persist.is_held(&tx.id())).await;
    assert_eq!(tx.state().as_deref(), Some("persisting"));
    let settled = wasm_bindgen_futures::JsFuture::from(tx.settled().unwrap());
    persist.resolve(&tx.id());
    let settled = settled.await.unwrap();
    assert_eq!((get_str(&settled, "id"), get_str(&settled, "state")), (tx.id(), "completed".to_string()));
    assert_eq!(tx.state().as_deref(), Some("completed"));
}

#[wasm_bindgen_test]
async fn a_js_merge_computes_parallel_records_and_may_not_call_back_into_the_client() {
    let client = memory_client().await;
    let errors = collect_errors(&client);
    let persist = Persist::holding();
    // Keeps the larger `n` of the server's record and the pending ones.
    let merge = Closure::<dyn FnMut(JsValue, JsValue) -> JsValue>::new(|synced: JsValue, pending: JsValue| {
        let synced = json(&synced);
        let best = json(&pending)
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["modified"]["n"].as_i64().unwrap())
            .chain(synced["n"].as_i64())
            .max()
            .unwrap();
        js(json!({"id": "a", "n": best}))
    });
    let (sync, on_update) = sync_with(Some(json!([{"id": "a", "n": 5}])));
    let todos = Rc::new(
        client
            .collection(object(&[
                ("id", "todos".into()),
                ("sync", sync),
                ("strategy", "parallel".into()),
                ("merge", merge.into_js_value()),
                ("mutationFn", mutation_fn(&persist, None)),
            ]))
            .unwrap(),
    );
    sleep(0).await;
    todos.update(js(json!("a")), js(json!({"n": 7})), JsValue::UNDEFINED).unwrap();
    push_update(&on_update, json!([{"id": "a", "n": 9}])).unwrap();
    assert_eq!(json(&todos.get(js(json!("a"))).unwrap())["n"], 9, "merged over the sync: the server's 9 wins");
    push_update(&on_update, json!([{"id": "a", "n": 6}])).unwrap();
    assert_eq!(json(&todos.get(js(json!("a"))).unwrap())["n"], 7, "and the pending 7 over the server's 6");

    // A merge that reads the client while the engine is computing gets a ReentrancyError; the
    // record falls back to the default re-application and the error is reported.
    let reader = {
        let todos = todos.clone();
        Closure::<dyn FnMut(JsValue, JsValue) -> Result<JsValue, JsValue>>::new(move |_: JsValue, _: JsValue| {
            todos.get(js(json!("a")))
        })
    };
    let options = object(&[("merge", reader.into_js_value())]);
    todos.update(js(json!("a")), js(json!({"n": 8})), options).unwrap();
    assert_eq!(json(&todos.get(js(json!("a"))).unwrap())["n"], 8);
    let reported = errors.borrow().last().cloned().expect("the merge's failure is reported");
    assert_eq!(get_str(&reported, "name"), "MergeError");
    assert_eq!(get_str(&get(&reported, "cause"), "name"), "ReentrancyError");
}
