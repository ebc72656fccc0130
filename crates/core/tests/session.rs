//! The protocol client (`tandem_core::session`) against an in-memory model of tandem-server,
//! wired to a real engine: connecting, resuming from heads, backoff, resending, acks and echoes,
//! superseded writes, errors, pause/resume, close codes, and duplicates of lost acks.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde_json::{json, Map, Value};
use tandem_core::protocol::{ClientMessage, Op, ServerMessage};
use tandem_core::session::{Action, PersistError, Problem, SessionConfig, SyncState, Target, TokenSource};
use tandem_core::{
    CollectionConfig, Effect, Engine, EngineConfig, ErrorInfo, RetryPolicy, Session, SyncChange, TransactionInput,
    TransactionState,
};

const TODOS: &str = "todos";

// ---- a model of tandem-server (protocol v1) ----

#[derive(Default)]
struct FakeServer {
    /// key → (value, or `None` for a tombstone; timestamp)
    state: BTreeMap<String, (Option<Value>, u64)>,
    /// Committed changes; heads after change i are `h{i+1}`.
    changes: Vec<Vec<Op>>,
    dedup: HashMap<(String, String), ServerMessage>,
    clock: u64,
    /// Every transaction id committed, in order (duplicates would show twice).
    committed: Vec<String>,
}

impl FakeServer {
    fn heads(&self) -> Vec<String> {
        if self.changes.is_empty() {
            Vec::new()
        } else {
            vec![format!("h{}", self.changes.len())]
        }
    }

    fn first_message(&self, since: Option<Vec<String>>) -> ServerMessage {
        let known = since.as_ref().and_then(|h| match h.as_slice() {
            [] => Some(0),
            [one] => one.strip_prefix('h')?.parse::<usize>().ok().filter(|n| *n <= self.changes.len()),
            _ => None,
        });
        match (since, known) {
            (Some(since), Some(n)) => {
                let mut keys: Vec<&String> = self.changes[n..].iter().flatten().map(|o| &o.key).collect();
                keys.sort();
                keys.dedup();
                let ops = keys.into_iter().map(|k| self.current(k)).collect();
                ServerMessage::Changes { since, ops, heads: self.heads() }
            }
            _ => {
                let data: Map<String, Value> =
                    self.state.iter().filter_map(|(k, (v, _))| v.clone().map(|v| (k.clone(), v))).collect();
                ServerMessage::Init { data, heads: self.heads() }
            }
        }
    }

    fn current(&self, key: &str) -> Op {
        let (value, ts) = self.state.get(key).cloned().expect("known key");
        match value {
            Some(v) => Op::put(key, v, Some(ts)),
            None => Op::delete(key, Some(ts)),
        }
    }

    /// Applies ops; returns (applied, superseded keys).
    fn apply(&mut self, ops: Vec<Op>) -> (Vec<Op>, Vec<String>) {
        let mut applied = Vec::new();
        let mut superseded = Vec::new();
        for op in ops {
            let current = self.state.get(&op.key).map(|(_, t)| *t);
            self.clock += 1;
            let ts = op.timestamp.unwrap_or_else(|| self.clock.max(current.unwrap_or(0) + 1));
            if current.is_some_and(|c| ts < c) {
                superseded.push(op.key);
                continue;
            }
            let value = if op.delete { None } else { op.value.clone() };
            self.state.insert(op.key.clone(), (value, ts));
            applied.push(Op { timestamp: Some(ts), ..op });
        }
        if !applied.is_empty() {
            self.changes.push(applied.clone());
        }
        (applied, superseded)
    }

    /// A client transaction: (ack, echo for every v1 client if it changed anything).
    fn tx(&mut self, client: &str, id: &str, ops: Vec<Op>) -> (ServerMessage, Option<ServerMessage>) {
        if let Some(ack) = self.dedup.get(&(client.to_string(), id.to_string())) {
            return (ack.clone(), None);
        }
        let (applied, superseded) = self.apply(ops);
        let standing = superseded.iter().map(|k| self.current(k)).collect();
        let ack = ServerMessage::Ack { id: id.into(), heads: self.heads(), superseded, standing };
        self.dedup.insert((client.into(), id.into()), ack.clone());
        if applied.is_empty() {
            return (ack, None);
        }
        self.committed.push(id.to_string());
        let echo = ServerMessage::Tx { id: id.into(), client: client.into(), ops: applied, heads: self.heads() };
        (ack, Some(echo))
    }

    /// A write by someone else (a v0 op or an HTTP write): its broadcast.
    fn external(&mut self, ops: Vec<Op>) -> ServerMessage {
        let (applied, _) = self.apply(ops);
        let id = format!("change-{}", self.changes.len());
        ServerMessage::Tx { id, client: String::new(), ops: applied, heads: self.heads() }
    }
}

// ---- the harness: session + engine + a scripted network ----

struct Conn {
    id: u64,
    heads: Option<Vec<String>>,
    open: bool,
    to_server: VecDeque<String>,
    to_client: VecDeque<String>,
}

struct H {
    session: Session,
    engine: Engine,
    server: FakeServer,
    now: u64,
    conn: Option<Conn>,
    read_only: bool,
    /// Every URL connected to (token redacted).
    urls: Vec<String>,
    /// Every text sent, with its connection.
    sent: Vec<(u64, String)>,
    /// Every action, in order.
    log: Vec<Action>,
    attempts: HashMap<String, u32>,
    closes: Vec<(u64, u16)>,
    token_requests: Vec<u64>,
}

fn config() -> SessionConfig {
    let mut config = SessionConfig::new("ws://tandem.test", "w", TokenSource::Static("secret-token".into()));
    config.backoff =
        RetryPolicy { max_retries: u32::MAX, initial_delay_ms: 1_000, factor: 2.0, max_delay_ms: 8_000, jitter: 0.5 };
    config.seed = 7;
    config
}

impl H {
    fn new() -> Self {
        Self::with(config(), None)
    }

    fn with(config: SessionConfig, position: Option<&str>) -> Self {
        let mut h = Self::unstarted(config);
        h.start(position);
        h
    }

    fn unstarted(config: SessionConfig) -> Self {
        let mut engine = Engine::new(EngineConfig { client_id: "c1".into(), ..Default::default() });
        engine.create_collection(CollectionConfig::new(TODOS)).unwrap();
        H {
            session: Session::new(config),
            engine,
            server: FakeServer::default(),
            now: 1_000_000,
            conn: None,
            read_only: false,
            urls: Vec::new(),
            sent: Vec::new(),
            log: Vec::new(),
            attempts: HashMap::new(),
            closes: Vec::new(),
            token_requests: Vec::new(),
        }
    }

    fn start(&mut self, position: Option<&str>) {
        let target = Target {
            collection: TODOS.into(),
            key_field: "id".into(),
            position: position.map(str::to_owned),
            client_id: "c1".into(),
        };
        self.session.start(self.now, target);
        self.run();
    }

    /// Runs session actions and engine effects until both are quiet.
    fn run(&mut self) {
        loop {
            let mut busy = false;
            while let Some(action) = self.session.poll_action() {
                busy = true;
                self.log.push(action.clone());
                match action {
                    Action::FetchToken { conn } => self.token_requests.push(conn),
                    Action::Connect { conn, url } => {
                        assert!(!format!("{url:?}").contains("secret-token"), "the token is never printed");
                        self.urls.push(url.redacted());
                        let heads = url
                            .as_str()
                            .split(['?', '&'])
                            .find_map(|p| p.strip_prefix("heads="))
                            .map(|h| h.split("%2C").flat_map(|h| h.split(',')).map(str::to_owned).collect());
                        self.conn = Some(Conn {
                            id: conn,
                            heads,
                            open: false,
                            to_server: VecDeque::new(),
                            to_client: VecDeque::new(),
                        });
                    }
                    Action::Send { conn, text } => {
                        self.sent.push((conn, text.clone()));
                        if let Some(c) = self.conn.as_mut().filter(|c| c.id == conn && c.open) {
                            c.to_server.push_back(text);
                        }
                    }
                    Action::Close { conn, code, .. } => {
                        self.closes.push((conn, code));
                        if self.conn.as_ref().is_some_and(|c| c.id == conn) {
                            self.conn = None;
                        }
                    }
                    Action::Update { mut batch, .. } => {
                        // Like `onUpdate`, which is bound to its collection.
                        batch.collection = TODOS.into();
                        self.engine.sync_received(self.now, batch).expect("valid batch")
                    }
                    Action::PersistDone { id, result } => {
                        let attempt = self.attempts[&id];
                        match result {
                            Ok(()) => self.engine.persist_succeeded(self.now, &id, attempt).unwrap(),
                            Err(e) => {
                                let info = if e.retriable {
                                    ErrorInfo::thrown("ServerError", e.message)
                                } else {
                                    ErrorInfo::non_retriable(e.message)
                                };
                                self.engine.persist_failed(self.now, &id, attempt, info).unwrap()
                            }
                        }
                    }
                    Action::Synced { id } => self.engine.await_sync_done(self.now, &id).unwrap(),
                    Action::Status(_) | Action::Problem(_) => {}
                }
            }
            while let Some(effect) = self.engine.poll_effect() {
                busy = true;
                match effect {
                    Effect::Persist { transaction, attempt } => {
                        self.attempts.insert(transaction.to_string(), attempt);
                        let tx = self.engine.transaction(&transaction).unwrap().clone();
                        self.session.persist(self.now, &tx, attempt);
                    }
                    Effect::AwaitSync { transaction } => self.session.await_sync(self.now, &transaction),
                    _ => {}
                }
            }
            if !busy {
                break;
            }
        }
    }

    fn conn_id(&self) -> u64 {
        self.conn.as_ref().expect("a connection").id
    }

    /// The socket opens; the server queues its first message.
    fn open(&mut self) {
        let conn = self.conn.as_mut().expect("a connection attempt");
        conn.open = true;
        let first = self.server.first_message(conn.heads.clone());
        conn.to_client.push_back(serde_json::to_string(&first).unwrap());
        let id = conn.id;
        self.session.opened(self.now, id);
        self.run();
    }

    /// The server handles everything sent so far (answers queued, not delivered).
    fn serve(&mut self) {
        while let Some(text) = self.conn.as_mut().and_then(|c| c.to_server.pop_front()) {
            let ClientMessage::Tx(tx) = serde_json::from_str(&text).unwrap() else { panic!("only tx is sent") };
            let replies = if self.read_only {
                vec![ServerMessage::Error {
                    code: 403,
                    message: "no write scope".into(),
                    workspace: Some("w".into()),
                    id: Some(tx.id),
                    key: None,
                }]
            } else {
                let (ack, echo) = self.server.tx(&tx.client, &tx.id, tx.ops);
                std::iter::once(ack).chain(echo).collect()
            };
            let conn = self.conn.as_mut().unwrap();
            conn.to_client.extend(replies.iter().map(|m| serde_json::to_string(m).unwrap()));
        }
    }

    /// Delivers what the server queued.
    fn deliver(&mut self) {
        while let Some((id, text)) = self.conn.as_mut().and_then(|c| c.to_client.pop_front().map(|t| (c.id, t))) {
            self.session.received(self.now, id, &text);
            self.run();
        }
    }

    /// Serve and deliver until nothing moves.
    fn exchange(&mut self) {
        loop {
            self.serve();
            let pending = self.conn.as_ref().is_some_and(|c| !c.to_client.is_empty());
            if !pending {
                break;
            }
            self.deliver();
        }
    }

    fn push(&mut self, message: ServerMessage) {
        let text = serde_json::to_string(&message).unwrap();
        let id = self.conn_id();
        self.session.received(self.now, id, &text);
        self.run();
    }

    /// Someone else writes; the broadcast is queued for this client if it is connected.
    fn external(&mut self, ops: Vec<Op>) {
        let echo = self.server.external(ops);
        if let Some(conn) = self.conn.as_mut().filter(|c| c.open) {
            conn.to_client.push_back(serde_json::to_string(&echo).unwrap());
        }
    }

    /// The connection breaks: whatever the server queued is lost.
    fn drop_conn(&mut self, code: u16) {
        let conn = self.conn.take().expect("a connection");
        self.session.closed(self.now, conn.id, code, "");
        self.run();
    }

    fn advance(&mut self, ms: u64) {
        self.now += ms;
        self.session.handle_timeout(self.now);
        self.engine.handle_timeout(self.now);
        self.run();
    }

    fn connect(&mut self) {
        self.open();
        self.exchange();
    }

    fn insert(&mut self, record: Value) -> String {
        let id = self.engine.mutate(self.now, TransactionInput::new().insert(TODOS, record).awaiting_sync()).unwrap();
        self.run();
        id.to_string()
    }

    fn update(&mut self, key: &str, changes: Value) -> String {
        let id =
            self.engine.mutate(self.now, TransactionInput::new().update(TODOS, key, changes).awaiting_sync()).unwrap();
        self.run();
        id.to_string()
    }

    fn state(&self, id: &str) -> TransactionState {
        self.engine.transaction(id).unwrap().state
    }

    fn visible(&self, key: &str) -> Option<Value> {
        self.engine.get(TODOS, key).map(|r| r.to_value())
    }

    fn status(&self) -> SyncState {
        self.session.status().state
    }

    fn sent_txs(&self) -> Vec<(u64, String)> {
        self.sent
            .iter()
            .filter_map(|(c, t)| {
                let v: Value = serde_json::from_str(t).unwrap();
                let id = v["id"].as_str().unwrap().to_string();
                (!id.starts_with("~marker")).then_some((*c, id))
            })
            .collect()
    }

    fn markers_sent(&self) -> usize {
        self.sent.iter().filter(|(_, t)| t.contains("~marker")).count()
    }

    fn updates(&self) -> Vec<(&tandem_core::SyncBatch, &Option<String>)> {
        self.log
            .iter()
            .filter_map(|a| match a {
                Action::Update { batch, position } => Some((batch, position)),
                _ => None,
            })
            .collect()
    }

    fn problems(&self) -> Vec<&Problem> {
        self.log.iter().filter_map(|a| if let Action::Problem(p) = a { Some(p) } else { None }).collect()
    }

    fn persist_errors(&self) -> Vec<&PersistError> {
        self.log
            .iter()
            .filter_map(|a| if let Action::PersistDone { result: Err(e), .. } = a { Some(e) } else { None })
            .collect()
    }

    /// Index in the log of the first action matching.
    fn index_of(&self, f: impl Fn(&Action) -> bool) -> usize {
        self.log.iter().position(f).expect("action in the log")
    }
}

fn put(key: &str, value: Value) -> Op {
    Op::put(key, value, None)
}

// ---- connecting ----

#[test]
fn the_first_connection_asks_for_protocol_1_and_hands_init_over_as_a_snapshot_with_its_heads() {
    let mut h = H::new();
    h.server.apply(vec![put("a", json!({"id": "a", "n": 1})), put("b", json!({"n": 2}))]);
    assert_eq!(h.urls, vec!["ws://tandem.test/v1/sync/w?protocol=1&token=<redacted>"]);
    assert_eq!(h.status(), SyncState::Syncing);
    h.connect();
    assert_eq!(h.status(), SyncState::Started);
    let updates = h.updates();
    assert_eq!(updates.len(), 1);
    let (batch, position) = updates[0];
    assert!(batch.snapshot);
    assert_eq!(position.as_deref(), Some("h1"), "the heads to store with the cache");
    assert_eq!(h.visible("a"), Some(json!({"id": "a", "n": 1})));
    assert_eq!(h.visible("b"), Some(json!({"id": "b", "n": 2})), "a value without the key field gets its key");
}

#[test]
fn the_url_takes_http_urls_a_path_prefix_and_encodes_the_token() {
    let mut config = config();
    config.url = "https://example.com/sync/".into();
    config.token = TokenSource::Static("a b&c".into());
    let mut h = H::with(config, Some("h1,h2"));
    let Some(Action::Connect { url, .. }) = h.log.iter().find(|a| matches!(a, Action::Connect { .. })).cloned() else {
        panic!("no connect")
    };
    assert_eq!(url.as_str(), "wss://example.com/sync/v1/sync/w?protocol=1&heads=h1,h2&token=a%20b%26c");
    assert_eq!(format!("{url}"), "wss://example.com/sync/v1/sync/w?protocol=1&heads=h1,h2&token=<redacted>");
    h.run();
}

#[test]
fn a_stored_position_resumes_with_its_heads_and_gets_only_the_changes() {
    let mut h = H::unstarted(config());
    h.server.apply(vec![put("a", json!({"id": "a", "v": 1}))]);
    h.server.apply(vec![put("b", json!({"id": "b", "v": 1}))]);
    h.engine.sync_received(h.now, tandem_core::SyncBatch::new(TODOS).upsert(json!({"id": "a", "v": 1}))).unwrap();
    h.start(Some("h1"));
    assert_eq!(h.urls[0], "ws://tandem.test/v1/sync/w?protocol=1&heads=h1&token=<redacted>");
    h.connect();
    let (batch, position) = h.updates()[0];
    assert!(!batch.snapshot, "a resume is not a snapshot");
    assert_eq!(batch.changes, vec![SyncChange::Upsert(json!({"id": "b", "v": 1}))], "only what it missed");
    assert_eq!(position.as_deref(), Some("h2"));
    assert_eq!(h.visible("a"), Some(json!({"id": "a", "v": 1})), "what it had stays");
}

#[test]
fn a_reconnection_resumes_from_the_heads_of_the_last_batch_handed_over() {
    let mut h = H::new();
    h.connect();
    h.external(vec![put("a", json!({"id": "a"}))]);
    h.deliver();
    h.drop_conn(1006);
    h.server.apply(vec![put("b", json!({"id": "b"}))]);
    h.advance(1_000);
    assert_eq!(h.urls[1], "ws://tandem.test/v1/sync/w?protocol=1&heads=h1&token=<redacted>");
    h.connect();
    let (batch, _) = *h.updates().last().unwrap();
    assert_eq!(batch.changes, vec![SyncChange::Upsert(json!({"id": "b"}))]);
    assert_eq!(h.session.heads(), ["h2"]);
}

#[test]
fn the_heads_of_an_ack_are_not_a_sync_position_until_the_echo_is_handed_over() {
    let mut h = H::new();
    h.connect();
    h.insert(json!({"id": "a"}));
    h.serve();
    let ack = h.conn.as_mut().unwrap().to_client.pop_front().unwrap();
    let id = h.conn_id();
    h.session.received(h.now, id, &ack);
    h.run();
    assert!(h.session.heads().is_empty(), "the ack's heads include a change not handed over");
    h.drop_conn(1006);
    h.advance(1_000);
    assert!(!h.urls[1].contains("heads="), "resumes from before the change: its data comes in the first batch");
}

// ---- backoff ----

#[test]
fn reconnection_delays_grow_within_their_jitter_bands_and_reset_after_a_successful_start() {
    let mut h = H::new();
    let mut delays = Vec::new();
    for _ in 0..6 {
        let conn = h.conn_id();
        h.session.connect_failed(h.now, conn, None, "refused");
        h.run();
        assert_eq!(h.status(), SyncState::Error);
        let at = h.session.poll_timeout().expect("a retry is scheduled");
        assert_eq!(h.session.status().retry_at, Some(at));
        let delay = at - h.now;
        delays.push(delay);
        h.advance(delay - 1);
        assert_eq!(h.urls.len(), delays.len(), "not before its time");
        h.advance(1);
        assert_eq!(h.status(), SyncState::Syncing);
    }
    for (delay, base) in delays.iter().zip([1_000u64, 2_000, 4_000, 8_000, 8_000, 8_000]) {
        assert!((base / 2..=base).contains(delay), "{delay} not in [{}, {base}]: {delays:?}", base / 2);
    }
    h.connect();
    assert_eq!(h.status(), SyncState::Started);
    assert_eq!(h.session.status().error, None, "a successful start clears the error");
    h.drop_conn(1006);
    let delay = h.session.poll_timeout().unwrap() - h.now;
    assert!((500..=1_000).contains(&delay), "back to the first delay: {delay}");

    // Reproducible from the seed.
    let mut again = H::new();
    let mut replay = Vec::new();
    for _ in 0..6 {
        let conn = again.conn_id();
        again.session.connect_failed(again.now, conn, None, "refused");
        let delay = again.session.poll_timeout().unwrap() - again.now;
        replay.push(delay);
        again.advance(delay);
    }
    assert_eq!(replay, delays);
}

// ---- sending ----

#[test]
fn a_write_while_disconnected_waits_and_is_sent_once_connected() {
    let mut h = H::new();
    let t = h.insert(json!({"id": "a", "title": "milk"}));
    assert!(h.sent.is_empty(), "no connection yet");
    assert_eq!(h.state(&t), TransactionState::Persisting, "waiting, not failed");
    h.connect();
    assert_eq!(h.sent_txs(), vec![(1, t.clone())]);
    assert_eq!(h.state(&t), TransactionState::Completed);
    assert_eq!(h.server.committed, vec![t]);
}

#[test]
fn unacknowledged_transactions_are_resent_in_order_after_a_reconnection_and_applied_once() {
    let mut h = H::new();
    h.connect();
    let t1 = h.insert(json!({"id": "a"}));
    let t2 = h.insert(json!({"id": "b"}));
    let t3 = h.update("a", json!({"x": 1}));
    let first: Vec<String> = h.sent.iter().map(|(_, t)| t.clone()).collect();
    assert_eq!(first.len(), 2, "t3 is queued behind t1 in the engine");
    h.drop_conn(1006); // Neither reached the server.
    h.advance(1_000);
    h.open();
    let resent: Vec<&String> = h.sent.iter().filter(|(c, _)| *c == 2).map(|(_, t)| t).collect();
    assert_eq!(resent[..2], [&first[0], &first[1]], "same bytes, same order");
    assert_eq!(h.markers_sent(), 1, "they may have been committed: a marker follows");
    h.exchange();
    for t in [&t1, &t2, &t3] {
        assert_eq!(h.state(t), TransactionState::Completed);
    }
    assert_eq!(h.server.committed, vec![t1, t2, t3]);
}

#[test]
fn a_transaction_becomes_one_tx_with_the_last_write_of_each_key_and_its_timestamps() {
    let mut h = H::new();
    h.connect();
    h.external(vec![put("gone", json!({"id": "gone"}))]);
    h.deliver();
    let t = h.engine.mutate(
        h.now,
        TransactionInput::new()
            .insert(TODOS, json!({"id": "a", "n": 1}))
            .insert(TODOS, json!({"id": "b"}))
            .update(TODOS, "a", json!({"n": 2}))
            .delete(TODOS, "gone")
            .update(TODOS, "a", json!({"n": 3})),
    );
    let t = t.unwrap();
    h.run();
    let tx = h.engine.transaction(&t).unwrap().clone();
    let text = &h.sent.last().unwrap().1;
    let sent: Value = serde_json::from_str(text).unwrap();
    assert_eq!(
        sent,
        json!({"type": "tx", "id": &*t, "client": "c1", "ops": [
            {"key": "b", "value": {"id": "b"}, "timestamp": tx.mutations[1].timestamp},
            {"key": "gone", "delete": true, "timestamp": tx.mutations[3].timestamp},
            {"key": "a", "value": {"id": "a", "n": 3}, "timestamp": tx.mutations[4].timestamp},
        ]})
    );
}

// ---- acks and echoes ----

#[test]
fn persist_resolves_on_the_ack_and_await_sync_after_the_echo_confirming_it_is_handed_over() {
    let mut h = H::new();
    h.connect();
    let t = h.insert(json!({"id": "a"}));
    h.serve();
    let ack = h.conn.as_mut().unwrap().to_client.pop_front().unwrap();
    let conn = h.conn_id();
    h.session.received(h.now, conn, &ack);
    h.run();
    assert_eq!(h.state(&t), TransactionState::PersistedAwaitingSync, "the ack resolves persist");
    assert!(!h.log.iter().any(|a| matches!(a, Action::Synced { .. })), "await-sync waits for the echo");
    h.deliver();
    assert_eq!(h.state(&t), TransactionState::Completed);
    let echo = h.index_of(|a| matches!(a, Action::Update { batch, .. } if batch.confirms == vec![t.clone()]));
    let (batch, position) = (h.updates().last().unwrap().0.clone(), h.updates().last().unwrap().1.clone());
    assert_eq!(batch.changes, vec![SyncChange::Upsert(json!({"id": "a"}))]);
    assert_eq!(position.as_deref(), Some("h1"));
    assert!(echo > h.index_of(|a| matches!(a, Action::PersistDone { .. })));
    assert!(h.session.pending() == 0, "forgotten once synced");
}

#[test]
fn an_echo_that_overtakes_await_sync_resolves_it_at_once() {
    let mut h = H::new();
    h.connect();
    let t = h.insert(json!({"id": "a"}));
    h.exchange();
    assert_eq!(h.state(&t), TransactionState::Completed, "the echo's confirmation completed it");
    h.session.await_sync(h.now, &t);
    assert_eq!(h.session.poll_action(), Some(Action::Synced { id: t }), "a late await-sync does not hang");
}

#[test]
fn other_clients_transactions_are_handed_over_without_confirming_and_foreign_ids_are_confirmed_by_id() {
    let mut h = H::new();
    h.connect();
    h.external(vec![put("x", json!({"id": "x"}))]);
    h.deliver();
    let (batch, _) = *h.updates().last().unwrap();
    assert!(batch.confirms.is_empty(), "a change without transaction confirms nothing");
    h.push(ServerMessage::Tx {
        id: "other-1".into(),
        client: "other".into(),
        ops: vec![Op::put("y", json!({"id": "y"}), Some(5))],
        heads: vec!["h9".into()],
    });
    let (batch, _) = *h.updates().last().unwrap();
    assert_eq!(batch.confirms, vec!["other-1".to_string()], "adopted work of another client completes too");
    assert_eq!(batch.max_timestamp, Some(5));
}

#[test]
fn a_fully_superseded_write_is_replaced_by_the_standing_value_and_needs_no_echo() {
    let mut h = H::new();
    h.connect();
    h.external(vec![put("a", json!({"id": "a", "v": "old"}))]);
    h.deliver();
    let t = h.update("a", json!({"v": "older"}));
    assert_eq!(h.visible("a").unwrap()["v"], "older", "optimistic");
    // Someone else's newer write reaches the server first.
    h.external(vec![Op::put("a", json!({"id": "a", "v": "newer"}), Some(h.engine.last_timestamp() + 1))]);
    h.exchange();
    assert_eq!(h.state(&t), TransactionState::Completed);
    assert_eq!(h.visible("a").unwrap()["v"], "newer", "the optimistic value that lost is dropped");
    let standing = h.index_of(|a| matches!(a, Action::Update { batch, .. } if batch.confirms == vec![t.clone()]));
    let done = h.index_of(|a| matches!(a, Action::PersistDone { .. }));
    assert!(standing < done, "the standing values are handed over before persist resolves");
    assert!(h.server.committed.is_empty());
}

#[test]
fn a_partly_superseded_write_confirms_at_the_ack_and_syncs_at_the_echo() {
    let mut h = H::new();
    h.connect();
    h.external(vec![put("a", json!({"id": "a", "v": "old"}))]);
    h.deliver();
    let t = h.engine.mutate(
        h.now,
        TransactionInput::new()
            .update(TODOS, "a", json!({"v": "older"}))
            .insert(TODOS, json!({"id": "b"}))
            .awaiting_sync(),
    );
    let t = t.unwrap().to_string();
    h.run();
    h.external(vec![Op::put("a", json!({"id": "a", "v": "newer"}), Some(h.engine.last_timestamp() + 1))]);
    h.serve();
    let conn = h.conn_id();
    let texts: Vec<String> = h.conn.as_mut().unwrap().to_client.drain(..).collect();
    assert_eq!(texts.len(), 3, "the other write, our ack, our echo");
    h.session.received(h.now, conn, &texts[0]);
    h.session.received(h.now, conn, &texts[1]);
    h.run();
    assert_eq!(h.state(&t), TransactionState::Completed, "the standing values confirm it");
    h.session.await_sync(h.now, &t);
    assert!(!h.session.poll_action().is_some_and(|a| matches!(a, Action::Synced { .. })), "synced only by its echo");
    h.session.received(h.now, conn, &texts[2]);
    h.run();
    assert!(h.log.iter().any(|a| a == &Action::Synced { id: t.clone() }));
    assert_eq!(h.state(&t), TransactionState::Completed);
    assert_eq!(h.visible("a").unwrap()["v"], "newer");
    assert_eq!(h.visible("b"), Some(json!({"id": "b"})));
    assert_eq!(h.server.committed, vec![t]);
}

// ---- errors ----

#[test]
fn a_forbidden_or_malformed_write_fails_for_good_and_a_server_failure_is_retried() {
    for (code, retriable) in [(403, false), (400, false), (404, false), (500, true)] {
        let mut h = H::new();
        h.connect();
        let t = h.insert(json!({"id": "a"}));
        h.push(ServerMessage::Error {
            code,
            message: "nope".into(),
            workspace: Some("w".into()),
            id: Some(t.clone()),
            key: None,
        });
        assert_eq!(h.persist_errors(), vec![&PersistError { code: Some(code), message: "nope".into(), retriable }]);
        let expected = if retriable { TransactionState::Pending } else { TransactionState::Failed };
        assert_eq!(h.state(&t), expected, "code {code}");
        if !retriable {
            assert_eq!(h.visible("a"), None, "rolled back");
        }
    }
}

#[test]
fn a_read_only_session_gets_a_non_retriable_failure_and_the_write_is_rolled_back() {
    let mut h = H::new();
    h.read_only = true;
    h.connect();
    let t = h.insert(json!({"id": "a"}));
    h.exchange();
    assert_eq!(h.state(&t), TransactionState::Failed);
    assert!(!h.engine.transaction(&t).unwrap().error.as_ref().unwrap().error.retriable);
    assert_eq!(h.visible("a"), None);
}

#[test]
fn a_retry_after_a_server_failure_is_sent_again_and_completes() {
    let mut h = H::new();
    h.connect();
    let t = h.insert(json!({"id": "a"}));
    h.push(ServerMessage::Error { code: 500, message: "disk".into(), workspace: None, id: Some(t.clone()), key: None });
    h.conn.as_mut().unwrap().to_server.clear();
    h.advance(1_000); // the engine's retry
    h.exchange();
    assert_eq!(h.state(&t), TransactionState::Completed);
    assert_eq!(h.sent_txs().len(), 2);
    assert_eq!(h.server.committed, vec![t]);
}

#[test]
fn an_error_about_nothing_of_ours_and_unreadable_messages_are_reported() {
    let mut h = H::new();
    h.connect();
    h.push(ServerMessage::Error { code: 400, message: "binary".into(), workspace: None, id: None, key: None });
    let conn = h.conn_id();
    h.session.received(h.now, conn, "{not json");
    h.run();
    let problems = h.problems();
    assert_eq!(problems[0], &Problem::ServerError { code: 400, message: "binary".into() });
    assert!(matches!(problems[1], Problem::BadMessage { .. }));
    assert_eq!(h.status(), SyncState::Started, "neither stops the session");
}

// ---- mapping ----

#[test]
fn values_that_cannot_be_records_are_skipped_and_reported_never_fatal() {
    let mut h = H::new();
    h.server.apply(vec![
        put("n", json!(42)),
        put("s", json!("text")),
        put("wrong", json!({"id": "other"})),
        put("ok", json!({"id": "ok"})),
    ]);
    h.connect();
    assert_eq!(h.visible("ok"), Some(json!({"id": "ok"})));
    assert_eq!(h.engine.len(TODOS), 1);
    let keys: Vec<&str> = h
        .problems()
        .iter()
        .filter_map(|p| if let Problem::InvalidValue { key, .. } = p { Some(key.as_str()) } else { None })
        .collect();
    assert_eq!(keys, vec!["n", "s", "wrong"]);
    h.external(vec![put("late", json!(null))]);
    h.deliver();
    assert_eq!(h.problems().len(), 4);
    assert_eq!(h.status(), SyncState::Started);
}

#[test]
fn a_namespace_maps_keys_to_collection_slash_key_and_ignores_other_collections() {
    let mut config = config();
    config.namespace = Some("todos".into());
    let mut h = H::with(config, None);
    h.server.apply(vec![
        put("todos/a", json!({"id": "a"})),
        put("tags/x", json!({"id": "x"})),
        put("todos", json!({})),
    ]);
    h.connect();
    assert_eq!(h.engine.len(TODOS), 1);
    assert_eq!(h.visible("a"), Some(json!({"id": "a"})));
    let t = h.insert(json!({"id": "b"}));
    h.exchange();
    assert_eq!(h.state(&t), TransactionState::Completed);
    assert!(h.server.state.contains_key("todos/b"));
    h.external(vec![put("tags/y", json!({"id": "y"}))]);
    h.deliver();
    assert_eq!(h.session.heads(), ["h3"], "others' changes still move the heads");
    assert!(h.problems().is_empty());
}

#[test]
fn a_transaction_touching_another_collection_fails_without_a_namespace() {
    let mut h = H::new();
    h.engine.create_collection(CollectionConfig::new("tags")).unwrap();
    h.connect();
    let t = h
        .engine
        .mutate(h.now, TransactionInput::new().insert(TODOS, json!({"id": "a"})).insert("tags", json!({"id": "t"})))
        .unwrap();
    h.run();
    assert_eq!(h.state(&t), TransactionState::Failed);
    assert!(!h.persist_errors()[0].retriable);
    assert!(h.sent.is_empty());
}

// ---- pause / resume ----

#[test]
fn pause_closes_the_socket_writes_wait_and_resume_sends_them_once() {
    let mut h = H::new();
    h.connect();
    h.session.pause(h.now);
    h.run();
    assert_eq!(h.status(), SyncState::Paused);
    assert_eq!(h.closes, vec![(1, 1000)]);
    let t = h.insert(json!({"id": "a"}));
    h.advance(60_000);
    assert!(h.sent.is_empty(), "nothing is sent while paused");
    assert_eq!(h.urls.len(), 1, "no reconnection while paused");
    assert_eq!(h.state(&t), TransactionState::Persisting);
    h.session.resume(h.now);
    h.run();
    assert_eq!(h.status(), SyncState::Syncing);
    h.connect();
    assert_eq!(h.status(), SyncState::Started);
    assert_eq!(h.sent_txs(), vec![(2, t.clone())], "sent once");
    assert_eq!(h.state(&t), TransactionState::Completed);
}

#[test]
fn pausing_with_a_write_in_flight_resends_it_after_resume_and_it_applies_once() {
    let mut h = H::new();
    h.connect();
    let t = h.insert(json!({"id": "a"}));
    h.serve(); // committed; the ack is lost with the socket
    h.session.pause(h.now);
    h.run();
    h.session.resume(h.now);
    h.run();
    h.connect();
    assert_eq!(h.state(&t), TransactionState::Completed);
    assert_eq!(h.server.committed, vec![t]);
}

// ---- close codes ----

#[test]
fn close_codes_decide_between_reconnecting_refreshing_and_stopping() {
    // 4000: fell behind → reconnect with heads.
    let mut h = H::new();
    h.connect();
    h.external(vec![put("a", json!({"id": "a"}))]);
    h.deliver();
    h.drop_conn(4000);
    assert_eq!(h.status(), SyncState::Error);
    let at = h.session.poll_timeout().unwrap();
    h.advance(at - h.now);
    assert!(h.urls[1].contains("heads=h1"));

    // 4001 with a fixed token: stop with an error.
    let mut h = H::new();
    h.connect();
    h.drop_conn(4001);
    assert_eq!(h.status(), SyncState::Error);
    assert!(h.session.status().error.as_ref().unwrap().fatal);
    assert_eq!(h.session.poll_timeout(), None);
    h.advance(600_000);
    assert_eq!(h.urls.len(), 1, "no reconnection loop");

    // 4001 with a token function: a fresh token at once.
    let mut config = config();
    config.token = TokenSource::Refresh;
    let mut h = H::with(config, None);
    assert_eq!(h.token_requests, vec![1]);
    h.session.token_ready(h.now, 1, Ok("t1".into()));
    h.run();
    h.connect();
    h.drop_conn(4001);
    assert_eq!(h.token_requests, vec![1, 2], "asked for a fresh token without waiting");
    h.session.token_ready(h.now, 2, Ok("t2".into()));
    h.run();
    assert_eq!(h.urls.len(), 2);

    // 4004: the workspace is gone: stop.
    let mut h = H::new();
    h.connect();
    h.drop_conn(4004);
    assert_eq!(h.status(), SyncState::Error);
    assert_eq!(h.session.poll_timeout(), None);
    h.session.resume(h.now);
    h.run();
    assert_eq!(h.urls.len(), 2, "resume tries again");

    // 1008 with a fixed token: stop.
    let mut h = H::new();
    h.connect();
    h.drop_conn(1008);
    assert!(h.session.status().error.as_ref().unwrap().fatal);

    // 1001 (server restart) and 4002 (ping timeout): reconnect with backoff.
    for code in [1001, 4002, 1011, 1006] {
        let mut h = H::new();
        h.connect();
        h.drop_conn(code);
        assert!(!h.session.status().error.as_ref().unwrap().fatal, "{code}");
        assert!(h.session.poll_timeout().is_some(), "{code}");
    }
}

#[test]
fn a_refused_upgrade_stops_unless_a_fresh_token_can_help() {
    for (status, fatal) in [(401, true), (403, true), (400, true), (404, true), (502, false)] {
        let mut h = H::new();
        h.session.connect_failed(h.now, 1, Some(status), "refused");
        h.run();
        let error = h.session.status().error.clone().unwrap();
        assert_eq!((error.code, error.fatal), (Some(status), fatal), "{status}");
        assert_eq!(h.session.poll_timeout().is_some(), !fatal, "{status}");
    }
    let mut config = config();
    config.token = TokenSource::Refresh;
    let mut h = H::with(config, None);
    h.session.token_ready(h.now, 1, Ok("expired".into()));
    h.session.connect_failed(h.now, 1, Some(401), "refused");
    h.run();
    assert!(!h.session.status().error.as_ref().unwrap().fatal);
    let at = h.session.poll_timeout().expect("retries, with backoff");
    assert!(at > h.now);
    h.advance(at - h.now);
    assert_eq!(h.token_requests, vec![1, 2], "with a fresh token");
}

#[test]
fn a_token_function_that_fails_is_reported_and_retried_later() {
    let mut config = config();
    config.token = TokenSource::Refresh;
    let mut h = H::with(config, None);
    h.session.token_ready(h.now, 1, Err("offline".into()));
    h.run();
    assert_eq!(h.status(), SyncState::Error);
    assert!(h.session.poll_timeout().is_some());
    assert!(matches!(h.problems()[0], Problem::Token { .. }));
}

#[test]
fn close_1009_fails_the_largest_transaction_in_flight_instead_of_resending_it_forever() {
    let mut h = H::new();
    h.connect();
    let small = h.insert(json!({"id": "s"}));
    let big = h.insert(json!({"id": "b", "blob": "x".repeat(10_000)}));
    h.drop_conn(1009);
    assert_eq!(h.state(&big), TransactionState::Failed);
    assert_eq!(h.persist_errors()[0].code, Some(1009));
    let at = h.session.poll_timeout().unwrap();
    h.advance(at - h.now);
    h.connect();
    assert_eq!(h.state(&small), TransactionState::Completed);
}

#[test]
fn events_of_an_old_connection_are_ignored() {
    let mut h = H::new();
    h.connect();
    h.session.pause(h.now);
    h.session.resume(h.now);
    h.run();
    h.session.received(h.now, 1, r#"{"type":"init","data":{"z":{"id":"z"}},"heads":["h9"]}"#);
    h.session.closed(h.now, 1, 4004, "");
    h.run();
    assert_eq!(h.visible("z"), None);
    assert_eq!(h.status(), SyncState::Syncing);
}

// ---- lost acks: duplicates ----

#[test]
fn a_write_committed_before_the_connection_dropped_is_resent_applied_once_and_confirmed_by_the_first_batch() {
    let mut h = H::new();
    h.connect();
    let t = h.insert(json!({"id": "a", "v": 1}));
    h.serve(); // committed; ack and echo lost
    h.drop_conn(1006);
    h.advance(1_000);
    h.open();
    assert_eq!(h.markers_sent(), 1);
    h.exchange();
    assert_eq!(h.server.committed, vec![t.clone()], "applied once");
    assert_eq!(h.state(&t), TransactionState::Completed, "the dedup answer completes it; no echo will come");
    let (first, _) = h.updates()[1];
    assert_eq!(first.confirms, vec![t], "confirmed by the batch holding its data");
    assert_eq!(h.status(), SyncState::Started);
}

#[test]
fn a_duplicate_never_leaves_its_stale_optimistic_value_over_a_newer_write() {
    let mut h = H::new();
    h.connect();
    h.external(vec![put("a", json!({"id": "a", "v": 0}))]);
    h.deliver();
    let t = h.update("a", json!({"v": 1}));
    h.serve(); // committed; ack and echo lost
    h.drop_conn(1006);
    h.server.apply(vec![put("a", json!({"id": "a", "v": 2}))]); // someone else, later
    h.advance(1_000);
    h.connect();
    assert_eq!(h.state(&t), TransactionState::Completed);
    assert_eq!(h.visible("a").unwrap()["v"], 2, "the newer write shows, not the duplicate's");
}

#[test]
fn a_fresh_commit_of_a_resent_write_is_confirmed_by_its_echo() {
    let mut h = H::new();
    h.connect();
    let t = h.insert(json!({"id": "a"}));
    h.drop_conn(1006); // never reached the server
    h.advance(1_000);
    h.connect();
    assert_eq!(h.state(&t), TransactionState::Completed);
    let (first, _) = h.updates()[1];
    assert!(first.confirms.is_empty());
    assert!(h.updates().iter().any(|(b, _)| b.confirms == vec![t.clone()] && !b.changes.is_empty()));
}

#[test]
fn an_ack_lost_after_the_echo_was_lost_too_is_confirmed_by_the_next_first_batch() {
    let mut h = H::new();
    h.connect();
    let t = h.insert(json!({"id": "a"}));
    h.serve();
    let ack = h.conn.as_mut().unwrap().to_client.pop_front().unwrap();
    let conn = h.conn_id();
    h.session.received(h.now, conn, &ack);
    h.run();
    h.drop_conn(1006); // the echo is lost
    assert_eq!(h.state(&t), TransactionState::PersistedAwaitingSync);
    h.advance(1_000);
    h.connect();
    assert_eq!(h.state(&t), TransactionState::Completed);
    assert_eq!(h.updates()[1].0.confirms, vec![t]);
    assert_eq!(h.markers_sent(), 0, "nothing to resend");
}

#[test]
fn a_reloaded_interrupted_write_persisted_after_the_first_batch_is_confirmed_by_a_full_resync() {
    // The previous page sent t and the server committed it, but the page went away before
    // the ack: t is restored with an interrupted attempt.
    let mut h = H::new();
    h.connect();
    let t = h.update_after_seed("a");
    h.serve();
    let stored = h.engine.transaction(&t).unwrap().clone();

    let mut page2 = H::unstarted(config());
    page2.server = std::mem::take(&mut h.server);
    page2.server.apply(vec![put("a", json!({"id": "a", "v": 2}))]); // newer, by someone else
    page2.start(None);
    page2.connect(); // the first batch is handed over before t is restored
    page2.engine.restore(page2.now, vec![stored]).unwrap();
    page2.run();
    assert_eq!(page2.markers_sent(), 1, "it may be a duplicate: a marker follows it");
    page2.exchange();
    assert!(page2.urls[1].ends_with("?protocol=1&token=<redacted>"), "a full re-sync: {:?}", page2.urls);
    page2.exchange();
    page2.open();
    page2.exchange();
    assert_eq!(page2.state(&t), TransactionState::Completed);
    assert_eq!(page2.visible("a").unwrap()["v"], 2, "no stale optimistic value");
    assert_eq!(page2.server.committed.iter().filter(|c| **c == t).count(), 1);
}

impl H {
    fn update_after_seed(&mut self, key: &str) -> String {
        self.external(vec![put(key, json!({"id": key, "v": 0}))]);
        self.deliver();
        self.update(key, json!({"v": 1}))
    }
}

#[test]
fn a_reloaded_write_whose_marker_was_lost_with_the_connection_is_still_confirmed_by_a_full_resync() {
    let mut h = H::new();
    h.connect();
    let t = h.update_after_seed("a");
    h.serve();
    let stored = h.engine.transaction(&t).unwrap().clone();

    let mut page2 = H::unstarted(config());
    page2.server = std::mem::take(&mut h.server);
    page2.server.apply(vec![put("a", json!({"id": "a", "v": 2}))]);
    page2.start(None);
    page2.connect();
    page2.engine.restore(page2.now, vec![stored]).unwrap();
    page2.run();
    page2.drop_conn(1006); // before the server saw the resend or its marker
    page2.advance(1_000);
    assert!(page2.urls[1].contains("heads="), "an ordinary resume first");
    page2.connect();
    assert!(page2.urls[2].ends_with("?protocol=1&token=<redacted>"), "then a full re-sync: {:?}", page2.urls);
    page2.connect();
    assert_eq!(page2.state(&t), TransactionState::Completed);
    assert_eq!(page2.visible("a").unwrap()["v"], 2);
    assert_eq!(page2.server.committed.iter().filter(|c| **c == t).count(), 1);
}

#[test]
fn a_connection_that_cannot_even_be_attempted_stops_with_an_error() {
    let mut h = H::new();
    h.session.cannot_connect(h.now, 1, "no WebSocket here");
    h.run();
    let error = h.session.status().error.clone().unwrap();
    assert_eq!((error.code, error.fatal, error.message.as_str()), (None, true, "no WebSocket here"));
    assert_eq!(h.session.poll_timeout(), None);
}

#[test]
fn a_target_without_a_collection_name_owns_every_mutation() {
    let mut h = H::unstarted(config());
    h.session.start(
        h.now,
        Target { collection: String::new(), key_field: "id".into(), position: None, client_id: "c1".into() },
    );
    h.run();
    h.connect();
    let t = h.insert(json!({"id": "a"}));
    h.exchange();
    assert_eq!(h.state(&t), TransactionState::Completed);
    assert!(h.server.state.contains_key("a"));
}

// ---- the hand-written wire matches the protocol types' serde forms ----

#[test]
fn server_messages_read_by_hand_are_what_serde_reads() {
    use tandem_core::session::read_server_message;
    let messages = vec![
        ServerMessage::Init {
            data: json!({"a": {"id": "a"}, "n": null}).as_object().unwrap().clone(),
            heads: vec!["h1".into()],
        },
        ServerMessage::Init { data: Map::new(), heads: vec![] },
        ServerMessage::Op { payload: Op::put("k", Value::Null, Some(7)) },
        ServerMessage::Tx {
            id: "t\"1".into(),
            client: "c".into(),
            ops: vec![Op::put("a", json!({"x": [1, 2]}), Some(1)), Op::delete("b", Some(2))],
            heads: vec!["h2".into(), "h3".into()],
        },
        ServerMessage::Changes {
            since: vec!["h1".into()],
            ops: vec![Op::delete("é/ü", None)],
            heads: vec!["h4".into()],
        },
        ServerMessage::Ack { id: "t".into(), heads: vec!["h5".into()], superseded: vec![], standing: vec![] },
        ServerMessage::Ack {
            id: "t".into(),
            heads: vec![],
            superseded: vec!["b".into()],
            standing: vec![Op::put("b", json!("newer"), Some(9)), Op::delete("c", Some(10))],
        },
        ServerMessage::Error { code: 403, message: "no".into(), workspace: None, id: None, key: None },
        ServerMessage::Error {
            code: 500,
            message: "disk".into(),
            workspace: Some("w".into()),
            id: Some("t".into()),
            key: Some("k".into()),
        },
    ];
    for message in messages {
        let text = serde_json::to_string(&message).unwrap();
        assert_eq!(read_server_message(&text).as_ref(), Ok(&message), "{text}");
        assert_eq!(serde_json::from_str::<ServerMessage>(&text).unwrap(), message);
    }
    for bad in ["[]", "{}", r#"{"type":"nope"}"#, r#"{"type":"ack","id":1,"heads":[]}"#, r#"{"type":"init"}"#, "{"] {
        assert!(read_server_message(bad).is_err(), "{bad}");
    }
    let extra = r#"{"type":"ack","id":"t","heads":[],"future":"field"}"#;
    assert!(read_server_message(extra).is_ok(), "unknown fields are ignored, as serde does");
}

#[test]
fn the_tx_written_by_hand_is_what_serde_writes() {
    use tandem_core::protocol::{ClientMessage, TxMessage};
    use tandem_core::session::write_tx;
    for tx in [
        TxMessage { id: "~marker-1".into(), client: "c".into(), ops: vec![] },
        TxMessage {
            id: "id \"quoted\"\n".into(),
            client: "ü".into(),
            ops: vec![
                Op::put("a", json!({"nested": {"x": [1, 2.5, "s"]}}), Some(1_700_000_000_000_001)),
                Op::put("n", Value::Null, None),
                Op::delete("d", Some(3)),
            ],
        },
    ] {
        let by_hand: Value = serde_json::from_str(&write_tx(&tx)).unwrap();
        let by_serde = serde_json::to_value(ClientMessage::Tx(tx.clone())).unwrap();
        assert_eq!(by_hand, by_serde);
        let ClientMessage::Tx(back) = serde_json::from_str(&write_tx(&tx)).unwrap() else { panic!("a tx") };
        assert_eq!(back, tx, "what the server reads");
    }
}

#[test]
fn with_a_namespace_another_collections_mutations_go_under_its_own_id() {
    let mut config = config();
    config.namespace = Some("todos".into());
    let mut h = H::with(config, None);
    h.engine.create_collection(CollectionConfig::new("tags")).unwrap();
    h.connect();
    let t = h
        .engine
        .mutate(h.now, TransactionInput::new().insert(TODOS, json!({"id": "a"})).insert("tags", json!({"id": "x"})))
        .unwrap();
    h.run();
    h.exchange();
    assert_eq!(h.state(&t), TransactionState::Completed, "one atomic tx for both");
    assert_eq!(h.server.committed, vec![t.to_string()]);
    assert!(h.server.state.contains_key("todos/a") && h.server.state.contains_key("tags/x"));
    assert_eq!(h.engine.len(TODOS), 1, "the tags record is not a todo");
}
