//! The ordered strategy driven by JS persist functions: queueing behind a persisting
//! transaction on the same key, and a failure rolling back everything queued behind it.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use serde_json::json;
use tandem::{Collection, TandemClient};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

async fn setup(persist: &Persist, strategy: &str) -> (TandemClient, Collection) {
    let client = open(json!({"persistence": "memory"})).await;
    let (sync, _) = sync_with(Some(json!([{"id": "a", "n": 0}, {"id": "b", "n": 0}])));
    let todos = client
        .collection(object(&[
            ("id", "todos".into()),
            ("sync", sync),
            ("strategy", strategy.into()),
            ("mutationFn", mutation_fn(persist, None)),
        ]))
        .unwrap();
    sleep(0).await;
    (client, todos)
}

fn update(todos: &Collection, key: &str, n: i64) -> String {
    todos.update(js(json!(key)), js(json!({"n": n})), JsValue::UNDEFINED).unwrap().id()
}

#[wasm_bindgen_test]
async fn a_transaction_on_a_persisting_key_queues_behind_it_and_starts_when_it_completes() {
    let persist = Persist::holding();
    let (client, todos) = setup(&persist, "ordered").await;
    let t1 = update(&todos, "a", 1);
    let t2 = update(&todos, "a", 2);
    let t3 = update(&todos, "b", 3); // another key: not queued
    wait_until("t1 and t3 are persisting", 1_000.0, || persist.is_held(&t1) && persist.is_held(&t3)).await;

    assert_eq!(state_of(&client, &t2), "queued");
    assert_eq!(get_str(&client.transaction(&t2).unwrap(), "queued_behind"), t1);
    assert_eq!(persist.count(&t2), 0, "not sent while the transaction it queues behind runs");
    assert_eq!(json(&todos.get(js(json!("a"))).unwrap())["n"], 2, "both optimistic changes are visible");

    persist.resolve(&t1);
    wait_until("t2 is persisting", 1_000.0, || persist.is_held(&t2)).await;
    assert_eq!(state_of(&client, &t1), "completed");
    persist.resolve(&t2);
    persist.resolve(&t3);
    wait_until("all completed", 1_000.0, || state_of(&client, &t2) == "completed").await;
    let order: Vec<String> = persist.calls().into_iter().map(|(id, _)| id).collect();
    assert_eq!(order, vec![t1, t3, t2]);
}

#[wasm_bindgen_test]
async fn a_failure_rolls_back_and_fails_everything_queued_behind_it() {
    let persist = Persist::holding();
    let (client, todos) = setup(&persist, "ordered").await;
    let seen = collect_changes(&todos);
    let t1 = update(&todos, "a", 1);
    let t2 = update(&todos, "a", 2);
    // t3 touches a and b: queued behind t2, so it goes down with t1 too.
    let t3 = client
        .mutate(
            js(json!([
                {"type": "update", "collection": "todos", "key": "a", "changes": {"n": 3}},
                {"type": "update", "collection": "todos", "key": "b", "changes": {"n": 3}},
            ])),
            JsValue::UNDEFINED,
        )
        .unwrap();
    let settled_t3 = JsFuture::from(t3.settled().unwrap());
    wait_until("t1 is persisting", 1_000.0, || persist.is_held(&t1)).await;
    assert_eq!(json(&todos.get(js(json!("b"))).unwrap())["n"], 3);

    persist.reject(&t1, "NonRetriableError", "the server said no");
    wait_until("t1 failed", 1_000.0, || state_of(&client, &t1) == "failed").await;

    for id in [&t2, &t3.id()] {
        assert_eq!(state_of(&client, id), "failed");
        let error = get(&client.transaction(id).unwrap(), "error");
        assert_eq!(get_str(&error, "transaction_id"), t1, "names the transaction that failed first");
    }
    assert_eq!(json(&todos.get(js(json!("a"))).unwrap()), json!({"id": "a", "n": 0}), "rolled back");
    assert_eq!(json(&todos.get(js(json!("b"))).unwrap()), json!({"id": "b", "n": 0}), "rolled back");
    assert_eq!(persist.calls().len(), 1, "nothing queued behind the failure was sent");
    let last = seen.borrow().last().cloned().unwrap();
    assert_eq!(last.as_array().unwrap().len(), 2, "the rollback notified both keys once: {last}");

    let rejection = settled_t3.await.expect_err("settled() rejects for a failed transaction");
    assert_eq!(get_str(&rejection, "name"), "TransactionFailedError");
    assert_eq!(get_str(&rejection, "transactionId"), t3.id());
    assert_eq!(get_str(&rejection, "causeTransactionId"), t1);
    assert_eq!(get_str(&get(&rejection, "cause"), "name"), "NonRetriableError");
}

#[wasm_bindgen_test]
async fn parallel_transactions_on_one_key_run_at_once_and_fail_alone() {
    let persist = Persist::holding();
    let (client, todos) = setup(&persist, "parallel").await;
    let t1 = update(&todos, "a", 1);
    let t2 = update(&todos, "a", 2);
    wait_until("both are persisting", 1_000.0, || persist.is_held(&t1) && persist.is_held(&t2)).await;
    persist.reject(&t1, "NonRetriableError", "no");
    persist.resolve(&t2);
    wait_until("both finished", 1_000.0, || state_of(&client, &t2) == "completed").await;
    assert_eq!(state_of(&client, &t1), "failed");
    assert_eq!(json(&todos.get(js(json!("a"))).unwrap())["n"], 2, "t2's change stays");
}
