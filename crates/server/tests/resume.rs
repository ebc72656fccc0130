//! Resume from heads: a reconnecting v1 client gets only what it lacks.

mod common;

use common::*;
use serde_json::{json, Value};

fn heads_param(heads: &Value) -> String {
    heads.as_array().unwrap().iter().map(|h| h.as_str().unwrap()).collect::<Vec<_>>().join(",")
}

#[tokio::test]
async fn reconnect_with_known_heads_gets_only_the_missing_keys() {
    let s = TestServer::start().await;
    let mut w = connect(&s.ws_url("w", "protocol=1"), &token("write")).await;
    w.recv().await;
    w.tx("c", "1", json!([{"key": "a", "value": 1}, {"key": "b", "value": 1}])).await;
    let seen = w.recv_type("ack").await["heads"].clone();
    w.tx("c", "2", json!([{"key": "b", "value": 2}, {"key": "c", "value": 3}])).await;
    w.tx("c", "3", json!([{"key": "a", "delete": true}])).await;
    let last = loop {
        let m = w.recv_type("ack").await;
        if m["id"] == "3" {
            break m["heads"].clone();
        }
    };

    let mut r = connect(&s.ws_url("w", &format!("protocol=1&heads={}", heads_param(&seen))), &token("read")).await;
    let msg = r.recv().await;
    assert_eq!(msg["type"], "changes", "{msg}");
    assert_eq!(msg["since"], seen);
    assert_eq!(msg["heads"], last);
    let keys: Vec<&str> = msg["ops"].as_array().unwrap().iter().map(|o| o["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["a", "b", "c"]);
    assert_eq!(msg["ops"][0]["delete"], true);
    assert_eq!(msg["ops"][1]["value"], 2);
}

#[tokio::test]
async fn up_to_date_heads_get_an_empty_changes_message() {
    let s = TestServer::start().await;
    let mut w = connect(&s.ws_url("w", "protocol=1"), &token("write")).await;
    w.recv().await;
    w.tx("c", "1", json!([{"key": "a", "value": 1}])).await;
    let heads = w.recv_type("ack").await["heads"].clone();
    let mut r = connect(&s.ws_url("w", &format!("protocol=1&heads={}", heads_param(&heads))), &token("read")).await;
    let msg = r.recv().await;
    assert_eq!(msg, json!({"type": "changes", "since": heads, "ops": [], "heads": heads}));
}

#[tokio::test]
async fn unknown_or_garbage_heads_fall_back_to_a_full_init() {
    let s = TestServer::start().await;
    let mut w = connect(&s.ws_url("w", "protocol=1"), &token("write")).await;
    w.recv().await;
    w.tx("c", "1", json!([{"key": "a", "value": 1}])).await;
    w.recv_type("ack").await;
    let unknown = "ab".repeat(32);
    for heads in [unknown.as_str(), "not-hex"] {
        let mut r = connect(&s.ws_url("w", &format!("protocol=1&heads={heads}")), &token("read")).await;
        let msg = r.recv().await;
        assert_eq!(msg["type"], "init");
        assert_eq!(msg["data"], json!({"a": 1}));
    }
}

#[tokio::test]
async fn seed_001_clients_always_get_init_even_with_heads() {
    let s = TestServer::start().await;
    let mut w = connect(&s.ws_url("w", ""), &token("write")).await;
    w.recv().await;
    w.op("a", json!(1)).await;
    w.recv().await;
    let (_, snap) = get_json(&s.http("/v1/workspaces/w"), &token("read")).await;
    let mut r = connect(&s.ws_url("w", &format!("heads={}", heads_param(&snap["heads"]))), &token("read")).await;
    assert_eq!(r.recv().await["type"], "init", "`changes` is a v1 message");
}
