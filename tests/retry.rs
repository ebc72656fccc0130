//! Retries on real timers: exponential backoff between attempts, `NonRetriableError` stopping
//! at one attempt, the attempt budget, and an attempt timeout.
#![cfg(target_arch = "wasm32")]

mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::*;
use serde_json::json;
use tandem::{Collection, TandemClient};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

async fn setup(persist: &Persist, options: serde_json::Value) -> (TandemClient, Collection) {
    let client = open(options).await;
    let (sync, _) = sync_with(Some(json!([{"id": "a", "n": 0}])));
    let todos = client
        .collection(object(&[("id", "todos".into()), ("sync", sync), ("mutationFn", mutation_fn(persist, None))]))
        .unwrap();
    sleep(0).await;
    (client, todos)
}

fn attempts(client: &TandemClient, id: &str) -> Vec<serde_json::Value> {
    json(&get(&client.transaction(id).unwrap(), "attempts")).as_array().unwrap().clone()
}

#[wasm_bindgen_test]
async fn a_failing_persist_is_retried_with_exponential_backoff() {
    // Fails twice, then succeeds.
    let persist = Persist::new(|_, attempt| match attempt {
        1 | 2 => Answer::Reject { name: "NetworkError", message: "offline" },
        _ => Answer::Resolve,
    });
    let retry = json!({"initialDelayMs": 30, "factor": 2, "jitter": 0, "maxRetries": 4});
    let (client, todos) = setup(&persist, json!({"persistence": "memory", "retry": retry})).await;
    let id = todos.update(js(json!("a")), js(json!({"n": 1})), JsValue::UNDEFINED).unwrap().id();

    wait_until("completed", 3_000.0, || state_of(&client, &id) == "completed").await;
    assert_eq!(persist.calls(), vec![(id.clone(), 1), (id.clone(), 2), (id.clone(), 3)]);
    let attempts = attempts(&client, &id);
    let started = |i: usize| attempts[i]["started_at"].as_f64().unwrap();
    let ended = |i: usize| attempts[i]["completed_at"].as_f64().unwrap();
    assert_eq!(attempts[0]["error"]["name"], "NetworkError");
    assert!(started(1) - ended(0) >= 30.0, "first retry after 30 ms: {attempts:?}");
    assert!(started(2) - ended(1) >= 60.0, "second retry after 60 ms: {attempts:?}");
    assert_eq!(attempts[0]["retry_scheduled_for"].as_f64().unwrap(), ended(0) + 30.0);
}

#[wasm_bindgen_test]
async fn a_non_retriable_error_fails_the_transaction_after_one_attempt() {
    let persist = Persist::new(|_, _| Answer::Reject { name: "NonRetriableError", message: "invalid title" });
    let retry = json!({"initialDelayMs": 10, "jitter": 0});
    let (client, todos) = setup(&persist, json!({"persistence": "memory", "retry": retry})).await;
    let id = todos.update(js(json!("a")), js(json!({"n": 1})), JsValue::UNDEFINED).unwrap().id();

    wait_until("failed", 1_000.0, || state_of(&client, &id) == "failed").await;
    sleep(60).await; // Long past when a retry would have run.
    assert_eq!(persist.count(&id), 1);
    let error = json(&get(&client.transaction(&id).unwrap(), "error"));
    assert_eq!(error["error"], json!({"name": "NonRetriableError", "message": "invalid title", "retriable": false}));
    assert_eq!(json(&todos.get(js(json!("a"))).unwrap())["n"], 0, "rolled back");
}

#[wasm_bindgen_test]
async fn retries_stop_when_the_budget_is_spent() {
    let persist = Persist::new(|_, _| Answer::Reject { name: "Error", message: "503" });
    let retry = json!({"initialDelayMs": 5, "factor": 1, "jitter": 0, "maxRetries": 2});
    let (client, todos) = setup(&persist, json!({"persistence": "memory", "retry": retry})).await;
    let id = todos.update(js(json!("a")), js(json!({"n": 1})), JsValue::UNDEFINED).unwrap().id();
    wait_until("failed", 2_000.0, || state_of(&client, &id) == "failed").await;
    sleep(30).await;
    assert_eq!(persist.count(&id), 3, "1 attempt + 2 retries");
}

#[wasm_bindgen_test]
async fn an_attempt_that_never_answers_times_out_and_is_retried() {
    let hung = Rc::new(Cell::new(false));
    let first = hung.clone();
    let persist = Persist::new(move |_, attempt| {
        if attempt == 1 {
            first.set(true);
            Answer::Hold // Never settles.
        } else {
            Answer::Resolve
        }
    });
    let options = json!({"persistence": "memory", "attemptTimeoutMs": 40, "retry": {"initialDelayMs": 5, "jitter": 0}});
    let (client, todos) = setup(&persist, options).await;
    let id = todos.update(js(json!("a")), js(json!({"n": 1})), JsValue::UNDEFINED).unwrap().id();
    wait_until("completed", 2_000.0, || state_of(&client, &id) == "completed").await;
    assert!(hung.get());
    let attempts = attempts(&client, &id);
    assert_eq!(attempts[0]["error"]["name"], "TimeoutError");
    assert_eq!(persist.count(&id), 2);
}
