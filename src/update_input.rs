//! An update's key and changes, taken in by one call.
//!
//! Taken the general way, the key is a string crossing of its own and the changes a
//! `JSON.stringify` text crossing and parsed by serde: five calls and a parse, a fifth of an
//! update (bench scenario 1, measured in Chromium). Here a JS helper walks the changes' fields
//! and writes the key and each field (name, then the value, tagged as change lists are: numbers
//! as doubles, strings as UTF-8, nested values as their `JSON.stringify` text) into a buffer in
//! wasm memory, read back straight into the engine's fields (into the last update's shape when
//! they have its names, as an app's updates mostly do: no name is looked up then). It reads the
//! clock too (the engine's `now`), in place of a `Date.now` crossing of its own. What
//! `JSON.stringify` would drop is dropped and what it would throw on throws; a number key, or
//! changes that are not a plain object (an array, one with `toJSON`), go the general way and
//! get its errors.

use std::cell::RefCell;

use serde_json::Value;
use tandem_core::{Fields, Shape};
use wasm_bindgen::prelude::*;

use crate::change_objects::{FALSE, JSON_TEXT, NULL, NUMBER, TRUE, UTF8 as STRING};
use crate::convert::{key_from_js, object_from_js};
use crate::errors::Error;
use crate::timers::now;

#[wasm_bindgen(inline_js = "
let memory, target = new Uint8Array(0);
let out = new Uint8Array(256), view = new DataView(out.buffer), n = 0;
const encoder = new TextEncoder();
export function useMemory(m) { memory = m; }
function room(extra) {
  if (n + extra <= out.length) return;
  const bigger = new Uint8Array(Math.max(2 * out.length, n + extra));
  bigger.set(out.subarray(0, n));
  out = bigger;
  view = new DataView(out.buffer);
}
function str(s) {
  room(4 + 3 * s.length);
  const at = n;
  n += 4;
  let len = s.length;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c > 127) { len = encoder.encodeInto(s, out.subarray(at + 4)).written; break; }
    out[at + 4 + i] = c;
  }
  view.setUint32(at, len, true);
  n += len;
}
function tag(name, t) { str(name); room(9); out[n++] = t; }
let busy = false;
export function writeUpdate(key, changes, at, capacity) {
  // busy: a toJSON that updates goes the general way rather than overwrite this encoding.
  if (busy || typeof key !== 'string' || changes === null || typeof changes !== 'object' || Array.isArray(changes)
    || typeof changes.toJSON === 'function') return -1;
  busy = true;
  try { encode(key, changes); } finally { busy = false; }
  if (n > capacity) return -2 - n;
  copyUpdate(at);
  return n;
}
function encode(key, changes) {
  view.setFloat64(0, Date.now(), true);
  n = 8;
  str(key);
  const names = Object.keys(changes);
  for (let i = 0; i < names.length; i++) {
    const name = names[i], v = changes[name];
    switch (typeof v) {
      case 'string': tag(name, 5); str(v); break;
      case 'number':
        if (Number.isFinite(v)) { tag(name, 3); view.setFloat64(n, v, true); n += 8; } else tag(name, 0);
        break;
      case 'boolean': tag(name, v ? 2 : 1); break;
      case 'object':
        if (v === null) { tag(name, 0); break; }
      // falls through: a nested value, as JSON.stringify gives it
      case 'bigint': {
        const text = JSON.stringify(v);
        if (text !== undefined) { tag(name, 7); str(text); }
        break;
      }
    }
  }
  return n;
}
export function copyUpdate(at) {
  if (target.length === 0) target = new Uint8Array(memory.buffer); // detached by memory growth
  // A few dozen bytes, usually: a loop beats a subarray and set.
  if (n > 64) target.set(out.subarray(0, n), at);
  else for (let i = 0; i < n; i++) target[at + i] = out[i];
}
")]
extern "C" {
    #[wasm_bindgen(js_name = useMemory)]
    fn use_memory(memory: &JsValue);
    /// Encodes a string `key` and the fields of `changes` and copies them to `at` if they fit in
    /// `capacity` bytes: returns their length, `-2 - length` if they did not fit, or -1 if they
    /// go the general way. Throws what `JSON.stringify` throws.
    #[wasm_bindgen(js_name = writeUpdate, catch)]
    fn write_update(key: &JsValue, changes: &JsValue, at: *mut u8, capacity: usize) -> Result<f64, JsValue>;
    /// Copies what `writeUpdate` encoded last to `at`.
    #[wasm_bindgen(js_name = copyUpdate)]
    fn copy_update(at: *mut u8);
}

/// Kept from one update to the next.
struct Scratch {
    /// Where an update's encoding is copied.
    bytes: Vec<u8>,
    /// The field names of the last update: an app's updates of a collection mostly set the
    /// same fields, whose values then make the changes without looking names up.
    last_shape: Option<Shape>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = {
        use_memory(&wasm_bindgen::memory());
        RefCell::new(Scratch { bytes: Vec::with_capacity(1024), last_shape: None })
    };
}

/// An update as `Collection.update` takes it in: when it was called (Unix ms), its key and its
/// changes.
pub struct UpdateInput {
    pub now: u64,
    pub key: String,
    pub changes: Fields,
}

/// The key and changes of `Collection.update`.
pub fn update_from_js(key: &JsValue, changes: &JsValue) -> Result<UpdateInput, Error> {
    let decoded = SCRATCH.with(|scratch| -> Result<Option<_>, Error> {
        // Taken already only if a `toJSON` of a nested value updates: that one goes the long way.
        let Ok(mut scratch) = scratch.try_borrow_mut() else { return Ok(None) };
        let Scratch { bytes: buffer, last_shape } = &mut *scratch;
        buffer.clear();
        let mut len = write_update(key, changes, buffer.as_mut_ptr(), buffer.capacity()).map_err(|e| {
            let (_, message) = crate::errors::name_and_message(&e);
            Error::invalid(format!("not JSON data: {message}"))
        })?;
        if len == -1.0 {
            return Ok(None);
        }
        if len < 0.0 {
            len = -2.0 - len;
            buffer.reserve(len as usize);
            copy_update(buffer.as_mut_ptr());
        }
        // SAFETY: `writeUpdate` or `copyUpdate` wrote `len` bytes into the spare capacity.
        unsafe { buffer.set_len(len as usize) };
        Ok(decode(buffer, last_shape))
    })?;
    match decoded {
        Some(decoded) => decoded,
        None => Ok(UpdateInput { now: now(), key: key_from_js(key)?, changes: object_from_js(changes, "`changes`")? }),
    }
}

/// `None` if the encoding is not what `writeUpdate` writes (it always is). The fields are offered
/// `last_shape` (see [`Fields::from_entries_like`]); it becomes theirs.
fn decode(bytes: &[u8], last_shape: &mut Option<Shape>) -> Option<Result<UpdateInput, Error>> {
    let mut reader = Reader { bytes, at: 0 };
    let now = f64::from_le_bytes(reader.take(8)?.try_into().ok()?) as u64;
    let key = String::from(reader.str()?);
    // Read as the fields are made, with no list of them in between.
    let mut failed: Option<Option<Error>> = None;
    let fields = Fields::from_entries_like(last_shape.as_ref(), std::iter::from_fn(|| {
        if reader.at == bytes.len() {
            return None;
        }
        match reader.field() {
            Some(Ok(field)) => Some(field),
            Some(Err(error)) => {
                failed = Some(Some(error));
                None
            }
            None => {
                failed = Some(None);
                None
            }
        }
    }));
    match failed {
        None => {
            *last_shape = Some(fields.shape().clone());
            Some(Ok(UpdateInput { now, key, changes: fields }))
        }
        Some(error) => error.map(Err),
    }
}

/// A JS number as `JSON.parse` of its `JSON.stringify` text would give it to serde: integers
/// as integers (the text of one below 2^64 has no exponent), the rest as doubles.
fn number(n: f64) -> Value {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if n.fract() == 0.0 && (-TWO_POW_63..2.0 * TWO_POW_63).contains(&n) {
        // `-0` is `0`, as its text is.
        return if n >= 0.0 { Value::from(n as u64) } else { Value::from(n as i64) };
    }
    serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let taken = self.bytes.get(self.at..self.at.checked_add(len)?)?;
        self.at += len;
        Some(taken)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    /// A field's name and value; `None` if malformed.
    fn field(&mut self) -> Option<Result<(&'a str, Value), Error>> {
        let name = self.str()?;
        let value = match self.byte()? {
            NULL => Value::Null,
            FALSE => Value::Bool(false),
            TRUE => Value::Bool(true),
            NUMBER => number(f64::from_le_bytes(self.take(8)?.try_into().ok()?)),
            STRING => Value::String(self.str()?.into()),
            JSON_TEXT => match serde_json::from_str(self.str()?) {
                Ok(value) => value,
                Err(e) => return Some(Err(crate::convert::not_json(e))),
            },
            _ => return None,
        };
        Some(Ok((name, value)))
    }

    fn str(&mut self) -> Option<&'a str> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().ok()?);
        std::str::from_utf8(self.take(len as usize)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What serde reads from the number's `JSON.stringify` text.
    #[test]
    fn numbers_are_what_their_json_text_parses_to() {
        let two_63 = 9_223_372_036_854_775_808.0;
        for (n, text) in [
            (5.0, "5"),
            (-3.0, "-3"),
            (-0.0, "0"),
            (1.5, "1.5"),
            (two_63, "9223372036854775808"),
            (-two_63, "-9223372036854775808"),
            (2.0 * two_63, "18446744073709551616"),
            (1e21, "1e21"),
            (0.1, "0.1"),
        ] {
            let parsed: Value = serde_json::from_str(text).unwrap();
            assert_eq!(number(n), parsed, "{n}");
            assert_eq!(number(n).to_string(), parsed.to_string(), "{n} keeps its kind");
        }
        assert_eq!(number(f64::NAN), Value::Null);
    }
}
