//! Shared test harness: the real router on a loopback port, real WebSocket clients, real tokens.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tandem_server::{app, AppState, Config};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const SECRET: &str = "test-secret-do-not-use";
/// Upper bound for "this message must arrive": a hang guard, not a performance assertion.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub struct TestServer {
    pub addr: SocketAddr,
    pub state: AppState,
    pub dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, tweak).await
    }

    pub async fn start_in(dir: tempfile::TempDir, tweak: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::new(dir.path(), SECRET);
        tweak(&mut config);
        let state = AppState::start(config).await.expect("server starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = app(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        TestServer { addr, state, dir, task }
    }

    /// Stops serving and hands back the data directory (for a restart on the same data).
    pub async fn stop(self) -> tempfile::TempDir {
        self.task.abort();
        let _ = self.task.await;
        assert!(self.state.close(PATIENCE).await, "server did not let go of its database");
        self.dir
    }

    pub fn ws_url(&self, workspace: &str, query: &str) -> String {
        ws_url(self.addr, workspace, query)
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

pub fn ws_url(addr: SocketAddr, workspace: &str, query: &str) -> String {
    let q = if query.is_empty() { String::new() } else { format!("?{query}") };
    format!("ws://{addr}/v1/sync/{workspace}{q}")
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

pub fn now_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as u64
}

pub fn token(scope: &str) -> String {
    tandem_server::auth::sign_token(SECRET.as_bytes(), &json!({"exp": now_secs() + 3600, "scope": scope, "sub": "tester"}))
}

pub fn token_with(claims: Value) -> String {
    tandem_server::auth::sign_token(SECRET.as_bytes(), &claims)
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct Client {
    pub ws: Ws,
}

/// Opens a socket with `Authorization: Bearer`; panics unless the upgrade succeeds.
pub async fn connect(url: &str, token: &str) -> Client {
    match try_connect(url, Some(token)).await {
        Ok(c) => c,
        Err(status) => panic!("upgrade refused with HTTP {status}"),
    }
}

/// Opens a socket, returning the HTTP status when the upgrade is refused.
pub async fn try_connect(url: &str, token: Option<&str>) -> Result<Client, u16> {
    let mut req = url.into_client_request().unwrap();
    if let Some(t) = token {
        req.headers_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, res)) => {
            assert_eq!(res.status().as_u16(), 101);
            Ok(Client { ws })
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
        Err(e) => panic!("connect failed: {e}"),
    }
}

pub enum Event {
    Json(Value),
    Closed(Option<CloseFrame>),
}

impl Client {
    pub async fn send(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).await.unwrap();
    }

    pub async fn send_text(&mut self, t: &str) {
        self.ws.send(Message::text(t.to_owned())).await.unwrap();
    }

    /// Next JSON message or close, skipping pings.
    pub async fn next_event(&mut self) -> Event {
        loop {
            let m = tokio::time::timeout(PATIENCE, self.ws.next()).await.expect("no message from the server in time");
            match m {
                Some(Ok(Message::Text(t))) => return Event::Json(serde_json::from_str(t.as_str()).expect("server sends JSON")),
                Some(Ok(Message::Close(f))) => return Event::Closed(f),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Event::Closed(None),
            }
        }
    }

    pub async fn recv(&mut self) -> Value {
        match self.next_event().await {
            Event::Json(v) => v,
            Event::Closed(f) => panic!("socket closed while a message was expected: {f:?}"),
        }
    }

    /// Receives messages until one has `"type": ty`, returning it (others are skipped).
    pub async fn recv_type(&mut self, ty: &str) -> Value {
        loop {
            let v = self.recv().await;
            if v["type"] == ty {
                return v;
            }
        }
    }

    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            match self.next_event().await {
                Event::Json(_) => continue,
                Event::Closed(f) => return f.map(|f| u16::from(f.code)),
            }
        }
    }

    pub async fn op(&mut self, key: &str, value: Value) {
        self.send(json!({"type": "op", "payload": {"key": key, "value": value}})).await;
    }

    pub async fn tx(&mut self, client: &str, id: &str, ops: Value) {
        self.send(json!({"type": "tx", "id": id, "client": client, "ops": ops})).await;
    }
}

pub fn http_client() -> reqwest::Client {
    tandem_server::webhook::install_tls_provider();
    reqwest::Client::new()
}

/// (status, JSON body) of a request with an optional bearer token.
pub async fn call(method: reqwest::Method, url: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut req = http_client().request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_string());
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    let bytes = res.bytes().await.unwrap();
    let v = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
    (status, v)
}

pub async fn get_json(url: &str, token: &str) -> (u16, Value) {
    call(reqwest::Method::GET, url, Some(token), None).await
}

/// The real `tandem-server` binary, with its own data directory.
pub struct Proc {
    pub child: std::process::Child,
    pub addr: SocketAddr,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn spawn_server(data: &std::path::Path, extra: &[&str]) -> Proc {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tandem-server"))
        .args(["--listen", "127.0.0.1:0", "--log-json", "--data"])
        .arg(data)
        .args(extra)
        .env("TANDEM_JWT_SECRET", SECRET)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("spawn tandem-server");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines.next().expect("server exited before it was ready").unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if v["fields"]["message"] == "tandem-server ready" {
            break v["fields"]["addr"].as_str().unwrap().parse().unwrap();
        }
    };
    // Keep draining the logs so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    Proc { child, addr }
}
