//! A JavaScript `merge(synced, pending)` as the core's `Merge`.
//!
//! The engine calls it synchronously while it recomputes a record, with the engine borrowed:
//! it must not call back into the client (such a call fails with `ReentrancyError`). If it
//! throws, the record falls back to the default re-application and the error is reported
//! through `onError` once the engine call is over.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Function;
use tandem_core::{reapply, Merge, PendingMutation, Record};
use wasm_bindgen::JsValue;

use crate::convert;
use crate::errors::Error;

pub struct JsMerge {
    function: Function,
    /// Errors to report after the engine call (the driver drains it).
    errors: Rc<RefCell<Vec<Error>>>,
}

impl JsMerge {
    pub fn new(function: Function, errors: Rc<RefCell<Vec<Error>>>) -> Self {
        JsMerge { function, errors }
    }

    fn failed(&self, pending: &[&PendingMutation], message: String, cause: JsValue) {
        self.errors.borrow_mut().push(Error::Callback {
            name: "MergeError",
            what: "a merge function".into(),
            message,
            collection: pending.first().map(|m| m.collection.to_string()),
            cause,
        });
    }
}

impl Merge for JsMerge {
    fn merge(&self, synced: Option<&Record>, pending: &[&PendingMutation]) -> Option<Record> {
        let synced_js = synced.map_or(JsValue::UNDEFINED, convert::record_to_js);
        match self.function.call2(&JsValue::UNDEFINED, &synced_js, &convert::pending_to_js(pending)) {
            Ok(result) if result.is_undefined() || result.is_null() => None,
            Ok(result) => match convert::record_from_js(&result) {
                Ok(record) => Some(record),
                Err(e) => {
                    self.failed(pending, format!("it returned something that is not a record: {e}"), result);
                    reapply(synced, pending)
                }
            },
            Err(thrown) => {
                let (_, message) = crate::errors::name_and_message(&thrown);
                self.failed(pending, message, thrown);
                reapply(synced, pending)
            }
        }
    }
}
