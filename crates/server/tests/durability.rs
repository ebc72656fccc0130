//! Nothing acknowledged is ever lost: restart, compaction, `kill -9`, SIGTERM.

mod common;

use std::net::SocketAddr;
use std::process::Command;

use common::*;
use serde_json::{json, Value};

async fn snapshot(addr: SocketAddr, ws: &str) -> Value {
    let (status, body) = get_json(&format!("http://{addr}/v1/workspaces/{ws}"), &token("read")).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn restart_comes_back_with_the_same_state_and_heads_across_compactions() {
    let s = TestServer::start_with(|c| c.compact_every = 10).await;
    let mut c = connect(&s.ws_url("w", "protocol=1"), &token("write")).await;
    c.recv().await;
    for i in 0..35 {
        c.tx("c", &format!("t{i}"), json!([{"key": format!("k{}", i % 7), "value": i}, {"key": "n", "value": i}])).await;
    }
    c.tx("c", "del", json!([{"key": "k0", "delete": true}])).await;
    let last_ack = loop {
        let m = c.recv().await;
        if m["type"] == "ack" && m["id"] == "del" {
            break m;
        }
    };
    drop(c);
    let before = snapshot(s.addr, "w").await;
    assert_eq!(before["heads"], last_ack["heads"]);
    let dir = s.stop().await;

    let s = TestServer::start_in(dir, |c| c.compact_every = 10).await;
    let after = snapshot(s.addr, "w").await;
    assert_eq!(after, before);
    let (_, history) = get_json(&s.http("/v1/history/w"), &token("read")).await;
    assert_eq!(history["total"], 36, "compaction keeps the full history");
    // And it keeps working after the restart.
    let mut c = connect(&s.ws_url("w", "protocol=1"), &token("write")).await;
    assert_eq!(c.recv().await["data"], before["data"]);
    c.tx("c", "after", json!([{"key": "z", "value": 1}])).await;
    assert_eq!(c.recv().await["type"], "ack");
}

/// Enough writes that the document is caught up on a background thread several times (every
/// 256 ops at least) and compacted meanwhile: the history, a resume from old heads and a restart
/// all see every write, and writes go on throughout.
#[tokio::test]
async fn history_resume_and_restart_see_every_write_made_while_the_document_catches_up_in_the_background() {
    const WRITES: usize = 700;
    let s = TestServer::start_with(|c| c.compact_every = 250).await;
    let mut c = connect(&s.ws_url("w", "protocol=1"), &token("write")).await;
    c.recv().await;
    let mut heads_at_100 = Value::Null;
    let mut last_heads = Value::Null;
    for i in 0..WRITES {
        c.tx("c", &format!("t{i}"), json!([{"key": format!("k{}", i % 10), "value": i}])).await;
        let ack = c.recv_type("ack").await;
        assert_eq!(ack["id"], format!("t{i}"));
        if i == 99 {
            heads_at_100 = ack["heads"].clone();
        }
        last_heads = ack["heads"].clone();
    }
    let (_, history) = get_json(&s.http("/v1/history/w"), &token("read")).await;
    assert_eq!(history["total"], WRITES);

    let heads_param = heads_at_100.as_array().unwrap().iter().map(|h| h.as_str().unwrap()).collect::<Vec<_>>().join(",");
    let mut r = connect(&s.ws_url("w", &format!("protocol=1&heads={heads_param}")), &token("read")).await;
    let changes = r.recv().await;
    assert_eq!(changes["type"], "changes", "{changes}");
    assert_eq!(changes["heads"], last_heads);
    let got: Vec<(String, Value)> =
        changes["ops"].as_array().unwrap().iter().map(|o| (o["key"].as_str().unwrap().to_owned(), o["value"].clone())).collect();
    let want: Vec<(String, Value)> = (0..10).map(|k| (format!("k{k}"), json!(WRITES - 10 + k))).collect();
    assert_eq!(got, want, "every key's last value since the 100th write");
    drop((c, r));

    let before = snapshot(s.addr, "w").await;
    assert_eq!(before["heads"], last_heads);
    let dir = s.stop().await;
    {
        // The background thread saved snapshots meanwhile: the last one folded in the changes
        // up to at least the 500th, which are no longer stored one by one.
        let store = tandem_server::store::Store::open(dir.path()).unwrap();
        let stored = store.load_workspace("w").unwrap().unwrap();
        let (upto, _) = stored.snapshot.expect("a snapshot was saved");
        assert!(upto >= 499, "snapshot up to seq {upto}");
        assert_eq!(stored.changes.first().map(|c| c.0), Some(upto + 1));
        assert_eq!(stored.changes.len() as u64, WRITES as u64 - (upto + 1));
    }
    let s = TestServer::start_in(dir, |c| c.compact_every = 250).await;
    assert_eq!(snapshot(s.addr, "w").await, before);
    let (_, history) = get_json(&s.http("/v1/history/w"), &token("read")).await;
    assert_eq!(history["total"], WRITES);
}

#[tokio::test]
async fn binary_refuses_to_start_without_a_jwt_secret() {
    let out = Command::new(env!("CARGO_BIN_EXE_tandem-server"))
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(tempfile::tempdir().unwrap().path())
        .env_remove("TANDEM_JWT_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TANDEM_JWT_SECRET"));
}

#[tokio::test]
async fn kill_9_loses_nothing_that_was_acked() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = spawn_server(dir.path(), &[]);
    let (status, _) = call(reqwest::Method::GET, &format!("http://{}/healthz", p.addr), None, None).await;
    assert_eq!(status, 200);
    let mut c = connect(&ws_url(p.addr, "w", "protocol=1"), &token("write")).await;
    c.recv().await;
    // 100 acked for sure, then 200 more in flight when the process dies.
    for i in 0..100 {
        c.tx("c", &format!("t{i}"), json!([{"key": format!("k{i:03}"), "value": i}])).await;
    }
    let mut acked: Vec<(String, Value)> = Vec::new();
    while acked.len() < 100 {
        let m = c.recv().await;
        if m["type"] == "ack" {
            acked.push((m["id"].as_str().unwrap().to_owned(), m["heads"].clone()));
        }
    }
    for i in 100..300 {
        c.tx("c", &format!("t{i}"), json!([{"key": format!("k{i:03}"), "value": i}])).await;
    }
    // Read a few more acks so the kill lands in the middle of the stream.
    while acked.len() < 120 {
        let m = c.recv().await;
        if m["type"] == "ack" {
            acked.push((m["id"].as_str().unwrap().to_owned(), m["heads"].clone()));
        }
    }
    p.child.kill().unwrap(); // SIGKILL
    p.child.wait().unwrap();
    // Whatever else reached us before the socket died was acked too.
    loop {
        match c.next_event().await {
            Event::Json(m) if m["type"] == "ack" => acked.push((m["id"].as_str().unwrap().to_owned(), m["heads"].clone())),
            Event::Json(_) => {}
            Event::Closed(_) => break,
        }
    }

    let mut p = spawn_server(dir.path(), &[]);
    let snap = snapshot(p.addr, "w").await;
    let data = snap["data"].as_object().unwrap();
    for (id, _) in &acked {
        let i: usize = id[1..].parse().unwrap();
        assert_eq!(data.get(&format!("k{i:03}")), Some(&json!(i)), "acked tx {id} lost");
    }
    // Writes are applied in order, so the state is a prefix: exactly t0..t(n-1) for some n ≥ acked.
    let n = data.len();
    assert!(n >= acked.len());
    assert!((0..n).all(|i| data.contains_key(&format!("k{i:03}"))));
    if n == acked.len() {
        assert_eq!(snap["heads"], acked.last().unwrap().1, "same heads as the last ack");
    }
    p.child.kill().unwrap();
    p.child.wait().unwrap();
}

#[tokio::test]
async fn sigterm_answers_in_flight_writes_then_closes_sockets_with_1001() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = spawn_server(dir.path(), &[]);
    let mut c = connect(&ws_url(p.addr, "w", "protocol=1"), &token("write")).await;
    c.recv().await;
    c.tx("c", "t0", json!([{"key": "k000", "value": 0}])).await;
    assert_eq!(c.recv_type("ack").await["id"], "t0");
    for i in 1..200 {
        c.tx("c", &format!("t{i}"), json!([{"key": format!("k{i:03}"), "value": i}])).await;
    }
    let status = Command::new("kill").args(["-TERM", &p.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let mut acked = vec!["t0".to_owned()];
    let code = loop {
        match c.next_event().await {
            Event::Json(m) if m["type"] == "ack" => acked.push(m["id"].as_str().unwrap().to_owned()),
            Event::Json(_) => {}
            Event::Closed(frame) => break frame.map(|f| u16::from(f.code)),
        }
    };
    assert_eq!(code, Some(1001), "sockets are closed with 1001 (going away)");
    let exit = p.child.wait().unwrap();
    assert!(exit.success(), "clean exit after SIGTERM: {exit:?}");

    // Exactly what was acked is stored: no write was committed without its ack being delivered.
    let mut p = spawn_server(dir.path(), &[]);
    let snap = snapshot(p.addr, "w").await;
    let mut keys: Vec<String> = snap["data"].as_object().unwrap().keys().cloned().collect();
    keys.sort();
    let mut expected: Vec<String> = acked.iter().map(|id| format!("k{:03}", id[1..].parse::<usize>().unwrap())).collect();
    expected.sort();
    assert_eq!(keys, expected);
    p.child.kill().unwrap();
    p.child.wait().unwrap();
}
