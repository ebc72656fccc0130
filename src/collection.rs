//! `Collection`: one collection's reads, writes and subscriptions.

use std::rc::Rc;
use std::sync::Arc;

use js_sys::Function;
use tandem_core::{Mutation, MutationOp, TransactionInput};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::convert;
use crate::driver::Driver;
use crate::errors::Error;
use crate::timers::now;
use crate::transaction::TransactionHandle;

#[wasm_bindgen]
pub struct Collection {
    driver: Rc<Driver>,
    name: Arc<str>,
}

impl Collection {
    /// `name`: the engine's own, so lookups by it compare addresses.
    pub(crate) fn new(driver: Rc<Driver>, name: Arc<str>) -> Self {
        Collection { driver, name }
    }

    /// One transaction of `ops` on this collection, with the collection's strategy unless the
    /// options name one.
    fn transact(&self, ops: impl IntoIterator<Item = MutationOp>, options: &JsValue) -> Result<TransactionHandle, Error> {
        self.transact_at(now(), ops, options)
    }

    /// [`Collection::transact`] at `now` (Unix ms).
    fn transact_at(
        &self,
        now: u64,
        ops: impl IntoIterator<Item = MutationOp>,
        options: &JsValue,
    ) -> Result<TransactionHandle, Error> {
        let options = convert::mutate_options(options)?;
        let default_strategy = self.driver.collections.borrow().get(&self.name).map(|c| c.strategy.clone());
        let input = TransactionInput {
            mutations: ops
                .into_iter()
                .map(|op| Mutation { collection: self.name.clone(), op, metadata: options.metadata.clone() })
                .collect(),
            strategy: options.strategy.or(default_strategy).unwrap_or_default(),
            ..Default::default()
        };
        let id = self.driver.mutate(now, input, options.merge)?;
        Ok(self.driver.transaction_handle(&id))
    }
}

#[wasm_bindgen]
impl Collection {
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        self.name.to_string()
    }

    /// Inserts one record or several, in one transaction.
    pub fn insert(
        &self,
        #[wasm_bindgen(unchecked_param_type = "TandemRecord | TandemRecord[]")] records: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "MutationOptions")] options: JsValue,
    ) -> Result<TransactionHandle, JsValue> {
        let ops = if js_sys::Array::is_array(&records) {
            // One conversion for the whole batch.
            let records = convert::inserted_list_from_js(&records, &self.name)?;
            records.into_iter().map(|record| MutationOp::Insert { record }).collect()
        } else {
            vec![MutationOp::Insert { record: convert::inserted_from_js(&records, &self.name, 0)? }]
        };
        Ok(self.transact(ops, &options)?)
    }

    /// Sets `changes` (a shallow field update) on the record with `key`.
    // Every error `updateOrError` returns is an `Error` (made by `From<Error>`); a transaction
    // never is.
    pub fn update(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | number")] key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Record<string, unknown>")] changes: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "MutationOptions")] options: JsValue,
    ) -> Result<TransactionHandle, JsValue> {
        let outcome = self.update_or_error(key, changes, options);
        match outcome.is_instance_of::<js_sys::Error>() {
            true => Err(outcome),
            false => Ok(outcome.unchecked_into()),
        }
    }

    /// `update`, returning the error it would throw rather than throwing it (what the
    /// TypeScript layer calls, and throws the error itself). A call that may throw returns its
    /// value through wasm-bindgen's reference table: two crossings more per update.
    #[wasm_bindgen(js_name = updateOrError, unchecked_return_type = "Transaction | TandemError")]
    pub fn update_or_error(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | number")] key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Record<string, unknown>")] changes: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "MutationOptions")] options: JsValue,
    ) -> JsValue {
        let update = |key, changes, options| -> Result<TransactionHandle, Error> {
            let update = crate::update_input::update_from_js(key, changes)?;
            let op = MutationOp::Update { key: update.key, changes: update.changes };
            self.transact_at(update.now, [op], options)
        };
        match update(&key, &changes, &options) {
            Ok(transaction) => transaction.into(),
            Err(error) => error.into(),
        }
    }

    /// Deletes one record or several, in one transaction.
    pub fn delete(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | number | Array<string | number>")] keys: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "MutationOptions")] options: JsValue,
    ) -> Result<TransactionHandle, JsValue> {
        let ops = convert::one_or_many(&keys)
            .iter()
            .map(|key| Ok(MutationOp::Delete { key: convert::key_from_js(key)? }))
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(self.transact(ops, &options)?)
    }

    /// The visible record (synced data with pending optimistic changes), or `undefined`.
    #[wasm_bindgen(unchecked_return_type = "TandemRecord | undefined")]
    pub fn get(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | number")] key: JsValue,
    ) -> Result<JsValue, JsValue> {
        let key_text = convert::key_from_js(&key)?;
        // A string key is the key field's own value (a number's is spelt anew).
        Ok(self.driver.get(&self.name, &key_text, key.is_string().then_some(&key))?)
    }

    /// Every visible record by key. The same (frozen) object until the data changes, so it
    /// suits `useSyncExternalStore`; unchanged records keep their identity across snapshots.
    #[wasm_bindgen(unchecked_return_type = "Readonly<Record<string, TandemRecord>>")]
    pub fn snapshot(&self) -> Result<JsValue, JsValue> {
        Ok(self.driver.snapshot(&self.name)?)
    }

    /// Number of visible records.
    #[wasm_bindgen(getter)]
    pub fn size(&self) -> u32 {
        self.driver.engine.try_borrow().map_or(0, |e| e.len(&self.name) as u32)
    }

    /// Calls `callback` with the changed keys after every mutation, sync or rollback that
    /// changed visible records. Returns the function that unsubscribes.
    #[wasm_bindgen(unchecked_return_type = "() => void")]
    pub fn subscribe(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(changes: ChangeMessage[]) => void")] callback: Function,
    ) -> Result<Function, JsValue> {
        let id = self.driver.subscribe(&self.name, callback)?;
        let driver = Rc::downgrade(&self.driver);
        let name = self.name.clone();
        let unsubscribe = Closure::<dyn FnMut()>::new(move || {
            if let Some(driver) = driver.upgrade() {
                driver.unsubscribe(&name, id);
            }
        });
        Ok(unsubscribe.into_js_value().unchecked_into())
    }

    /// Stores an opaque sync position (e.g. server heads) with the synced cache.
    #[wasm_bindgen(js_name = setSyncPosition)]
    pub fn set_sync_position(&self, position: Option<String>) -> Result<(), JsValue> {
        Ok(self.driver.set_position(&self.name, position)?)
    }

    /// The sync position last set (restored from storage after a reload).
    #[wasm_bindgen(getter, js_name = syncPosition)]
    pub fn sync_position(&self) -> Option<String> {
        self.driver.collections.borrow().get(&self.name).and_then(|c| c.position.clone())
    }
}
