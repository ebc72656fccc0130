//! Spawning futures on the JS microtask queue, with one instantiation of the machinery for all
//! of them: `wasm_bindgen_futures::spawn_local` and `future_to_promise` are generic over the
//! future, and each future type otherwise gets its own copy of the task and promise code (about
//! 1.5 KB of wasm per `future_to_promise` call site). Boxing first costs one allocation per
//! spawn, which happens per startup, close, write or connection, never per mutation.

use std::future::Future;
use std::pin::Pin;

use js_sys::Promise;
use wasm_bindgen::JsValue;

type Task = Pin<Box<dyn Future<Output = ()>>>;
type PromiseTask = Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>>;

/// `wasm_bindgen_futures::spawn_local`.
pub(crate) fn spawn(future: impl Future<Output = ()> + 'static) {
    spawn_boxed(Box::pin(future))
}

/// `wasm_bindgen_futures::future_to_promise`.
pub(crate) fn promise(future: impl Future<Output = Result<JsValue, JsValue>> + 'static) -> Promise {
    promise_boxed(Box::pin(future))
}

#[inline(never)]
fn spawn_boxed(future: Task) {
    wasm_bindgen_futures::spawn_local(future)
}

#[inline(never)]
fn promise_boxed(future: PromiseTask) -> Promise {
    wasm_bindgen_futures::future_to_promise(future)
}

/// A new promise with its `resolve` and `reject` functions (what `Promise.withResolvers()`
/// returns, which older engines lack).
pub(crate) fn promise_with_resolvers() -> (Promise, js_sys::Function, js_sys::Function) {
    let mut slot = None;
    let promise = Promise::new(&mut |resolve, reject| slot = Some((resolve, reject)));
    let (resolve, reject) = slot.expect("the executor runs synchronously");
    (promise, resolve, reject)
}

/// Resolves in a later task of the event loop (a `setTimeout(0)`), after the rendering and input
/// work queued before it.
pub(crate) async fn next_task() {
    let (later, resolve, _) = promise_with_resolvers();
    // Kept until it fired: dropping a `Timeout` cancels it.
    let _timeout = gloo_timers::callback::Timeout::new(0, move || {
        resolve.call0(&JsValue::UNDEFINED).ok();
    });
    wasm_bindgen_futures::JsFuture::from(later).await.ok();
}
