//! Broadcast-latency load generator (not a test): N clients in one workspace, one writer at a
//! fixed rate; reports p50/p99 latency from the writer's send to each client's receipt, and
//! committed ops/s. A bare tokio-tungstenite broadcast server (no JWT, no storage, no CRDT) is
//! measured in the same run, on the same machine, as the floor to compare against.
//!
//!   cargo run --release -p tandem-server --bin tandem-bench -- --clients 10,100,500 --rate 1000 --secs 5

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser, Debug)]
#[command(name = "tandem-bench", about = "Broadcast latency of tandem-server vs a raw WebSocket broadcast server")]
struct Args {
    /// Client counts to measure, comma-separated.
    #[arg(long, default_value = "10,100,500", value_delimiter = ',')]
    clients: Vec<usize>,
    /// Writer ops per second.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Seconds of writing per measurement.
    #[arg(long, default_value_t = 5)]
    secs: u64,
    /// Only measure tandem-server (skip the raw baseline).
    #[arg(long)]
    tandem_only: bool,
    /// Also time a transaction of this many ops from send to ack (0 to skip).
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
}

const SECRET: &str = "bench-secret";

#[derive(Debug, Default)]
struct Report {
    sent: u64,
    delivered: u64,
    expected: u64,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
    committed_per_sec: f64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    println!(
        "{:<16} {:>7} {:>8} {:>10} {:>10} {:>9} {:>9} {:>9} {:>12}",
        "server", "clients", "sent", "delivered", "expected", "p50 ms", "p99 ms", "max ms", "committed/s"
    );
    for &n in &args.clients {
        if !args.tandem_only {
            let addr = raw_server().await;
            let r = run(addr, "/", n, args.rate, args.secs, None).await;
            print_row("raw-tungstenite", n, &r);
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = tandem_server::Config::new(dir.path(), SECRET);
        config.outbound_queue = 4096;
        let state = tandem_server::AppState::start(config).await.expect("tandem-server starts");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = tandem_server::app(state.clone());
        // As `tandem-server` itself does.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600;
        let token = tandem_server::auth::sign_token(SECRET.as_bytes(), &serde_json::json!({"exp": exp, "scope": "read write"}));
        let r = run(addr, "/v1/sync/bench", n, args.rate, args.secs, Some(&token)).await;
        print_row("tandem-server", n, &r);
        server.abort();
        state.begin_shutdown();
    }
    if args.batch > 0 {
        batch(args.batch).await;
    }
}

/// Send → ack time of one transaction of `size` ops (the budget: 10k ops acked within 100 ms).
async fn batch(size: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = tandem_server::AppState::start(tandem_server::Config::new(dir.path(), SECRET)).await.expect("starts");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = tandem_server::app(state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600;
    let token = tandem_server::auth::sign_token(SECRET.as_bytes(), &serde_json::json!({"exp": exp, "scope": "read write"}));
    let mut ws = connect(addr, "/v1/sync/batch?protocol=1", Some(&token)).await;
    ws.next().await;
    let mut times = Vec::new();
    for round in 0..5 {
        let ops: Vec<serde_json::Value> =
            (0..size).map(|i| serde_json::json!({"key": format!("r{round}-item-{i}"), "value": {"n": i, "title": "some text"}})).collect();
        let msg = serde_json::json!({"type": "tx", "id": format!("batch-{round}"), "client": "bench", "ops": ops}).to_string();
        let start = Instant::now();
        ws.send(Message::text(msg)).await.unwrap();
        loop {
            let Some(Ok(Message::Text(t))) = ws.next().await else { panic!("socket closed") };
            if t.as_str().starts_with(r#"{"type":"ack""#) {
                break;
            }
        }
        times.push(start.elapsed());
    }
    times.sort();
    println!("{size}-op transaction, send to ack: median {:.1} ms, min {:.1} ms, max {:.1} ms (5 rounds)",
        times[2].as_secs_f64() * 1000.0, times[0].as_secs_f64() * 1000.0, times[4].as_secs_f64() * 1000.0);
    state.begin_shutdown();
}

fn print_row(name: &str, n: usize, r: &Report) {
    println!(
        "{:<16} {:>7} {:>8} {:>10} {:>10} {:>9.3} {:>9.3} {:>9.3} {:>12.0}",
        name,
        n,
        r.sent,
        r.delivered,
        r.expected,
        r.p50_us as f64 / 1000.0,
        r.p99_us as f64 / 1000.0,
        r.max_us as f64 / 1000.0,
        r.committed_per_sec
    );
}

/// The floor: accept, then forward every text frame to every connection. Nothing else (it does
/// batch socket writes the way tandem-server does, so the comparison is of everything *but* that).
async fn raw_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, _) = broadcast::channel::<Message>(65536);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let tx = tx.clone();
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let Ok(ws) = tokio_tungstenite::accept_async(stream).await else { return };
                let (mut sink, mut stream) = ws.split();
                let mut rx = tx.subscribe();
                let writer = tokio::spawn(async move {
                    while let Ok(m) = rx.recv().await {
                        if sink.feed(m).await.is_err() {
                            return;
                        }
                        while let Ok(m) = rx.try_recv() {
                            if sink.feed(m).await.is_err() {
                                return;
                            }
                        }
                        if sink.flush().await.is_err() {
                            return;
                        }
                    }
                });
                while let Some(Ok(m)) = stream.next().await {
                    if m.is_text() {
                        let _ = tx.send(m);
                    }
                }
                writer.abort();
            });
        }
    });
    addr
}

async fn connect(addr: SocketAddr, path: &str, token: Option<&str>) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>> {
    let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
    if let Some(t) = token {
        req.headers_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    let (ws, _) = tokio_tungstenite::connect_async(req).await.expect("connect (raise `ulimit -n` for many clients)");
    ws
}

/// The send time (µs since `base`) the writer put in `"value":"t=<µs>"`.
fn sent_at(text: &str) -> Option<u64> {
    let i = text.find("\"t=")? + 3;
    let rest = &text[i..];
    rest[..rest.find('"')?].parse().ok()
}

async fn run(addr: SocketAddr, path: &str, n: usize, rate: u64, secs: u64, token: Option<&str>) -> Report {
    let base = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let mut receivers = Vec::with_capacity(n);
    for _ in 0..n {
        let mut ws = connect(addr, path, token).await;
        let done = done.clone();
        receivers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let next = tokio::time::timeout(Duration::from_millis(200), ws.next()).await;
                match next {
                    Ok(Some(Ok(Message::Text(t)))) => {
                        if let Some(sent) = sent_at(t.as_str()) {
                            lat.push((base.elapsed().as_micros() as u64).saturating_sub(sent));
                        }
                    }
                    Ok(Some(Ok(_))) => {}
                    Ok(_) => return lat,
                    Err(_) if done.load(Ordering::Relaxed) => return lat,
                    Err(_) => {}
                }
            }
        }));
    }
    let writer = connect(addr, path, token).await;
    let (mut sink, mut stream) = writer.split();
    let committed = Arc::new(AtomicU64::new(0));
    let counter = committed.clone();
    let echo = tokio::spawn(async move {
        while let Some(Ok(m)) = stream.next().await {
            if let Message::Text(t) = m {
                if sent_at(t.as_str()).is_some() {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    // Let the initial messages settle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let total = rate * secs;
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    for i in 0..total {
        tick.tick().await;
        let now = base.elapsed().as_micros() as u64;
        let msg = format!(r#"{{"type":"op","payload":{{"key":"k{}","value":"t={now}"}}}}"#, i % 100);
        if sink.send(Message::text(msg)).await.is_err() {
            break;
        }
    }
    // Wait (bounded) for the echoes of everything sent.
    let deadline = Instant::now() + Duration::from_secs(30);
    while committed.load(Ordering::Relaxed) < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let committed_count = committed.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    done.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for r in receivers {
        all.extend(r.await.unwrap_or_default());
    }
    echo.abort();
    let _ = sink.close().await;
    all.sort_unstable();
    let pct = |p: f64| all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or(0);
    Report {
        sent: total,
        delivered: all.len() as u64,
        expected: total * n as u64,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        max_us: all.last().copied().unwrap_or(0),
        committed_per_sec: committed_count as f64 / elapsed,
    }
}
