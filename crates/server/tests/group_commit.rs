//! Group commit and big batches: writes from many clients arriving together are committed
//! together, yet each is acked, broadcast once, in one order for everyone, and durable; a big
//! transaction (encoded directly as an Automerge change, applied to the document while it is
//! written to disk) reads back exactly like small ones, before and after a `kill -9`.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use common::*;
use serde_json::{json, Value};

async fn snapshot(addr: SocketAddr, ws: &str) -> Value {
    let (status, body) = get_json(&format!("http://{addr}/v1/workspaces/{ws}"), &token("read")).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn concurrent_writes_from_many_clients_are_all_acked_broadcast_once_in_one_order_and_durable() {
    const WRITERS: usize = 5;
    const EACH: usize = 80;
    let dir = tempfile::tempdir().unwrap();
    let mut p = spawn_server(dir.path(), &[]);
    let mut observer = connect(&ws_url(p.addr, "w", "protocol=1"), &token("read")).await;
    let mut seed_observer = connect(&ws_url(p.addr, "w", ""), &token("read")).await;
    observer.recv().await;
    seed_observer.recv().await;
    let mut writers = Vec::new();
    for _ in 0..WRITERS {
        let mut w = connect(&ws_url(p.addr, "w", "protocol=1"), &token("write")).await;
        w.recv().await;
        writers.push(w);
    }
    // Every writer fires all its transactions without waiting: they queue up behind each
    // other's commits and so are committed in groups.
    for round in 0..EACH {
        for (n, w) in writers.iter_mut().enumerate() {
            w.tx(&format!("c{n}"), &format!("t{round}"), json!([{"key": format!("w{n}-{round:03}"), "value": round}])).await;
        }
    }
    let total = WRITERS * EACH;
    // The observer sees each transaction exactly once.
    let mut order = Vec::new();
    let mut last_heads = Value::Null;
    while order.len() < total {
        let m = observer.recv().await;
        assert_eq!(m["type"], "tx", "{m}");
        order.push(format!("{}/{}", m["client"].as_str().unwrap(), m["id"].as_str().unwrap()));
        last_heads = m["heads"].clone();
    }
    assert_eq!(order.iter().collect::<HashSet<_>>().len(), total, "a transaction was broadcast twice");
    // Each client's own transactions are committed in the order it sent them.
    for n in 0..WRITERS {
        let mine: Vec<&String> = order.iter().filter(|id| id.starts_with(&format!("c{n}/"))).collect();
        let sent: Vec<String> = (0..EACH).map(|r| format!("c{n}/t{r}")).collect();
        assert_eq!(mine.iter().map(|s| s.as_str()).collect::<Vec<_>>(), sent.iter().map(String::as_str).collect::<Vec<_>>());
    }
    // A seed-001 client gets the same ops in the same order.
    let mut seed_keys = Vec::new();
    while seed_keys.len() < total {
        let m = seed_observer.recv().await;
        assert_eq!(m["type"], "op", "{m}");
        seed_keys.push(m["payload"]["key"].as_str().unwrap().to_owned());
    }
    let expected_keys: Vec<String> = order
        .iter()
        .map(|id| {
            let (c, t) = id.split_once('/').unwrap();
            format!("w{}-{:03}", &c[1..], t[1..].parse::<usize>().unwrap())
        })
        .collect();
    assert_eq!(seed_keys, expected_keys, "v0 and v1 clients see one commit order");
    // Every writer: every transaction acked, each ack before its own echo, echoes in the same order.
    for (n, w) in writers.iter_mut().enumerate() {
        let mut acked = HashSet::new();
        let mut echoes = Vec::new();
        while echoes.len() < total {
            let m = w.recv().await;
            match m["type"].as_str().unwrap() {
                "ack" => assert!(acked.insert(m["id"].as_str().unwrap().to_owned()), "acked twice: {m}"),
                "tx" => {
                    let id = format!("{}/{}", m["client"].as_str().unwrap(), m["id"].as_str().unwrap());
                    if id.starts_with(&format!("c{n}/")) {
                        assert!(acked.contains(m["id"].as_str().unwrap()), "echo before ack: {m}");
                    }
                    echoes.push(id);
                }
                other => panic!("unexpected {other}: {m}"),
            }
        }
        assert_eq!(acked.len(), EACH);
        assert_eq!(echoes, order, "writer {n} saw another order");
    }
    // Everything acked is on disk: kill -9 and restart.
    p.child.kill().unwrap();
    p.child.wait().unwrap();
    let mut p = spawn_server(dir.path(), &[]);
    let snap = snapshot(p.addr, "w").await;
    let data = snap["data"].as_object().unwrap();
    assert_eq!(data.len(), total);
    for n in 0..WRITERS {
        for round in 0..EACH {
            assert_eq!(data.get(&format!("w{n}-{round:03}")), Some(&json!(round)));
        }
    }
    assert_eq!(snap["heads"], last_heads);
    p.child.kill().unwrap();
    p.child.wait().unwrap();
}

#[tokio::test]
async fn big_transactions_read_back_like_small_ones_before_and_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    // Compacting every 3 changes also saves the document right after a big batch.
    let mut p = spawn_server(dir.path(), &["--compact-every", "3"]);
    let mut w = connect(&ws_url(p.addr, "w", "protocol=1"), &token("write")).await;
    w.recv().await;
    let big = |from: usize, to: usize, tag: &str| -> Value {
        Value::Array((from..to).map(|i| json!({"key": format!("k{i:05}"), "value": {"i": i, "tag": tag}})).collect())
    };
    // 1: 3000 new keys; 2: one small write; 3: 2000 keys, half of them overwrites, plus a delete
    // and a key written twice; then small writes again. All sent back to back.
    w.tx("c", "big-1", big(0, 3000, "one")).await;
    w.tx("c", "small-1", json!([{"key": "k00000", "value": "small"}])).await;
    let mut third = big(2000, 4000, "three").as_array().unwrap().clone();
    third.push(json!({"key": "k00001", "delete": true}));
    third.push(json!({"key": "k03999", "value": "last write wins"}));
    w.tx("c", "big-2", Value::Array(third)).await;
    w.tx("c", "small-2", json!([{"key": "k00002", "value": "small again"}])).await;
    let mut heads = HashMap::new();
    while heads.len() < 4 {
        let m = w.recv().await;
        if m["type"] == "ack" {
            heads.insert(m["id"].as_str().unwrap().to_owned(), m["heads"].clone());
        }
    }
    let expect = |data: &serde_json::Map<String, Value>| {
        assert_eq!(data.len(), 3999, "4000 keys, one deleted");
        assert_eq!(data["k00000"], json!("small"));
        assert!(!data.contains_key("k00001"));
        assert_eq!(data["k00002"], json!("small again"));
        assert_eq!(data["k01999"], json!({"i": 1999, "tag": "one"}));
        assert_eq!(data["k02000"], json!({"i": 2000, "tag": "three"}));
        assert_eq!(data["k03999"], json!("last write wins"));
    };
    let snap = snapshot(p.addr, "w").await;
    expect(snap["data"].as_object().unwrap());
    assert_eq!(snap["heads"], heads["small-2"]);

    // History sees four changes with the right keys.
    let (status, history) = get_json(&format!("http://{}/v1/history/w", p.addr), &token("read")).await;
    assert_eq!(status, 200, "{history}");
    let changes = history["changes"].as_array().unwrap();
    let counts: Vec<usize> = changes.iter().map(|c| c["keys"].as_array().unwrap().len()).collect();
    assert_eq!(counts, vec![3000, 1, 2001, 1]);
    // The document as of the first big change.
    let at = heads["big-1"].as_array().unwrap().iter().map(|h| h.as_str().unwrap()).collect::<Vec<_>>().join(",");
    let (status, then) = get_json(&format!("http://{}/v1/history/w?at={at}", p.addr), &token("read")).await;
    assert_eq!(status, 200, "{then}");
    assert_eq!(then["data"].as_object().unwrap().len(), 3000);
    assert_eq!(then["data"]["k00001"], json!({"i": 1, "tag": "one"}));

    // Resuming from before the big-2 change gets exactly the keys it touched since.
    let since = heads["small-1"].as_array().unwrap().iter().map(|h| h.as_str().unwrap()).collect::<Vec<_>>().join(",");
    let mut r = connect(&ws_url(p.addr, "w", &format!("protocol=1&heads={since}")), &token("read")).await;
    let changes = r.recv().await;
    assert_eq!(changes["type"], "changes", "{changes}");
    assert_eq!(changes["ops"].as_array().unwrap().len(), 2002, "k02000..k03999, k00001 and k00002");

    // kill -9, restart: same data and heads, and writing (small and big) carries on.
    p.child.kill().unwrap();
    p.child.wait().unwrap();
    let mut p = spawn_server(dir.path(), &["--compact-every", "3"]);
    let snap = snapshot(p.addr, "w").await;
    expect(snap["data"].as_object().unwrap());
    assert_eq!(snap["heads"], heads["small-2"]);
    let mut w = connect(&ws_url(p.addr, "w", "protocol=1"), &token("write")).await;
    w.recv().await;
    w.tx("c", "after-small", json!([{"key": "k00003", "value": "after"}])).await;
    assert_eq!(w.recv_type("ack").await["id"], "after-small");
    w.tx("c", "after-big", big(0, 1500, "after")).await;
    let ack = w.recv_type("ack").await;
    assert_eq!(ack["id"], "after-big");
    let snap = snapshot(p.addr, "w").await;
    let data = snap["data"].as_object().unwrap();
    assert_eq!(data["k00003"], json!({"i": 3, "tag": "after"}));
    assert_eq!(data["k03999"], json!("last write wins"));
    assert_eq!(snap["heads"], ack["heads"]);
    p.child.kill().unwrap();
    p.child.wait().unwrap();
    let p = spawn_server(dir.path(), &[]);
    let snap = snapshot(p.addr, "w").await;
    assert_eq!(snap["heads"], ack["heads"]);
    assert_eq!(snap["data"].as_object().unwrap().len(), 4000, "after-big wrote the deleted k00001 again");
}
