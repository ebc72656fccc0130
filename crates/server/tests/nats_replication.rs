//! Scale-out: two tandem-server processes, each with its own data, converge through a real
//! `nats-server -js` started by the test.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

struct Nats {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_nats() -> Nats {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `nats-server` ({e}). This test needs NATS with JetStream: \
                 `apt-get install nats-server` (scripts/setup.sh installs it)"
            )
        });
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = std::time::Instant::now() + PATIENCE;
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(std::time::Instant::now() < deadline, "nats-server did not start listening");
        std::thread::sleep(Duration::from_millis(20));
    }
    Nats { child, url: format!("nats://{addr}"), _dir: dir }
}

async fn state(addr: SocketAddr, ws: &str) -> (u16, Value) {
    get_json(&format!("http://{addr}/v1/workspaces/{ws}"), &token("read")).await
}

/// Polls until both servers report the same data (replication is asynchronous).
async fn converged(a: SocketAddr, b: SocketAddr, ws: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (sa, da) = state(a, ws).await;
        let (sb, db) = state(b, ws).await;
        if sa == 200 && sb == 200 && da["data"] == db["data"] && da["heads"] == db["heads"] && pred(&da["data"]) {
            return da;
        }
        assert!(tokio::time::Instant::now() < deadline, "no convergence: {da} vs {db}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn two_servers_sharing_nats_converge_and_broadcast_each_others_changes() {
    let nats = start_nats();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let args = ["--nats-url", nats.url.as_str(), "--nats-stream", "TANDEM_TEST"];
    let a = spawn_server(da.path(), &args);
    let b = spawn_server(db.path(), &args);

    let mut on_a = connect(&ws_url(a.addr, "w", "protocol=1"), &token("write")).await;
    let mut on_b = connect(&ws_url(b.addr, "w", "protocol=1"), &token("write")).await;
    let mut seed_on_b = connect(&ws_url(b.addr, "w", ""), &token("read")).await;
    on_a.recv().await;
    on_b.recv().await;
    seed_on_b.recv().await;

    // A write on A reaches B's clients as a broadcast, with its transaction id.
    on_a.tx("alice", "t1", json!([{"key": "greeting", "value": "hello"}])).await;
    let echo = on_b.recv_type("tx").await;
    assert_eq!((echo["id"].as_str(), echo["client"].as_str()), (Some("t1"), Some("alice")));
    assert_eq!(echo["ops"][0]["value"], "hello");
    assert_eq!(seed_on_b.recv().await["payload"]["key"], "greeting");

    // Concurrent writes to one key on both servers: the higher HLC timestamp wins on both.
    let t = now_us();
    on_a.tx("alice", "t2", json!([{"key": "title", "value": "from-a", "timestamp": t + 10}, {"key": "a-only", "value": 1}])).await;
    on_b.tx("bob", "t3", json!([{"key": "title", "value": "from-b", "timestamp": t + 5}, {"key": "b-only", "value": 2}])).await;
    let data = converged(a.addr, b.addr, "w", |d| d.get("a-only").is_some() && d.get("b-only").is_some()).await;
    assert_eq!(data["data"]["title"], "from-a");
    assert_eq!(data["data"]["greeting"], "hello");

    // A third server joining later, with empty data, catches up from the stream.
    let dc = tempfile::tempdir().unwrap();
    let c = spawn_server(dc.path(), &args);
    converged(a.addr, c.addr, "w", |d| d.get("b-only").is_some()).await;

    // And a restarted server resumes from its durable consumer without losing or doubling anything.
    drop(b);
    on_a.tx("alice", "t4", json!([{"key": "while-b-was-down", "value": true}])).await;
    on_a.recv_type("ack").await;
    let b = spawn_server(db.path(), &args);
    let data = converged(a.addr, b.addr, "w", |d| d.get("while-b-was-down").is_some()).await;
    let (_, history) = get_json(&format!("http://{}/v1/history/w", b.addr), &token("read")).await;
    assert_eq!(history["total"], 4);
    assert_eq!(data["data"]["title"], "from-a");
}
