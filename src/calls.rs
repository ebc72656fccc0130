//! Calling the app's `persist` and `awaitSync` functions and taking their answers.
//!
//! A call awaited as a Rust future (`JsFuture`) makes two wasm-bindgen closures per call, each
//! registered with a `FinalizationRegistry`, and a spawned task: with the record serialised for
//! the params, two thirds of the time from an update to its completion (scenario 1's loop in
//! Node, CPU profile). Here a JS helper calls the function and hands its outcome to one
//! closure per client, made once, with the transaction id and attempt it answers. The helpers
//! are in src/js_helpers.js (why one module: see there).

use std::rc::Weak;

use js_sys::Function;
use tandem_core::Transaction;
use wasm_bindgen::prelude::*;

use crate::driver::Driver;

#[wasm_bindgen(module = "/src/js_helpers.js")]
extern "C" {
    #[wasm_bindgen(js_name = callParams)]
    fn lazy_call_params(changes: &str, attempt: Option<u32>, transaction_api: &JsValue, id: &str) -> JsValue;
    #[wasm_bindgen(js_name = callThen)]
    fn call_then(function: &Function, params: &JsValue, answer: &JsValue, id: &str, attempt: f64);
}

/// What a call answers: a persist's attempt, or (no attempt) an `awaitSync`.
const AWAIT_SYNC: f64 = -1.0;

/// The function every call of `driver`'s answers through: `(id, attempt, ok, value)`.
pub(crate) fn answer_for(driver: Weak<Driver>) -> JsValue {
    let answer = Closure::<dyn Fn(String, f64, bool, JsValue)>::new(move |id: String, attempt: f64, ok, value| {
        if let Some(driver) = driver.upgrade() {
            let outcome = if ok { Ok(()) } else { Err(value) };
            let attempt = (attempt >= 0.0).then_some(attempt as u32);
            driver.answered(&id, attempt, outcome);
        }
    });
    answer.into_js_value()
}

/// Calls `function` with `params` in a microtask, as a spawned task would (never inside the
/// caller's turn), then `answer` once what it returned (a promise or a value) settled.
pub(crate) fn call(function: &Function, params: &JsValue, answer: &JsValue, id: &str, attempt: Option<u32>) {
    call_then(function, params, answer, id, attempt.map_or(AWAIT_SYNC, f64::from));
}

/// The argument of `persist` (with `attempt`) or `awaitSync`: `{changes, attempt?,
/// transaction}`, where `changes` is `Transaction::changes_json()`: `{ [collection]: { [key]:
/// fields | null } }`, JSON text until first read (then a plain object, which the function may
/// replace). `transaction` is the record as it is when first read, as a handle's `toJSON()`
/// gives it (through `transaction_api`): serialising every transaction, its records before and
/// after, for a persist function that sends only `changes` was 45% of the time between an
/// update and its completion (scenario 1's loop in Node, CPU profile), and its text the most of
/// the garbage.
pub(crate) fn params(tx: &Transaction, attempt: Option<u32>, transaction_api: &JsValue) -> JsValue {
    lazy_call_params(&tx.changes_json(), attempt, transaction_api, &tx.id)
}
