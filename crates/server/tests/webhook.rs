//! `doc.updated` webhooks reach a local receiver, signed, retried, and once per change.

mod common;

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::*;
use serde_json::{json, Value};
use tokio::sync::mpsc;

const HOOK_SECRET: &str = "hook-secret";

#[derive(Clone)]
struct Receiver {
    events: mpsc::UnboundedSender<(Value, bool)>,
    /// Status codes to answer with before answering 200.
    failures: Arc<Mutex<Vec<u16>>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if let Some(code) = r.failures.lock().unwrap().pop() {
        return StatusCode::from_u16(code).unwrap();
    }
    let sig = headers.get("x-tandem-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let valid = sig == tandem_server::webhook::signature(HOOK_SECRET.as_bytes(), &body);
    let _ = r.events.send((serde_json::from_slice(&body).unwrap(), valid));
    StatusCode::NO_CONTENT
}

async fn start_receiver(failures: Vec<u16>) -> (String, mpsc::UnboundedReceiver<(Value, bool)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(Receiver { events: tx, failures: Arc::new(Mutex::new(failures)) });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx)
}

fn with_webhook(url: String) -> impl FnOnce(&mut tandem_server::Config) {
    move |c| {
        c.webhook = Some(tandem_server::config::WebhookConfig {
            url,
            secret: HOOK_SECRET.as_bytes().to_vec(),
            max_attempts: 5,
            initial_backoff: std::time::Duration::from_millis(20),
            max_backoff: std::time::Duration::from_millis(100),
        })
    }
}

async fn next_event(rx: &mut mpsc::UnboundedReceiver<(Value, bool)>) -> (Value, bool) {
    tokio::time::timeout(PATIENCE, rx.recv()).await.expect("webhook not delivered in time").unwrap()
}

#[tokio::test]
async fn doc_updated_is_delivered_signed_after_each_committed_change() {
    let (url, mut rx) = start_receiver(vec![]).await;
    let s = TestServer::start_with(with_webhook(url)).await;
    let mut c = connect(&s.ws_url("workspace-123", ""), &token("write")).await;
    c.recv().await;
    c.op("foo", json!("bar")).await;
    c.recv().await;
    let (event, valid) = next_event(&mut rx).await;
    assert!(valid, "HMAC-SHA256 signature of the body");
    assert_eq!(event["event"], "doc.updated");
    assert_eq!(event["workspace"], "workspace-123");
    assert_eq!(event["keys"], json!(["foo"]));
    let (_, snap) = get_json(&s.http("/v1/workspaces/workspace-123"), &token("read")).await;
    assert_eq!(event["heads"], snap["heads"]);
    assert!(event["time"].as_u64().unwrap() > 1_600_000_000_000);
    assert_eq!(event["id"], snap["heads"][0], "event id = change hash");
}

#[tokio::test]
async fn a_failing_receiver_gets_retries_until_it_accepts() {
    let (url, mut rx) = start_receiver(vec![503, 500]).await;
    let s = TestServer::start_with(with_webhook(url)).await;
    let mut c = connect(&s.ws_url("w", ""), &token("write")).await;
    c.recv().await;
    c.op("k", json!(1)).await;
    // The socket is not held up by the failing webhook.
    assert_eq!(c.recv().await["type"], "op");
    let (event, valid) = next_event(&mut rx).await;
    assert!(valid);
    assert_eq!(event["keys"], json!(["k"]));
}

#[tokio::test]
async fn a_retried_transaction_makes_one_delivery() {
    let (url, mut rx) = start_receiver(vec![]).await;
    let s = TestServer::start_with(with_webhook(url)).await;
    let mut c = connect(&s.ws_url("w", "protocol=1"), &token("write")).await;
    c.recv().await;
    c.tx("c", "t1", json!([{"key": "a", "value": 1}])).await;
    c.recv_type("ack").await;
    c.tx("c", "t1", json!([{"key": "a", "value": 1}])).await;
    c.recv_type("ack").await;
    c.tx("c", "t2", json!([{"key": "b", "value": 1}])).await;
    c.recv_type("ack").await;
    let mut txs = vec![next_event(&mut rx).await.0["tx"].clone(), next_event(&mut rx).await.0["tx"].clone()];
    txs.sort_by_key(|t| t.to_string());
    assert_eq!(txs, [json!("t1"), json!("t2")]);
    // Once the outbox is empty every delivery has reached the receiver: none may be left over.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !s.state.store.webhook_outbox(None, 10).unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "outbox never drained");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(rx.try_recv().is_err(), "the retry of t1 made a delivery of its own");
}
