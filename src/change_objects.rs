//! Subscribers' change lists, built as JS objects property by property.
//!
//! One update notifies one change. Sent as JSON text (as it was), its hundred bytes cost a
//! UTF-8 decode plus a `JSON.parse` that, in Chromium between engine calls, took 4–7 µs of the
//! update's 16 µs (call → subscriber, bench scenario 1); plain property assignments, with the
//! field names kept as JS strings and short ASCII strings made without `TextDecoder`, cost a
//! fraction of that. A 10k or 100k-record insert is no slower this way than through one big
//! text (bench scenario 2), and needs no text as big as the batch in wasm memory.

use js_sys::{Array, Map, Object};
use serde_json::Value;
use tandem_core::{ChangeKind, FieldName, Key, KeyChange, Record};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::convert::{self, PlainObject};

/// Most field names kept as JS strings; names past it are converted each time.
const MAX_NAMES: usize = 64;

#[wasm_bindgen]
extern "C" {
    /// `String.fromCharCode.apply(null, bytes)`: the string of ASCII bytes.
    #[wasm_bindgen(js_namespace = ["String", "fromCharCode"], js_name = apply)]
    fn string_from_bytes(this: &JsValue, bytes: &js_sys::Uint8Array) -> JsValue;
}

/// Longest string made from its bytes rather than by `TextDecoder`.
const MAX_ASCII: usize = 256;

/// A JS string. Short ASCII ones (keys, most field values) skip wasm-bindgen's `TextDecoder`,
/// whose per-call cost dominated building an update's change list: ~0.3 µs per string
/// against ~0.1 µs, measured in Chromium.
fn js_string(s: &str) -> JsValue {
    if s.len() > MAX_ASCII || !s.is_ascii() {
        return JsValue::from_str(s);
    }
    // SAFETY: the view is read by the call right after it, before any allocation could grow
    // (and so detach) the wasm memory it points into.
    let bytes = unsafe { js_sys::Uint8Array::view(s.as_bytes()) };
    string_from_bytes(&JsValue::NULL, &bytes)
}

/// Changes to convert: the engine's list, or a first load's keys (each an insert).
#[derive(Clone, Copy)]
pub enum Changes<'a> {
    Listed(&'a [KeyChange]),
    Loaded(&'a [Key]),
}

fn plain_object() -> PlainObject {
    Object::new().unchecked_into()
}

/// Builds change lists, with the JS strings it made once: the message keys, the change kinds,
/// and the field names seen before. One per client.
pub struct ChangeObjects {
    type_: JsValue,
    key: JsValue,
    value: JsValue,
    insert: JsValue,
    update: JsValue,
    delete: JsValue,
    /// Interned names (same allocation for the same name) with their JS strings. A short list
    /// searched by pointer: records repeat a few names.
    names: Vec<(FieldName, JsValue)>,
}

impl Default for ChangeObjects {
    fn default() -> Self {
        ChangeObjects {
            type_: "type".into(),
            key: "key".into(),
            value: "value".into(),
            insert: "insert".into(),
            update: "update".into(),
            delete: "delete".into(),
            names: Vec::new(),
        }
    }
}

impl ChangeObjects {
    fn name(&mut self, name: &FieldName) -> JsValue {
        if let Some((_, js)) = self.names.iter().find(|(known, _)| std::sync::Arc::ptr_eq(known, name)) {
            return js.clone();
        }
        let js = js_string(name);
        // Only names the interner shares are found again by pointer; a longer one has an
        // allocation per record and would only take a place.
        if self.names.len() < MAX_NAMES && name.len() <= tandem_core::field_name::MAX_INTERNED_LEN {
            self.names.push((name.clone(), js.clone()));
        }
        js
    }

    /// `[{type, key, value}]`, no `value` for a delete; `record` reads a key's record.
    /// `records` (key → value), if given, is updated with the same objects.
    pub fn change_list<'a>(
        &mut self,
        changes: Changes,
        record: &dyn Fn(&str) -> Option<&'a Record>,
        records: Option<&Map>,
    ) -> Array {
        let len = match changes {
            Changes::Listed(list) => list.len(),
            Changes::Loaded(keys) => keys.len(),
        };
        let list = Array::new_with_length(len as u32);
        for i in 0..len {
            let (kind, key) = match changes {
                Changes::Listed(list) => (list[i].kind, &list[i].key),
                Changes::Loaded(keys) => (ChangeKind::Insert, &keys[i]),
            };
            let value = if kind == ChangeKind::Delete { None } else { record(key) };
            let message = plain_object();
            let kind = match kind {
                ChangeKind::Insert => &self.insert,
                ChangeKind::Update => &self.update,
                ChangeKind::Delete => &self.delete,
            };
            let key_text = key;
            let key = js_string(key);
            message.set(&self.type_, kind);
            message.set(&self.key, &key);
            match value {
                Some(record) => {
                    let object = plain_object();
                    for (name, field) in record.iter() {
                        let value = match field {
                            // The key field: the string just made for `key`.
                            Value::String(s) if s.as_str() == &**key_text => key.clone(),
                            _ => value_to_js(field),
                        };
                        object.set(&self.name(name), &value);
                    }
                    message.set(&self.value, &object);
                    if let Some(records) = records {
                        records.set(&key, &object);
                    }
                }
                None => {
                    if let Some(records) = records {
                        records.delete(&key);
                    }
                }
            }
            list.set(i as u32, message.into());
        }
        list
    }
}

/// A field's value as `JSON.parse` would give it; nested objects and arrays through their text.
fn value_to_js(value: &Value) -> JsValue {
    match value {
        Value::Null => JsValue::NULL,
        Value::Bool(b) => JsValue::from_bool(*b),
        // The nearest double, as `JSON.parse` reads the number's text.
        Value::Number(n) => JsValue::from_f64(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => js_string(s),
        Value::Array(_) | Value::Object(_) => convert::to_js(value),
    }
}
