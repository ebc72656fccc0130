//! Subscribers' change lists, built as JS objects by small JS helpers.
//!
//! One update notifies one change. Sent as JSON text (as it was), its hundred bytes cost a
//! UTF-8 decode plus a `JSON.parse` that, in Chromium between engine calls, took 4–7 µs of the
//! update's 16 µs (call → subscriber, bench scenario 1). Built property by property from wasm,
//! each property was a call across the boundary (~15 per record); the helpers below take a
//! message, or four fields of a record, per call (~5 per record), with the field names kept
//! as JS strings and short ASCII strings made from wasm memory without `TextDecoder`. No text
//! as big as a batch is ever held in wasm memory.

use js_sys::{Array, Map};
use serde_json::Value;
use tandem_core::{ChangeKind, FieldName, Key, KeyChange, Record};
use wasm_bindgen::prelude::*;

use crate::convert;

/// Most field names kept as JS strings; names past it are converted each time.
const MAX_NAMES: usize = 64;

#[wasm_bindgen(inline_js = "
let memory, bytes = new Uint8Array(0);
export function useMemory(m) { memory = m; }
export function asciiString(at, len) {
  if (bytes.buffer !== memory.buffer) bytes = new Uint8Array(memory.buffer);
  return String.fromCharCode.apply(null, bytes.subarray(at, at + len));
}
function put(o, k, v) {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
  else o[k] = v;
}
export function setFields(o, a, b, c, d, e, f, g, h) {
  o ??= {};
  if (a !== undefined) put(o, a, b);
  if (c !== undefined) put(o, c, d);
  if (e !== undefined) put(o, e, f);
  if (g !== undefined) put(o, g, h);
  return o;
}
const decoder = new TextDecoder();
let text = '';
export function decodeBatch(at, len) {
  if (bytes.buffer !== memory.buffer) bytes = new Uint8Array(memory.buffer);
  text = decoder.decode(bytes.subarray(at, at + len));
}
export function batchSlice(start, end) { return text.substring(start, end); }
export function putChange(list, i, type, key, value) {
  list[i] = value === undefined ? { type, key } : { type, key, value };
}
")]
extern "C" {
    /// Gives the helpers wasm memory, for `ascii`.
    #[wasm_bindgen(js_name = useMemory)]
    fn use_memory(memory: &JsValue);
    /// The string of `len` ASCII bytes at `at` in wasm memory.
    #[wasm_bindgen(js_name = asciiString)]
    fn ascii(at: *const u8, len: usize) -> JsValue;
    /// Sets up to four fields (a name `undefined`: none) on `object`, or on a new object if it
    /// is `undefined`; returns the object. A field named `__proto__` is an own property, as
    /// `JSON.parse` makes it, not the object's prototype.
    #[allow(clippy::too_many_arguments)]
    #[wasm_bindgen(js_name = setFields)]
    fn fields(
        object: &JsValue,
        a: &JsValue,
        b: &JsValue,
        c: &JsValue,
        d: &JsValue,
        e: &JsValue,
        f: &JsValue,
        g: &JsValue,
        h: &JsValue,
    ) -> JsValue;
    /// Decodes `len` bytes of UTF-8 at `at` in wasm memory as the text `slice` reads.
    #[wasm_bindgen(js_name = decodeBatch)]
    fn decode_text(at: *const u8, len: usize);
    /// `text.substring(start, end)` of the text decoded last.
    #[wasm_bindgen(js_name = batchSlice)]
    fn slice(start: usize, end: usize) -> JsValue;
    /// `list[index] = {type, key, value}`, without `value` if it is `undefined`.
    #[wasm_bindgen(js_name = putChange)]
    fn change(list: &Array, index: u32, kind: &JsValue, key: &JsValue, value: &JsValue);
}

/// Longest string made from its bytes rather than by `TextDecoder`.
const MAX_ASCII: usize = 256;

/// Whether a string is made from its bytes (or batched, see [`Batch`]) rather than by
/// `TextDecoder`.
fn short_ascii(s: &str) -> bool {
    s.len() <= MAX_ASCII && s.is_ascii()
}

/// A JS string. Short ASCII ones (keys, most field values) skip wasm-bindgen's `TextDecoder`,
/// whose per-call cost dominated building an update's change list: ~0.3 µs per string
/// against ~0.1 µs, measured in Chromium.
fn js_string(s: &str) -> JsValue {
    if !short_ascii(s) {
        return JsValue::from_str(s);
    }
    ascii(s.as_ptr(), s.len())
}

/// Changes converted at a time when a list is long enough to batch its strings.
const BATCH: usize = 1024;
/// Shortest list whose strings are batched.
const MIN_BATCH: usize = 16;

/// The short ASCII strings (keys, field values) of a slice of a long change list, written into
/// one text decoded by one call; each is then a `substring` of it rather than a string made
/// from wasm memory, which cost ~0.2 µs a string, two thirds of a 10k-record batch's
/// conversion (measured in Chromium).
#[derive(Default)]
struct Batch {
    text: String,
    /// Where the next string starts in `text` (ASCII: bytes are UTF-16 units).
    next: usize,
    active: bool,
}

/// Changes to convert: the engine's list, or a first load's keys (each an insert).
#[derive(Clone, Copy)]
pub enum Changes<'a> {
    Listed(&'a [KeyChange]),
    Loaded(&'a [Key]),
}

/// Builds change lists, with the JS strings it made once: the change kinds and the field
/// names seen before. One per client.
pub struct ChangeObjects {
    insert: JsValue,
    update: JsValue,
    delete: JsValue,
    /// Interned names (same allocation for the same name) with their JS strings. A short list
    /// searched by pointer: records repeat a few names.
    names: Vec<(FieldName, JsValue)>,
    batch: Batch,
}

impl Default for ChangeObjects {
    fn default() -> Self {
        use_memory(&wasm_bindgen::memory());
        ChangeObjects {
            insert: "insert".into(),
            update: "update".into(),
            delete: "delete".into(),
            names: Vec::new(),
            batch: Batch::default(),
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

    /// A key's or field value's JS string: from the batch's text while one is decoded, in the
    /// order `gather` wrote them.
    fn string(&mut self, s: &str) -> JsValue {
        if !self.batch.active || !short_ascii(s) {
            return js_string(s);
        }
        let start = self.batch.next;
        self.batch.next += s.len();
        slice(start, self.batch.next)
    }

    /// Writes the strings `string` will ask for while converting this change, in its order.
    fn gather(&mut self, key: &str, record: Option<&Record>) {
        let text = &mut self.batch.text;
        if short_ascii(key) {
            text.push_str(key);
        }
        for (_, field) in record.into_iter().flat_map(|r| r.iter()) {
            match field {
                Value::String(s) if s.as_str() != key && short_ascii(s) => text.push_str(s),
                _ => {}
            }
        }
    }

    /// A record as a JS object, four fields a call. `key` is the JS string of `key_text`: the
    /// key field gets it rather than a string of its own.
    fn object(&mut self, record: &Record, key_text: &str, key: &JsValue) -> JsValue {
        let mut object = JsValue::UNDEFINED;
        let mut pairs: [JsValue; 8] = Default::default();
        let mut filled = 0;
        for (name, field) in record.iter() {
            pairs[filled] = self.name(name);
            pairs[filled + 1] = match field {
                Value::String(s) if s.as_str() == key_text => key.clone(),
                Value::String(s) => self.string(s),
                _ => value_to_js(field),
            };
            filled += 2;
            if filled == pairs.len() {
                let [a, b, c, d, e, f, g, h] = &std::mem::take(&mut pairs);
                object = fields(&object, a, b, c, d, e, f, g, h);
                filled = 0;
            }
        }
        if filled > 0 || object.is_undefined() {
            let [a, b, c, d, e, f, g, h] = &pairs;
            object = fields(&object, a, b, c, d, e, f, g, h);
        }
        object
    }

    /// One record as a JS object (what `get` returns): built like a change's value, without
    /// the JSON text and `JSON.parse` that `convert::record_to_js` costs. `key`, if given, is
    /// the JS string of `key_text`, shared with the key field.
    pub fn record(&mut self, record: &Record, key_text: &str, key: Option<&JsValue>) -> JsValue {
        let key = match key {
            Some(key) => key.clone(),
            None => js_string(key_text),
        };
        self.object(record, key_text, &key)
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
        self.convert(changes, record, records, Some(&list));
        list
    }

    /// `records` (key → value) filled with the records of `keys`, converted as change lists
    /// are (strings batched) rather than one JSON text and `JSON.parse` per record.
    pub fn fill_records<'a>(&mut self, keys: &[Key], record: &dyn Fn(&str) -> Option<&'a Record>, records: &Map) {
        self.convert(Changes::Loaded(keys), record, Some(records), None);
    }

    fn convert<'a>(
        &mut self,
        changes: Changes,
        record: &dyn Fn(&str) -> Option<&'a Record>,
        records: Option<&Map>,
        list: Option<&Array>,
    ) {
        let len = match changes {
            Changes::Listed(list) => list.len(),
            Changes::Loaded(keys) => keys.len(),
        };
        let change_at = |i: usize| match changes {
            Changes::Listed(list) => (list[i].kind, &list[i].key),
            Changes::Loaded(keys) => (ChangeKind::Insert, &keys[i]),
        };
        let mut values: Vec<Option<&Record>> = Vec::with_capacity(len.min(BATCH));
        for start in (0..len).step_by(BATCH) {
            let end = len.min(start + BATCH);
            values.clear();
            values.extend((start..end).map(|i| {
                let (kind, key) = change_at(i);
                record(key).filter(|_| kind != ChangeKind::Delete)
            }));
            self.batch.active = len >= MIN_BATCH;
            if self.batch.active {
                self.batch.text.clear();
                self.batch.next = 0;
                for (i, value) in (start..end).zip(&values) {
                    self.gather(change_at(i).1, *value);
                }
                decode_text(self.batch.text.as_ptr(), self.batch.text.len());
            }
            for (i, value) in (start..end).zip(&values) {
                let (kind, key_text) = change_at(i);
                let key = self.string(key_text);
                let value = match value {
                    Some(record) => self.object(record, key_text, &key),
                    None => JsValue::UNDEFINED,
                };
                let kind_text = match kind {
                    ChangeKind::Insert => &self.insert,
                    ChangeKind::Update => &self.update,
                    ChangeKind::Delete => &self.delete,
                };
                if let Some(records) = records {
                    if value.is_undefined() {
                        records.delete(&key);
                    } else {
                        records.set(&key, &value);
                    }
                }
                if let Some(list) = list {
                    change(list, i as u32, kind_text, &key, &value);
                }
            }
        }
        if self.batch.active {
            // Neither text is kept: the JS one goes, and a big batch's buffer is given back.
            self.batch = Batch::default();
            decode_text(self.batch.text.as_ptr(), 0);
        }
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
