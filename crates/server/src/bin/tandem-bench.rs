//! Broadcast-latency load generator (not a test): N clients in one workspace, one writer at a
//! fixed rate; reports p50/p95/p99 latency from the writer's send to each client's receipt, and
//! committed ops/s (the writer's own echoes per second).
//!
//! Two ways to run it:
//!
//! * in-process (the default): tandem-server's router and a bare tokio-tungstenite broadcast
//!   server (no JWT, no storage, no CRDT — the floor) are started in this process and measured
//!   one after the other:
//!
//!       cargo run --release -p tandem-server --bin tandem-bench -- --clients 10,100,500 --rate 1000 --secs 5
//!
//! * against a server in another process (what `npm run bench:server` does, with the server and
//!   this generator pinned to different cores): `--target ws://…` with `--protocol tandem` (seed
//!   001 JSON ops; also what the raw server forwards) or `--protocol hocuspocus` (Yjs updates in
//!   Hocuspocus frames, pre-encoded by bench/server/yjs-frames.mjs and given with `--frames`);
//!   `--serve-raw ADDR` runs the raw broadcast server alone. `--json` prints one JSON object per
//!   measurement.
//!
//! Every op carries its send time as `t=` and 16 decimal digits (µs since the run's start) in its
//! value. Receivers are deliberately cheap so that the generator is not what is measured: after
//! the WebSocket handshake they read the raw TCP stream (server frames are unmasked, so the
//! payload bytes appear verbatim) and scan it for those stamps, without decoding frames.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser, Debug)]
#[command(name = "tandem-bench", about = "Broadcast latency of tandem-server (and peers) vs a raw WebSocket broadcast server")]
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
    /// In-process mode: only measure tandem-server (skip the raw baseline).
    #[arg(long)]
    tandem_only: bool,
    /// In-process mode: also time a transaction of this many ops from send to ack (0 to skip).
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Run only the raw broadcast server, on this address, until killed.
    #[arg(long, value_name = "ADDR")]
    serve_raw: Option<SocketAddr>,
    /// Measure the server already listening at this URL (ws://host:port/path) instead of
    /// starting servers in this process.
    #[arg(long, value_name = "URL")]
    target: Option<String>,
    /// The target's protocol.
    #[arg(long, value_enum, default_value_t = Protocol::Tandem)]
    protocol: Protocol,
    /// `--protocol tandem`: sign the clients' token with this HS256 secret (tandem-server's
    /// TANDEM_JWT_SECRET); without it, no token is sent (the raw server needs none).
    #[arg(long, env = "TANDEM_BENCH_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// `--protocol hocuspocus`: the pre-encoded frames (JSON: `handshake` and `ops`, hex).
    #[arg(long, value_name = "FILE")]
    frames: Option<PathBuf>,
    /// Also report the CPU share this process (pid) used while the writer wrote.
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
    /// Name of the measured server in the output.
    #[arg(long, default_value = "target")]
    label: String,
    /// Print one JSON object per measurement instead of a table row.
    #[arg(long)]
    json: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Protocol {
    /// Seed-001 JSON: `{"type":"op","payload":{"key":…,"value":"t=…"}}`.
    Tandem,
    /// Hocuspocus: Yjs sync updates on one document, after an auth and a sync-step-1 frame.
    Hocuspocus,
}

const SECRET: &str = "bench-secret";
/// Digits of the send-time stamp (µs): fixed, so a Yjs update can be patched in place.
const STAMP_DIGITS: usize = 16;

#[derive(Debug, Default)]
struct Report {
    sent: u64,
    delivered: u64,
    expected: u64,
    p50_us: u64,
    p95_us: u64,
    p99_us: u64,
    max_us: u64,
    committed_per_sec: f64,
    loadgen_cpu: f64,
    server_cpu: Option<f64>,
}

/// What the clients of one measurement say, and to where.
struct Workload {
    addr: SocketAddr,
    host: String,
    /// Path and query of the WebSocket URL (token included).
    path: String,
    /// Binary frames each client sends first (Hocuspocus: auth, then sync step 1).
    handshake: Vec<Vec<u8>>,
    /// Pre-encoded ops (Hocuspocus); `None`: seed-001 JSON ops made on the fly.
    ops: Option<Vec<Op>>,
}

struct Op {
    bytes: Vec<u8>,
    /// Where the 16 stamp digits go.
    stamp_at: usize,
}

fn main() {
    let args = Args::parse();
    if let Some(addr) = args.serve_raw {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let bound = raw_server(addr).await;
            println!("raw broadcast server listening on {bound}");
            std::future::pending::<()>().await
        });
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        if let Some(url) = args.target.clone() {
            external(&args, &url).await
        } else {
            in_process(&args).await
        }
    });
}

async fn external(args: &Args, url: &str) {
    let (host, mut path) = split_url(url);
    let addr = host.to_socket_addrs().expect("resolvable --target").next().expect("an address");
    let (handshake, ops) = match args.protocol {
        Protocol::Tandem => {
            if let Some(secret) = &args.secret {
                let sep = if path.contains('?') { '&' } else { '?' };
                path = format!("{path}{sep}token={}", token(secret));
            }
            (Vec::new(), None)
        }
        Protocol::Hocuspocus => {
            let file = args.frames.as_ref().expect("--protocol hocuspocus needs --frames");
            let (handshake, ops) = load_frames(file);
            assert!(ops.len() as u64 >= args.rate * args.secs, "--frames holds {} ops; rate × secs needs more", ops.len());
            (handshake, Some(ops))
        }
    };
    let workload = Workload { addr, host, path, handshake, ops };
    if !args.json {
        print_header();
    }
    for &n in &args.clients {
        let r = run(&workload, n, args.rate, args.secs, args.server_pid).await;
        if args.json {
            print_json(&args.label, n, args.rate, args.secs, &r);
        } else {
            print_row(&args.label, n, &r);
        }
    }
}

async fn in_process(args: &Args) {
    print_header();
    for &n in &args.clients {
        if !args.tandem_only {
            let addr = raw_server("127.0.0.1:0".parse().unwrap()).await;
            let workload = Workload { addr, host: addr.to_string(), path: "/".into(), handshake: Vec::new(), ops: None };
            let r = run(&workload, n, args.rate, args.secs, None).await;
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
        let path = format!("/v1/sync/bench?token={}", token(SECRET));
        let workload = Workload { addr, host: addr.to_string(), path, handshake: Vec::new(), ops: None };
        let r = run(&workload, n, args.rate, args.secs, None).await;
        print_row("tandem-server", n, &r);
        server.abort();
        state.begin_shutdown();
    }
    if args.batch > 0 {
        batch(args.batch).await;
    }
}

fn token(secret: &str) -> String {
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600;
    tandem_server::auth::sign_token(secret.as_bytes(), &serde_json::json!({"exp": exp, "scope": "read write"}))
}

/// `ws://host:port/path?query` → (`host:port`, `/path?query`).
fn split_url(url: &str) -> (String, String) {
    let rest = url.strip_prefix("ws://").expect("--target must be a ws:// URL");
    match rest.find('/') {
        Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
        None => (rest.to_string(), "/".to_string()),
    }
}

fn load_frames(file: &PathBuf) -> (Vec<Vec<u8>>, Vec<Op>) {
    let text = std::fs::read_to_string(file).expect("readable --frames");
    let json: serde_json::Value = serde_json::from_str(&text).expect("--frames is JSON");
    let hex_list = |key: &str| -> Vec<Vec<u8>> {
        json[key].as_array().unwrap_or_else(|| panic!("--frames has no `{key}`")).iter().map(|v| hex::decode(v.as_str().unwrap()).unwrap()).collect()
    };
    let handshake = hex_list("handshake");
    let ops = hex_list("ops")
        .into_iter()
        .map(|bytes| {
            let stamp_at = find_stamp(&bytes, 0).expect("every op frame holds a `t=` stamp").0 + 2;
            Op { bytes, stamp_at }
        })
        .collect();
    (handshake, ops)
}

/// Send → ack time of one transaction of `size` ops (the budget: 10k ops acked within 100 ms).
async fn batch(size: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = tandem_server::AppState::start(tandem_server::Config::new(dir.path(), SECRET)).await.expect("starts");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = tandem_server::app(state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let mut ws = connect(addr, &format!("/v1/sync/batch?protocol=1&token={}", token(SECRET))).await;
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

fn print_header() {
    println!(
        "{:<16} {:>7} {:>8} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9} {:>12} {:>8}",
        "server", "clients", "sent", "delivered", "expected", "p50 ms", "p95 ms", "p99 ms", "max ms", "committed/s", "gen cpu"
    );
}

fn print_row(name: &str, n: usize, r: &Report) {
    println!(
        "{:<16} {:>7} {:>8} {:>10} {:>10} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>12.0} {:>7.0}%",
        name,
        n,
        r.sent,
        r.delivered,
        r.expected,
        r.p50_us as f64 / 1000.0,
        r.p95_us as f64 / 1000.0,
        r.p99_us as f64 / 1000.0,
        r.max_us as f64 / 1000.0,
        r.committed_per_sec,
        r.loadgen_cpu * 100.0,
    );
}

fn print_json(name: &str, n: usize, rate: u64, secs: u64, r: &Report) {
    let row = serde_json::json!({
        "server": name, "clients": n, "rate": rate, "secs": secs,
        "sent": r.sent, "delivered": r.delivered, "expected": r.expected,
        "p50_ms": r.p50_us as f64 / 1000.0, "p95_ms": r.p95_us as f64 / 1000.0,
        "p99_ms": r.p99_us as f64 / 1000.0, "max_ms": r.max_us as f64 / 1000.0,
        "committed_per_sec": r.committed_per_sec,
        "loadgen_cpu": r.loadgen_cpu, "server_cpu": r.server_cpu,
    });
    println!("{row}");
}

/// The floor: accept, then forward every text or binary frame to every connection. Nothing else
/// (it does batch socket writes the way tandem-server does, so the comparison is of everything
/// *but* that).
async fn raw_server(addr: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind(addr).await.expect("raw server binds");
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
                    if m.is_text() || m.is_binary() {
                        let _ = tx.send(m);
                    }
                }
                writer.abort();
            });
        }
    });
    addr
}

async fn connect(addr: SocketAddr, path: &str) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>> {
    let req = format!("ws://{addr}{path}").into_client_request().unwrap();
    let (ws, _) = tokio_tungstenite::connect_async(req).await.expect("connect (raise `ulimit -n` for many clients)");
    ws
}

/// The first `t=` + 16 digits at or after `from`: (index of `t`, the stamp).
fn find_stamp(bytes: &[u8], from: usize) -> Option<(usize, u64)> {
    let mut i = from;
    while i + 2 + STAMP_DIGITS <= bytes.len() {
        let rel = bytes[i..bytes.len() - STAMP_DIGITS].windows(2).position(|w| w == b"t=")?;
        let at = i + rel;
        let digits = &bytes[at + 2..at + 2 + STAMP_DIGITS];
        if digits.iter().all(u8::is_ascii_digit) {
            let v = digits.iter().fold(0u64, |acc, d| acc * 10 + (d - b'0') as u64);
            return Some((at, v));
        }
        i = at + 1;
    }
    None
}

/// A masked client frame (mask key 0, so the payload goes as is).
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n < 65536 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A receiving client: the WebSocket handshake by hand, the protocol's first frames, then the raw
/// stream scanned for stamps until `done` and 200 ms of silence.
async fn receiver(w: &Workload, base: Instant, ready: Arc<AtomicU64>, done: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<u64>> {
    let stream = TcpStream::connect(w.addr).await.expect("connect (raise `ulimit -n` for many clients)");
    let _ = stream.set_nodelay(true);
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        w.path, w.host
    );
    write_all(&stream, request.as_bytes()).await.expect("handshake sent");
    let mut buf = vec![0u8; 1 << 16];
    let mut head = Vec::new();
    let body_start = loop {
        stream.readable().await.expect("readable");
        match stream.try_read(&mut buf) {
            Ok(0) => panic!("closed during the handshake"),
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => panic!("handshake: {e}"),
        }
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    assert!(head.starts_with(b"HTTP/1.1 101"), "upgrade refused: {}", String::from_utf8_lossy(&head[..body_start]));
    for frame in &w.handshake {
        write_all(&stream, &client_frame(0x2, frame)).await.expect("first frames sent");
    }
    ready.fetch_add(1, Ordering::Relaxed);
    let mut carry: Vec<u8> = head[body_start..].to_vec();
    tokio::spawn(async move {
        let mut lat = Vec::new();
        loop {
            // Stamps already complete in `carry`.
            let mut from = 0;
            while let Some((at, sent)) = find_stamp(&carry, from) {
                lat.push((base.elapsed().as_micros() as u64).saturating_sub(sent));
                from = at + 2 + STAMP_DIGITS;
            }
            // Keep only a tail that may hold the start of a stamp (at most `t=` and 15 digits).
            let cut = from.max(carry.len().saturating_sub(1 + STAMP_DIGITS)).min(carry.len());
            carry.drain(..cut);
            match tokio::time::timeout(Duration::from_millis(200), stream.readable()).await {
                Ok(Ok(())) => match stream.try_read(&mut buf) {
                    Ok(0) => return lat,
                    Ok(n) => carry.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return lat,
                },
                Ok(Err(_)) => return lat,
                Err(_) if done.load(Ordering::Relaxed) => return lat,
                Err(_) => {}
            }
        }
    })
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

async fn run(w: &Workload, n: usize, rate: u64, secs: u64, server_pid: Option<u32>) -> Report {
    let base = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(AtomicU64::new(0));
    let mut receivers = Vec::with_capacity(n);
    for _ in 0..n {
        receivers.push(receiver(w, base, ready.clone(), done.clone()).await);
    }
    let writer = connect(w.addr, &w.path).await;
    let (mut sink, mut stream) = writer.split();
    for frame in &w.handshake {
        sink.send(Message::binary(frame.clone())).await.expect("writer's first frames");
    }
    let committed = Arc::new(AtomicU64::new(0));
    let counter = committed.clone();
    let echo = tokio::spawn(async move {
        while let Some(Ok(m)) = stream.next().await {
            let stamped = match &m {
                Message::Text(t) => find_stamp(t.as_bytes(), 0).is_some(),
                Message::Binary(b) => find_stamp(b, 0).is_some(),
                _ => false,
            };
            if stamped {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    // Let the initial messages settle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let total = rate * secs;
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let (gen0, srv0) = (cpu_seconds("self"), server_pid.and_then(|p| cpu_seconds(&p.to_string())));
    for i in 0..total {
        tick.tick().await;
        let now = base.elapsed().as_micros() as u64;
        let msg = match &w.ops {
            None => Message::text(format!(r#"{{"type":"op","payload":{{"key":"k{}","value":"t={now:016}"}}}}"#, i % 100)),
            Some(ops) => {
                let op = &ops[i as usize];
                let mut bytes = op.bytes.clone();
                bytes[op.stamp_at..op.stamp_at + STAMP_DIGITS].copy_from_slice(format!("{now:016}").as_bytes());
                Message::binary(bytes)
            }
        };
        if sink.send(msg).await.is_err() {
            break;
        }
    }
    let write_secs = started.elapsed().as_secs_f64();
    let (gen1, srv1) = (cpu_seconds("self"), server_pid.and_then(|p| cpu_seconds(&p.to_string())));
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
    let share = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| (b - a) / write_secs);
    Report {
        sent: total,
        delivered: all.len() as u64,
        expected: total * n as u64,
        p50_us: pct(0.50),
        p95_us: pct(0.95),
        p99_us: pct(0.99),
        max_us: all.last().copied().unwrap_or(0),
        committed_per_sec: committed_count as f64 / elapsed,
        loadgen_cpu: share(gen0, gen1).unwrap_or(0.0),
        server_cpu: share(srv0, srv1),
    }
}
