//! The client side of tandem-server's protocol v1 (`docs/protocol.md`), sans-IO.
//!
//! A [`Session`] keeps one collection in sync with one workspace. It does no I/O and reads no
//! clock: its driver feeds it `now` (Unix ms), socket events, server messages, the transactions
//! to persist, `pause`/`resume`; and drains [`Action`]s — open a socket to this URL, send this
//! text, close, hand this batch to the engine, settle this persist or await-sync, the status
//! changed — plus [`Session::poll_timeout`], the instant it wants [`Session::handle_timeout`]
//! (the next reconnection, with exponential backoff and jitter from a seeded generator).
//!
//! What it guarantees, and how:
//!
//! * **Writes are never dropped by the network.** A persist while disconnected or paused waits;
//!   every unacknowledged transaction is sent again, in its original order, on every new
//!   connection, with the same id — the server applies a transaction once per (`client`, `id`).
//! * **Resume from heads.** Every batch made of an `init`, `changes` or `tx` carries the heads it
//!   brings the collection to, as the opaque sync position stored with the synced cache; a connection asks
//!   for `changes` since the heads of the last batch handed over (never those of an `ack`, whose
//!   change may not have been handed over yet).
//! * **A transaction completes when the engine has its data.** Its `tx` echo is handed over
//!   with `confirms: [id]`; an `ack` with `standing` values hands those over confirming the
//!   transaction (the optimistic value that lost is dropped); await-sync resolves after that.
//! * **A retry that the server answers from its dedup record** (the first send was committed,
//!   but its ack was lost with the connection or the page) gets no echo: its data reached this
//!   client in the `init`/`changes` of the new connection instead. A transaction that may have
//!   been sent before is therefore followed by a *marker* (an empty transaction, answered in
//!   order); while the marker is outstanding at the start of a connection, messages are held, so
//!   that a duplicate can be confirmed by the `init`/`changes` batch that holds its data. A
//!   duplicate whose data was handed over before the session knew the transaction (a reload
//!   that re-runs an interrupted persist after the connection caught up) is confirmed by a full
//!   re-sync instead (a connection without heads), so the engine never keeps a stale
//!   optimistic value over newer server data.

use std::collections::VecDeque;
use std::fmt;

use serde_json::{Map, Value};

use crate::protocol::{close_code, Op, ServerMessage, TxMessage, PROTOCOL_VERSION};
use crate::record::key_of;
use crate::retry::{RetryPolicy, SplitMix64};
use crate::sync::{SyncBatch, SyncChange};
use crate::transaction::{MutationKind, Transaction};

/// How the session gets its token.
#[derive(Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// No token (a server behind an authenticating proxy).
    None,
    /// One token for the session's life: when it expires, the session stops with an error.
    Static(String),
    /// Asked for before every connection ([`Action::FetchToken`], answered with
    /// [`Session::token_ready`]), so an expired token is replaced.
    Refresh,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenSource::None => "None",
            TokenSource::Static(_) => "Static(<redacted>)",
            TokenSource::Refresh => "Refresh",
        })
    }
}

/// What a session needs before it starts.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// The server: `ws://host:port`, `wss://…`, or `http(s)://…` (turned into `ws(s)`), with
    /// an optional path prefix.
    pub url: String,
    pub workspace: String,
    /// `Some("todos")`: this collection's records live under the keys `todos/<key>` of the
    /// workspace, so several collections can share it. `None`: every key is a record.
    pub namespace: Option<String>,
    pub token: TokenSource,
    /// Reconnection delays: `initial_delay_ms × factor^(n−1)` up to `max_delay_ms`, with
    /// jitter. `max_retries` is ignored: a session reconnects for as long as it runs.
    pub backoff: RetryPolicy,
    /// Seeds the jitter and the marker ids.
    pub seed: u64,
}

impl SessionConfig {
    pub fn new(url: impl Into<String>, workspace: impl Into<String>, token: TokenSource) -> Self {
        SessionConfig {
            url: url.into(),
            workspace: workspace.into(),
            namespace: None,
            token,
            backoff: default_backoff(),
            seed: 0,
        }
    }
}

/// Reconnect after 0.5–1 s, then twice as long each time, up to 15–30 s.
pub fn default_backoff() -> RetryPolicy {
    RetryPolicy { max_retries: u32::MAX, initial_delay_ms: 1_000, factor: 2.0, max_delay_ms: 30_000, jitter: 0.5 }
}

/// What the session learns when its collection is set up.
#[derive(Clone, Debug)]
pub struct Target {
    /// The engine's collection the batches are for; its mutations map to this session's keys
    /// (those of other collections to `<their id>/<key>`). Empty: every mutation is its own.
    pub collection: String,
    /// The collection's key field, filled in from the server key when a value lacks it.
    pub key_field: String,
    /// The sync position stored with the synced cache: heads joined by `,`.
    pub position: Option<String>,
    /// The engine's client id (used as the `client` of markers).
    pub client_id: String,
}

/// The sync status (`started | syncing | paused | error`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncState {
    /// Connected and caught up: live.
    Started,
    /// Connecting, or catching up after (re)connecting.
    Syncing,
    /// Paused by the app: nothing is sent or received.
    Paused,
    /// Disconnected by a failure: waiting to retry (`retry_at`), or stopped (`fatal`).
    Error,
}

impl SyncState {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Started => "started",
            SyncState::Syncing => "syncing",
            SyncState::Paused => "paused",
            SyncState::Error => "error",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub state: SyncState,
    /// The last failure, until a connection catches up again.
    pub error: Option<StatusError>,
    /// When the next connection attempt starts (Unix ms), while waiting for it.
    pub retry_at: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusError {
    /// HTTP status of a refused connection, or the WebSocket close code.
    pub code: Option<u16>,
    pub message: String,
    /// The session will not retry by itself (`resume()` does).
    pub fatal: bool,
}

/// Why a persist failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersistError {
    /// The server's error code (400, 403, 404, 500), or the close code 1009.
    pub code: Option<u16>,
    pub message: String,
    /// `false` for refusals a retry cannot change (400, 403, 404, too large, unmappable).
    pub retriable: bool,
}

/// Something the app should hear about that is not a status: reported, never fatal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A server value that cannot be a record of the collection was skipped.
    InvalidValue { key: String, reason: String },
    /// An `error` from the server about no transaction of ours.
    ServerError { code: u16, message: String },
    /// A message the session could not read.
    BadMessage { message: String },
    /// The token function failed.
    Token { message: String },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::InvalidValue { key, reason } => write!(f, "skipped the server value of key `{key}`: {reason}"),
            Problem::ServerError { code, message } => write!(f, "the server reported an error ({code}): {message}"),
            Problem::BadMessage { message } => write!(f, "unreadable message from the server: {message}"),
            Problem::Token { message } => write!(f, "the token function failed: {message}"),
        }
    }
}

/// The URL of a connection. It holds the token: `Debug`/`Display` redact it, `as_str` does not.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectUrl(String);

impl ConnectUrl {
    /// The full URL, token included: open the socket with it, never log it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn redacted(&self) -> String {
        match self.0.find("token=") {
            Some(i) => {
                let end = self.0[i..].find('&').map_or(self.0.len(), |e| i + e);
                format!("{}token=<redacted>{}", &self.0[..i], &self.0[end..])
            }
            None => self.0.clone(),
        }
    }
}

impl fmt::Debug for ConnectUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl fmt::Display for ConnectUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// What the driver must do, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Get a token (call the token function) and answer with [`Session::token_ready`].
    FetchToken {
        conn: u64,
    },
    /// Open a WebSocket; report [`Session::opened`], [`Session::received`], [`Session::closed`]
    /// or [`Session::connect_failed`] with this `conn`.
    Connect {
        conn: u64,
        url: ConnectUrl,
    },
    /// Send a text frame on connection `conn`.
    Send {
        conn: u64,
        text: String,
    },
    /// Close connection `conn`. The session has already forgotten it: later events of `conn`
    /// are ignored.
    Close {
        conn: u64,
        code: u16,
        reason: String,
    },
    /// Hand this batch to the engine (`sync_received` / the sync layer's `onUpdate`), and store
    /// `position` with the synced cache when it is `Some`.
    Update {
        batch: SyncBatch,
        position: Option<String>,
    },
    /// Settle the persist of transaction `id`.
    PersistDone {
        id: String,
        result: Result<(), PersistError>,
    },
    /// Resolve the await-sync of transaction `id`: the engine has its data.
    Synced {
        id: String,
    },
    Status(Status),
    Problem(Problem),
}

/// Close code the session uses when it closes a connection itself.
pub const CLIENT_CLOSE: u16 = 1000;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Link {
    /// Not connected. `retry_at`: when to try again (none while paused, stopped or fatal).
    Down {
        retry_at: Option<u64>,
    },
    Token {
        conn: u64,
    },
    Connecting {
        conn: u64,
    },
    Open {
        conn: u64,
    },
}

/// What the session knows of a transaction it was asked to persist, until the engine has its
/// data.
#[derive(Debug)]
struct Outgoing {
    id: String,
    /// The `tx` message (built once, so a resend is byte-identical).
    text: String,
    /// Server keys of its ops.
    keys: Vec<String>,
    /// Connection it was last sent on.
    sent_on: Option<u64>,
    /// It may have been committed by an earlier send whose answer was lost.
    maybe_sent: bool,
    /// …and the session may have handed its data over before it knew the transaction.
    late: bool,
    acked: bool,
    /// Its `tx` echo arrived.
    echoed: bool,
    /// The engine has its data (echo, standing values, or a confirming first batch).
    has_data: bool,
    /// Acked, no echo yet, and `maybe_sent`: a duplicate or a fresh commit, decided by the
    /// echo or the marker. Holds the ack's standing values until then.
    undecided: Option<Vec<Op>>,
    /// A duplicate whose data came in the current connection's first batch (confirmed there).
    duplicate: bool,
    /// Confirmed by the first batch of the next connection.
    confirm_next: bool,
    awaited: bool,
}

/// The start of a connection while a marker is outstanding: messages are held.
#[derive(Debug, Default)]
struct Catchup {
    buffer: Vec<ServerMessage>,
    marker: Option<String>,
    /// Transactions sent that may be duplicates.
    members: Vec<String>,
}

/// A marker sent after transactions that may be duplicates, once the connection is live.
#[derive(Debug)]
struct LiveMarker {
    id: String,
    members: Vec<String>,
}

pub struct Session {
    config: SessionConfig,
    target: Option<Target>,
    rng: SplitMix64,
    conn: u64,
    link: Link,
    paused: bool,
    stopped: bool,
    fatal: Option<StatusError>,
    last_error: Option<StatusError>,
    failures: u32,
    /// Heads of the last batch handed over.
    heads: Vec<String>,
    /// The next connection asks for everything (no heads).
    resync: bool,
    /// The first message of the current connection has not arrived.
    awaiting_first: bool,
    catchup: Option<Catchup>,
    live_markers: Vec<LiveMarker>,
    outgoing: Vec<Outgoing>,
    /// Persists waiting for `start` (the key mapping needs the target).
    unbuilt: Vec<(Transaction, u32)>,
    /// A batch was handed over in this session.
    fed_any: bool,
    status: Status,
    actions: VecDeque<Action>,
}

impl Session {
    pub fn new(config: SessionConfig) -> Self {
        let rng = SplitMix64::new(config.seed);
        Session {
            config,
            target: None,
            rng,
            conn: 0,
            link: Link::Down { retry_at: None },
            paused: false,
            stopped: false,
            fatal: None,
            last_error: None,
            failures: 0,
            heads: Vec::new(),
            resync: false,
            awaiting_first: false,
            catchup: None,
            live_markers: Vec::new(),
            outgoing: Vec::new(),
            unbuilt: Vec::new(),
            fed_any: false,
            status: Status { state: SyncState::Syncing, error: None, retry_at: None },
            actions: VecDeque::new(),
        }
    }

    // ---- outputs ----

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When the session wants [`Session::handle_timeout`]: the next reconnection.
    pub fn poll_timeout(&self) -> Option<u64> {
        match self.link {
            Link::Down { retry_at } => retry_at,
            _ => None,
        }
    }

    pub fn status(&self) -> &Status {
        &self.status
    }

    /// Heads of the last batch handed to the engine (what a reconnection resumes from).
    pub fn heads(&self) -> &[String] {
        &self.heads
    }

    /// Transactions sent or waiting to be sent whose data the engine does not have yet.
    pub fn pending(&self) -> usize {
        self.outgoing.len() + self.unbuilt.len()
    }

    pub fn is_started(&self) -> bool {
        self.target.is_some()
    }

    // ---- inputs ----

    /// The collection is set up: connect (unless paused), resuming from `target.position`.
    pub fn start(&mut self, now: u64, target: Target) {
        if self.target.is_some() {
            return;
        }
        self.heads = target.position.as_deref().map(parse_heads).unwrap_or_default();
        self.target = Some(target);
        for (tx, attempt) in std::mem::take(&mut self.unbuilt) {
            self.persist(now, &tx, attempt);
        }
        if !self.paused && !self.stopped {
            self.connect(now);
        }
        self.refresh_status();
    }

    /// Persist transaction `tx`: sent now if connected, else on the next connection. Settled by
    /// [`Action::PersistDone`].
    pub fn persist(&mut self, now: u64, tx: &Transaction, attempt: u32) {
        let _ = now;
        let Some(target) = &self.target else {
            self.unbuilt.retain(|(t, _)| t.id != tx.id);
            self.unbuilt.push((tx.clone(), attempt));
            return;
        };
        if let Some(x) = self.outgoing.iter().find(|x| x.id == *tx.id) {
            // A new attempt while the session still has the transaction (the engine timed the
            // previous one out): it is still on its way, or already acknowledged.
            if x.acked {
                let id = x.id.clone();
                self.actions.push_back(Action::PersistDone { id, result: Ok(()) });
            }
            return;
        }
        let message = match build_tx(tx, target, self.config.namespace.as_deref()) {
            Ok(message) => message,
            Err(error) => {
                self.actions.push_back(Action::PersistDone { id: tx.id.to_string(), result: Err(error) });
                return;
            }
        };
        let keys = message.ops.iter().map(|op| op.key.clone()).collect();
        let text = write_tx(&message);
        // An earlier attempt (a retry, or one interrupted by a reload) may have been committed.
        let maybe_sent = attempt > 1 || tx.attempts.len() > 1;
        self.outgoing.push(Outgoing {
            id: tx.id.to_string(),
            text,
            keys,
            sent_on: None,
            maybe_sent,
            late: maybe_sent && self.fed_any,
            acked: false,
            echoed: false,
            has_data: false,
            undecided: None,
            duplicate: false,
            confirm_next: false,
            awaited: false,
        });
        self.pump();
        self.refresh_status();
    }

    /// The engine awaits the sync of `id`: [`Action::Synced`] once the engine has its data (at
    /// once if it already has).
    pub fn await_sync(&mut self, now: u64, id: &str) {
        let _ = now;
        match self.outgoing.iter_mut().find(|x| x.id == id) {
            Some(x) => x.awaited = true,
            None => self.actions.push_back(Action::Synced { id: id.to_string() }),
        }
    }

    /// The token asked for with [`Action::FetchToken`].
    pub fn token_ready(&mut self, now: u64, conn: u64, token: Result<String, String>) {
        if self.link != (Link::Token { conn }) {
            return;
        }
        match token {
            Ok(token) => {
                let url = self.url(Some(&token));
                self.link = Link::Connecting { conn };
                self.actions.push_back(Action::Connect { conn, url });
            }
            Err(message) => {
                self.actions.push_back(Action::Problem(Problem::Token { message: message.clone() }));
                self.failed(
                    now,
                    StatusError { code: None, message: format!("the token function failed: {message}"), fatal: false },
                );
            }
        }
        self.refresh_status();
    }

    /// The socket of `conn` is open.
    pub fn opened(&mut self, now: u64, conn: u64) {
        let _ = now;
        if self.link != (Link::Connecting { conn }) {
            return;
        }
        self.link = Link::Open { conn };
        self.awaiting_first = true;
        self.catchup = Some(Catchup::default());
        self.pump();
        if self.catchup.as_ref().is_some_and(|c| c.marker.is_none()) {
            self.catchup = None; // Nothing may be a duplicate: no need to hold messages.
        }
        self.refresh_status();
    }

    /// The connection attempt `conn` failed before the socket opened: `http_status` is the
    /// answer to the upgrade request when known (browsers never tell).
    pub fn connect_failed(&mut self, now: u64, conn: u64, http_status: Option<u16>, message: &str) {
        if !matches!(self.link, Link::Connecting { conn: c } | Link::Open { conn: c } if c == conn) {
            return;
        }
        self.lost();
        let error = match http_status {
            Some(401) => {
                let fatal = self.config.token != TokenSource::Refresh;
                StatusError {
                    code: Some(401),
                    message: format!("the server refused the token (401): {message}"),
                    fatal,
                }
            }
            Some(code @ (400 | 403 | 404)) => StatusError {
                code: Some(code),
                message: format!("the server refused the connection ({code}): {message}"),
                fatal: true,
            },
            code => StatusError { code, message: format!("could not connect: {message}"), fatal: false },
        };
        self.failed(now, error);
        self.refresh_status();
    }

    /// Connection `conn` cannot be attempted at all (a malformed URL, no WebSocket in this
    /// environment): stop with an error; no retry could help.
    pub fn cannot_connect(&mut self, now: u64, conn: u64, message: &str) {
        if !matches!(self.link, Link::Connecting { conn: c } if c == conn) {
            return;
        }
        self.lost();
        self.failed(now, StatusError { code: None, message: message.to_string(), fatal: true });
        self.refresh_status();
    }

    /// The socket of `conn` closed with `code`.
    pub fn closed(&mut self, now: u64, conn: u64, code: u16, reason: &str) {
        match self.link {
            Link::Open { conn: c } if c == conn => {}
            Link::Connecting { conn: c } if c == conn => {
                // A browser reports a refused upgrade as a close before `open`.
                return self.connect_failed(now, conn, None, &format!("closed before opening (code {code})"));
            }
            _ => return,
        }
        let in_flight: Vec<(usize, usize)> = self
            .outgoing
            .iter()
            .enumerate()
            .filter(|(_, x)| x.sent_on == Some(conn) && !x.acked)
            .map(|(i, x)| (i, x.text.len()))
            .collect();
        self.lost();
        let described = if reason.is_empty() { format!("code {code}") } else { format!("code {code}: {reason}") };
        let refresh = self.config.token == TokenSource::Refresh;
        match code {
            close_code::TOKEN_EXPIRED if refresh => {
                // A fresh token at once.
                self.last_error = Some(StatusError {
                    code: Some(code),
                    message: format!("the token expired ({described})"),
                    fatal: false,
                });
                self.connect(now);
            }
            close_code::TOKEN_EXPIRED => self.failed(
                now,
                StatusError { code: Some(code), message: format!("the token expired ({described})"), fatal: true },
            ),
            close_code::WORKSPACE_DELETED => self.failed(
                now,
                StatusError {
                    code: Some(code),
                    message: format!("the workspace was deleted ({described})"),
                    fatal: true,
                },
            ),
            1008 => self.failed(
                now,
                StatusError {
                    code: Some(code),
                    message: format!("the server refused the session ({described})"),
                    fatal: !refresh,
                },
            ),
            1009 => {
                // The largest transaction in flight is too big for the server: it would be
                // refused again on every connection.
                if let Some(&(i, _)) = in_flight.iter().max_by_key(|(i, len)| (*len, usize::MAX - i)) {
                    let x = self.outgoing.remove(i);
                    self.actions.push_back(Action::PersistDone {
                        id: x.id,
                        result: Err(PersistError {
                            code: Some(1009),
                            message: "the transaction is larger than the server accepts (close 1009): split it".into(),
                            retriable: false,
                        }),
                    });
                }
                self.failed(
                    now,
                    StatusError { code: Some(code), message: format!("connection closed ({described})"), fatal: false },
                );
            }
            _ => self.failed(
                now,
                StatusError { code: Some(code), message: format!("connection closed ({described})"), fatal: false },
            ),
        }
        self.refresh_status();
    }

    /// A text frame arrived on `conn`.
    pub fn received(&mut self, now: u64, conn: u64, text: &str) {
        if self.link != (Link::Open { conn }) {
            return;
        }
        let message = match read_server_message(text) {
            Ok(m) => m,
            Err(message) => {
                self.actions.push_back(Action::Problem(Problem::BadMessage { message }));
                return;
            }
        };
        if let Some(catchup) = &mut self.catchup {
            let answers_marker = catchup.marker.as_deref().is_some_and(|m| answers(&message, m));
            catchup.buffer.push(message);
            if answers_marker {
                self.finish_catchup(now);
            }
        } else {
            self.process(now, message);
        }
        self.refresh_status();
    }

    /// Stop sending and receiving: the socket is closed, persists wait.
    pub fn pause(&mut self, now: u64) {
        let _ = now;
        if self.paused {
            return;
        }
        self.paused = true;
        self.disconnect("paused");
        self.refresh_status();
    }

    /// Connect again at once (also after a fatal error).
    pub fn resume(&mut self, now: u64) {
        if self.stopped {
            return;
        }
        let was_down = matches!(self.link, Link::Down { .. });
        self.paused = false;
        self.fatal = None;
        self.failures = 0;
        if self.target.is_some() && was_down {
            self.connect(now);
        }
        self.refresh_status();
    }

    /// Ends the session for good (the app is done with it).
    pub fn stop(&mut self, now: u64) {
        let _ = now;
        self.stopped = true;
        self.disconnect("stopped");
        self.refresh_status();
    }

    /// Time passed: reconnect if it is time.
    pub fn handle_timeout(&mut self, now: u64) {
        if let Link::Down { retry_at: Some(at) } = self.link {
            if at <= now && !self.paused && !self.stopped && self.fatal.is_none() {
                self.connect(now);
                self.refresh_status();
            }
        }
    }

    // ---- connection ----

    fn url(&self, token: Option<&str>) -> ConnectUrl {
        let base = self.config.url.trim_end_matches('/');
        let base = if let Some(rest) = base.strip_prefix("http://") {
            format!("ws://{rest}")
        } else if let Some(rest) = base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else {
            base.to_string()
        };
        let mut url = format!("{base}/v1/sync/{}?protocol={PROTOCOL_VERSION}", encode(&self.config.workspace));
        if !self.resync && !self.heads.is_empty() {
            url.push_str("&heads=");
            url.push_str(&encode(&self.heads.join(",")));
        }
        if let Some(token) = token {
            url.push_str("&token=");
            url.push_str(&encode(token));
        }
        ConnectUrl(url)
    }

    fn connect(&mut self, now: u64) {
        let _ = now;
        self.conn += 1;
        let conn = self.conn;
        match &self.config.token {
            TokenSource::Refresh => {
                self.link = Link::Token { conn };
                self.actions.push_back(Action::FetchToken { conn });
            }
            TokenSource::Static(token) => {
                let url = self.url(Some(&token.clone()));
                self.link = Link::Connecting { conn };
                self.actions.push_back(Action::Connect { conn, url });
            }
            TokenSource::None => {
                let url = self.url(None);
                self.link = Link::Connecting { conn };
                self.actions.push_back(Action::Connect { conn, url });
            }
        }
    }

    /// Closes the current connection, if any, on the session's own initiative.
    fn disconnect(&mut self, reason: &str) {
        if let Link::Open { conn } | Link::Connecting { conn } = self.link {
            self.actions.push_back(Action::Close { conn, code: CLIENT_CLOSE, reason: reason.to_string() });
        }
        self.lost();
        self.link = Link::Down { retry_at: None };
    }

    /// The current connection is gone: what it carried that was not answered must be resent,
    /// and what it was deciding is decided by the next connection.
    fn lost(&mut self) {
        let conn = match self.link {
            Link::Open { conn } | Link::Connecting { conn } | Link::Token { conn } => conn,
            Link::Down { .. } => return,
        };
        // Held messages are dropped unread: the next connection resumes from the heads before
        // them.
        self.catchup = None;
        self.live_markers.clear();
        self.awaiting_first = false;
        let mut resync = false;
        for x in &mut self.outgoing {
            if x.sent_on == Some(conn) && !x.acked {
                x.maybe_sent = true;
            }
            if x.sent_on == Some(conn) {
                x.sent_on = None;
            }
            if x.acked && !x.has_data {
                // Its data comes with the next connection's first batch. If it may be a
                // duplicate, that data may be older than what was handed over already: ask for
                // everything.
                x.confirm_next = true;
                if x.undecided.take().is_some() {
                    resync = true;
                }
            }
        }
        self.resync |= resync;
        self.link = Link::Down { retry_at: None };
    }

    /// The connection failed or was closed by a failure: retry later, or stop if `fatal`.
    fn failed(&mut self, now: u64, error: StatusError) {
        self.link = Link::Down { retry_at: None };
        if error.fatal {
            self.fatal = Some(error.clone());
        } else if !self.paused && !self.stopped {
            self.failures = self.failures.saturating_add(1);
            let delay = self.config.backoff.delay(self.failures, &mut self.rng);
            self.link = Link::Down { retry_at: Some(now.saturating_add(delay)) };
        }
        self.last_error = Some(error);
    }

    /// Sends every transaction not yet sent on the current connection, in order, then a marker
    /// if any of them may be a duplicate.
    fn pump(&mut self) {
        let Link::Open { conn } = self.link else { return };
        let mut members = Vec::new();
        for x in &mut self.outgoing {
            if x.acked || x.sent_on == Some(conn) {
                continue;
            }
            x.sent_on = Some(conn);
            self.actions.push_back(Action::Send { conn, text: x.text.clone() });
            if x.maybe_sent {
                members.push(x.id.clone());
            }
        }
        if members.is_empty() {
            return;
        }
        let marker = format!("~marker-{:016x}", self.rng.next_u64());
        let client = self.target.as_ref().map_or_else(String::new, |t| t.client_id.clone());
        let client = if client.is_empty() { "tandem".to_string() } else { client };
        let text = write_tx(&TxMessage { id: marker.clone(), client, ops: Vec::new() });
        self.actions.push_back(Action::Send { conn, text });
        if self.catchup.is_none() && self.awaiting_first {
            // Nothing arrived yet: hold the first batch until the marker is answered.
            self.catchup = Some(Catchup::default());
        }
        match &mut self.catchup {
            Some(catchup) => {
                catchup.marker = Some(marker);
                catchup.members.extend(members);
            }
            None => self.live_markers.push(LiveMarker { id: marker, members }),
        }
    }

    // ---- messages ----

    /// The marker of the connection's start was answered: tell duplicates from fresh commits,
    /// then handle the held messages in order.
    fn finish_catchup(&mut self, now: u64) {
        let Some(catchup) = self.catchup.take() else { return };
        let Catchup { buffer, members, .. } = catchup;
        let mut extra: Vec<Op> = Vec::new();
        let mut confirms: Vec<String> = Vec::new();
        let mut resync = false;
        for id in &members {
            let Some(x) = self.outgoing.iter_mut().find(|x| x.id == *id) else { continue };
            let ack = buffer.iter().find_map(|m| match m {
                ServerMessage::Ack { id: a, standing, .. } if a == id => Some(standing),
                _ => None,
            });
            let echoed = x.echoed || buffer.iter().any(|m| matches!(m, ServerMessage::Tx { id: t, .. } if t == id));
            let Some(standing) = ack else { continue }; // Refused: not a duplicate.
            if echoed {
                x.maybe_sent = false; // A fresh commit (or an echo of the first send): in order.
                continue;
            }
            // Committed before this connection started: its data is in the first batch.
            x.duplicate = true;
            if x.late {
                x.confirm_next = true;
                resync = true;
            } else {
                confirms.push(id.clone());
                extra.extend(standing.iter().cloned());
            }
        }
        let mut first = true;
        for message in buffer {
            if first && matches!(message, ServerMessage::Init { .. } | ServerMessage::Changes { .. }) {
                first = false;
                self.first_message(now, message, std::mem::take(&mut confirms), std::mem::take(&mut extra));
            } else {
                self.process(now, message);
            }
        }
        if resync {
            self.force_resync(now);
        }
    }

    fn process(&mut self, now: u64, message: ServerMessage) {
        if self.awaiting_first && matches!(message, ServerMessage::Init { .. } | ServerMessage::Changes { .. }) {
            return self.first_message(now, message, Vec::new(), Vec::new());
        }
        match message {
            ServerMessage::Init { data, heads } => {
                let batch = self.init_batch(data);
                self.hand_over(batch, Some(heads));
            }
            ServerMessage::Changes { ops, heads, .. } => {
                let batch = self.ops_batch(&ops, Vec::new());
                self.hand_over(batch, Some(heads));
            }
            ServerMessage::Op { payload } => {
                let batch = self.ops_batch(std::slice::from_ref(&payload), Vec::new());
                self.hand_over(batch, None);
            }
            ServerMessage::Tx { id, client, ops, heads } => self.on_echo(id, client, ops, heads),
            ServerMessage::Ack { id, superseded, standing, .. } => self.on_ack(now, id, superseded, standing),
            ServerMessage::Error { code, message, id, .. } => self.on_error(now, code, message, id),
        }
    }

    /// The `init` or `changes` that starts a connection: confirms what the previous connection
    /// left undecided and the duplicates found by the marker, with the `standing` values of
    /// duplicates for keys the batch does not mention.
    fn first_message(&mut self, now: u64, message: ServerMessage, mut confirms: Vec<String>, extra: Vec<Op>) {
        let _ = now;
        self.awaiting_first = false;
        self.failures = 0;
        self.last_error = None;
        self.resync = false;
        for x in &mut self.outgoing {
            if x.confirm_next {
                x.confirm_next = false;
                confirms.push(x.id.clone());
            }
        }
        let (mut batch, heads) = match message {
            ServerMessage::Init { data, heads } => (self.init_batch(data), heads),
            ServerMessage::Changes { ops, heads, .. } => (self.ops_batch(&ops, Vec::new()), heads),
            _ => unreachable!("only init and changes start a connection"),
        };
        if !batch.snapshot {
            let extra_batch = self.ops_batch(&extra, Vec::new());
            let mentioned: Vec<Option<String>> = batch.changes.iter().map(|c| self.change_key(c)).collect();
            for change in extra_batch.changes {
                let key = self.change_key(&change);
                if key.is_some() && !mentioned.contains(&key) {
                    batch.changes.push(change);
                }
            }
            batch.max_timestamp = batch.max_timestamp.max(extra_batch.max_timestamp);
        }
        batch.confirms = confirms.clone();
        self.hand_over(batch, Some(heads));
        for id in confirms {
            self.has_data(&id);
        }
    }

    fn on_echo(&mut self, id: String, client: String, ops: Vec<Op>, heads: Vec<String>) {
        let standing = match self.outgoing.iter_mut().find(|x| x.id == id) {
            Some(x) => {
                x.echoed = true;
                x.maybe_sent = false;
                x.undecided.take().unwrap_or_default()
            }
            None => Vec::new(),
        };
        let mut batch = self.ops_batch(&ops, Vec::new());
        if !standing.is_empty() {
            // The ack of a fresh commit held these back until the echo proved it fresh.
            let mentioned: Vec<String> = ops.iter().map(|o| o.key.clone()).collect();
            let rest: Vec<Op> = standing.into_iter().filter(|o| !mentioned.contains(&o.key)).collect();
            let extra = self.ops_batch(&rest, Vec::new());
            batch.changes.extend(extra.changes);
            batch.max_timestamp = batch.max_timestamp.max(extra.max_timestamp);
        }
        // Every transaction echo confirms its id: the engine ignores ids it does not run, and
        // runs ids of other clients only when it adopted their work (after a reload).
        if !client.is_empty() {
            batch.confirms.push(id.clone());
        }
        self.hand_over(batch, Some(heads));
        self.has_data(&id);
    }

    fn on_ack(&mut self, now: u64, id: String, superseded: Vec<String>, standing: Vec<Op>) {
        if self.answer_marker(now, &id) {
            return;
        }
        let Some(x) = self.outgoing.iter_mut().find(|x| x.id == id) else { return };
        if x.acked {
            return;
        }
        x.acked = true;
        let all_superseded = x.keys.iter().all(|k| superseded.contains(k));
        if x.duplicate {
            // Classified at the connection's start: its data came with the first batch (or comes
            // with the re-sync), and its standing values are as old as its first commit.
            self.actions.push_back(Action::PersistDone { id: id.clone(), result: Ok(()) });
            return self.settle(&id);
        }
        if x.echoed {
            // The echo came first: this answers a resend of a transaction an earlier send had
            // committed after this connection started. Its standing values (as old as that
            // commit) cannot be placed among what was handed over since: re-sync if it has any.
            self.actions.push_back(Action::PersistDone { id: id.clone(), result: Ok(()) });
            if !superseded.is_empty() {
                x.confirm_next = true;
                x.has_data = false;
                self.force_resync(now);
            }
            return self.settle(&id);
        }
        if x.maybe_sent {
            // A duplicate (no echo will come) or a fresh commit (its echo is next): the marker
            // tells. Its standing values are stale if it is a duplicate: held until then.
            x.undecided = Some(standing);
            self.actions.push_back(Action::PersistDone { id, result: Ok(()) });
            return;
        }
        if !standing.is_empty() {
            let mut batch = self.ops_batch(&standing, Vec::new());
            batch.confirms.push(id.clone());
            self.hand_over(batch, None);
        }
        self.actions.push_back(Action::PersistDone { id: id.clone(), result: Ok(()) });
        if all_superseded {
            // No change, so no echo: the standing values were its sync.
            self.has_data(&id);
        }
    }

    fn on_error(&mut self, now: u64, code: u16, message: String, id: Option<String>) {
        if let Some(id) = &id {
            if self.answer_marker(now, id) {
                return;
            }
            if let Some(i) = self.outgoing.iter().position(|x| x.id == *id && !x.acked) {
                let x = self.outgoing.remove(i);
                let retriable = !matches!(code, 400 | 403 | 404);
                self.actions.push_back(Action::PersistDone {
                    id: x.id,
                    result: Err(PersistError { code: Some(code), message, retriable }),
                });
                return;
            }
        }
        self.actions.push_back(Action::Problem(Problem::ServerError { code, message }));
    }

    /// `id` answers a marker sent once the connection was live: every member acknowledged
    /// without an echo is a duplicate whose data was handed over earlier, maybe under a stale
    /// optimistic value: re-sync.
    fn answer_marker(&mut self, now: u64, id: &str) -> bool {
        let Some(i) = self.live_markers.iter().position(|m| m.id == id) else { return false };
        let marker = self.live_markers.remove(i);
        let mut resync = false;
        for member in marker.members {
            if let Some(x) = self.outgoing.iter_mut().find(|x| x.id == member) {
                if x.acked && !x.echoed && x.undecided.take().is_some() {
                    x.duplicate = true;
                    x.confirm_next = true;
                    resync = true;
                }
            }
        }
        if resync {
            self.force_resync(now);
        }
        true
    }

    /// Reconnects at once, asking for everything.
    fn force_resync(&mut self, now: u64) {
        self.resync = true;
        self.disconnect("resync");
        if !self.paused && !self.stopped {
            self.connect(now);
        }
    }

    /// The engine has the data of `id`.
    fn has_data(&mut self, id: &str) {
        if let Some(x) = self.outgoing.iter_mut().find(|x| x.id == id) {
            x.has_data = true;
        }
        self.settle(id);
    }

    /// Forgets `id` once it is acknowledged and the engine has its data, resolving its
    /// await-sync.
    fn settle(&mut self, id: &str) {
        if let Some(i) = self.outgoing.iter().position(|x| x.id == id && x.acked && x.has_data) {
            let x = self.outgoing.remove(i);
            if x.awaited {
                self.actions.push_back(Action::Synced { id: x.id });
            }
        }
    }

    fn hand_over(&mut self, batch: SyncBatch, heads: Option<Vec<String>>) {
        let position = heads.map(|heads| {
            let position = heads.join(",");
            self.heads = heads;
            position
        });
        self.fed_any = true;
        self.actions.push_back(Action::Update { batch, position });
    }

    // ---- mapping ----

    fn target(&self) -> &Target {
        self.target.as_ref().expect("messages arrive only after start")
    }

    /// The record key of a server key, `None` for keys of other collections.
    fn local_key<'k>(&self, key: &'k str) -> Option<&'k str> {
        let local = match &self.config.namespace {
            Some(ns) => key.strip_prefix(ns.as_str())?.strip_prefix('/')?,
            None => key,
        };
        (!local.is_empty()).then_some(local)
    }

    /// A server value as a record of the collection.
    fn record(&self, key: &str, value: Value) -> Result<Value, String> {
        let key_field = &self.target().key_field;
        let Value::Object(mut map) = value else {
            return Err(format!("it is not a JSON object ({})", kind_of(&value)));
        };
        match map.get(key_field.as_str()) {
            None => {
                map.insert(key_field.clone(), Value::String(key.to_string()));
            }
            Some(_) => match key_of(&map, key_field) {
                Ok(k) if &*k == key => {}
                Ok(k) => return Err(format!("its `{key_field}` is `{k}`, not its key")),
                Err(problem) => return Err(format!("the record {problem}")),
            },
        }
        Ok(Value::Object(map))
    }

    fn init_batch(&mut self, data: Map<String, Value>) -> SyncBatch {
        let mut batch = SyncBatch::new(self.target().collection.clone()).as_snapshot();
        for (key, value) in data {
            let Some(local) = self.local_key(&key) else { continue };
            match self.record(local, value) {
                Ok(record) => batch.changes.push(SyncChange::Upsert(record)),
                Err(reason) => self.actions.push_back(Action::Problem(Problem::InvalidValue { key, reason })),
            }
        }
        batch
    }

    fn ops_batch(&mut self, ops: &[Op], confirms: Vec<String>) -> SyncBatch {
        let mut batch = SyncBatch::new(self.target().collection.clone());
        batch.confirms = confirms;
        for op in ops {
            if let Some(t) = op.timestamp {
                batch.max_timestamp = Some(batch.max_timestamp.map_or(t, |m| m.max(t)));
            }
            let Some(local) = self.local_key(&op.key) else { continue };
            if op.delete {
                batch.changes.push(SyncChange::Delete(local.into()));
                continue;
            }
            match self.record(local, op.value.clone().unwrap_or(Value::Null)) {
                Ok(record) => batch.changes.push(SyncChange::Upsert(record)),
                Err(reason) => {
                    self.actions.push_back(Action::Problem(Problem::InvalidValue { key: op.key.clone(), reason }))
                }
            }
        }
        batch
    }

    fn change_key(&self, change: &SyncChange) -> Option<String> {
        match change {
            SyncChange::Delete(key) => Some(key.to_string()),
            SyncChange::Upsert(value) => {
                value.as_object().and_then(|m| key_of(m, &self.target().key_field).ok()).map(|k| k.to_string())
            }
        }
    }

    fn refresh_status(&mut self) {
        let (state, retry_at) = if self.paused || (self.stopped && self.fatal.is_none()) {
            (SyncState::Paused, None)
        } else if self.fatal.is_some() {
            (SyncState::Error, None)
        } else {
            match self.link {
                Link::Open { .. } if !self.awaiting_first && self.catchup.is_none() => (SyncState::Started, None),
                Link::Down { retry_at } if self.last_error.is_some() => (SyncState::Error, retry_at),
                _ => (SyncState::Syncing, None),
            }
        };
        let error =
            if state == SyncState::Paused { None } else { self.fatal.clone().or_else(|| self.last_error.clone()) };
        let status = Status { state, error, retry_at };
        if status != self.status {
            self.status = status.clone();
            self.actions.push_back(Action::Status(status));
        }
    }
}

/// The `tx` message of a transaction: insert/update → the whole `modified` record, delete →
/// `delete: true`, each with its mutation's HLC timestamp; several mutations of one key → the
/// last (ops in the order of their last mutation).
fn build_tx(tx: &Transaction, target: &Target, namespace: Option<&str>) -> Result<TxMessage, PersistError> {
    let mut ops: Vec<Op> = Vec::with_capacity(tx.mutations.len());
    for m in &tx.mutations {
        // An unnamed target (a runtime that did not say which collection it is) owns them all.
        let own = target.collection.is_empty() || *m.collection == *target.collection;
        let key = if own {
            match namespace {
                Some(ns) => format!("{ns}/{}", m.key),
                None => m.key.to_string(),
            }
        } else if namespace.is_some() {
            // Another collection of the same transaction, namespaced by its id.
            format!("{}/{}", m.collection, m.key)
        } else {
            return Err(PersistError {
                code: None,
                message: format!(
                    "transaction `{}` changes collection `{}`, which this server sync cannot map: give each collection of a workspace a `collection` namespace",
                    tx.id, m.collection
                ),
                retriable: false,
            });
        };
        let op = match m.kind {
            MutationKind::Delete => Op::delete(key.clone(), Some(m.timestamp)),
            MutationKind::Insert | MutationKind::Update => {
                Op::put(key.clone(), m.modified.to_value(), Some(m.timestamp))
            }
        };
        ops.push(op);
    }
    // Several mutations of one key: the last one only.
    let mut seen: rustc_hash::FxHashSet<crate::Key> = Default::default();
    let mut last_first: Vec<Op> = Vec::with_capacity(ops.len());
    for op in ops.into_iter().rev() {
        if seen.insert(crate::Key::from(op.key.as_str())) {
            last_first.push(op);
        }
    }
    last_first.reverse();
    let ops = last_first;
    Ok(TxMessage { id: tx.id.to_string(), client: tx.client.to_string(), ops })
}

/// Whether `message` answers the transaction (or marker) `id`.
fn answers(message: &ServerMessage, id: &str) -> bool {
    match message {
        ServerMessage::Ack { id: a, .. } => a == id,
        ServerMessage::Error { id: Some(e), .. } => e == id,
        _ => false,
    }
}

/// Heads from a stored position (`h1,h2`).
pub fn parse_heads(position: &str) -> Vec<String> {
    position.split(',').filter(|h| !h.is_empty()).map(str::to_owned).collect()
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Percent-encodes what is not unreserved in a URL query value (RFC 3986), keeping `,`.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b',' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

// ---- the wire, by hand ----
//
// The protocol types derive serde (the server uses them), but a client that links serde's
// internally tagged enums, and a second deserializer of every message type, grows the browser
// build by tens of kilobytes. The client reads messages from a `serde_json::Value` and writes its
// one message as text: the same JSON, checked against the derived forms in the tests.

/// Reads a server message (the client's counterpart of `serde_json::from_str::<ServerMessage>`).
pub fn read_server_message(text: &str) -> Result<ServerMessage, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| crate::protocol::json_error(&e))?;
    let Value::Object(map) = value else { return Err("a message must be a JSON object".into()) };
    let mut f = Fields::default();
    for (key, value) in map {
        match key.as_str() {
            "type" => f.kind = Some(value),
            "data" => f.data = Some(value),
            "heads" => f.heads = Some(value),
            "payload" => f.payload = Some(value),
            "id" => f.id = Some(value),
            "client" => f.client = Some(value),
            "ops" => f.ops = Some(value),
            "since" => f.since = Some(value),
            "superseded" => f.superseded = Some(value),
            "standing" => f.standing = Some(value),
            "code" => f.code = Some(value),
            "message" => f.message = Some(value),
            "workspace" => f.workspace = Some(value),
            "key" => f.key = Some(value),
            _ => {}
        }
    }
    let kind = match f.kind.take() {
        Some(Value::String(kind)) => kind,
        _ => return Err("a message needs a string `type`".into()),
    };
    Ok(match kind.as_str() {
        "init" => ServerMessage::Init {
            data: match f.data {
                Some(Value::Object(data)) => data,
                _ => return Err("`data` must be an object".into()),
            },
            heads: strings(f.heads, "heads")?,
        },
        "op" => ServerMessage::Op { payload: read_op(f.payload.ok_or("`op` needs a `payload`")?)? },
        "tx" => ServerMessage::Tx {
            id: string(f.id, "id")?,
            client: string(f.client, "client")?,
            ops: ops(f.ops, "ops")?,
            heads: strings(f.heads, "heads")?,
        },
        "changes" => ServerMessage::Changes {
            since: strings(f.since, "since")?,
            ops: ops(f.ops, "ops")?,
            heads: strings(f.heads, "heads")?,
        },
        "ack" => ServerMessage::Ack {
            id: string(f.id, "id")?,
            heads: strings(f.heads, "heads")?,
            superseded: if f.superseded.is_some() { strings(f.superseded, "superseded")? } else { Vec::new() },
            standing: if f.standing.is_some() { ops(f.standing, "standing")? } else { Vec::new() },
        },
        "error" => ServerMessage::Error {
            code: f
                .code
                .and_then(|c| c.as_u64())
                .and_then(|c| u16::try_from(c).ok())
                .ok_or("`error` needs a numeric `code`")?,
            message: string(f.message, "message")?,
            workspace: optional_string(f.workspace, "workspace")?,
            id: optional_string(f.id, "id")?,
            key: optional_string(f.key, "key")?,
        },
        other => return Err(format!("unknown message type `{other}`")),
    })
}

/// The fields a server message may have, taken out of its object in one pass.
#[derive(Default)]
struct Fields {
    kind: Option<Value>,
    data: Option<Value>,
    heads: Option<Value>,
    payload: Option<Value>,
    id: Option<Value>,
    client: Option<Value>,
    ops: Option<Value>,
    since: Option<Value>,
    superseded: Option<Value>,
    standing: Option<Value>,
    code: Option<Value>,
    message: Option<Value>,
    workspace: Option<Value>,
    key: Option<Value>,
}

fn read_op(value: Value) -> Result<Op, String> {
    let Value::Object(map) = value else { return Err("an op must be an object".into()) };
    let mut op = Op { key: String::new(), value: None, timestamp: None, delete: false };
    let mut key = None;
    for (field, value) in map {
        match field.as_str() {
            "key" => key = Some(value),
            "value" => op.value = Some(value),
            "timestamp" if !value.is_null() => {
                op.timestamp = Some(value.as_u64().ok_or("an op's `timestamp` must be an integer")?)
            }
            "delete" => op.delete = value.as_bool().ok_or("an op's `delete` must be a boolean")?,
            _ => {}
        }
    }
    op.key = string(key, "key")?;
    Ok(op)
}

fn string(value: Option<Value>, name: &str) -> Result<String, String> {
    match value {
        Some(Value::String(s)) => Ok(s),
        _ => Err(format!("`{name}` must be a string")),
    }
}

fn optional_string(value: Option<Value>, name: &str) -> Result<Option<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        _ => Err(format!("`{name}` must be a string")),
    }
}

fn strings(value: Option<Value>, name: &str) -> Result<Vec<String>, String> {
    match value {
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(format!("`{name}` must hold strings")),
            })
            .collect(),
        _ => Err(format!("`{name}` must be an array")),
    }
}

fn ops(value: Option<Value>, name: &str) -> Result<Vec<Op>, String> {
    match value {
        Some(Value::Array(items)) => items.into_iter().map(read_op).collect(),
        _ => Err(format!("`{name}` must be an array")),
    }
}

/// A `tx` message as text (what `serde_json::to_string(&ClientMessage::Tx(tx))` writes).
pub fn write_tx(tx: &TxMessage) -> String {
    let json = |s: &str| crate::protocol::json_text(s);
    let mut out = String::with_capacity(64 + tx.ops.len() * 64);
    out.push_str("{\"type\":\"tx\",\"id\":");
    out.push_str(&json(&tx.id));
    out.push_str(",\"client\":");
    out.push_str(&json(&tx.client));
    out.push_str(",\"ops\":[");
    for (i, op) in tx.ops.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"key\":");
        out.push_str(&json(&op.key));
        if let Some(value) = &op.value {
            out.push_str(",\"value\":");
            out.push_str(&crate::protocol::json_text(value));
        }
        if let Some(timestamp) = op.timestamp {
            out.push_str(",\"timestamp\":");
            out.push_str(&timestamp.to_string());
        }
        if op.delete {
            out.push_str(",\"delete\":true");
        }
        out.push('}');
    }
    out.push_str("]}");
    out
}
