//! Every scenario of seed 001, with real sockets against the real router.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn connect_gets_101_and_init_with_current_state_and_heads() {
    let s = TestServer::start().await;
    let mut c = connect(&s.ws_url("workspace-123", ""), &token("read write")).await;
    let init = c.recv().await;
    assert_eq!(init, json!({"type": "init", "data": {}, "heads": []}));

    c.op("foo", json!("bar")).await;
    c.recv_type("op").await;
    let mut late = connect(&s.ws_url("workspace-123", ""), &token("read")).await;
    let init = late.recv().await;
    assert_eq!(init["type"], "init");
    assert_eq!(init["data"], json!({"foo": "bar"}));
    let heads = init["heads"].as_array().unwrap();
    assert_eq!(heads.len(), 1);
    assert_eq!(heads[0].as_str().unwrap().len(), 64, "heads are hex change hashes");
}

#[tokio::test]
async fn token_is_accepted_as_a_query_parameter() {
    let s = TestServer::start().await;
    let url = s.ws_url("w", &format!("token={}", token("read")));
    let mut c = try_connect(&url, None).await.unwrap_or_else(|s| panic!("refused: {s}"));
    assert_eq!(c.recv().await["type"], "init");
}

#[tokio::test]
async fn op_is_persisted_and_broadcast_to_every_client_including_the_sender() {
    let s = TestServer::start().await;
    let mut a = connect(&s.ws_url("workspace-123", ""), &token("write")).await;
    let mut b = connect(&s.ws_url("workspace-123", ""), &token("read")).await;
    let mut other_ws = connect(&s.ws_url("elsewhere", ""), &token("read write")).await;
    a.recv().await;
    b.recv().await;
    other_ws.recv().await;

    a.send(json!({"type": "op", "payload": {"key": "foo", "value": "bar", "timestamp": 1_700_000_000_000_000u64}})).await;
    let expected = json!({"type": "op", "payload": {"key": "foo", "value": "bar", "timestamp": 1_700_000_000_000_000u64}});
    assert_eq!(a.recv().await, expected, "the sender gets the broadcast too");
    assert_eq!(b.recv().await, expected);

    // Persisted: visible over HTTP and to a later client.
    let (status, body) = get_json(&s.http("/v1/workspaces/workspace-123/keys/foo"), &token("read")).await;
    assert_eq!(status, 200);
    assert_eq!(body["value"], "bar");

    // The other workspace saw nothing: its next message is its own write's echo.
    other_ws.op("mine", json!(1)).await;
    assert_eq!(other_ws.recv().await["payload"]["key"], "mine");
}

#[tokio::test]
async fn server_fills_a_missing_timestamp_in_unix_microseconds() {
    let s = TestServer::start().await;
    let mut a = connect(&s.ws_url("w", ""), &token("write")).await;
    a.recv().await;
    let before = now_us();
    a.op("k", json!({"nested": [1, 2, null]})).await;
    let msg = a.recv().await;
    let after = now_us();
    let ts = msg["payload"]["timestamp"].as_u64().expect("timestamp filled");
    assert!(ts >= before - 1000 && ts <= after + 1000, "{before} <= {ts} <= {after}");
    assert_eq!(msg["payload"]["value"], json!({"nested": [1, 2, null]}));
}

#[tokio::test]
async fn read_only_write_gets_error_403_is_not_persisted_and_the_socket_stays_open() {
    let s = TestServer::start().await;
    let mut ro = connect(&s.ws_url("w", ""), &token("read")).await;
    let mut rw = connect(&s.ws_url("w", ""), &token("read write")).await;
    ro.recv().await;
    rw.recv().await;

    ro.op("foo", json!("nope")).await;
    let err = ro.recv().await;
    assert_eq!(err["type"], "error");
    assert_eq!(err["code"], 403);
    assert_eq!(err["key"], "foo");

    // Still open: it keeps receiving, and the next thing it sees is the writer's op, not its own.
    rw.op("bar", json!(1)).await;
    assert_eq!(ro.recv().await["payload"]["key"], "bar");
    assert_eq!(rw.recv().await["payload"]["key"], "bar");
    let (status, _) = get_json(&s.http("/v1/workspaces/w/keys/foo"), &token("read")).await;
    assert_eq!(status, 404, "the read-only write was not persisted");
}

#[tokio::test]
async fn malformed_messages_get_400_naming_the_problem_and_the_socket_stays_open() {
    let s = TestServer::start().await;
    let mut c = connect(&s.ws_url("w", ""), &token("write")).await;
    c.recv().await;

    c.send_text("{not json").await;
    let e = c.recv().await;
    assert_eq!((e["type"].as_str(), e["code"].as_u64()), (Some("error"), Some(400)));
    assert!(e["message"].as_str().unwrap().contains("JSON"), "{e}");

    c.send(json!({"type": "op", "payload": {"value": 1}})).await;
    let e = c.recv().await;
    assert_eq!(e["code"], 400);
    assert!(e["message"].as_str().unwrap().contains("key"), "{e}");

    c.send(json!({"type": "op", "payload": {"key": "k"}})).await;
    let e = c.recv().await;
    assert_eq!(e["code"], 400);
    assert!(e["message"].as_str().unwrap().contains("value"), "{e}");
    assert_eq!(e["key"], "k");

    c.send(json!({"type": "subscribe"})).await;
    let e = c.recv().await;
    assert_eq!(e["code"], 400);
    assert!(e["message"].as_str().unwrap().contains("subscribe"), "{e}");

    c.op("ok", json!(true)).await;
    assert_eq!(c.recv().await["type"], "op", "the socket still works");
}

#[tokio::test]
async fn persistence_failure_gets_500_and_nothing_is_broadcast_or_stored() {
    let s = TestServer::start().await;
    let mut a = connect(&s.ws_url("w", ""), &token("write")).await;
    let mut b = connect(&s.ws_url("w", ""), &token("read")).await;
    a.recv().await;
    b.recv().await;
    a.op("first", json!(1)).await;
    a.recv().await;
    b.recv().await;

    s.state.store.inject_commit_failures(1);
    a.op("lost", json!(2)).await;
    let e = a.recv().await;
    assert_eq!((e["type"].as_str(), e["code"].as_u64()), (Some("error"), Some(500)), "{e}");

    a.op("after", json!(3)).await;
    assert_eq!(a.recv().await["payload"]["key"], "after");
    assert_eq!(b.recv().await["payload"]["key"], "after", "the failed op was never broadcast");
    let (_, body) = get_json(&s.http("/v1/workspaces/w"), &token("read")).await;
    assert_eq!(body["data"], json!({"first": 1, "after": 3}));
}

#[tokio::test]
async fn deleted_keys_reach_seed_001_clients_as_null() {
    let s = TestServer::start().await;
    let mut c = connect(&s.ws_url("w", ""), &token("write")).await;
    c.recv().await;
    c.op("k", json!(1)).await;
    c.recv().await;
    c.tx("c1", "t1", json!([{"key": "k", "delete": true}])).await;
    assert_eq!(c.recv().await["type"], "ack", "the ack comes before the echo");
    let echo = c.recv().await;
    assert_eq!(echo["type"], "op");
    assert_eq!(echo["payload"]["key"], "k");
    assert_eq!(echo["payload"]["value"], serde_json::Value::Null);
    // A seed-001 client cannot know deletes: it sees the key set to null.
    let mut fresh = connect(&s.ws_url("w", ""), &token("read")).await;
    assert_eq!(fresh.recv().await["data"], json!({}));
}
