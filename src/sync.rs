//! Wiring a collection's sync config: `setup({onUpdate, position, collection, keyField, clientId,
//! reportError})` is called once when the collection is created; the data it resolves with is
//! the collection's initial snapshot, and every `onUpdate(update)` is a batch for the engine
//! (and the synced cache). `position` is the sync position stored with the synced cache (the
//! `position` of the last update that carried one), so a sync layer can resume from it after a
//! reload; `reportError(error)` delivers an error to the client's `onError` as it is.

use std::rc::Rc;

use js_sys::Function;
use wasm_bindgen::prelude::*;

use crate::convert;
use crate::driver::{call_async, Driver};
use crate::errors::{self, Error};
use crate::tasks::spawn;

impl Driver {
    pub(crate) fn start_sync(self: &Rc<Self>, collection: String, setup: Function) {
        // Called by the sync layer for as long as it runs; a no-op once the client is gone or
        // closed. Throws (to the sync layer) a typed error for a malformed update.
        let on_update = {
            let weak = Rc::downgrade(self);
            let collection = collection.clone();
            Closure::<dyn FnMut(JsValue) -> Result<(), JsValue>>::new(move |update: JsValue| {
                let Some(driver) = weak.upgrade() else {
                    return Ok(());
                };
                let update = convert::sync_update(&collection, &update, false)?;
                driver.sync(update).map_err(JsValue::from)
            })
            .into_js_value()
        };
        let report_error = {
            let weak = Rc::downgrade(self);
            Closure::<dyn FnMut(JsValue)>::new(move |error: JsValue| {
                if let Some(driver) = weak.upgrade() {
                    let (_, message) = errors::name_and_message(&error);
                    driver.report(Error::Reported { message, error });
                }
            })
            .into_js_value()
        };
        let params = js_sys::Object::new();
        convert::set(&params, "onUpdate", &on_update);
        convert::set(&params, "reportError", &report_error);
        convert::set(&params, "collection", &JsValue::from_str(&collection));
        convert::set(&params, "clientId", &JsValue::from_str(&self.client_id));
        if let Some(state) = self.collections.borrow().get(&collection) {
            convert::set(&params, "keyField", &JsValue::from_str(&state.key_field));
            if let Some(position) = &state.position {
                convert::set(&params, "position", &JsValue::from_str(position));
            }
        }
        let driver = self.clone();
        spawn(async move {
            let fail = |driver: &Rc<Driver>, thrown: JsValue| {
                let (_, message) = errors::name_and_message(&thrown);
                driver.report(Error::Callback {
                    name: "SyncSetupError",
                    what: format!("sync setup of collection `{collection}`"),
                    message,
                    collection: Some(collection.clone()),
                    cause: thrown,
                });
            };
            match call_async(&setup, &params.into()).await {
                Ok(result) => {
                    let Some(data) = convert::field(&result, "data") else {
                        return;
                    };
                    let update = match convert::sync_update(&collection, &data, true) {
                        Ok(update) => update,
                        Err(e) => return fail(&driver, e.into()),
                    };
                    if let Err(e) = driver.sync(update) {
                        fail(&driver, e.into());
                    }
                }
                Err(thrown) => fail(&driver, thrown),
            }
        });
    }
}
