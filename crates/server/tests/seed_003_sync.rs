//! Seed 003's four integration tests, with two real clients against one real server.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::{json, Value};

/// A client's view of the workspace, built only from what the server sent it.
#[derive(Default, Debug, PartialEq)]
struct View(BTreeMap<String, Value>);

impl View {
    fn apply(&mut self, msg: &Value) {
        match msg["type"].as_str().unwrap() {
            "init" => self.0 = msg["data"].as_object().unwrap().clone().into_iter().collect(),
            "tx" | "changes" => {
                for op in msg["ops"].as_array().unwrap() {
                    let key = op["key"].as_str().unwrap().to_owned();
                    if op["delete"] == true {
                        self.0.remove(&key);
                    } else {
                        self.0.insert(key, op["value"].clone());
                    }
                }
            }
            _ => {}
        }
    }
}

async fn server_state(s: &TestServer, ws: &str) -> BTreeMap<String, Value> {
    let (_, body) = get_json(&s.http(&format!("/v1/workspaces/{ws}")), &token("read")).await;
    body["data"].as_object().unwrap().clone().into_iter().collect()
}

/// Reads until the ack for `id`, applying everything else to `view`.
async fn until_ack(c: &mut Client, view: &mut View, id: &str) -> Value {
    loop {
        let m = c.recv().await;
        if m["type"] == "ack" && m["id"] == id {
            return m;
        }
        assert_ne!(m["type"], "error", "{m}");
        view.apply(&m);
    }
}

/// Reads until the echo of transaction `id`, applying everything (that echo included).
async fn until_echo(c: &mut Client, view: &mut View, id: &str) -> Value {
    loop {
        let m = c.recv().await;
        view.apply(&m);
        if m["type"] == "tx" && m["id"] == id {
            return m;
        }
    }
}

#[tokio::test]
async fn concurrent_edits_to_one_key_converge() {
    let s = TestServer::start().await;
    let mut a = connect(&s.ws_url("w", "protocol=1"), &token("write")).await;
    let mut b = connect(&s.ws_url("w", "protocol=1"), &token("write")).await;
    let (mut va, mut vb) = (View::default(), View::default());
    va.apply(&a.recv().await);
    vb.apply(&b.recv().await);

    // Both write the same key, interleaved, without waiting for each other.
    for i in 0..50 {
        a.tx("a", &format!("a{i}"), json!([{"key": "title", "value": format!("a{i}")}])).await;
        b.tx("b", &format!("b{i}"), json!([{"key": "title", "value": format!("b{i}")}])).await;
    }
    // Each client has seen everything once it has seen the other's last echo and its own.
    until_echo(&mut a, &mut va, "a49").await;
    until_echo(&mut b, &mut vb, "b49").await;
    a.tx("a", "fence", json!([])).await;
    b.tx("b", "fence", json!([])).await;
    until_ack(&mut a, &mut va, "fence").await;
    until_ack(&mut b, &mut vb, "fence").await;

    let server = server_state(&s, "w").await;
    assert_eq!(va.0, server);
    assert_eq!(vb.0, server);
    assert!(server["title"].as_str().unwrap().ends_with("49"));
}

#[tokio::test]
async fn partition_with_edits_on_both_sides_converges_after_reconnect() {
    let s = TestServer::start().await;
    let mut a = connect(&s.ws_url("w", "protocol=1"), &token("write")).await;
    let mut b = connect(&s.ws_url("w", "protocol=1"), &token("write")).await;
    let (mut va, mut vb) = (View::default(), View::default());
    va.apply(&a.recv().await);
    vb.apply(&b.recv().await);
    a.tx("a", "base", json!([{"key": "shared", "value": "base"}, {"key": "x", "value": 0}])).await;
    until_echo(&mut a, &mut va, "base").await;
    let seen = until_echo(&mut b, &mut vb, "base").await["heads"].clone();

    // B goes offline and edits locally (stamped now: these are the older edits).
    drop(b);
    let t_offline = now_us();
    let offline_ops = json!([
        {"key": "shared", "value": "from-b-offline", "timestamp": t_offline},
        {"key": "only-b", "value": "b", "timestamp": t_offline + 1},
    ]);
    vb.0.insert("shared".into(), json!("from-b-offline"));
    vb.0.insert("only-b".into(), json!("b"));

    // Meanwhile A, online, edits later (newer timestamps, server-stamped).
    a.tx("a", "a1", json!([{"key": "shared", "value": "from-a"}, {"key": "only-a", "value": "a"}])).await;
    until_echo(&mut a, &mut va, "a1").await;

    // B reconnects from the heads it had, gets what it missed, then replays its offline tx.
    let mut b = connect(&s.ws_url("w", &format!("protocol=1&heads={}", seen.as_array().unwrap().iter().map(|h| h.as_str().unwrap()).collect::<Vec<_>>().join(","))), &token("write")).await;
    let catch_up = b.recv().await;
    assert_eq!(catch_up["type"], "changes");
    let mut missed: Vec<&str> = catch_up["ops"].as_array().unwrap().iter().map(|o| o["key"].as_str().unwrap()).collect();
    missed.sort();
    assert_eq!(missed, ["only-a", "shared"]);
    // B's own pending edit must survive the catch-up locally until the server rules on it.
    let pending_only_b = vb.0.get("only-b").cloned();
    vb.apply(&catch_up);
    vb.0.insert("only-b".into(), pending_only_b.unwrap());
    b.tx("b", "offline-1", offline_ops).await;
    let ack = until_ack(&mut b, &mut vb, "offline-1").await;
    assert_eq!(ack["superseded"], json!(["shared"]), "the older offline edit must not clobber A's newer one");
    assert_eq!(ack["standing"][0]["key"], "shared");
    assert_eq!(ack["standing"][0]["value"], "from-a", "the sender learns the value that stands");
    until_echo(&mut b, &mut vb, "offline-1").await;
    until_echo(&mut a, &mut va, "offline-1").await;

    let server = server_state(&s, "w").await;
    assert_eq!(server["shared"], "from-a");
    assert_eq!(server["only-a"], "a");
    assert_eq!(server["only-b"], "b");
    assert_eq!(va.0, server);
    assert_eq!(vb.0, server);
}

#[tokio::test]
async fn a_thousand_ops_with_a_disconnect_after_500_resume_at_501() {
    let s = TestServer::start().await;
    let mut writer = connect(&s.ws_url("w", "protocol=1"), &token("write")).await;
    let mut reader = connect(&s.ws_url("w", "protocol=1"), &token("read")).await;
    writer.recv().await;
    let mut view = View::default();
    view.apply(&reader.recv().await);

    for i in 1..=500 {
        writer.tx("w", &format!("op-{i}"), json!([{"key": format!("k{i:04}"), "value": i}])).await;
    }
    let watermark = until_echo(&mut reader, &mut view, "op-500").await["heads"].clone();
    assert_eq!(view.0.len(), 500);
    drop(reader);

    for i in 501..=1000 {
        writer.tx("w", &format!("op-{i}"), json!([{"key": format!("k{i:04}"), "value": i}])).await;
    }
    let mut ignore = View::default();
    let last = until_ack(&mut writer, &mut ignore, "op-1000").await["heads"].clone();

    let heads = watermark.as_array().unwrap().iter().map(|h| h.as_str().unwrap()).collect::<Vec<_>>().join(",");
    let mut reader = connect(&s.ws_url("w", &format!("protocol=1&heads={heads}")), &token("read")).await;
    let resumed = reader.recv().await;
    assert_eq!(resumed["type"], "changes");
    let keys: Vec<&str> = resumed["ops"].as_array().unwrap().iter().map(|o| o["key"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), 500, "only the 500 it missed");
    assert_eq!(keys.first(), Some(&"k0501"), "resumes at 501");
    assert_eq!(keys.last(), Some(&"k1000"));
    assert_eq!(resumed["heads"], last);
    view.apply(&resumed);
    assert_eq!(view.0, server_state(&s, "w").await);
}

#[tokio::test]
async fn hlc_order_beats_arrival_order() {
    let s = TestServer::start().await;
    let mut a = connect(&s.ws_url("w", "protocol=1"), &token("write")).await;
    let mut b = connect(&s.ws_url("w", "protocol=1"), &token("write")).await;
    let (mut va, mut vb) = (View::default(), View::default());
    va.apply(&a.recv().await);
    vb.apply(&b.recv().await);
    let t = now_us();

    // The newer write arrives first…
    b.tx("b", "newer", json!([{"key": "doc", "value": "newer", "timestamp": t}])).await;
    until_ack(&mut b, &mut vb, "newer").await;
    // …and the older one (an hour-old offline edit) arrives after it.
    a.tx("a", "older", json!([{"key": "doc", "value": "older", "timestamp": t - 3_600_000_000}, {"key": "other", "value": 1, "timestamp": t - 3_600_000_000}])).await;
    let ack = until_ack(&mut a, &mut va, "older").await;
    assert_eq!(ack["superseded"], json!(["doc"]), "acknowledged, but did not overwrite");
    until_echo(&mut a, &mut va, "older").await;
    until_echo(&mut b, &mut vb, "older").await;

    let server = server_state(&s, "w").await;
    assert_eq!(server["doc"], "newer");
    assert_eq!(server["other"], 1, "the rest of the transaction still applied");
    assert_eq!(va.0, server);
    assert_eq!(vb.0, server);
    // Also over HTTP: the stored timestamp is the newer one.
    let (_, key) = get_json(&s.http("/v1/workspaces/w/keys/doc"), &token("read")).await;
    assert_eq!(key["timestamp"], t);
}
