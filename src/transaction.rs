//! `Transaction`: the handle a mutation returns.
//!
//! A plain JS object holding the id, whose reads call back into the client. A wasm-bindgen
//! class would own a Rust box freed by a `FinalizationRegistry`: registering each handle was
//! ~5% of an update (bench scenario 1, measured in Chromium), and most handles are never read.
//! A transaction `mutate` created is named by its timestamp: its id, `{client id}-{timestamp}`,
//! is spelt only if asked for.

use std::rc::Weak;

use js_sys::Promise;
use wasm_bindgen::prelude::*;

use crate::convert;
use crate::driver::Driver;

#[wasm_bindgen(inline_js = "
export class Transaction {
  #api; #id;
  constructor(api, id) { this.#api = api; this.#id = id; }
  get id() {
    const id = this.#id;
    return typeof id === 'string' ? id : (this.#id = this.#api.prefix + id);
  }
  get state() { return this.#api.call(0, this.id); }
  toJSON() { return this.#api.call(1, this.id); }
  settled() { return this.#api.call(2, this.id); }
}
export function transactionApi(call, prefix) { return { call, prefix }; }
export function newTransaction(api, timestamp) { return new Transaction(api, timestamp); }
export function transactionWithId(api, id) { return new Transaction(api, id); }
")]
extern "C" {
    /// A transaction of this client. Its id is stable across retries and reloads: it is the
    /// idempotency key the persist function should send.
    #[wasm_bindgen(js_name = Transaction, typescript_type = "Transaction")]
    pub type TransactionHandle;
    #[wasm_bindgen(method, getter)]
    pub fn id(this: &TransactionHandle) -> String;
    /// `queued | pending | persisting | persisted_awaiting_sync | completed | failed`, or
    /// `undefined` once pruned from history.
    #[wasm_bindgen(method, getter)]
    pub fn state(this: &TransactionHandle) -> Option<String>;
    /// The full record (seed 004's `Transaction`), `undefined` once pruned from history.
    #[wasm_bindgen(method, js_name = toJSON)]
    pub fn to_json(this: &TransactionHandle) -> JsValue;
    /// Resolves with the record once the transaction completed; rejects with a
    /// `TransactionFailedError` once it failed.
    #[wasm_bindgen(method, catch)]
    pub fn settled(this: &TransactionHandle) -> Result<Promise, JsValue>;

    #[wasm_bindgen(js_name = transactionApi)]
    fn transaction_api(call: &JsValue, prefix: &str) -> JsValue;
    #[wasm_bindgen(js_name = newTransaction)]
    fn new_transaction(api: &JsValue, timestamp: f64) -> TransactionHandle;
    #[wasm_bindgen(js_name = transactionWithId)]
    fn transaction_with_id(api: &JsValue, id: &str) -> TransactionHandle;
}

/// What the handles of `driver`'s transactions call: `call(what, id)`, and the prefix of ids.
pub(crate) fn api_for(driver: Weak<Driver>, client_id: &str) -> JsValue {
    let prefix = format!("{client_id}-");
    let call = Closure::<dyn Fn(u32, String) -> Result<JsValue, JsValue>>::new(move |what, id: String| {
        // The client was freed: no record to read, and nothing will settle.
        let Some(driver) = driver.upgrade() else {
            return if what == 2 { Err(crate::errors::Error::Closed.into()) } else { Ok(JsValue::UNDEFINED) };
        };
        match what {
            0 => Ok(driver.with_transaction(&id, |tx| tx.state.as_str().into()).unwrap_or(JsValue::UNDEFINED)),
            1 => Ok(driver.with_transaction(&id, convert::transaction_to_js).unwrap_or(JsValue::UNDEFINED)),
            _ => driver.settled(&id).map(JsValue::from).map_err(JsValue::from),
        }
    });
    transaction_api(&call.into_js_value(), &prefix)
}

/// The handle of transaction `id`, which `client_id`'s `mutate` created.
pub(crate) fn handle(api: &JsValue, client_id: &str, id: &str) -> TransactionHandle {
    // Exact as a double below 2^53: HLC microseconds until the year 2255.
    const EXACT: u64 = 1 << 53;
    let timestamp = id
        .strip_prefix(client_id)
        .and_then(|rest| rest.strip_prefix('-'))
        // Spelt as JS spells the number: digits only, no leading zero.
        .filter(|digits| digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0'))
        .and_then(|digits| digits.parse::<u64>().ok())
        .filter(|&timestamp| timestamp < EXACT);
    match timestamp {
        Some(timestamp) => new_transaction(api, timestamp as f64),
        None => transaction_with_id(api, id),
    }
}
