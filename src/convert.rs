//! Every conversion between JavaScript values and Rust types, in one place.
//!
//! Data crosses as JSON text: `serde_json` on the Rust side, the engine's native `JSON.parse`
//! / `JSON.stringify` on the JS side. One string crosses the boundary per value instead of one
//! call per field and per string (which is what serde-wasm-bindgen does), and the wasm is
//! smaller. The exception is the subscribers' change lists (`change_objects`), where a
//! `JSON.parse` per update cost more than the properties it made. The mapping is JSON's:
//! objects are plain objects, integers are numbers (exact up to 2^53, so HLC microsecond
//! timestamps are exact until the year 2255); `undefined` fields are dropped, and values JSON
//! cannot hold (BigInt, cycles) are refused.
//! Option objects that carry functions are read field by field.

use std::sync::Arc;

use js_sys::{Array, Function, Object, Reflect};
use serde::Serialize;
use serde_json::Value;
use tandem_core::protocol::json_text;
use tandem_core::{
    Fields, HistoryPolicy, Key, Mutation, MutationError, MutationOp, PendingMutation, Record, RecordProblem,
    RetryPolicy, Strategy, SyncBatch, SyncChange, SyncError, Transaction,
};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::errors::Error;

// ---- data: Rust → JS ----

/// Any serialisable value as a plain JS value.
pub fn to_js<T: Serialize + ?Sized>(value: &T) -> JsValue {
    parse(&json_text(value))
}

/// JSON text written here (by serde_json or by hand) as a JS value.
pub fn parse(json: &str) -> JsValue {
    match js_sys::JSON::parse(json) {
        Ok(value) => value,
        // Not `expect`: that would link `JsValue`'s `Debug` for a message that cannot happen.
        Err(_) => unreachable!("JSON written here is valid"),
    }
}

pub fn record_to_js(record: &Record) -> JsValue {
    to_js(&**record)
}

/// Seed 004's `Transaction` as stored: snake_case fields, times as Unix milliseconds, HLC
/// timestamps as Unix microseconds.
pub fn transaction_to_js(tx: &Transaction) -> JsValue {
    to_js(tx)
}

pub fn pending_to_js(pending: &[&PendingMutation]) -> JsValue {
    to_js(pending)
}

/// `{id, state}` for transaction subscribers.
pub fn transaction_event(id: &str, state: &str) -> JsValue {
    let event = Object::new();
    set(&event, "id", &JsValue::from_str(id));
    set(&event, "state", &JsValue::from_str(state));
    event.into()
}

// ---- data: JS → Rust ----

/// A JS value's JSON text; `null` for `undefined` or a function (which JSON cannot hold).
fn json_from_js(value: &JsValue) -> Result<String, Error> {
    let text = js_sys::JSON::stringify(value).map_err(|e| {
        let (_, message) = crate::errors::name_and_message(&e);
        Error::invalid(format!("not JSON data: {message}"))
    })?;
    if text.is_undefined() {
        return Ok("null".into());
    }
    Ok(string_from_js(&text))
}

#[wasm_bindgen]
extern "C" {
    type TextEncoder;
    #[wasm_bindgen(constructor)]
    fn new() -> TextEncoder;
    #[wasm_bindgen(method, js_name = encodeInto)]
    fn encode_into(this: &TextEncoder, source: &js_sys::JsString, destination: &js_sys::Uint8Array) -> EncodeIntoResult;
    type EncodeIntoResult;
    #[wasm_bindgen(method, getter)]
    fn written(this: &EncodeIntoResult) -> u32;
}

thread_local! {
    static ENCODER: TextEncoder = TextEncoder::new();
}

/// Length (UTF-16 units) from which a JS string is encoded straight into wasm memory.
const LONG_TEXT: u32 = 4096;

/// A JS string's text. A long one (a slice of records' JSON) is encoded into wasm memory by
/// one `TextEncoder.encodeInto`: wasm-bindgen's own conversion first copies ASCII a character
/// at a time in JS, ~90 ms of a 100k-record insert's ~450, measured in Chromium.
pub(crate) fn string_from_js(text: &js_sys::JsString) -> String {
    let units = text.length();
    if units < LONG_TEXT {
        return String::from(text);
    }
    // A UTF-16 unit takes at most 3 bytes of UTF-8 (a surrogate pair's 4 bytes are 2 units).
    let mut bytes = Vec::<u8>::with_capacity(units as usize * 3);
    // SAFETY: the view covers the vector's spare capacity and is used before anything could
    // allocate (and so move or detach wasm memory); `encodeInto` writes whole UTF-8 sequences
    // (a lone surrogate becomes U+FFFD) and reports how many bytes it wrote.
    unsafe {
        let view = js_sys::Uint8Array::view_mut_raw(bytes.as_mut_ptr(), bytes.capacity());
        let written = ENCODER.with(|encoder| encoder.encode_into(text, &view).written());
        bytes.set_len(written as usize);
        String::from_utf8_unchecked(bytes)
    }
}

pub(crate) fn not_json(e: serde_json::Error) -> Error {
    Error::invalid(format!("not JSON data: {}", tandem_core::protocol::json_error(&e)))
}

pub fn value_from_js(value: &JsValue) -> Result<Value, Error> {
    serde_json::from_str(&json_from_js(value)?).map_err(not_json)
}

/// A JS object as a record's fields, parsed straight from its JSON text (no intermediate
/// `serde_json::Map`), in the object's key order. `Ok(None)`: not an object.
fn fields_from_js(value: &JsValue) -> Result<Option<Fields>, Error> {
    Fields::parse(&json_from_js(value)?).map_err(not_json)
}

pub fn object_from_js(value: &JsValue, what: &str) -> Result<Fields, Error> {
    fields_from_js(value)?.ok_or_else(|| Error::invalid(format!("{what} must be an object")))
}

pub fn record_from_js(value: &JsValue) -> Result<Record, Error> {
    object_from_js(value, "a record").map(Arc::new)
}

/// The record of insert number `index` into `collection`; not an object is the engine's
/// `InvalidRecordError`.
pub fn inserted_from_js(value: &JsValue, collection: &str, index: usize) -> Result<Fields, Error> {
    fields_from_js(value)?.ok_or_else(|| not_a_record(collection, index))
}

/// The records of a JS array inserted into `collection`.
pub fn inserted_list_from_js(values: &JsValue, collection: &str) -> Result<Vec<Fields>, Error> {
    let values: &Array = values.unchecked_ref();
    let mut records = Vec::with_capacity(values.length() as usize);
    records_from_js(values, &mut |fields| records.push(fields))?.map_err(|index| not_a_record(collection, index))?;
    Ok(records)
}

/// Records per JSON text when an array of them is converted.
const RECORDS_PER_TEXT: u32 = 1024;

/// The records of a JS array, parsed straight into the engine's form a slice at a time and
/// handed to `each` (which puts them where they go, with no list of them in between):
/// `Ok(Err(i))` if item `i` is the first that is not an object. One text per slice rather than
/// one for the whole array bounds the text held in wasm memory, whose size never shrinks, to a
/// slice's instead of a 100k-record batch's (~7 MB), for the same parsing work.
fn records_from_js(values: &Array, each: &mut dyn FnMut(Fields)) -> Result<Result<(), usize>, Error> {
    let n = values.length();
    let mut start = 0;
    while start < n {
        let end = n.min(start + RECORDS_PER_TEXT);
        match Fields::parse_list(&json_from_js(&values.slice(start, end))?).map_err(not_json)? {
            Ok(slice) => slice.into_iter().for_each(&mut *each),
            Err(index) => return Ok(Err(start as usize + index)),
        }
        start = end;
    }
    Ok(Ok(()))
}

fn not_a_synced_record(collection: &str, index: usize) -> Error {
    SyncError::InvalidRecord { collection: collection.into(), index, problem: RecordProblem::NotAnObject }.into()
}

fn not_a_record(collection: &str, index: usize) -> Error {
    MutationError::InvalidRecord { collection: collection.into(), index, problem: RecordProblem::NotAnObject }.into()
}

/// A record key: a string, or a number in its JSON spelling (as the core keys numeric fields).
pub fn key_from_js(value: &JsValue) -> Result<String, Error> {
    if let Some(s) = value.as_string() {
        return Ok(s);
    }
    if let Some(n) = value.as_f64() {
        if n.fract() == 0.0 && n.abs() <= 9_007_199_254_740_991.0 {
            return Ok((n as i64).to_string());
        }
        if let Some(number) = serde_json::Number::from_f64(n) {
            return Ok(number.to_string());
        }
    }
    Err(Error::invalid("a key must be a string or a number"))
}

/// One value or an array of them.
pub fn one_or_many(value: &JsValue) -> Vec<JsValue> {
    if Array::is_array(value) {
        value.unchecked_ref::<Array>().iter().collect()
    } else {
        vec![value.clone()]
    }
}

// ---- options ----

/// `TandemClient.open` options.
pub struct OpenOptions {
    pub database: String,
    pub client_id: Option<String>,
    pub retry: RetryPolicy,
    pub attempt_timeout_ms: Option<u64>,
    pub history: HistoryPolicy,
    pub persistence: Persistence,
    pub open_timeout_ms: u32,
    pub adopt_interval_ms: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persistence {
    IndexedDb,
    Memory,
}

impl Persistence {
    pub fn as_str(self) -> &'static str {
        match self {
            Persistence::IndexedDb => "indexeddb",
            Persistence::Memory => "memory",
        }
    }
}

pub fn open_options(options: &JsValue) -> Result<OpenOptions, Error> {
    let retry = match field(options, "retry") {
        Some(retry) => {
            let mut policy = RetryPolicy::default();
            if let Some(n) = number(&retry, "maxRetries")? {
                policy.max_retries = n as u32;
            }
            if let Some(n) = number(&retry, "initialDelayMs")? {
                policy.initial_delay_ms = n as u64;
            }
            if let Some(n) = number(&retry, "factor")? {
                policy.factor = n;
            }
            if let Some(n) = number(&retry, "maxDelayMs")? {
                policy.max_delay_ms = n as u64;
            }
            if let Some(n) = number(&retry, "jitter")? {
                policy.jitter = n;
            }
            policy
        }
        None => RetryPolicy::default(),
    };
    let history = match field(options, "history") {
        Some(history) => HistoryPolicy {
            max_finished: number(&history, "maxFinished")?.map(|n| n as usize),
            max_age_ms: number(&history, "maxAgeMs")?.map(|n| n as u64),
        },
        None => HistoryPolicy::default(),
    };
    let persistence = match string(options, "persistence")?.as_deref() {
        None | Some("indexeddb") => Persistence::IndexedDb,
        Some("memory") => Persistence::Memory,
        Some(other) => {
            return Err(Error::invalid(format!("persistence must be 'indexeddb' or 'memory', not '{other}'")))
        }
    };
    Ok(OpenOptions {
        database: string(options, "database")?.unwrap_or_else(|| "tandem".to_string()),
        client_id: string(options, "clientId")?,
        retry,
        attempt_timeout_ms: number(options, "attemptTimeoutMs")?.map(|n| n as u64),
        history,
        persistence,
        open_timeout_ms: number(options, "openTimeoutMs")?.map_or(5_000, |n| n as u32),
        adopt_interval_ms: number(options, "adoptIntervalMs")?.map_or(10_000, |n| n as u32),
    })
}

/// `client.collection` options.
pub struct CollectionOptions {
    pub id: String,
    pub key_field: String,
    pub strategy: Strategy,
    pub persist: Option<Function>,
    pub await_sync: Option<Function>,
    pub merge: Option<Function>,
    pub setup: Option<Function>,
    /// The sync config's optional `close()`, with the config as `this`: called when the
    /// client closes, so a sync layer's connection does not outlive it.
    pub sync_close: Option<(Function, JsValue)>,
}

pub fn collection_options(options: &JsValue) -> Result<CollectionOptions, Error> {
    let id = string(options, "id")?.ok_or_else(|| Error::invalid("a collection needs an `id`"))?;
    let mutation_fn = field(options, "mutationFn");
    let sync = field(options, "sync");
    Ok(CollectionOptions {
        id,
        key_field: string(options, "keyField")?.unwrap_or_else(|| "id".to_string()),
        strategy: strategy(options)?.unwrap_or_default(),
        persist: mutation_fn.as_ref().map(|m| function(m, "persist")).transpose()?.flatten(),
        await_sync: mutation_fn.as_ref().map(|m| function(m, "awaitSync")).transpose()?.flatten(),
        merge: function(options, "merge")?,
        setup: sync.as_ref().map(|s| function(s, "setup")).transpose()?.flatten(),
        sync_close: match &sync {
            Some(s) => function(s, "close")?.map(|close| (close, s.clone())),
            None => None,
        },
    })
}

/// Per-call options of `insert`/`update`/`delete`/`mutate`.
#[derive(Default)]
pub struct MutateOptions {
    pub strategy: Option<Strategy>,
    /// A merge function for this transaction (parallel strategy).
    pub merge: Option<Function>,
    pub metadata: Value,
}

pub fn mutate_options(options: &JsValue) -> Result<MutateOptions, Error> {
    if options.is_undefined() || options.is_null() {
        return Ok(MutateOptions::default());
    }
    Ok(MutateOptions {
        strategy: strategy(options)?,
        merge: function(options, "merge")?,
        metadata: field(options, "metadata").map(|m| value_from_js(&m)).transpose()?.unwrap_or(Value::Null),
    })
}

/// `strategy: 'ordered' | 'parallel'`.
fn strategy(options: &JsValue) -> Result<Option<Strategy>, Error> {
    match string(options, "strategy")?.as_deref() {
        None => Ok(None),
        Some("ordered") => Ok(Some(Strategy::Ordered)),
        Some("parallel") => Ok(Some(Strategy::Parallel { merge: None })),
        Some(other) => Err(Error::invalid(format!("strategy must be 'ordered' or 'parallel', not '{other}'"))),
    }
}

/// `client.mutate` input: `{type: 'insert', collection, value} | {type: 'update', collection,
/// key, changes} | {type: 'delete', collection, key}`, each with optional `metadata`.
pub fn mutations_from_js(mutations: &JsValue) -> Result<Vec<Mutation>, Error> {
    if !Array::is_array(mutations) {
        return Err(Error::invalid("mutate takes an array of mutations"));
    }
    mutations
        .unchecked_ref::<Array>()
        .iter()
        .enumerate()
        .map(|(index, m)| {
            let collection =
                string(&m, "collection")?.ok_or_else(|| Error::invalid("a mutation needs a `collection`"))?;
            let key = || -> Result<String, Error> {
                key_from_js(&field(&m, "key").ok_or_else(|| Error::invalid("an update or delete needs a `key`"))?)
            };
            let op = match string(&m, "type")?.as_deref() {
                Some("insert") => MutationOp::Insert {
                    record: inserted_from_js(
                        &field(&m, "value").ok_or_else(|| Error::invalid("an insert needs a `value`"))?,
                        &collection,
                        index,
                    )?,
                },
                Some("update") => MutationOp::Update {
                    key: key()?,
                    changes: object_from_js(&field(&m, "changes").unwrap_or(JsValue::UNDEFINED), "`changes`")?,
                },
                Some("delete") => MutationOp::Delete { key: key()? },
                _ => return Err(Error::invalid("a mutation's `type` must be 'insert', 'update' or 'delete'")),
            };
            let metadata = field(&m, "metadata").map(|v| value_from_js(&v)).transpose()?.unwrap_or(Value::Null);
            Ok(Mutation { collection: collection.into(), op, metadata })
        })
        .collect()
}

/// What `onUpdate` (or the data `setup` resolved with) carries.
pub struct SyncUpdate {
    /// Shared records: the driver keeps them for the synced cache as the engine takes them.
    pub batch: SyncBatch<Record>,
    /// `Some(p)`: the sync position to store with this batch.
    pub position: Option<Option<String>>,
}

/// Reads a sync update: an array of records (upserts), or `{changes: [{type: 'upsert', value} |
/// {type: 'delete', key}], confirms?, snapshot?, maxTimestamp?, position?}`. An initial load is
/// a snapshot unless it says otherwise.
pub fn sync_update(collection: &str, update: &JsValue, initial: bool) -> Result<SyncUpdate, Error> {
    let mut batch = SyncBatch::<Record>::of(collection);
    batch.snapshot = initial;
    let mut position = None;
    let changes = if Array::is_array(update) {
        let records: &Array = update.unchecked_ref();
        batch.changes.reserve_exact(records.length() as usize);
        records_from_js(records, &mut |fields| batch.changes.push(SyncChange::Upsert(Record::new(fields))))?
            .map_err(|index| not_a_synced_record(collection, index))?;
        return Ok(SyncUpdate { batch, position });
    } else if update.is_object() {
        if let Some(snapshot) = field(update, "snapshot") {
            batch.snapshot = snapshot.is_truthy();
        }
        if let Some(confirms) = field(update, "confirms") {
            batch.confirms = one_or_many(&confirms)
                .iter()
                .map(|id| id.as_string().ok_or_else(|| Error::invalid("`confirms` lists transaction ids (strings)")))
                .collect::<Result<_, _>>()?;
        }
        batch.max_timestamp = number(update, "maxTimestamp")?.map(|n| n as u64);
        if let Some(p) = field(update, "position") {
            position = Some(p.as_string());
        }
        field(update, "changes").unwrap_or_else(|| Array::new().into())
    } else {
        return Err(Error::invalid("a sync update is an array of records or an object with `changes`"));
    };
    for (index, change) in one_or_many(&changes).iter().enumerate() {
        match string(change, "type")?.as_deref() {
            Some("upsert") | Some("insert") | Some("update") => {
                let value = field(change, "value").ok_or_else(|| Error::invalid("an upsert needs a `value`"))?;
                let record = fields_from_js(&value)?.ok_or_else(|| not_a_synced_record(collection, index))?;
                batch.changes.push(SyncChange::Upsert(Record::new(record)));
            }
            Some("delete") => batch.changes.push(SyncChange::Delete(Key::from(key_from_js(
                &field(change, "key").ok_or_else(|| Error::invalid("a delete needs a `key`"))?,
            )?))),
            _ => return Err(Error::invalid("a sync change's `type` must be 'upsert' or 'delete'")),
        }
    }
    Ok(SyncUpdate { batch, position })
}

// ---- object helpers ----

#[wasm_bindgen]
extern "C" {
    /// An ordinary JS object made here (a plain object, an `Error`), so assigning to it cannot
    /// throw.
    #[wasm_bindgen(extends = Object)]
    pub type PlainObject;

    /// `object[name] = value`: plain assignment, without `Reflect.set`'s error handling.
    #[wasm_bindgen(method, structural, indexing_setter)]
    pub fn set(this: &PlainObject, name: &JsValue, value: &JsValue);
}

/// `object[key] = value` on an object made here.
pub fn set(object: &JsValue, key: &str, value: &JsValue) {
    object.unchecked_ref::<PlainObject>().set(&JsValue::from_str(key), value);
}

/// A property, `None` when missing, `undefined` or `null`.
pub fn field(object: &JsValue, key: &str) -> Option<JsValue> {
    if !object.is_object() && !object.is_function() {
        return None;
    }
    Reflect::get(object, &JsValue::from_str(key)).ok().filter(|v| !v.is_undefined() && !v.is_null())
}

fn string(object: &JsValue, key: &str) -> Result<Option<String>, Error> {
    field(object, key)
        .map(|v| v.as_string().ok_or_else(|| Error::invalid(format!("`{key}` must be a string"))))
        .transpose()
}

fn number(object: &JsValue, key: &str) -> Result<Option<f64>, Error> {
    field(object, key)
        .map(|v| match v.as_f64() {
            Some(n) if n.is_finite() && n >= 0.0 => Ok(n),
            _ => Err(Error::invalid(format!("`{key}` must be a non-negative number"))),
        })
        .transpose()
}

fn function(object: &JsValue, key: &str) -> Result<Option<Function>, Error> {
    field(object, key)
        .map(|v| v.dyn_into::<Function>().map_err(|_| Error::invalid(format!("`{key}` must be a function"))))
        .transpose()
}
