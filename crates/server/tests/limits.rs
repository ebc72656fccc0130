//! Hardening: message size, slow consumers, dead peers, expiring tokens.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

#[tokio::test]
async fn a_message_over_the_limit_closes_the_socket_with_1009() {
    let s = TestServer::start().await;
    let mut c = connect(&s.ws_url("w", ""), &token("write")).await;
    c.recv().await;
    let big = "x".repeat(1_500_000);
    c.op("k", json!(big)).await;
    assert_eq!(c.close_code().await, Some(1009));
    // Just under the limit is fine.
    let mut c = connect(&s.ws_url("w", ""), &token("write")).await;
    c.recv().await;
    c.op("k", json!("y".repeat(1_000_000))).await;
    assert_eq!(c.recv().await["type"], "op");
}

/// A client whose kernel receive buffer is small and fixed (no autotuning to tens of MB), so that
/// "stops reading" fills up quickly.
async fn connect_with_small_receive_buffer(s: &TestServer, ws: &str) -> Client {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(8 * 1024).unwrap();
    let stream = socket.connect(s.addr).await.unwrap();
    let mut req = s.ws_url(ws, "").into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {}", token("read")).parse().unwrap());
    let (ws, _) = tokio_tungstenite::client_async(req, tokio_tungstenite::MaybeTlsStream::Plain(stream)).await.unwrap();
    Client { ws }
}

#[tokio::test]
async fn a_stalled_client_is_dropped_with_4000_while_another_keeps_receiving() {
    let s = TestServer::start_with(|c| c.outbound_queue = 8).await;
    let mut stalled = connect_with_small_receive_buffer(&s, "w").await;
    let mut healthy = connect(&s.ws_url("w", ""), &token("read")).await;
    let mut writer = connect(&s.ws_url("w", "protocol=1"), &token("write")).await;
    stalled.recv().await;
    healthy.recv().await;
    writer.recv().await;

    // ~10 MB: more than the server's send buffer (4 MB max here) plus the stalled client's small
    // receive buffer plus its 8-message queue can absorb.
    const N: usize = 160;
    let value = "v".repeat(64 * 1024);
    let reader = tokio::spawn(async move {
        for i in 0..N {
            let m = healthy.recv().await;
            assert_eq!(m["payload"]["key"], format!("k{i}"), "the healthy client misses nothing");
        }
        healthy
    });
    for i in 0..N {
        writer.tx("w", &format!("t{i}"), json!([{"key": format!("k{i}"), "value": value}])).await;
        let _ = writer.recv_type("ack").await;
    }
    let mut healthy = reader.await.unwrap();

    // Now the stalled client reads: some of the stream, then the close telling it to resync.
    let mut received = 0;
    let code = loop {
        match stalled.next_event().await {
            Event::Json(_) => received += 1,
            Event::Closed(f) => break f.map(|f| u16::from(f.code)),
        }
    };
    assert_eq!(code, Some(4000));
    assert!(received < N, "it was cut off, not served everything ({received})");

    // And the healthy one is still connected.
    writer.tx("w", "after", json!([{"key": "after", "value": 1}])).await;
    assert_eq!(healthy.recv().await["payload"]["key"], "after");
}

#[tokio::test]
async fn a_silent_peer_is_dropped_after_the_ping_timeout_and_a_live_one_is_not() {
    let s = TestServer::start_with(|c| {
        c.ping_interval = Duration::from_millis(200);
        c.ping_timeout = Duration::from_millis(800);
    })
    .await;
    let mut silent = connect(&s.ws_url("w", ""), &token("read")).await;
    let mut live = connect(&s.ws_url("w", ""), &token("write")).await;
    silent.recv().await;
    live.recv().await;
    // The live client keeps reading (and so answering pings) while the silent one does nothing.
    let live = tokio::spawn(async move {
        let until = tokio::time::Instant::now() + Duration::from_millis(2500);
        while tokio::time::timeout_at(until, futures_util::StreamExt::next(&mut live.ws)).await.is_ok() {}
        live
    });
    let mut live = live.await.unwrap();
    assert_eq!(silent.close_code().await, Some(4002));
    live.op("still", json!("here")).await;
    assert_eq!(live.recv().await["payload"]["key"], "still");
}

#[tokio::test]
async fn the_socket_is_closed_with_4001_when_the_token_expires() {
    let s = TestServer::start().await;
    let t = token_with(json!({"exp": now_secs() + 2, "scope": "read"}));
    let mut c = connect(&s.ws_url("w", ""), &t).await;
    c.recv().await;
    assert_eq!(c.close_code().await, Some(4001));
}
