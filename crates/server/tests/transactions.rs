//! Tandem v1 transactions: atomic, acked after commit, idempotent per (client, id).

mod common;

use common::*;
use serde_json::{json, Value};

async fn history_len(s: &TestServer, ws: &str) -> usize {
    let (_, h) = get_json(&s.http(&format!("/v1/history/{ws}")), &token("read")).await;
    h["changes"].as_array().unwrap().len()
}

#[tokio::test]
async fn tx_is_one_change_acked_with_heads_and_echoed_once_to_v1_clients() {
    let s = TestServer::start().await;
    let mut writer = connect(&s.ws_url("w", "protocol=1"), &token("write")).await;
    let mut v1 = connect(&s.ws_url("w", "protocol=1"), &token("read")).await;
    let mut seed = connect(&s.ws_url("w", ""), &token("read")).await;
    writer.recv().await;
    v1.recv().await;
    seed.recv().await;

    writer.tx("client-a", "tx-1", json!([{"key": "a", "value": 1}, {"key": "b", "value": {"x": true}, "timestamp": 5}])).await;
    let ack = writer.recv().await;
    assert_eq!(ack["type"], "ack");
    assert_eq!(ack["id"], "tx-1");
    assert!(ack.get("superseded").is_none());
    let echo = writer.recv().await;
    assert_eq!(echo["type"], "tx", "the sender sees its own transaction, recognisable by id");
    assert_eq!((echo["id"].as_str(), echo["client"].as_str()), (Some("tx-1"), Some("client-a")));
    assert_eq!(echo["heads"], ack["heads"]);
    assert_eq!(v1.recv().await, echo, "other v1 clients get the same single message");
    assert_eq!(echo["ops"].as_array().unwrap().len(), 2);
    assert_eq!(echo["ops"][1]["timestamp"], 5);

    // Seed-001 clients get one op message per op, in order.
    assert_eq!(seed.recv().await["payload"]["key"], "a");
    assert_eq!(seed.recv().await["payload"]["key"], "b");
    assert_eq!(history_len(&s, "w").await, 1, "one Automerge change for the whole transaction");
}

#[tokio::test]
async fn tx_retried_after_a_lost_ack_applies_once_and_gets_the_original_ack() {
    let s = TestServer::start().await;
    let mut observer = connect(&s.ws_url("w", "protocol=1"), &token("read")).await;
    observer.recv().await;

    // Send, then drop the socket without reading: the ack is lost.
    let mut first = connect(&s.ws_url("w", "protocol=1"), &token("write")).await;
    first.recv().await;
    first.tx("client-a", "tx-9", json!([{"key": "counter", "value": 1}])).await;
    let echo = observer.recv().await;
    assert_eq!(echo["id"], "tx-9");
    drop(first);

    let mut retry = connect(&s.ws_url("w", "protocol=1"), &token("write")).await;
    retry.recv().await;
    retry.tx("client-a", "tx-9", json!([{"key": "counter", "value": 1}])).await;
    let ack = retry.recv().await;
    assert_eq!(ack["type"], "ack");
    assert_eq!(ack["heads"], echo["heads"], "the original ack");

    // Nothing was applied twice: the observer's next message is the marker, not a second tx-9.
    retry.tx("client-a", "marker", json!([{"key": "m", "value": 0}])).await;
    assert_eq!(observer.recv().await["id"], "marker");
    assert_eq!(history_len(&s, "w").await, 2);

    // Retried twice in a row on one socket, before the first retry is even answered.
    retry.tx("client-b", "dup", json!([{"key": "d", "value": 1}])).await;
    retry.tx("client-b", "dup", json!([{"key": "d", "value": 1}])).await;
    let mut acks = Vec::new();
    while acks.len() < 2 {
        let m = retry.recv().await;
        if m["type"] == "ack" && m["id"] == "dup" {
            acks.push(m["heads"].clone());
        }
    }
    assert_eq!(acks[0], acks[1]);
    assert_eq!(history_len(&s, "w").await, 3);
}

#[tokio::test]
async fn dedup_survives_a_restart() {
    let s = TestServer::start().await;
    let mut c = connect(&s.ws_url("w", "protocol=1"), &token("write")).await;
    c.recv().await;
    c.tx("c", "t", json!([{"key": "k", "value": 1}])).await;
    let ack = c.recv_type("ack").await;
    drop(c);
    let dir = s.stop().await;

    let s = TestServer::start_in(dir, |_| {}).await;
    let mut c = connect(&s.ws_url("w", "protocol=1"), &token("write")).await;
    c.recv().await;
    c.tx("c", "t", json!([{"key": "k", "value": 1}])).await;
    assert_eq!(c.recv().await, ack);
    assert_eq!(history_len(&s, "w").await, 1);
}

#[tokio::test]
async fn an_invalid_op_fails_the_whole_tx_with_its_id_and_applies_nothing() {
    let s = TestServer::start().await;
    let mut c = connect(&s.ws_url("w", "protocol=1"), &token("write")).await;
    c.recv().await;
    c.tx("c", "bad-tx", json!([{"key": "ok", "value": 1}, {"key": "broken"}])).await;
    let e = c.recv().await;
    assert_eq!((e["type"].as_str(), e["code"].as_u64()), (Some("error"), Some(400)));
    assert_eq!(e["id"], "bad-tx");
    assert_eq!(e["key"], "broken");
    let (status, _) = get_json(&s.http("/v1/workspaces/w/keys/ok"), &token("read")).await;
    assert_eq!(status, 404, "all or nothing");

    c.send(json!({"type": "tx", "id": "no-ops-field", "client": "c"})).await;
    let e = c.recv().await;
    assert_eq!((e["code"].as_u64(), e["id"].as_str()), (Some(400), Some("no-ops-field")));

    let far_future = now_us() + 10 * 24 * 3600 * 1_000_000;
    c.tx("c", "clock-bomb", json!([{"key": "k", "value": 1, "timestamp": far_future}])).await;
    let e = c.recv().await;
    assert_eq!((e["code"].as_u64(), e["id"].as_str()), (Some(400), Some("clock-bomb")));
}

#[tokio::test]
async fn a_10k_op_batch_crosses_as_one_message_each_way() {
    let s = TestServer::start().await;
    let mut w = connect(&s.ws_url("w", "protocol=1"), &token("write")).await;
    let mut r = connect(&s.ws_url("w", "protocol=1"), &token("read")).await;
    w.recv().await;
    r.recv().await;
    let ops: Vec<Value> = (0..10_000).map(|i| json!({"key": format!("item-{i}"), "value": {"n": i}})).collect();
    w.tx("c", "big", Value::Array(ops)).await;
    assert_eq!(w.recv().await["type"], "ack");
    let echo = r.recv().await;
    assert_eq!(echo["type"], "tx");
    assert_eq!(echo["ops"].as_array().unwrap().len(), 10_000);
    let (_, body) = get_json(&s.http("/v1/workspaces/w/keys/item-9999"), &token("read")).await;
    assert_eq!(body["value"], json!({"n": 9999}));
}
