//! The protocol client of `tandem_core::session`, driven over real WebSockets against the real
//! server and feeding a real engine: what a native Tandem client does.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tandem_core::session::{Action, SessionConfig, SyncState, Target, TokenSource};
use tandem_core::{
    CollectionConfig, Effect, Engine, EngineConfig, ErrorInfo, RetryPolicy, Session, TransactionInput, TransactionState,
};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const TODOS: &str = "todos";

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A native client: a session and an engine, the session's sockets opened for real.
struct Native {
    session: Session,
    engine: Engine,
    ws: Option<(u64, Ws)>,
    /// Every text received, by connection.
    received: Vec<(u64, Value)>,
    /// Every URL connected to (token redacted).
    urls: Vec<String>,
    /// Every tx id sent (markers excluded), by connection.
    sent: Vec<(u64, String)>,
    attempts: HashMap<String, u32>,
    /// Close the socket right after sending, without reading anything (a lost ack).
    drop_after_send: bool,
}

impl Native {
    async fn start(server: &TestServer, workspace: &str, client: &str, token: &str) -> Native {
        let mut config =
            SessionConfig::new(format!("http://{}", server.addr), workspace, TokenSource::Static(token.into()));
        // Quick reconnections: the test waits for them.
        config.backoff =
            RetryPolicy { max_retries: u32::MAX, initial_delay_ms: 20, factor: 2.0, max_delay_ms: 200, jitter: 0.5 };
        config.seed = 1;
        let mut engine = Engine::new(EngineConfig { client_id: client.into(), ..Default::default() });
        engine.create_collection(CollectionConfig::new(TODOS)).unwrap();
        let mut native = Native {
            session: Session::new(config),
            engine,
            ws: None,
            received: Vec::new(),
            urls: Vec::new(),
            sent: Vec::new(),
            attempts: HashMap::new(),
            drop_after_send: false,
        };
        let target =
            Target { collection: TODOS.into(), key_field: "id".into(), position: None, client_id: client.into() };
        native.session.start(now_ms(), target);
        native.run().await;
        native
    }

    /// Runs session actions and engine effects until both are quiet.
    async fn run(&mut self) {
        loop {
            let mut busy = false;
            while let Some(action) = self.session.poll_action() {
                busy = true;
                self.act(action).await;
            }
            while let Some(effect) = self.engine.poll_effect() {
                busy = true;
                match effect {
                    Effect::Persist { transaction, attempt } => {
                        self.attempts.insert(transaction.to_string(), attempt);
                        let tx = self.engine.transaction(&transaction).unwrap().clone();
                        self.session.persist(now_ms(), &tx, attempt);
                    }
                    Effect::AwaitSync { transaction } => self.session.await_sync(now_ms(), &transaction),
                    _ => {}
                }
            }
            if !busy {
                break;
            }
        }
    }

    async fn act(&mut self, action: Action) {
        let now = now_ms();
        match action {
            Action::FetchToken { .. } => unreachable!("static tokens"),
            Action::Connect { conn, url } => {
                self.urls.push(url.redacted());
                let request = url.as_str().into_client_request().unwrap();
                match tokio_tungstenite::connect_async(request).await {
                    Ok((ws, _)) => {
                        self.ws = Some((conn, ws));
                        self.session.opened(now, conn);
                    }
                    Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                        self.session.connect_failed(now, conn, Some(res.status().as_u16()), "refused")
                    }
                    Err(e) => self.session.connect_failed(now, conn, None, &e.to_string()),
                }
            }
            Action::Send { conn, text } => {
                let v: Value = serde_json::from_str(&text).unwrap();
                let id = v["id"].as_str().unwrap_or_default().to_string();
                if !id.starts_with("~marker") {
                    self.sent.push((conn, id));
                }
                if let Some((c, ws)) = self.ws.as_mut().filter(|(c, _)| *c == conn) {
                    let _ = ws.send(Message::text(text)).await;
                    if self.drop_after_send {
                        let c = *c;
                        self.drop_socket(c).await;
                    }
                }
            }
            Action::Close { conn, .. } => {
                if let Some((_, mut ws)) = self.ws.take_if(|(c, _)| *c == conn) {
                    let _ = ws.close(None).await;
                }
            }
            Action::Update { batch, .. } => self.engine.sync_received(now, batch).expect("valid batch"),
            Action::PersistDone { id, result } => {
                let attempt = self.attempts[&id];
                match result {
                    Ok(()) => self.engine.persist_succeeded(now, &id, attempt).unwrap(),
                    Err(e) => {
                        let info = if e.retriable {
                            ErrorInfo::thrown("ServerError", e.message)
                        } else {
                            ErrorInfo::non_retriable(e.message)
                        };
                        self.engine.persist_failed(now, &id, attempt, info).unwrap()
                    }
                }
            }
            Action::Synced { id } => self.engine.await_sync_done(now, &id).unwrap(),
            Action::Status(_) | Action::Problem(_) => {}
        }
    }

    /// The network fails under the socket: no close handshake, whatever was in flight is lost.
    async fn drop_socket(&mut self, conn: u64) {
        if let Some((_, ws)) = self.ws.take_if(|(c, _)| *c == conn) {
            drop(ws);
            self.session.closed(now_ms(), conn, 1006, "");
        }
    }

    /// Waits (on real time) for one message or timer, and feeds it.
    async fn step(&mut self, limit: Duration) {
        let now = now_ms();
        let due = [self.session.poll_timeout(), self.engine.poll_timeout()].into_iter().flatten().min();
        let wait = due.map_or(limit, |d| Duration::from_millis(d.saturating_sub(now)).min(limit));
        let message = match self.ws.as_mut() {
            Some((conn, ws)) => tokio::time::timeout(wait, ws.next()).await.ok().map(|m| (*conn, m)),
            None => {
                tokio::time::sleep(wait).await;
                None
            }
        };
        let now = now_ms();
        match message {
            Some((conn, Some(Ok(Message::Text(text))))) => {
                self.received.push((conn, serde_json::from_str(text.as_str()).unwrap()));
                self.session.received(now, conn, text.as_str());
            }
            Some((conn, Some(Ok(Message::Close(frame))))) => {
                self.ws = None;
                let code = frame.map_or(1005, |f| u16::from(f.code));
                self.session.closed(now, conn, code, "");
            }
            Some((_, Some(Ok(_)))) => {}
            Some((conn, Some(Err(_)) | None)) => {
                self.ws = None;
                self.session.closed(now, conn, 1006, "");
            }
            None => {}
        }
        self.session.handle_timeout(now);
        self.engine.handle_timeout(now);
        self.run().await;
    }

    async fn until(&mut self, what: &str, mut done: impl FnMut(&Native) -> bool) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !done(self) {
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
            self.step(Duration::from_millis(50)).await;
        }
    }

    async fn settle(&mut self, id: &str) -> TransactionState {
        self.until("the transaction settled", |n| n.state(id).is_terminal()).await;
        self.state(id)
    }

    async fn live(&mut self) {
        self.until("started", |n| n.session.status().state == SyncState::Started).await;
    }

    async fn mutate(&mut self, input: TransactionInput) -> String {
        let id = self.engine.mutate(now_ms(), input.awaiting_sync()).unwrap().to_string();
        self.run().await;
        id
    }

    fn state(&self, id: &str) -> TransactionState {
        self.engine.transaction(id).unwrap().state
    }

    fn visible(&self) -> Value {
        let records: serde_json::Map<String, Value> =
            self.engine.records(TODOS).map(|(k, r)| (k.to_string(), r.to_value())).collect();
        Value::Object(records)
    }

    fn conn(&self) -> u64 {
        self.ws.as_ref().map(|(c, _)| *c).expect("connected")
    }
}

/// Another client of the workspace, writing with plain protocol messages.
async fn write_elsewhere(server: &TestServer, workspace: &str, ops: Value) {
    let mut w = connect(&server.ws_url(workspace, "protocol=1"), &token("write")).await;
    w.recv().await;
    let id = format!("other-{}", now_us());
    w.tx("other", &id, ops).await;
    assert_eq!(w.recv_type("ack").await["id"], id.as_str());
}

async fn server_data(server: &TestServer, workspace: &str) -> Value {
    let (status, body) = get_json(&server.http(&format!("/v1/workspaces/{workspace}")), &token("read")).await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

/// How many changes of the workspace's history came from transaction `id`.
async fn commits_of(server: &TestServer, workspace: &str, id: &str) -> usize {
    let (_, history) = get_json(&server.http(&format!("/v1/history/{workspace}")), &token("read")).await;
    history["changes"].as_array().unwrap().iter().filter(|c| c["tx"] == id).count()
}

#[tokio::test]
async fn two_sessions_writing_the_same_workspace_converge_on_the_servers_data() {
    let s = TestServer::start().await;
    let mut a = Native::start(&s, "conv", "client-a", &token("write")).await;
    let mut b = Native::start(&s, "conv", "client-b", &token("write")).await;
    a.live().await;
    b.live().await;

    let t1 = a.mutate(TransactionInput::new().insert(TODOS, json!({"id": "1", "title": "milk"}))).await;
    let t2 = b.mutate(TransactionInput::new().insert(TODOS, json!({"id": "2", "title": "eggs"}))).await;
    assert_eq!(a.settle(&t1).await, TransactionState::Completed);
    assert_eq!(b.settle(&t2).await, TransactionState::Completed);
    b.until("b sees a's write", |b| b.visible().get("1").is_some()).await;
    let t3 = b.mutate(TransactionInput::new().update(TODOS, "1", json!({"done": true})).delete(TODOS, "2")).await;
    assert_eq!(b.settle(&t3).await, TransactionState::Completed);
    a.until("a sees b's writes", |a| a.visible().get("2").is_none() && a.visible()["1"]["done"] == true).await;

    let expected = json!({"1": {"id": "1", "title": "milk", "done": true}});
    assert_eq!(a.visible(), expected);
    assert_eq!(b.visible(), expected);
    assert_eq!(server_data(&s, "conv").await, expected, "the server's value is the whole record");
    assert_eq!(a.session.heads(), b.session.heads(), "both at the same heads");
    for (client, t) in [(&a, &t1), (&b, &t3)] {
        let echo = client.received.iter().position(|(_, m)| m["type"] == "tx" && m["id"] == t.as_str());
        let ack = client.received.iter().position(|(_, m)| m["type"] == "ack" && m["id"] == t.as_str());
        assert!(ack.unwrap() < echo.unwrap(), "the ack comes before the echo that completed it");
    }
}

#[tokio::test]
async fn a_dropped_connection_resumes_from_its_heads_and_receives_only_what_it_missed() {
    let s = TestServer::start().await;
    write_elsewhere(&s, "resume", json!([{"key": "old", "value": {"id": "old"}}])).await;
    let mut a = Native::start(&s, "resume", "client-a", &token("write")).await;
    a.live().await;
    assert_eq!(a.received[0].1["type"], "init");
    let heads = a.session.heads().to_vec();
    let conn = a.conn();
    a.drop_socket(conn).await;

    write_elsewhere(&s, "resume", json!([{"key": "new", "value": {"id": "new"}}, {"key": "old", "delete": true}]))
        .await;
    a.until("reconnected", |a| a.ws.as_ref().is_some_and(|(c, _)| *c != conn)).await;
    a.live().await;
    assert!(a.urls[1].contains(&format!("heads={}", heads.join(","))), "{}", a.urls[1]);
    let first = &a.received.iter().find(|(c, _)| *c != conn).unwrap().1;
    assert_eq!(first["type"], "changes", "{first}");
    assert_eq!(
        first["ops"].as_array().unwrap().iter().map(|o| o["key"].as_str().unwrap()).collect::<Vec<_>>(),
        ["new", "old"],
        "only the two keys changed since"
    );
    assert_eq!(a.visible(), json!({"new": {"id": "new"}}));
    assert_eq!(a.visible(), server_data(&s, "resume").await);
}

#[tokio::test]
async fn a_transaction_resent_after_its_ack_was_lost_applies_once_and_completes() {
    let s = TestServer::start().await;
    let mut a = Native::start(&s, "once", "client-a", &token("write")).await;
    a.live().await;
    a.drop_after_send = true; // the tx reaches the server; its ack and echo never come back
    let t = a.mutate(TransactionInput::new().insert(TODOS, json!({"id": "a", "n": 1}))).await;
    a.drop_after_send = false;
    assert_eq!(a.ws.as_ref().map(|(c, _)| *c), None);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while commits_of(&s, "once", &t).await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "never committed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Someone else writes the same record after that commit: the newer value must win here too.
    write_elsewhere(&s, "once", json!([{"key": "a", "value": {"id": "a", "n": 2}}])).await;

    assert_eq!(a.settle(&t).await, TransactionState::Completed);
    let resent: Vec<u64> = a.sent.iter().filter(|(_, id)| *id == t).map(|(c, _)| *c).collect();
    assert_eq!(resent.len(), 2, "sent, then resent on the new connection: {resent:?}");
    assert_eq!(commits_of(&s, "once", &t).await, 1, "applied once");
    assert_eq!(a.visible(), json!({"a": {"id": "a", "n": 2}}), "no stale optimistic value");
    assert_eq!(a.visible(), server_data(&s, "once").await);
    assert_eq!(a.session.pending(), 0);
}

#[tokio::test]
async fn a_read_only_token_gets_a_non_retriable_failure_and_the_write_is_rolled_back() {
    let s = TestServer::start().await;
    let mut r = Native::start(&s, "ro", "client-r", &token("read")).await;
    r.live().await;
    let t = r.mutate(TransactionInput::new().insert(TODOS, json!({"id": "a"}))).await;
    assert_eq!(r.visible(), json!({"a": {"id": "a"}}), "optimistic at first");
    assert_eq!(r.settle(&t).await, TransactionState::Failed);
    let tx = r.engine.transaction(&t).unwrap();
    assert_eq!(tx.attempts.len(), 1, "not retried");
    assert!(!tx.error.as_ref().unwrap().error.retriable);
    assert_eq!(r.visible(), json!({}), "rolled back");
    assert_eq!(r.session.status().state, SyncState::Started, "the session goes on");
}

#[tokio::test]
async fn a_refused_token_stops_the_session_with_an_error_instead_of_reconnecting() {
    let s = TestServer::start().await;
    let forged =
        tandem_server::auth::sign_token(b"not-the-secret", &json!({"exp": now_secs() + 3600, "scope": "write"}));
    let mut n = Native::start(&s, "bad", "client-n", &forged).await;
    n.until("an error", |n| n.session.status().state == SyncState::Error).await;
    let error = n.session.status().error.clone().unwrap();
    assert_eq!((error.code, error.fatal), (Some(401), true));
    tokio::time::sleep(Duration::from_millis(300)).await;
    n.step(Duration::from_millis(10)).await;
    assert_eq!(n.urls.len(), 1, "no reconnection loop");
}

#[tokio::test]
async fn a_write_made_while_paused_is_sent_on_resume_and_a_newer_value_that_superseded_it_shows() {
    let s = TestServer::start().await;
    let mut a = Native::start(&s, "sup", "client-a", &token("write")).await;
    a.live().await;
    // A write far in the future (within the server's clock-skew limit) wins over ours.
    let future = now_us() + 600_000_000;
    a.session.pause(now_ms());
    a.run().await;
    assert_eq!(a.session.status().state, SyncState::Paused);
    let t = a.mutate(TransactionInput::new().insert(TODOS, json!({"id": "k", "v": "mine"}))).await;
    a.step(Duration::from_millis(50)).await;
    assert_eq!(a.state(&t), TransactionState::Persisting, "waits while paused");
    let mut w = connect(&s.ws_url("sup", "protocol=1"), &token("write")).await;
    w.recv().await;
    w.send(json!({"type": "op", "payload": {"key": "k", "value": {"id": "k", "v": "theirs"}, "timestamp": future}}))
        .await;
    w.recv_type("tx").await; // committed (a v1 client gets every change as `tx`)
    a.session.resume(now_ms());
    a.run().await;
    assert_eq!(a.settle(&t).await, TransactionState::Completed);
    a.until("the standing value shows", |a| a.visible()["k"]["v"] == "theirs").await;
    assert_eq!(a.visible(), server_data(&s, "sup").await);
}

/// The contract the session's markers rely on: an empty transaction changes nothing and is
/// answered in order, after the answers to what was sent before it.
#[tokio::test]
async fn an_empty_transaction_is_answered_in_order_and_changes_nothing() {
    let s = TestServer::start().await;
    let mut w = connect(&s.ws_url("marker", "protocol=1"), &token("write")).await;
    let init = w.recv().await;
    w.tx("c", "t1", json!([{"key": "a", "value": 1}])).await;
    w.tx("c", "t1", json!([{"key": "a", "value": 1}])).await; // a duplicate: answered by its ack only
    w.tx("c", "m1", json!([])).await;
    let mut seen = Vec::new();
    loop {
        let m = w.recv().await;
        seen.push(format!("{}:{}", m["type"].as_str().unwrap(), m["id"].as_str().unwrap()));
        if m["id"] == "m1" {
            assert_eq!(m["type"], "ack");
            break;
        }
    }
    assert_eq!(seen, ["ack:t1", "tx:t1", "ack:t1", "ack:m1"]);
    let mut r = connect(&s.ws_url("marker", "protocol=1"), &token("read")).await;
    let now = r.recv().await;
    assert_eq!(now["data"], json!({"a": 1}), "the marker changed nothing (was {init})");
    r.tx("c", "m2", json!([])).await;
    let refused = r.recv().await;
    assert_eq!(
        (refused["type"].as_str(), refused["code"].as_u64(), refused["id"].as_str()),
        (Some("error"), Some(403), Some("m2"))
    );
}
