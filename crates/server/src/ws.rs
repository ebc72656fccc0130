//! `GET /v1/sync/{workspace}`: the WebSocket session.
//!
//! The token is verified before the upgrade (401/403 as plain HTTP). A session is two halves:
//! this task reads and forwards client messages to the workspace actor, and a writer task drains
//! the session's bounded outbound queue into the socket. The actor never waits on a socket: if a
//! client's queue is full it is dropped (close 4000) and everyone else carries on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tandem_core::protocol::{ClientMessage, Op, TxMessage, PROTOCOL_VERSION};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn, Instrument};

use crate::auth::{Grant, Scope};
use crate::http::{bearer_token, check_workspace_name, ApiError};
use crate::workspace::{close_code, error_message, CloseReason, Source, Write, WorkspaceHandle};
use crate::AppState;

pub async fn sync(
    State(app): State<AppState>,
    Path(workspace): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    // Authenticate before anything else: no upgrade (and no workspace lookup) without a valid token.
    let grant = match bearer_token(&headers, &params).and_then(|t| app.auth.verify(t)) {
        Ok(g) => g,
        Err(e) => {
            warn!(workspace = %workspace, reason = %e, "sync refused");
            return ApiError::auth(e, Some(&workspace)).into_response();
        }
    };
    if let Err(e) = check_workspace_name(&workspace) {
        return e.into_response();
    }
    if let Err(e) = grant.authorize(&workspace, Scope::Read) {
        warn!(workspace = %workspace, reason = %e, "sync refused");
        return ApiError::auth(e, Some(&workspace)).into_response();
    }
    let protocol = match params.get("protocol").map(|p| p.parse::<u32>()) {
        None => 0,
        Some(Ok(v)) if v <= PROTOCOL_VERSION => v,
        Some(_) => {
            return ApiError::new(400, format!("unsupported `protocol`; this server speaks 0 (seed 001) to {PROTOCOL_VERSION}"))
                .workspace(&workspace)
                .into_response()
        }
    };
    if !app.config.auto_create {
        match app.store.workspace_exists(&workspace) {
            Ok(true) => {}
            Ok(false) => return ApiError::new(404, format!("workspace `{workspace}` does not exist")).workspace(&workspace).into_response(),
            Err(e) => return ApiError::new(500, e.to_string()).workspace(&workspace).into_response(),
        }
    }
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(rejection) => return rejection.into_response(),
    };
    let resume: Option<Vec<String>> =
        params.get("heads").map(|h| h.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect());
    let max = app.config.max_message_bytes;
    upgrade
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| {
            let conn = app.next_conn.fetch_add(1, Ordering::Relaxed);
            let span = tracing::info_span!("session", workspace = %workspace, conn);
            session(app, socket, conn, workspace, grant, protocol >= 1, resume).instrument(span)
        })
}

enum Control {
    Close(u16, &'static str),
}

async fn session(app: AppState, socket: WebSocket, conn: u64, workspace: String, grant: Grant, v1: bool, resume: Option<Vec<String>>) {
    let _guard = app.sessions.enter();
    let handle = app.registry.handle(&workspace);
    let (out_tx, out_rx) = mpsc::channel::<Utf8Bytes>(app.config.outbound_queue);
    let (kick_tx, kick_rx) = oneshot::channel();
    let (mut sink, mut stream) = socket.split();
    let resumed = resume.is_some();
    if let Err(e) = handle.subscribe(conn, v1, resume, out_tx.clone(), kick_tx).await {
        let msg = error_message(e.status(), e.to_string(), &workspace, None, None);
        let _ = sink.send(Message::Text(serde_json::to_string(&msg).unwrap_or_default().into())).await;
        let _ = sink.send(close(1011, "cannot open workspace")).await;
        return;
    }
    info!(v1, resumed, "client connected");
    let last_seen = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let (ctrl_tx, ctrl_rx) = mpsc::channel::<Control>(1);
    let writer = Writer {
        sink,
        out: out_rx,
        kick: kick_rx,
        ctrl: ctrl_rx,
        last_seen: last_seen.clone(),
        started,
        ping_interval: app.config.ping_interval,
        ping_timeout: app.config.ping_timeout,
    };
    let mut writer = tokio::spawn(writer.run().in_current_span());
    let reader = Reader { app: &app, handle: &handle, workspace: &workspace, grant: &grant, conn, out: &out_tx };
    let expires_in = Duration::from_secs(grant.expires_at.saturating_sub(jsonwebtoken::get_current_timestamp()));
    let mut shutdown = app.shutdown.subscribe();
    let reason = tokio::select! {
        r = reader.run(&mut stream, &last_seen, started) => r,
        _ = crate::until_shutdown(&mut shutdown) => {
            // Let every write this client already sent be committed and answered, then close.
            handle.barrier().await;
            Some(Control::Close(1001, "server shutting down"))
        }
        _ = tokio::time::sleep(expires_in) => Some(Control::Close(close_code::TOKEN_EXPIRED, "token expired: reconnect with a fresh token")),
        _ = &mut writer => None,
    };
    handle.unsubscribe(conn).await;
    if let Some(reason) = reason {
        let _ = ctrl_tx.send(reason).await;
    }
    drop(ctrl_tx);
    if !writer.is_finished() {
        let _ = writer.await;
    }
    // Closing handshake: give the client a moment to read our close frame and answer it, rather
    // than resetting the connection under it (a reset can discard the close frame unread).
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(m)) = stream.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
    info!("client disconnected");
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from_static(reason) }))
}

struct Reader<'a> {
    app: &'a AppState,
    handle: &'a WorkspaceHandle,
    workspace: &'a str,
    grant: &'a Grant,
    conn: u64,
    out: &'a mpsc::Sender<Utf8Bytes>,
}

impl Reader<'_> {
    /// Reads until the client goes away; returns how the writer should close, if it should.
    async fn run(&self, stream: &mut SplitStream<WebSocket>, last_seen: &AtomicU64, started: Instant) -> Option<Control> {
        loop {
            let msg = stream.next().await;
            last_seen.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
            match msg {
                Some(Ok(Message::Text(t))) => {
                    if !self.on_text(t.as_str()).await {
                        return None;
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    self.reply_error(400, "binary frames are not supported: send JSON text".into(), None, None).await;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None => return None,
                Some(Err(e)) => {
                    let too_big = std::error::Error::source(&e)
                        .and_then(|s| s.downcast_ref::<tokio_tungstenite::tungstenite::Error>())
                        .is_some_and(|s| matches!(s, tokio_tungstenite::tungstenite::Error::Capacity(_)));
                    if too_big {
                        warn!(limit = self.app.config.max_message_bytes, "message too big");
                        return Some(Control::Close(1009, "message too big"));
                    }
                    debug!(error = %e, "read error");
                    return None;
                }
            }
        }
    }

    async fn reply_error(&self, code: u16, message: String, id: Option<String>, key: Option<String>) {
        let msg = error_message(code, message, self.workspace, id, key);
        let _ = self.out.send(serde_json::to_string(&msg).unwrap_or_default().into()).await;
    }

    /// Handles one text message; `false` once the session should end.
    async fn on_text(&self, text: &str) -> bool {
        let msg = match parse_client_message(text) {
            Ok(m) => m,
            Err(e) => {
                // Only on failure: parse again loosely, to say which transaction it was about.
                let (message, id) = match serde_json::from_str::<Value>(text) {
                    Err(e) => (format!("malformed JSON: {e}"), None),
                    Ok(v) => (
                        format!("malformed message: {e} (expected {{\"type\":\"op\",\"payload\":{{\"key\",\"value\"}}}} or a `tx`)"),
                        v.get("id").and_then(Value::as_str).map(str::to_owned),
                    ),
                };
                self.reply_error(400, message, id, None).await;
                return true;
            }
        };
        let write = match msg {
            ClientMessage::Op { payload } => {
                if !self.grant.has(Scope::Write) {
                    let key = Some(payload.key.clone());
                    self.reply_error(403, "this token has no `write` scope: nothing was stored".into(), None, key).await;
                    return true;
                }
                Write::Op(payload)
            }
            ClientMessage::Tx(tx) => {
                if !self.grant.has(Scope::Write) {
                    let id = Some(tx.id.clone());
                    self.reply_error(403, "this token has no `write` scope: nothing was stored".into(), id, None).await;
                    return true;
                }
                Write::Tx(tx)
            }
        };
        self.handle.send(crate::workspace::Command::Write { source: Source::Socket(self.conn), write }).await.is_ok()
    }
}

/// `ClientMessage` is internally tagged (`"type"`), so serde buffers a whole message into an
/// intermediate tree before building it: on a 10k-op `tx` that doubles the parse time. A
/// well-formed message is read directly into this flat form instead; anything else (errors
/// included) goes through `ClientMessage` as before, so the answers are unchanged.
#[derive(serde::Deserialize)]
struct Flat {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    payload: Option<Op>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    client: Option<String>,
    #[serde(default)]
    ops: Option<Vec<Op>>,
}

fn parse_client_message(text: &str) -> Result<ClientMessage, serde_json::Error> {
    if let Ok(flat) = serde_json::from_str::<Flat>(text) {
        match flat {
            Flat { kind, payload: Some(payload), .. } if kind == "op" => return Ok(ClientMessage::Op { payload }),
            Flat { kind, id: Some(id), client: Some(client), ops: Some(ops), .. } if kind == "tx" => {
                return Ok(ClientMessage::Tx(TxMessage { id, client, ops }))
            }
            _ => {}
        }
    }
    serde_json::from_str::<ClientMessage>(text)
}

struct Writer {
    sink: SplitSink<WebSocket, Message>,
    out: mpsc::Receiver<Utf8Bytes>,
    kick: oneshot::Receiver<CloseReason>,
    ctrl: mpsc::Receiver<Control>,
    last_seen: Arc<AtomicU64>,
    started: Instant,
    ping_interval: Duration,
    ping_timeout: Duration,
}


impl Writer {
    async fn run(mut self) {
        let mut ping = tokio::time::interval(self.ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        let mut kick_live = true;
        let mut batch = Vec::with_capacity(64);
        loop {
            tokio::select! {
                biased;
                kick = &mut self.kick, if kick_live => match kick {
                    Ok(reason) => return self.close(reason.code, reason.reason).await,
                    // The actor let go of this session (it ended or the workspace actor stopped).
                    Err(_) => kick_live = false,
                },
                ctrl = self.ctrl.recv() => {
                    match ctrl {
                        Some(Control::Close(code, reason)) => {
                            // Deliver what is already queued (acks of committed writes) first.
                            self.out.close();
                            while let Some(m) = self.out.recv().await {
                                if tokio::time::timeout(self.ping_timeout, self.sink.send(Message::Text(m))).await.map_or(true, |r| r.is_err()) {
                                    return;
                                }
                            }
                            return self.close(code, reason).await;
                        }
                        None => return,
                    }
                }
                n = self.out.recv_many(&mut batch, 64) => {
                    if n == 0 {
                        return;
                    }
                    let sink = &mut self.sink;
                    let send = async {
                        for m in batch.drain(..) {
                            sink.feed(Message::Text(m)).await?;
                        }
                        sink.flush().await
                    };
                    match guarded(&mut self.kick, &mut kick_live, send).await {
                        Sent::Ok => {}
                        Sent::Failed => return,
                        Sent::Kicked(reason) => return self.close(reason.code, reason.reason).await,
                    }
                    batch.clear();
                }
                _ = ping.tick() => {
                    let silent = self.started.elapsed().saturating_sub(Duration::from_millis(self.last_seen.load(Ordering::Relaxed)));
                    if silent > self.ping_timeout {
                        warn!(silent_ms = silent.as_millis() as u64, "ping timeout");
                        return self.close(close_code::PING_TIMEOUT, "ping timeout").await;
                    }
                    let send = self.sink.send(Message::Ping(Default::default()));
                    match guarded(&mut self.kick, &mut kick_live, send).await {
                        Sent::Ok => {}
                        Sent::Failed => return,
                        Sent::Kicked(reason) => return self.close(reason.code, reason.reason).await,
                    }
                }
            }
        }
    }

    async fn close(mut self, code: u16, reason: &'static str) {
        // A client that stopped reading gets its close frame once it reads through what is
        // buffered; one silent for a whole ping timeout is dropped without it.
        let _ = tokio::time::timeout(self.ping_timeout, self.sink.send(close(code, reason))).await;
    }
}

enum Sent {
    Ok,
    Failed,
    Kicked(CloseReason),
}

/// Runs a socket send, unless the actor kicks this client first: a client that stops reading
/// blocks sends, and its kick (sent when its queue fills) must win over the stuck send.
async fn guarded(
    kick: &mut oneshot::Receiver<CloseReason>,
    kick_live: &mut bool,
    send: impl std::future::Future<Output = Result<(), axum::Error>>,
) -> Sent {
    tokio::pin!(send);
    if *kick_live {
        tokio::select! {
            biased;
            k = kick => match k {
                Ok(reason) => return Sent::Kicked(reason),
                // The actor let go of this session: nobody can kick it any more.
                Err(_) => *kick_live = false,
            },
            r = &mut send => return if r.is_ok() { Sent::Ok } else { Sent::Failed },
        }
    }
    if send.await.is_ok() {
        Sent::Ok
    } else {
        Sent::Failed
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_parse_agrees_with_client_message() {
        let cases = [
            r#"{"type":"op","payload":{"key":"k","value":{"a":[1,null]},"timestamp":5}}"#,
            r#"{"payload":{"key":"k","value":null},"type":"op"}"#,
            r#"{"type":"op","payload":{"key":"k","delete":true},"extra":1}"#,
            r#"{"type":"tx","id":"t","client":"c","ops":[{"key":"a","value":1},{"key":"b","delete":true,"timestamp":9}]}"#,
            r#"{"ops":[],"client":"c","id":"t","type":"tx"}"#,
            r#"{"type":"tx","id":"t","client":"c","ops":[],"payload":"ignored"}"#,
            r#"{"type":"op","payload":null}"#,
            r#"{"type":"op"}"#,
            r#"{"type":"tx","id":"t","ops":[]}"#,
            r#"{"type":"nope","payload":{"key":"k","value":1}}"#,
            r#"{"type":"op","payload":{"key":"k"}}"#,
            r#"{"type":"op","type":"op","payload":{"key":"k","value":1}}"#,
            r#"[1,2]"#,
            r#"not json"#,
        ];
        for text in cases {
            let fast = parse_client_message(text).map_err(|e| e.to_string());
            let slow = serde_json::from_str::<ClientMessage>(text).map_err(|e| e.to_string());
            assert_eq!(fast, slow, "{text}");
        }
    }
}
