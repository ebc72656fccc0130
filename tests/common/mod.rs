//! Helpers for the browser suites: JS values from JSON, real-timer waits, and persist
//! functions whose calls are counted and whose promises the test settles.
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect};
use tandem::TandemClient;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// A database name no other test uses.
pub fn unique_db(test: &str) -> String {
    format!("tandem-test-{test}-{}", (js_sys::Math::random() * 1e12) as u64)
}

/// JSON as a plain JS value.
pub fn js(value: serde_json::Value) -> JsValue {
    js_sys::JSON::parse(&value.to_string()).unwrap()
}

/// A JS value as JSON (functions and undefined fields dropped; `undefined` is `null`).
pub fn json(value: &JsValue) -> serde_json::Value {
    match js_sys::JSON::stringify(value).ok().and_then(|s| s.as_string()) {
        Some(text) => serde_json::from_str(&text).unwrap(),
        None => serde_json::Value::Null,
    }
}

/// An object with the given properties (for options that carry functions).
pub fn object(fields: &[(&str, JsValue)]) -> JsValue {
    let object = Object::new();
    for (key, value) in fields {
        Reflect::set(&object, &JsValue::from_str(key), value).unwrap();
    }
    object.into()
}

pub fn get(value: &JsValue, key: &str) -> JsValue {
    Reflect::get(value, &JsValue::from_str(key)).unwrap()
}

pub fn get_str(value: &JsValue, key: &str) -> String {
    get(value, key).as_string().unwrap_or_else(|| panic!("`{key}` is not a string in {:?}", json(value)))
}

/// A JS `Error` with this name (e.g. `NonRetriableError`).
pub fn js_error(name: &str, message: &str) -> JsValue {
    let error = js_sys::Error::new(message);
    error.set_name(name);
    error.into()
}

pub async fn sleep(ms: u32) {
    let mut resolver = None;
    let promise = Promise::new(&mut |resolve, _| resolver = Some(resolve));
    let resolve: Function = resolver.unwrap();
    let _timer = gloo_timers_timeout(ms, resolve);
    JsFuture::from(promise).await.unwrap();
}

fn gloo_timers_timeout(ms: u32, resolve: Function) -> JsValue {
    // setTimeout through the global object: the tests need no timer crate of their own.
    let set_timeout: Function = Reflect::get(&js_sys::global(), &"setTimeout".into()).unwrap().unchecked_into();
    set_timeout.call2(&JsValue::UNDEFINED, &resolve, &JsValue::from(ms)).unwrap()
}

/// Polls `condition` every few milliseconds on real timers; panics after `timeout_ms`.
pub async fn wait_until(what: &str, timeout_ms: f64, mut condition: impl FnMut() -> bool) {
    let start = js_sys::Date::now();
    while !condition() {
        if js_sys::Date::now() - start > timeout_ms {
            panic!("timed out after {timeout_ms} ms waiting until {what}");
        }
        sleep(5).await;
    }
}

/// Runs a future concurrently with the test; its output is read with `take` once ready.
pub struct Spawned<T>(Rc<RefCell<Option<T>>>);

impl<T: 'static> Spawned<T> {
    pub fn new(future: impl Future<Output = T> + 'static) -> Self {
        let slot = Rc::new(RefCell::new(None));
        let filled = slot.clone();
        wasm_bindgen_futures::spawn_local(async move {
            *filled.borrow_mut() = Some(future.await);
        });
        Spawned(slot)
    }

    pub fn is_ready(&self) -> bool {
        self.0.borrow().is_some()
    }

    pub async fn take(self) -> T {
        wait_until("a spawned future finished", 10_000.0, || self.is_ready()).await;
        self.0.borrow_mut().take().unwrap()
    }
}

pub async fn open(options: serde_json::Value) -> TandemClient {
    TandemClient::open(js(options)).await.unwrap_or_else(|e| panic!("open failed: {:?}", json(&e)))
}

/// Collects what `client.onError` reports.
pub fn collect_errors(client: &TandemClient) -> Rc<RefCell<Vec<JsValue>>> {
    let errors = Rc::new(RefCell::new(Vec::new()));
    let sink = errors.clone();
    let callback = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| sink.borrow_mut().push(e));
    client.on_error(callback.into_js_value().unchecked_into());
    errors
}

/// Collects what a collection subscriber receives: one entry per notification.
pub fn collect_changes(collection: &tandem::Collection) -> Rc<RefCell<Vec<serde_json::Value>>> {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = seen.clone();
    let callback = Closure::<dyn FnMut(JsValue)>::new(move |changes: JsValue| sink.borrow_mut().push(json(&changes)));
    collection.subscribe(callback.into_js_value().unchecked_into()).unwrap();
    seen
}

pub fn state_of(client: &TandemClient, id: &str) -> String {
    let record = client.transaction(id).unwrap();
    assert!(!record.is_undefined(), "transaction {id} unknown to this client");
    get_str(&record, "state")
}

/// What a persist call answers.
pub enum Answer {
    Resolve,
    Reject {
        name: &'static str,
        message: &'static str,
    },
    /// Left pending until the test calls `Persist::resolve`/`reject` (or forever).
    Hold,
}

/// A persist function (`mutationFn.persist`) that logs `(transaction id, attempt)` per call and
/// answers as `decide` says.
#[derive(Clone)]
pub struct Persist {
    pub function: Function,
    calls: Rc<RefCell<Vec<(String, u32)>>>,
    held: Rc<RefCell<BTreeMap<String, (Function, Function)>>>,
    params: Rc<RefCell<Vec<JsValue>>>,
}

impl Persist {
    pub fn new(decide: impl Fn(&str, u32) -> Answer + 'static) -> Persist {
        let calls = Rc::new(RefCell::new(Vec::new()));
        let held: Rc<RefCell<BTreeMap<String, (Function, Function)>>> = Rc::default();
        let params: Rc<RefCell<Vec<JsValue>>> = Rc::default();
        let function = {
            let (calls, held, seen) = (calls.clone(), held.clone(), params.clone());
            Closure::<dyn FnMut(JsValue) -> JsValue>::new(move |p: JsValue| {
                let id = get_str(&get(&p, "transaction"), "id");
                let attempt = get(&p, "attempt").as_f64().map_or(0, |n| n as u32);
                calls.borrow_mut().push((id.clone(), attempt));
                seen.borrow_mut().push(p);
                match decide(&id, attempt) {
                    Answer::Resolve => Promise::resolve(&JsValue::UNDEFINED).into(),
                    Answer::Reject { name, message } => Promise::reject(&js_error(name, message)).into(),
                    Answer::Hold => {
                        let mut slot = None;
                        let promise = Promise::new(&mut |resolve, reject| slot = Some((resolve, reject)));
                        held.borrow_mut().insert(id, slot.unwrap());
                        promise.into()
                    }
                }
            })
            .into_js_value()
            .unchecked_into()
        };
        Persist { function, calls, held, params }
    }

    pub fn resolving() -> Persist {
        Persist::new(|_, _| Answer::Resolve)
    }

    pub fn holding() -> Persist {
        Persist::new(|_, _| Answer::Hold)
    }

    pub fn calls(&self) -> Vec<(String, u32)> {
        self.calls.borrow().clone()
    }

    pub fn count(&self, id: &str) -> usize {
        self.calls.borrow().iter().filter(|(i, _)| i == id).count()
    }

    /// The params of every call (`{changes, attempt, transaction}`).
    pub fn params(&self) -> Vec<JsValue> {
        self.params.borrow().clone()
    }

    pub fn is_held(&self, id: &str) -> bool {
        self.held.borrow().contains_key(id)
    }

    pub fn resolve(&self, id: &str) {
        let (resolve, _) = self.held.borrow_mut().remove(id).unwrap_or_else(|| panic!("no held persist for {id}"));
        resolve.call0(&JsValue::UNDEFINED).unwrap();
    }

    pub fn reject(&self, id: &str, name: &str, message: &str) {
        let (_, reject) = self.held.borrow_mut().remove(id).unwrap_or_else(|| panic!("no held persist for {id}"));
        reject.call1(&JsValue::UNDEFINED, &js_error(name, message)).unwrap();
    }
}

/// `mutationFn: {persist}` (and `awaitSync`, if given) for collection options.
pub fn mutation_fn(persist: &Persist, await_sync: Option<&Function>) -> JsValue {
    let mut fields = vec![("persist", persist.function.clone().into())];
    if let Some(f) = await_sync {
        fields.push(("awaitSync", f.clone().into()));
    }
    object(&fields)
}

/// A `todos` collection with no sync layer (its completed changes are its data), persisting
/// through `persist`.
pub fn local_todos(client: &TandemClient, persist: &Persist) -> tandem::Collection {
    client.collection(object(&[("id", "todos".into()), ("mutationFn", mutation_fn(persist, None))])).unwrap()
}

/// A JS function that never settles (an awaitSync or setup that waits forever).
pub fn never() -> Function {
    Closure::<dyn FnMut() -> JsValue>::new(|| Promise::new(&mut |_, _| {}).into()).into_js_value().unchecked_into()
}

/// `sync: {setup}` whose setup resolves with `{data}` and hands its `onUpdate` to the test.
pub fn sync_with(data: Option<serde_json::Value>) -> (JsValue, Rc<RefCell<Option<Function>>>) {
    let on_update: Rc<RefCell<Option<Function>>> = Rc::default();
    let slot = on_update.clone();
    let setup = Closure::<dyn FnMut(JsValue) -> JsValue>::new(move |params: JsValue| {
        *slot.borrow_mut() = Some(get(&params, "onUpdate").unchecked_into());
        match &data {
            Some(data) => Promise::resolve(&object(&[("data", js(data.clone()))])).into(),
            None => Promise::new(&mut |_, _| {}).into(), // A sync that never loads.
        }
    });
    (object(&[("setup", setup.into_js_value())]), on_update)
}

/// Delivers a sync update through a captured `onUpdate`; returns what it threw.
pub fn push_update(on_update: &Rc<RefCell<Option<Function>>>, update: serde_json::Value) -> Result<(), JsValue> {
    let f = on_update.borrow().clone().expect("sync setup ran");
    f.call1(&JsValue::UNDEFINED, &js(update)).map(drop)
}

pub async fn delete_database(name: &str) {
    tandem::storage::IndexedDbStorage::delete_database(name).await.ok();
}
