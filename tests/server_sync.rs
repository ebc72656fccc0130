//! The tandem-server preset in Chromium, over a real WebSocket to a real tandem-server (started
//! by `scripts/test.sh wasm`, which passes its URL and tokens at compile time): a `TandemClient`
//! collection whose `sync` and `mutationFn` are the preset's.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use js_sys::{Array, Function, Reflect};
use serde_json::json;
use tandem::{Collection, ServerSync, TandemClient};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const HOW: &str = "run the browser tests with `scripts/test.sh wasm`: it starts tandem-server and sets TANDEM_TEST_*";

fn server() -> &'static str {
    match option_env!("TANDEM_TEST_SERVER") {
        Some(value) => value,
        None => panic!("{HOW}"),
    }
}

fn write_token() -> &'static str {
    match option_env!("TANDEM_TEST_TOKEN_WRITE") {
        Some(value) => value,
        None => panic!("{HOW}"),
    }
}

fn read_token() -> &'static str {
    match option_env!("TANDEM_TEST_TOKEN_READ") {
        Some(value) => value,
        None => panic!("{HOW}"),
    }
}

/// A workspace no other test (or earlier run against the same server) uses.
fn workspace(test: &str) -> String {
    format!("{test}-{}", (js_sys::Math::random() * 1e12) as u64)
}

fn preset(workspace: &str, token: &str) -> ServerSync {
    ServerSync::new(js(json!({
        "url": server(),
        "workspace": workspace,
        "token": token,
        "reconnect": {"initialDelayMs": 50, "maxDelayMs": 400},
    })))
    .unwrap_or_else(|e| panic!("preset: {:?}", json(&e)))
}

fn todos(client: &TandemClient, preset: &ServerSync) -> Collection {
    client
        .collection(object(&[("id", "todos".into()), ("sync", preset.sync()), ("mutationFn", preset.mutation_fn())]))
        .unwrap()
}

async fn started(preset: &ServerSync) {
    wait_until("the sync started", 10_000.0, || preset.status() == "started").await;
}

fn state(client: &TandemClient, id: &str) -> String {
    get_str(&client.transaction(id).unwrap(), "state")
}

fn position(collection: &Collection) -> Option<String> {
    collection.sync_position()
}

/// Records the text of every WebSocket frame sent and every URL connected to, from now on, in
/// `globalThis.__tandemSent` / `__tandemUrls` (installed once per page).
fn spy_on_websockets() {
    let installed = Reflect::get(&js_sys::global(), &"__tandemSent".into()).unwrap();
    if !installed.is_undefined() {
        return;
    }
    let install = Function::new_no_args(
        r#"
        globalThis.__tandemSent = [];
        globalThis.__tandemUrls = [];
        const Original = globalThis.WebSocket;
        const send = Original.prototype.send;
        Original.prototype.send = function (data) {
            globalThis.__tandemSent.push(String(data));
            return send.call(this, data);
        };
        globalThis.WebSocket = class extends Original {
            constructor(url, protocols) {
                super(url, protocols);
                globalThis.__tandemUrls.push(String(url));
            }
        };
        "#,
    );
    install.call0(&JsValue::UNDEFINED).unwrap();
}

fn spied(name: &str) -> Vec<String> {
    let list: Array = Reflect::get(&js_sys::global(), &name.into()).unwrap().unchecked_into();
    list.iter().map(|v| v.as_string().unwrap()).collect()
}

/// How many `tx` frames carrying transaction `id` were sent.
fn sends_of(id: &str) -> usize {
    spied("__tandemSent").iter().filter(|t| t.contains(&format!("\"id\":\"{id}\""))).count()
}

async fn wait_settled(client: &TandemClient, id: &str) -> String {
    wait_until("the transaction settled", 10_000.0, || matches!(state(client, id).as_str(), "completed" | "failed"))
        .await;
    state(client, id)
}

#[wasm_bindgen_test]
async fn a_write_reaches_the_server_completes_after_its_echo_and_another_client_sees_it() {
    let ws = workspace("write");
    let (pa, pb) = (preset(&ws, write_token()), preset(&ws, write_token()));
    let a = open(json!({"persistence": "memory"})).await;
    let b = open(json!({"persistence": "memory"})).await;
    let (ta, tb) = (todos(&a, &pa), todos(&b, &pb));
    started(&pa).await;
    started(&pb).await;
    let empty = position(&ta);

    let handle = ta.insert(js(json!({"id": "1", "title": "milk"})), JsValue::UNDEFINED).unwrap();
    let record = JsFuture::from(handle.settled().unwrap()).await.expect("completes");
    // Read in the same turn as the completion: had it completed on the ack, the echo (a later
    // socket event) could not have moved the sync position yet.
    let at_completion = position(&ta);
    assert_eq!(get_str(&record, "state"), "completed");
    assert_eq!(Reflect::get(&record, &"attempts".into()).unwrap().unchecked_into::<Array>().length(), 1);
    assert_ne!(at_completion, empty, "the echo's heads were handed over before it completed");

    wait_until("b sees a's write", 10_000.0, || !tb.get(js(json!("1"))).unwrap().is_undefined()).await;
    assert_eq!(json(&tb.get(js(json!("1"))).unwrap()), json!({"id": "1", "title": "milk"}));
    wait_until("b at the same heads", 10_000.0, || position(&tb) == at_completion).await;
    pa.close();
    pb.close();
}

#[wasm_bindgen_test]
async fn pause_holds_writes_and_resume_sends_them_once() {
    spy_on_websockets();
    let ws = workspace("pause");
    let (pa, pb) = (preset(&ws, write_token()), preset(&ws, write_token()));
    let a = open(json!({"persistence": "memory"})).await;
    let b = open(json!({"persistence": "memory"})).await;
    let (ta, tb) = (todos(&a, &pa), todos(&b, &pb));
    started(&pa).await;
    started(&pb).await;
    let seen = collect_changes(&tb);

    pa.pause();
    assert_eq!(pa.status(), "paused");
    let id = ta.insert(js(json!({"id": "p"})), JsValue::UNDEFINED).unwrap().id();
    sleep(300).await;
    assert_eq!(state(&a, &id), "persisting", "waits, neither sent nor failed");
    assert_eq!(sends_of(&id), 0);
    assert!(tb.get(js(json!("p"))).unwrap().is_undefined());

    pa.resume();
    assert_eq!(wait_settled(&a, &id).await, "completed");
    assert_eq!(pa.status(), "started");
    wait_until("b sees it", 10_000.0, || !tb.get(js(json!("p"))).unwrap().is_undefined()).await;
    sleep(200).await;
    assert_eq!(sends_of(&id), 1, "sent once");
    let for_p = seen.borrow().iter().flat_map(|n| n.as_array().unwrap().clone()).filter(|c| c["key"] == "p").count();
    assert_eq!(for_p, 1, "b got it once");
    pa.close();
    pb.close();
}

#[wasm_bindgen_test]
async fn a_read_only_tokens_write_fails_without_retrying_and_is_rolled_back() {
    let ws = workspace("readonly");
    let pr = preset(&ws, read_token());
    let r = open(json!({"persistence": "memory"})).await;
    let tr = todos(&r, &pr);
    started(&pr).await;
    let handle = tr.insert(js(json!({"id": "x"})), JsValue::UNDEFINED).unwrap();
    assert!(!tr.get(js(json!("x"))).unwrap().is_undefined(), "optimistic at first");
    let error = JsFuture::from(handle.settled().unwrap()).await.expect_err("fails");
    assert_eq!(get_str(&error, "name"), "TransactionFailedError");
    let cause = get(&error, "cause");
    assert_eq!(get_str(&cause, "name"), "NonRetriableError");
    assert_eq!(get(&cause, "retriable").as_bool(), Some(false));
    assert!(tr.get(js(json!("x"))).unwrap().is_undefined(), "rolled back");
    let attempts: Array = get(&r.transaction(&handle.id()).unwrap(), "attempts").unchecked_into();
    assert_eq!(attempts.length(), 1, "not retried");
    assert_eq!(pr.status(), "started", "the sync goes on");
    pr.close();
}

#[wasm_bindgen_test]
async fn a_reload_resumes_from_the_cached_heads_and_gets_what_it_missed() {
    spy_on_websockets();
    let ws = workspace("reload");
    let database = unique_db("server-reload");
    let p1 = preset(&ws, write_token());
    let c1 = open(json!({"database": database})).await;
    let t1 = todos(&c1, &p1);
    started(&p1).await;
    let handle = t1.insert(js(json!({"id": "mine"})), JsValue::UNDEFINED).unwrap();
    JsFuture::from(handle.settled().unwrap()).await.unwrap();
    let heads = position(&t1).expect("a position");
    p1.close();
    JsFuture::from(c1.close()).await.unwrap();

    // Meanwhile, someone else writes.
    let other = preset(&ws, write_token());
    let oc = open(json!({"persistence": "memory"})).await;
    let ot = todos(&oc, &other);
    started(&other).await;
    let later = ot.insert(js(json!({"id": "later"})), JsValue::UNDEFINED).unwrap();
    JsFuture::from(later.settled().unwrap()).await.unwrap();
    other.close();

    let p2 = preset(&ws, write_token());
    let c2 = open(json!({"database": database})).await;
    let t2 = todos(&c2, &p2);
    assert!(!t2.get(js(json!("mine"))).unwrap().is_undefined(), "the cached data shows at once");
    started(&p2).await;
    let url = spied("__tandemUrls").pop().unwrap();
    assert!(
        url.contains(&format!("heads={heads}")),
        "resumed from the cached heads: {}",
        url.split("token=").next().unwrap()
    );
    wait_until("the missed write arrives", 10_000.0, || !t2.get(js(json!("later"))).unwrap().is_undefined()).await;
    assert_eq!(t2.size(), 2);
    p2.close();
    JsFuture::from(c2.close()).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_refused_token_shows_an_error_status_backs_off_and_keeps_the_write() {
    spy_on_websockets();
    let ws = workspace("refused");
    let forged = format!("{}x", write_token());
    let pf = preset(&ws, &forged);
    let c = open(json!({"persistence": "memory"})).await;
    let t = todos(&c, &pf);
    let statuses = std::rc::Rc::new(std::cell::RefCell::new(Vec::<String>::new()));
    let sink = statuses.clone();
    let subscribe: Function = Reflect::get(&pf.sync(), &"subscribeStatus".into()).unwrap().unchecked_into();
    let listener = Closure::<dyn FnMut(JsValue)>::new(move |s: JsValue| sink.borrow_mut().push(s.as_string().unwrap()));
    subscribe.call1(&JsValue::UNDEFINED, &listener.into_js_value()).unwrap();
    let id = t.insert(js(json!({"id": "kept"})), JsValue::UNDEFINED).unwrap().id();
    wait_until("an error", 10_000.0, || pf.status() == "error").await;
    let last_error: Function = Reflect::get(&pf.sync(), &"lastError".into()).unwrap().unchecked_into();
    let error = last_error.call0(&JsValue::UNDEFINED).unwrap();
    assert_eq!(get(&error, "fatal").as_bool(), Some(false), "a browser cannot tell a refusal from a network failure");
    assert!(get(&error, "retryAt").as_f64().is_some());
    let before = spied("__tandemUrls").len();
    sleep(1_000).await;
    let attempts = spied("__tandemUrls").len() - before;
    assert!((1..=6).contains(&attempts), "retries with backoff, not in a tight loop: {attempts} in 1 s");
    assert_eq!(state(&c, &id), "persisting", "the write waits");
    assert!(statuses.borrow().contains(&"error".to_string()));
    pf.close();
    assert_eq!(pf.status(), "paused");
}

/// A URL the browser refuses is a fatal error whose message keeps the URL up to its token:
/// a token never reaches an error message.
#[wasm_bindgen_test]
async fn a_malformed_url_is_a_fatal_error_that_never_shows_the_token() {
    let secret = "sEcReT-token-123";
    let bad = ServerSync::new(js(json!({"url": "ws://[bad", "workspace": workspace("bad-url"), "token": secret})))
        .unwrap_or_else(|e| panic!("preset: {:?}", json(&e)));
    let c = open(json!({"persistence": "memory"})).await;
    let _t = todos(&c, &bad);
    wait_until("an error", 10_000.0, || bad.status() == "error").await;
    let last_error: Function = Reflect::get(&bad.sync(), &"lastError".into()).unwrap().unchecked_into();
    let error = last_error.call0(&JsValue::UNDEFINED).unwrap();
    let message = get_str(&error, "message");
    assert!(message.starts_with("invalid URL:") && message.contains("ws://[bad"), "{message}");
    assert!(!message.contains(secret), "{message}");
    assert_eq!(get(&error, "fatal").as_bool(), Some(true));
    bad.close();
}
