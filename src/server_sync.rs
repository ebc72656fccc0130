//! The tandem-server preset's browser half: drives `tandem_core::session` (all the protocol's
//! behaviour lives there) with a `WebSocket`, the runtime's timer and the sync layer's
//! `onUpdate`, and exposes it as `ServerSync`, whose `sync` and `mutationFn` objects plug into a
//! collection (`js/src/server.ts` wraps it as `tandemServer`).
//!
//! Every input follows the driver's shape: borrow the session, call it, let go, then perform
//! its actions one by one with no borrow held — a subscriber called from `onUpdate` may pause,
//! persist or read the status; what it causes is performed after the current action, in order.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::sync::Arc;

use js_sys::{Function, Object, Promise, Reflect};
use tandem_core::protocol::json_text;
use tandem_core::session::{Action, PersistError, Problem, SessionConfig, Status, SyncState, Target, TokenSource};
use tandem_core::{RetryPolicy, Session, SyncBatch, SyncChange, Transaction};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use crate::convert;
use crate::driver::Waiters;
use crate::errors::Error;
use crate::tasks::spawn;
use crate::timers::{now, WakeUp};

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** Options of the tandem-server preset (`tandemServer`). */
export interface ServerSyncOptions {
  /** The server: `ws(s)://host:port` or `http(s)://…`, with an optional path prefix. */
  url: string;
  /** The workspace (`[A-Za-z0-9_-]{1,128}`). */
  workspace: string;
  /** The JWT, or a function returning one (asked before every connection, so it can refresh an expired token). Never logged. */
  token?: string | (() => string | Promise<string>);
  /** Keep this collection's records under the keys `<collection>/<key>`, so several collections share the workspace. Default: every key of the workspace is a record. */
  collection?: string;
  /** The `id` of the sync config (seed 004): default `collection`, else `workspace`. */
  id?: string;
  /** Reconnection backoff (defaults: 1000 ms, ×2, at most 30000 ms, jitter 0.5). */
  reconnect?: { initialDelayMs?: number; factor?: number; maxDelayMs?: number; jitter?: number };
}

/** Why the sync is in `'error'` (or what last went wrong while it reconnects). */
export interface ServerSyncError {
  /** HTTP status of a refused connection, or the WebSocket close code. */
  code?: number;
  message: string;
  /** It will not retry by itself: `resume()` does. */
  fatal: boolean;
  /** When the next attempt starts (Unix ms), while waiting for it. */
  retryAt?: number;
}

/** The preset's sync config: seed 004's `SyncConfig`, plus status and control. */
export interface ServerSyncConfig {
  id: string;
  setup: SyncConfig["setup"];
  status(): "started" | "syncing" | "paused" | "error";
  subscribeStatus(listener: (status: "started" | "syncing" | "paused" | "error") => void): () => void;
  lastError(): ServerSyncError | undefined;
  pause(): void;
  resume(): void;
  /** Closes the socket for good (call it when the client is closed). */
  close(): void;
}
"#;

/// The tandem-server preset for one collection.
#[wasm_bindgen]
pub struct ServerSync {
    inner: Rc<Inner>,
}

struct Inner {
    session: RefCell<Session>,
    id: String,
    token_fn: Option<Function>,
    socket: RefCell<Option<Socket>>,
    /// Sockets let go of from inside their own handlers: dropped on the next turn.
    retired: RefCell<Vec<Socket>>,
    on_update: RefCell<Option<Function>>,
    report_error: RefCell<Option<Function>>,
    /// Settle functions of pending persist / awaitSync calls, by transaction (an awaitSync
    /// never rejects).
    persist_waiters: RefCell<Waiters>,
    sync_waiters: RefCell<Waiters>,
    status: RefCell<Status>,
    subscribers: RefCell<Vec<(u32, Function)>>,
    next_subscriber: Cell<u32>,
    draining: Cell<bool>,
    wake_up: RefCell<WakeUp>,
}

struct Socket {
    conn: u64,
    ws: WebSocket,
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Socket {
    /// Detaches the handlers (so no event reaches a dropped closure) and closes.
    fn shut(&self, code: u16, reason: &str) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        self.ws.close_with_code_and_reason(code, reason).ok();
    }
}

#[wasm_bindgen]
impl ServerSync {
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "ServerSyncOptions")] options: JsValue,
    ) -> Result<ServerSync, JsValue> {
        let required = |key: &str| {
            convert::field(&options, key)
                .and_then(|v| v.as_string())
                .filter(|s| !s.is_empty())
                .ok_or_else(|| Error::invalid(format!("tandemServer needs a `{key}` (a string)")))
        };
        let url = required("url")?;
        let workspace = required("workspace")?;
        let namespace = match convert::field(&options, "collection") {
            None => None,
            Some(v) => Some(v.as_string().ok_or_else(|| Error::invalid("`collection` must be a string"))?),
        };
        let (token, token_fn) = match convert::field(&options, "token") {
            None => (TokenSource::None, None),
            Some(t) if t.is_function() => (TokenSource::Refresh, Some(t.unchecked_into::<Function>())),
            Some(t) => match t.as_string() {
                Some(t) => (TokenSource::Static(t), None),
                None => return Err(Error::invalid("`token` must be a string or a function returning one").into()),
            },
        };
        let id = match convert::field(&options, "id").and_then(|v| v.as_string()) {
            Some(id) => id,
            None => namespace.clone().unwrap_or_else(|| workspace.clone()),
        };
        let mut config = SessionConfig::new(url, workspace, token);
        config.namespace = namespace;
        config.backoff = backoff(&options)?;
        config.seed = (js_sys::Math::random() * 9_007_199_254_740_991.0) as u64;
        let session = Session::new(config);
        let status = session.status().clone();
        Ok(ServerSync {
            inner: Rc::new(Inner {
                session: RefCell::new(session),
                id,
                token_fn,
                socket: RefCell::default(),
                retired: RefCell::default(),
                on_update: RefCell::default(),
                report_error: RefCell::default(),
                persist_waiters: RefCell::default(),
                sync_waiters: RefCell::default(),
                status: RefCell::new(status),
                subscribers: RefCell::default(),
                next_subscriber: Cell::new(0),
                draining: Cell::new(false),
                wake_up: RefCell::default(),
            }),
        })
    }

    /// The collection's `sync` config: `{id, setup, status, subscribeStatus, lastError, pause,
    /// resume, close}`, bound to this preset.
    #[wasm_bindgen(getter, unchecked_return_type = "ServerSyncConfig")]
    pub fn sync(&self) -> JsValue {
        let object = Object::new();
        convert::set(&object, "id", &JsValue::from_str(&self.inner.id));
        let bind1 = |f: fn(&Rc<Inner>, JsValue) -> Result<JsValue, JsValue>| {
            let inner = self.inner.clone();
            Closure::<dyn FnMut(JsValue) -> Result<JsValue, JsValue>>::new(move |arg| f(&inner, arg)).into_js_value()
        };
        let bind0 = |f: fn(&Rc<Inner>) -> JsValue| {
            let inner = self.inner.clone();
            Closure::<dyn FnMut() -> JsValue>::new(move || f(&inner)).into_js_value()
        };
        convert::set(&object, "setup", &bind1(|inner, params| inner.setup(&params).map(|()| JsValue::UNDEFINED)));
        convert::set(&object, "subscribeStatus", &bind1(|inner, listener| inner.subscribe_status(listener)));
        convert::set(&object, "status", &bind0(|inner| JsValue::from_str(inner.status.borrow().state.as_str())));
        convert::set(&object, "lastError", &bind0(|inner| status_error(&inner.status.borrow())));
        convert::set(&object, "pause", &bind0(|inner| inner.input(|s| s.pause(now()))));
        convert::set(&object, "resume", &bind0(|inner| inner.input(|s| s.resume(now()))));
        convert::set(&object, "close", &bind0(|inner| inner.close()));
        object.into()
    }

    /// The collection's `mutationFn`: `persist` resolves when the server acknowledged the
    /// transaction (rejects with an error named `NonRetriableError` for a refusal); `awaitSync`
    /// when the engine has the transaction's data.
    #[wasm_bindgen(getter, js_name = mutationFn, unchecked_return_type = "MutationFn")]
    pub fn mutation_fn(&self) -> JsValue {
        let object = Object::new();
        for (name, persist) in [("persist", true), ("awaitSync", false)] {
            let inner = self.inner.clone();
            let f = Closure::<dyn FnMut(JsValue) -> Result<Promise, JsValue>>::new(move |params: JsValue| {
                if persist {
                    inner.persist(&params)
                } else {
                    inner.await_sync(&params)
                }
            });
            convert::set(&object, name, &f.into_js_value());
        }
        object.into()
    }

    /// `'started' | 'syncing' | 'paused' | 'error'`.
    #[wasm_bindgen(unchecked_return_type = "'started' | 'syncing' | 'paused' | 'error'")]
    pub fn status(&self) -> String {
        self.inner.status.borrow().state.as_str().to_string()
    }

    pub fn pause(&self) {
        self.inner.input(|s| s.pause(now()));
    }

    pub fn resume(&self) {
        self.inner.input(|s| s.resume(now()));
    }

    pub fn close(&self) {
        self.inner.close();
    }
}

impl Inner {
    /// One input to the session, then its actions.
    fn input(self: &Rc<Self>, f: impl FnOnce(&mut Session)) -> JsValue {
        match self.session.try_borrow_mut() {
            Ok(mut session) => f(&mut session),
            Err(_) => return JsValue::UNDEFINED, // Not reachable: no borrow is held across JS.
        }
        self.drain();
        JsValue::UNDEFINED
    }

    fn setup(self: &Rc<Self>, params: &JsValue) -> Result<(), JsValue> {
        if self.session.borrow().is_started() {
            return Err(Error::invalid("a tandemServer preset serves one collection: create one per collection").into());
        }
        let on_update = convert::field(params, "onUpdate")
            .and_then(|f| f.dyn_into::<Function>().ok())
            .ok_or_else(|| Error::invalid("sync setup needs `onUpdate`"))?;
        *self.on_update.borrow_mut() = Some(on_update);
        *self.report_error.borrow_mut() = convert::field(params, "reportError").and_then(|f| f.dyn_into().ok());
        let string = |key: &str| convert::field(params, key).and_then(|v| v.as_string());
        let target = Target {
            collection: string("collection").unwrap_or_default(),
            key_field: string("keyField").unwrap_or_else(|| "id".into()),
            position: string("position"),
            client_id: string("clientId").unwrap_or_default(),
        };
        self.input(|s| s.start(now(), target));
        Ok(())
    }

    fn persist(self: &Rc<Self>, params: &JsValue) -> Result<Promise, JsValue> {
        let transaction = transaction(params)?;
        let attempt = convert::field(params, "attempt").and_then(|a| a.as_f64()).unwrap_or(1.0) as u32;
        let id = transaction.id.clone();
        let promise = self.waiter(|resolve, reject| {
            self.persist_waiters.borrow_mut().entry(id).or_default().push((resolve, reject));
        });
        self.input(|s| s.persist(now(), &transaction, attempt));
        Ok(promise)
    }

    fn await_sync(self: &Rc<Self>, params: &JsValue) -> Result<Promise, JsValue> {
        let id = convert::field(params, "transaction")
            .and_then(|t| convert::field(&t, "id"))
            .and_then(|id| id.as_string())
            .ok_or_else(|| Error::invalid("awaitSync needs `transaction.id`"))?;
        let key = Arc::from(id.as_str());
        let promise = self.waiter(|resolve, reject| {
            self.sync_waiters.borrow_mut().entry(key).or_default().push((resolve, reject));
        });
        self.input(|s| s.await_sync(now(), &id));
        Ok(promise)
    }

    fn waiter(&self, keep: impl FnOnce(Function, Function)) -> Promise {
        let (promise, resolve, reject) = crate::tasks::promise_with_resolvers();
        keep(resolve, reject);
        promise
    }

    fn subscribe_status(self: &Rc<Self>, listener: JsValue) -> Result<JsValue, JsValue> {
        let listener: Function = listener.dyn_into().map_err(|_| Error::invalid("subscribeStatus takes a function"))?;
        let id = self.next_subscriber.get() + 1;
        self.next_subscriber.set(id);
        self.subscribers.borrow_mut().push((id, listener));
        let weak = Rc::downgrade(self);
        let unsubscribe = Closure::<dyn FnMut()>::new(move || {
            if let Some(inner) = weak.upgrade() {
                inner.subscribers.borrow_mut().retain(|(i, _)| *i != id);
            }
        });
        Ok(unsubscribe.into_js_value())
    }

    fn close(self: &Rc<Self>) -> JsValue {
        self.input(|s| s.stop(now()));
        self.wake_up.borrow_mut().cancel();
        JsValue::UNDEFINED
    }

    // ---- actions ----

    fn drain(self: &Rc<Self>) {
        if self.draining.replace(true) {
            return; // The outer loop performs what this input caused, in order.
        }
        loop {
            let action = self.session.borrow_mut().poll_action();
            let Some(action) = action else { break };
            self.perform(action);
        }
        self.draining.set(false);
        let due = self.session.borrow().poll_timeout();
        let weak = Rc::downgrade(self);
        self.wake_up.borrow_mut().arm(due, move || {
            if let Some(inner) = weak.upgrade() {
                inner.wake_up.borrow_mut().fired();
                inner.input(|s| s.handle_timeout(now()));
            }
        });
    }

    fn perform(self: &Rc<Self>, action: Action) {
        match action {
            Action::FetchToken { conn } => self.fetch_token(conn),
            Action::Connect { conn, url } => self.connect(conn, url.as_str()),
            Action::Send { conn, text } => {
                if let Some(socket) = self.socket.borrow().as_ref().filter(|s| s.conn == conn) {
                    socket.ws.send_with_str(&text).ok(); // A closing socket: the session resends.
                }
            }
            Action::Close { conn, code, reason } => {
                let socket = self.socket.borrow_mut().take_if(|s| s.conn == conn);
                if let Some(socket) = socket {
                    socket.shut(code, &reason);
                    self.retire(socket);
                }
            }
            Action::Update { batch, position } => {
                let Some(on_update) = self.on_update.borrow().clone() else { return };
                let update = update_to_js(&batch, position.as_deref());
                if let Err(thrown) = on_update.call1(&JsValue::UNDEFINED, &update) {
                    let (name, message) = crate::errors::name_and_message(&thrown);
                    self.report(sync_error(
                        "update_refused",
                        &format!("the collection refused a server update ({name}: {message})"),
                    ));
                }
            }
            Action::PersistDone { id, result } => {
                let waiters = self.persist_waiters.borrow_mut().remove(id.as_str()).unwrap_or_default();
                let outcome = result.map_err(|e| persist_error(&id, &e));
                for (resolve, reject) in waiters {
                    match &outcome {
                        Ok(()) => resolve.call0(&JsValue::UNDEFINED),
                        Err(error) => reject.call1(&JsValue::UNDEFINED, error),
                    }
                    .ok();
                }
            }
            Action::Synced { id } => {
                for (resolve, _) in self.sync_waiters.borrow_mut().remove(id.as_str()).unwrap_or_default() {
                    resolve.call0(&JsValue::UNDEFINED).ok();
                }
            }
            Action::Status(status) => {
                *self.status.borrow_mut() = status;
                let state = JsValue::from_str(self.status.borrow().state.as_str());
                let listeners: Vec<Function> = self.subscribers.borrow().iter().map(|(_, f)| f.clone()).collect();
                for listener in listeners {
                    if let Err(thrown) = listener.call1(&JsValue::UNDEFINED, &state) {
                        let (_, message) = crate::errors::name_and_message(&thrown);
                        self.report(sync_error("subscriber", &format!("a status listener threw: {message}")));
                    }
                }
            }
            Action::Problem(problem) => self.report(problem_error(&problem)),
        }
    }

    /// Reports to the client's `onError` (through the setup's `reportError`), else the console.
    fn report(&self, error: JsValue) {
        let report = self.report_error.borrow().clone();
        match report {
            Some(report) => {
                report.call1(&JsValue::UNDEFINED, &error).ok();
            }
            None => {
                let console = Reflect::get(&js_sys::global(), &"console".into()).ok();
                let warn = console.as_ref().and_then(|c| Reflect::get(c, &"warn".into()).ok());
                if let (Some(console), Some(warn)) = (console, warn.and_then(|w| w.dyn_into::<Function>().ok())) {
                    warn.call1(&console, &error).ok();
                }
            }
        }
    }

    fn fetch_token(self: &Rc<Self>, conn: u64) {
        let Some(token_fn) = self.token_fn.clone() else { return };
        let weak = Rc::downgrade(self);
        spawn(async move {
            let result = async {
                let returned = token_fn.call0(&JsValue::UNDEFINED)?;
                JsFuture::from(Promise::resolve(&returned)).await
            }
            .await;
            let token = match result {
                Ok(token) => token.as_string().ok_or_else(|| "the token function must return a string".to_string()),
                Err(thrown) => Err(crate::errors::name_and_message(&thrown).1),
            };
            if let Some(inner) = weak.upgrade() {
                inner.input(|s| s.token_ready(now(), conn, token));
            }
        });
    }

    fn connect(self: &Rc<Self>, conn: u64, url: &str) {
        let ws = match WebSocket::new(url) {
            Ok(ws) => ws,
            Err(thrown) => {
                // A malformed URL, or no WebSocket at all: no retry can fix either.
                let (name, message) = crate::errors::name_and_message(&thrown);
                let message = if name == "ReferenceError" {
                    "this environment has no WebSocket (Node.js before 22 needs --experimental-websocket)".to_string()
                } else {
                    // Never the token: only what comes before `token=` (a byte search, not
                    // `str::split`, whose substring searcher costs 2 KB of wasm).
                    // `get`, not indexing: a slice that could panic links `str`'s slice-error
                    // formatting (~0.6 KB gzipped), and this was its only use.
                    let end = message.as_bytes().windows(6).position(|w| w == b"token=");
                    let message = message.get(..end.unwrap_or(message.len())).unwrap_or(&message);
                    format!("invalid URL: {message}")
                };
                self.session.borrow_mut().cannot_connect(now(), conn, &message);
                return;
            }
        };
        let weak = Rc::downgrade(self);
        let on_open = Closure::<dyn FnMut()>::new({
            let weak = weak.clone();
            move || {
                if let Some(inner) = weak.upgrade() {
                    inner.input(|s| s.opened(now(), conn));
                }
            }
        });
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new({
            let weak = weak.clone();
            move |event: MessageEvent| {
                let Some(inner) = weak.upgrade() else { return };
                match event.data().as_string() {
                    Some(text) => inner.input(|s| s.received(now(), conn, &text)),
                    None => {
                        inner.report(sync_error("bad_message", "the server sent a binary frame"));
                        JsValue::UNDEFINED
                    }
                };
            }
        });
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
            let Some(inner) = weak.upgrade() else { return };
            let socket = inner.socket.borrow_mut().take_if(|s| s.conn == conn);
            if let Some(socket) = socket {
                inner.retire(socket);
            }
            inner.input(|s| s.closed(now(), conn, event.code(), &event.reason()));
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        let old = self.socket.borrow_mut().replace(Socket {
            conn,
            ws,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        });
        if let Some(old) = old {
            old.shut(1000, "replaced");
            self.retire(old);
        }
    }

    /// Drops a socket's handlers on the next turn (one of them may be running now).
    fn retire(self: &Rc<Self>, socket: Socket) {
        self.retired.borrow_mut().push(socket);
        let weak: Weak<Inner> = Rc::downgrade(self);
        spawn(async move {
            if let Some(inner) = weak.upgrade() {
                inner.retired.borrow_mut().clear();
            }
        });
    }
}

/// An update for `onUpdate` (`{changes, confirms, snapshot, maxTimestamp?, position?}`), written
/// as one JSON text: one boundary crossing however many records, and no serde code of its own.
fn update_to_js(batch: &SyncBatch, position: Option<&str>) -> JsValue {
    let json = |s: &str| json_text(s);
    let mut out = String::with_capacity(32 + batch.changes.len() * 64);
    out.push_str("{\"changes\":[");
    for (i, change) in batch.changes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match change {
            SyncChange::Upsert(value) => {
                out.push_str("{\"type\":\"upsert\",\"value\":");
                out.push_str(&json_text(value));
            }
            SyncChange::Delete(key) => {
                out.push_str("{\"type\":\"delete\",\"key\":");
                out.push_str(&json(key));
            }
        }
        out.push('}');
    }
    out.push_str("],\"confirms\":[");
    for (i, id) in batch.confirms.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&json(id));
    }
    out.push_str("],\"snapshot\":");
    out.push_str(if batch.snapshot { "true" } else { "false" });
    if let Some(timestamp) = batch.max_timestamp {
        out.push_str(",\"maxTimestamp\":");
        out.push_str(&timestamp.to_string());
    }
    if let Some(position) = position {
        out.push_str(",\"position\":");
        out.push_str(&json(position));
    }
    out.push('}');
    convert::parse(&out)
}

/// `params.transaction` of a persist call, as the core's `Transaction`.
fn transaction(params: &JsValue) -> Result<Transaction, JsValue> {
    let value = convert::field(params, "transaction").ok_or_else(|| Error::invalid("persist needs a `transaction`"))?;
    // From text, as stored transactions are read: one reader for both.
    let text = js_sys::JSON::stringify(&value).ok().and_then(|t| t.as_string()).unwrap_or_default();
    Transaction::from_json(&text)
        .map_err(|e| Error::invalid(format!("persist got a transaction it cannot read: {e}")).into())
}

fn backoff(options: &JsValue) -> Result<RetryPolicy, JsValue> {
    let mut policy = tandem_core::session::default_backoff();
    let Some(reconnect) = convert::field(options, "reconnect") else { return Ok(policy) };
    let number = |key: &str| -> Result<Option<f64>, JsValue> {
        match convert::field(&reconnect, key) {
            None => Ok(None),
            Some(v) => match v.as_f64() {
                Some(n) if n.is_finite() && n >= 0.0 => Ok(Some(n)),
                _ => Err(Error::invalid(format!("`reconnect.{key}` must be a non-negative number")).into()),
            },
        }
    };
    if let Some(n) = number("initialDelayMs")? {
        policy.initial_delay_ms = n as u64;
    }
    if let Some(n) = number("factor")? {
        policy.factor = n;
    }
    if let Some(n) = number("maxDelayMs")? {
        policy.max_delay_ms = n as u64;
    }
    if let Some(n) = number("jitter")? {
        policy.jitter = n.min(1.0);
    }
    Ok(policy)
}

/// The error a persist rejects with: named `NonRetriableError` when a retry cannot help (the
/// engine then fails the transaction at once), else `ServerSyncError`.
fn persist_error(id: &str, error: &PersistError) -> JsValue {
    let name = if error.retriable { "ServerSyncError" } else { "NonRetriableError" };
    let js = js_sys::Error::new(&error.message);
    js.set_name(name);
    convert::set(&js, "transactionId", &JsValue::from_str(id));
    if let Some(code) = error.code {
        convert::set(&js, "code", &JsValue::from(code));
    }
    convert::set(&js, "retriable", &JsValue::from_bool(error.retriable));
    js.into()
}

/// A reported problem as a `SyncError` with a `kind` (and `key` / `code` when known).
fn problem_error(problem: &Problem) -> JsValue {
    let (kind, key, code) = match problem {
        Problem::InvalidValue { key, .. } => ("invalid_value", Some(key.as_str()), None),
        Problem::ServerError { code, .. } => ("server_error", None, Some(*code)),
        Problem::BadMessage { .. } => ("bad_message", None, None),
        Problem::Token { .. } => ("token", None, None),
    };
    let error = sync_error(kind, &problem.to_string());
    if let Some(key) = key {
        convert::set(&error, "key", &JsValue::from_str(key));
    }
    if let Some(code) = code {
        convert::set(&error, "code", &JsValue::from(code));
    }
    error
}

fn sync_error(kind: &str, message: &str) -> JsValue {
    let error = js_sys::Error::new(message);
    error.set_name("SyncError");
    convert::set(&error, "kind", &JsValue::from_str(kind));
    error.into()
}

/// `{code?, message, fatal, retryAt?}` while the status carries an error.
fn status_error(status: &Status) -> JsValue {
    let Some(error) = &status.error else { return JsValue::UNDEFINED };
    let object = Object::new();
    if let Some(code) = error.code {
        convert::set(&object, "code", &JsValue::from(code));
    }
    convert::set(&object, "message", &JsValue::from_str(&error.message));
    convert::set(&object, "fatal", &JsValue::from_bool(error.fatal));
    if let Some(at) = status.retry_at.filter(|_| status.state == SyncState::Error) {
        convert::set(&object, "retryAt", &JsValue::from(at as f64));
    }
    object.into()
}

