//! `Transaction`: the handle a mutation returns.

use std::rc::Rc;

use js_sys::Promise;
use tandem_core::TxId;
use wasm_bindgen::prelude::*;

use crate::convert;
use crate::driver::Driver;

/// A transaction of this client. Its id is stable across retries and reloads: it is the
/// idempotency key the persist function should send.
#[wasm_bindgen(js_name = Transaction)]
pub struct TransactionHandle {
    driver: Rc<Driver>,
    id: TxId,
}

impl TransactionHandle {
    pub(crate) fn new(driver: Rc<Driver>, id: TxId) -> Self {
        TransactionHandle { driver, id }
    }
}

#[wasm_bindgen(js_class = Transaction)]
impl TransactionHandle {
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        self.id.to_string()
    }

    /// `queued | pending | persisting | persisted_awaiting_sync | completed | failed`, or
    /// `undefined` once pruned from history.
    #[wasm_bindgen(getter, unchecked_return_type = "TransactionState | undefined")]
    pub fn state(&self) -> Option<String> {
        let engine = self.driver.engine.try_borrow().ok()?;
        engine.transaction(&self.id).map(|tx| tx.state.as_str().to_string())
    }

    /// The full record (seed 004's `Transaction`), `undefined` once pruned from history.
    #[wasm_bindgen(js_name = toJSON, unchecked_return_type = "TransactionRecord | undefined")]
    pub fn to_json(&self) -> JsValue {
        let Ok(engine) = self.driver.engine.try_borrow() else {
            return JsValue::UNDEFINED;
        };
        engine.transaction(&self.id).map_or(JsValue::UNDEFINED, convert::transaction_to_js)
    }

    /// Resolves with the record once the transaction completed; rejects with a
    /// `TransactionFailedError` (`transactionId`, `causeTransactionId` when a transaction it
    /// was queued behind failed, `cause`) once it failed.
    #[wasm_bindgen(unchecked_return_type = "Promise<TransactionRecord>")]
    pub fn settled(&self) -> Result<Promise, JsValue> {
        self.driver.settled(&self.id).map_err(JsValue::from)
    }
}
