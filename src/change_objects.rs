//! Subscribers' change lists (and `get`'s and `snapshot`'s records), built as JS objects.
//!
//! One update notifies one change. Sent as JSON text (as it was), its hundred bytes cost a
//! UTF-8 decode plus a `JSON.parse` that, in Chromium between engine calls, took 4–7 µs of the
//! update's 16 µs (call → subscriber, bench scenario 1). Built from wasm a few properties per
//! call, an update's change took six calls across the boundary and a table slot per value
//! passed. Here the changes are written into a byte stream in wasm memory and one JS call per
//! slice reads them into objects: values are tagged (numbers as doubles, short ASCII strings as
//! bytes, nested values as JSON text), and a record's field names are a shape id, the names sent
//! once per shape. No text as big as a batch is ever held in wasm memory.

use js_sys::{Array, Map};
use serde_json::Value;
use tandem_core::{ChangeKind, Key, KeyChange, Record, Shape};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen(inline_js = "
let memory, bytes = new Uint8Array(0), view = new DataView(bytes.buffer);
let p = 0, text = '', t = 0;
const decoder = new TextDecoder();
const kinds = ['insert', 'update', 'delete'];
export function useMemory(m) { memory = m; }
export function addShapeName(shapes, id, name) {
  const names = (shapes[id] ??= []);
  names.push(name);
  if (name === '__proto__') names.proto = true;
}
function u32() { const n = view.getUint32(p, true); p += 4; return n; }
const f = String.fromCharCode;
function upTo8(b, i, len) {
  switch (len) {
    case 0: return '';
    case 1: return f(b[i]);
    case 2: return f(b[i], b[i + 1]);
    case 3: return f(b[i], b[i + 1], b[i + 2]);
    case 4: return f(b[i], b[i + 1], b[i + 2], b[i + 3]);
    case 5: return f(b[i], b[i + 1], b[i + 2], b[i + 3], b[i + 4]);
    case 6: return f(b[i], b[i + 1], b[i + 2], b[i + 3], b[i + 4], b[i + 5]);
    case 7: return f(b[i], b[i + 1], b[i + 2], b[i + 3], b[i + 4], b[i + 5], b[i + 6]);
    default: return f(b[i], b[i + 1], b[i + 2], b[i + 3], b[i + 4], b[i + 5], b[i + 6], b[i + 7]);
  }
}
function string(tag) {
  const len = u32(), at = p;
  p += len;
  if (tag !== 4) return decoder.decode(bytes.subarray(at, p));
  if (len <= 8) return upTo8(bytes, at, len);
  if (len <= 16) return upTo8(bytes, at, 8) + upTo8(bytes, at + 8, len - 8);
  return f.apply(null, bytes.subarray(at, p));
}
function value(key) {
  const tag = bytes[p++];
  switch (tag) {
    case 0: return null;
    case 1: return false;
    case 2: return true;
    case 3: { const n = view.getFloat64(p, true); p += 8; return n; }
    case 6: return key;
    case 7: return JSON.parse(string(5));
    case 8: { const len = u32(); const s = text.substring(t, t + len); t += len; return s; }
    default: return string(tag);
  }
}
function put(o, k, v) {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
  else o[k] = v;
}
function record(shapes, key) {
  const id = u32();
  let names = shapes[id] ?? [];
  if (id === 0) { names = []; for (let n = u32(); n > 0; n--) names.push(value()); }
  const o = {};
  // Plain stores unless a name needs `put`: a shape is checked once, when it is made.
  if (id !== 0 && !names.proto) for (let i = 0; i < names.length; i++) o[names[i]] = value(key);
  else for (let i = 0; i < names.length; i++) put(o, names[i], value(key));
  return o;
}
function refresh(at, textAt, textLen) {
  // Growing wasm memory detaches its old buffer: a view of it is then empty.
  if (bytes.length === 0) { bytes = new Uint8Array(memory.buffer); view = new DataView(memory.buffer); }
  text = textLen ? decoder.decode(bytes.subarray(textAt, textAt + textLen)) : '';
  p = at;
  t = 0;
}
export function readChanges(shapes, at, textAt, textLen, count, list, offset, records, length) {
  refresh(at, textAt, textLen);
  if (list === undefined && length > 0) list = new Array(length);
  for (let i = 0; i < count; i++) {
    const kind = bytes[p++];
    const key = value();
    const v = kind & 4 ? record(shapes, key) : undefined;
    if (records) { if (v === undefined) records.delete(key); else records.set(key, v); }
    if (list) list[offset + i] = v === undefined ? { type: kinds[kind & 3], key } : { type: kinds[kind & 3], key, value: v };
  }
  text = '';
  return list;
}
export function readRecord(shapes, at, key) {
  refresh(at, 0, 0);
  return record(shapes, key === undefined ? value() : key);
}
")]
extern "C" {
    /// Gives the helpers wasm memory.
    #[wasm_bindgen(js_name = useMemory)]
    fn use_memory(memory: &JsValue);
    /// Appends a name to shape `id`'s names.
    #[wasm_bindgen(js_name = addShapeName)]
    fn add_shape_name(shapes: &Array, id: u32, name: &str);
    /// Reads `count` changes from the stream at `at` (the batched strings are the UTF-8 text at
    /// `text_at`): each is put at `list[offset + i]` if there is a list (made `length` long
    /// if `list` is `undefined` and `length` is not 0), and set in (or, with no value, deleted
    /// from) `records` if there is a map. Returns the list.
    #[allow(clippy::too_many_arguments)]
    #[wasm_bindgen(js_name = readChanges)]
    fn read_changes(
        shapes: &Array,
        at: *const u8,
        text_at: *const u8,
        text_len: usize,
        count: usize,
        list: &JsValue,
        offset: usize,
        records: &JsValue,
        length: usize,
    ) -> JsValue;
    /// One record from the stream at `at`; its key field's string is `key`, or, if that is
    /// `undefined`, the string the stream starts with.
    #[wasm_bindgen(js_name = readRecord)]
    fn read_record(shapes: &Array, at: *const u8, key: &JsValue) -> JsValue;
}

// Value tags of the stream (the JS `value` reads them; an update's encoding uses the same,
// src/update_input.rs).
pub(crate) const NULL: u8 = 0;
pub(crate) const FALSE: u8 = 1;
pub(crate) const TRUE: u8 = 2;
pub(crate) const NUMBER: u8 = 3;
/// Bytes that are ASCII, made into a string by `String.fromCharCode`: with the bytes as its
/// arguments up to 16 (~20 ns, measured in Node), as an array beyond (~120 ns).
const ASCII: u8 = 4;
/// UTF-8 bytes, decoded by `TextDecoder`.
pub(crate) const UTF8: u8 = 5;
/// The change's key string (the key field's value).
const KEY: u8 = 6;
/// A nested object or array as JSON text.
pub(crate) const JSON_TEXT: u8 = 7;
/// The next string of the slice's batched text.
const BATCHED: u8 = 8;

/// A change kind's bit that says a record follows.
const HAS_VALUE: u8 = 4;

/// Longest string read from its bytes (or batched) rather than by `TextDecoder`, whose per-call
/// cost dominated short strings: ~0.3 µs against ~0.1 µs, measured in Chromium.
const MAX_ASCII: usize = 256;

fn short_ascii(s: &str) -> bool {
    s.len() <= MAX_ASCII && s.is_ascii()
}

/// Changes read at a time: what bounds the stream's size.
const SLICE: usize = 1024;
/// Shortest slice whose short ASCII strings are batched into one text: one `TextDecoder` call
/// and a `substring` each rather than ~0.2 µs a string made from bytes, two thirds of a
/// 10k-record batch's conversion (measured in Chromium).
const MIN_BATCH: usize = 16;
/// Most shapes given ids; records of any other shape carry their names.
const MAX_SHAPES: usize = 64;
/// Stream capacity kept after a call (a slice of big records may grow it far beyond).
const KEPT_CAPACITY: usize = 256 * 1024;

/// Changes to convert: the engine's list, or a first load's keys (each an insert).
#[derive(Clone, Copy)]
pub enum Changes<'a> {
    Listed(&'a [KeyChange]),
    Loaded(&'a [Key]),
}

/// Builds change lists and records. One per client: it holds the shapes its JS side knows.
pub struct ChangeObjects {
    /// The stream of the slice being written.
    bytes: Vec<u8>,
    /// The slice's batched strings, while `batching`.
    text: String,
    batching: bool,
    /// Shape `i + 1` (0 is "names follow"); searched by pointer.
    shapes: Vec<Shape>,
    /// The same shapes' names on the JS side, by id.
    js_shapes: Array,
}

impl Default for ChangeObjects {
    fn default() -> Self {
        use_memory(&wasm_bindgen::memory());
        ChangeObjects {
            bytes: Vec::new(),
            text: String::new(),
            batching: false,
            shapes: Vec::new(),
            js_shapes: Array::new(),
        }
    }
}

impl ChangeObjects {
    fn u32(&mut self, n: usize) {
        self.bytes.extend_from_slice(&(n as u32).to_le_bytes());
    }

    fn string(&mut self, s: &str) {
        if self.batching && short_ascii(s) {
            self.bytes.push(BATCHED);
            self.u32(s.len());
            self.text.push_str(s);
            return;
        }
        self.bytes.push(if short_ascii(s) { ASCII } else { UTF8 });
        self.u32(s.len());
        self.bytes.extend_from_slice(s.as_bytes());
    }

    /// A field's value as `JSON.parse` would give it. `key_text`: a string equal to it is the
    /// key's JS string.
    fn value(&mut self, value: &Value, key_text: &str) {
        match value {
            Value::Null => self.bytes.push(NULL),
            Value::Bool(b) => self.bytes.push(if *b { TRUE } else { FALSE }),
            Value::Number(n) => {
                self.bytes.push(NUMBER);
                // The nearest double, as `JSON.parse` reads the number's text.
                self.bytes.extend_from_slice(&n.as_f64().unwrap_or(f64::NAN).to_le_bytes());
            }
            Value::String(s) if s.as_str() == key_text => self.bytes.push(KEY),
            Value::String(s) => self.string(s),
            Value::Array(_) | Value::Object(_) => {
                self.bytes.push(JSON_TEXT);
                let at = self.bytes.len();
                self.u32(0);
                if serde_json::to_writer(&mut self.bytes, value).is_err() {
                    unreachable!("JSON values serialise");
                }
                let len = (self.bytes.len() - at - 4) as u32;
                self.bytes[at..at + 4].copy_from_slice(&len.to_le_bytes());
            }
        }
    }

    /// A record: its shape's id (the shape sent to JS the first time), or 0 and its names;
    /// then its values.
    fn record(&mut self, record: &Record, key_text: &str) {
        let shape = record.shape();
        let id = match self.shapes.iter().position(|known| std::sync::Arc::ptr_eq(known, shape)) {
            Some(index) => index + 1,
            None if self.shapes.len() < MAX_SHAPES => {
                self.shapes.push(shape.clone());
                for name in shape.iter() {
                    add_shape_name(&self.js_shapes, self.shapes.len() as u32, name);
                }
                self.shapes.len()
            }
            None => 0,
        };
        self.u32(id);
        if id == 0 {
            self.u32(shape.len());
            for name in shape.iter() {
                self.string(name);
            }
        }
        for value in record.values() {
            self.value(value, key_text);
        }
    }

    /// Empties the stream for the next slice; a big one's buffers are given back.
    fn reset(&mut self, batching: bool) {
        if self.bytes.capacity() > KEPT_CAPACITY {
            self.bytes = Vec::new();
        }
        if self.text.capacity() > KEPT_CAPACITY {
            self.text = String::new();
        }
        self.bytes.clear();
        self.text.clear();
        self.batching = batching;
    }

    /// One record as a JS object (what `get` returns), without the JSON text and `JSON.parse`
    /// that `convert::record_to_js` costs. `key`, if given, is the JS string of `key_text`,
    /// shared with the key field.
    pub fn record_to_js(&mut self, record: &Record, key_text: &str, key: Option<&JsValue>) -> JsValue {
        self.reset(false);
        if key.is_none() {
            self.string(key_text);
        }
        self.record(record, key_text);
        let undefined = JsValue::UNDEFINED;
        read_record(&self.js_shapes, self.bytes.as_ptr(), key.unwrap_or(&undefined))
    }

    /// `[{type, key, value}]`, no `value` for a delete; `record` reads a loaded key's record (a listed
    /// change carries its own). `records` (key → value), if given, is updated with the same objects.
    pub fn change_list<'a>(
        &mut self,
        changes: Changes,
        record: &dyn Fn(&str) -> Option<&'a Record>,
        records: Option<&Map>,
    ) -> Array {
        self.convert(changes, record, records, true).unchecked_into()
    }

    /// `records` (key → value) filled with the records of `keys`, converted as change lists
    /// are rather than one JSON text and `JSON.parse` per record.
    pub fn fill_records<'a>(&mut self, keys: &[Key], record: &dyn Fn(&str) -> Option<&'a Record>, records: &Map) {
        self.convert(Changes::Loaded(keys), record, Some(records), false);
    }

    fn convert<'a>(
        &mut self,
        changes: Changes,
        record: &dyn Fn(&str) -> Option<&'a Record>,
        records: Option<&Map>,
        listed: bool,
    ) -> JsValue {
        let len = changes.len();
        let undefined = JsValue::UNDEFINED;
        let records = records.map_or(&undefined, |map| map.as_ref());
        // Made by the first read, in the same call.
        let mut list = JsValue::UNDEFINED;
        for start in (0..len).step_by(SLICE) {
            let end = len.min(start + SLICE);
            self.reset(len >= MIN_BATCH);
            for i in start..end {
                let (kind, key, listed) = changes.at(i);
                // A listed change carries its record; a loaded key's is looked up.
                let value = match changes {
                    Changes::Listed(_) => listed,
                    Changes::Loaded(_) => record(key),
                };
                let kind = match kind {
                    ChangeKind::Insert => 0,
                    ChangeKind::Update => 1,
                    ChangeKind::Delete => 2,
                };
                self.bytes.push(if value.is_some() { kind | HAS_VALUE } else { kind });
                self.string(key);
                if let Some(value) = value {
                    self.record(value, key);
                }
            }
            list = read_changes(
                &self.js_shapes,
                self.bytes.as_ptr(),
                self.text.as_ptr(),
                self.text.len(),
                end - start,
                &list,
                start,
                records,
                if listed { len } else { 0 },
            );
        }
        self.reset(false);
        // No changes: no read made the list.
        if listed && list.is_undefined() {
            list = Array::new().into();
        }
        list
    }
}

impl Changes<'_> {
    fn len(&self) -> usize {
        match self {
            Changes::Listed(list) => list.len(),
            Changes::Loaded(keys) => keys.len(),
        }
    }

    /// Change `i`: its kind, key and, if listed, record.
    fn at(&self, i: usize) -> (ChangeKind, &Key, Option<&Record>) {
        match self {
            Changes::Listed(list) => (list[i].kind, &list[i].key, list[i].record.as_ref()),
            Changes::Loaded(keys) => (ChangeKind::Insert, &keys[i], None),
        }
    }
}
