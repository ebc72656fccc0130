//! The workspace actor: one task per open workspace owns its document and its subscribers.
//!
//! Every read and write of a workspace goes through its actor, so ordering is simple: a client's
//! `init` and the broadcasts after it can never interleave wrongly, and a write is visible to
//! nobody until it is on disk. Writes that queue up while a commit is in flight are applied
//! together and committed in one redb transaction (group commit), each still its own Automerge
//! change with its own ack; acks and broadcasts go out only after that commit returns. The
//! store's writer thread (`committer.rs`) may put other workspaces' batches in the same
//! transaction. The Automerge document itself is brought up to date in the background
//! (`catch_up.rs`; see document.rs): acks, broadcasts and `init` need only the resolved view.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use serde_json::{Map, Value};
use tandem_core::hlc::Hlc;
use tandem_core::protocol::{Op, ServerMessage, TxMessage};
use tokio::sync::{mpsc, oneshot, Notify};
use tracing::{debug, error, info, warn};

use crate::catch_up::{CatchUp, CaughtUp, Compaction};
use crate::committer::Committer;
use crate::document::{hex_heads, ChangeOrigin, Document, DocumentError, Entry, HistoryEntry};
use crate::store::{CommitBatch, Store, StoreError};

/// WebSocket close codes (shared with clients through `tandem-core`).
pub use tandem_core::protocol::close_code;

/// Commands staged per group commit at most (bounds the latency one batch adds).
const MAX_BATCH: usize = 512;

#[derive(Debug, Clone, Copy)]
pub struct CloseReason {
    pub code: u16,
    pub reason: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("workspace `{workspace}` does not exist")]
    NotFound { workspace: String },
    #[error("{message}")]
    BadRequest { workspace: String, key: Option<String>, id: Option<String>, message: String },
    #[error(transparent)]
    Storage(#[from] StoreError),
    #[error(transparent)]
    Document(#[from] DocumentError),
    #[error("workspace `{workspace}`: persistence failure, nothing was stored: {message}")]
    CommitFailed { workspace: String, message: String },
    #[error("workspace `{workspace}` is unavailable (server shutting down?)")]
    Unavailable { workspace: String },
}

impl WorkspaceError {
    pub fn status(&self) -> u16 {
        match self {
            WorkspaceError::NotFound { .. } => 404,
            WorkspaceError::BadRequest { .. } => 400,
            WorkspaceError::Document(DocumentError::BadHead { .. }) => 400,
            WorkspaceError::Document(DocumentError::UnknownHeads { .. }) => 404,
            WorkspaceError::Storage(_) | WorkspaceError::Document(_) | WorkspaceError::CommitFailed { .. } => 500,
            WorkspaceError::Unavailable { .. } => 503,
        }
    }
}

pub enum Write {
    Op(Op),
    Tx(TxMessage),
}

/// Who to answer once a write is durable (or has failed).
pub enum Source {
    /// A WebSocket session: answered through its outbound queue.
    Socket(u64),
    /// An HTTP request.
    Http(oneshot::Sender<Result<WriteOutcome, WorkspaceError>>),
}

#[derive(Debug, Clone, Serialize)]
pub struct WriteOutcome {
    pub heads: Vec<String>,
    pub applied: Vec<Op>,
    pub superseded: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub data: Map<String, Value>,
    pub heads: Vec<String>,
}

pub enum HistoryReply {
    Changes { total: usize, heads: Vec<String>, changes: Vec<HistoryEntry> },
    At { data: Map<String, Value> },
}

type Reply<T> = oneshot::Sender<Result<T, WorkspaceError>>;

pub enum Command {
    Subscribe {
        conn: u64,
        v1: bool,
        resume: Option<Vec<String>>,
        out: mpsc::Sender<Utf8Bytes>,
        kick: oneshot::Sender<CloseReason>,
        reply: Reply<()>,
    },
    Unsubscribe { conn: u64 },
    Write { source: Source, write: Write },
    /// A change committed by another server (NATS); answered once stored.
    Remote { change: Vec<u8>, reply: Reply<()> },
    Snapshot { reply: Reply<Snapshot> },
    Get { key: String, reply: Reply<(Option<Entry>, Vec<String>)> },
    History { limit: usize, at: Option<Vec<String>>, reply: Reply<HistoryReply> },
    /// Answered once every command sent before it has been handled (and committed).
    Barrier { reply: oneshot::Sender<()> },
    Delete { reply: Reply<bool> },
    /// Explicit creation (admin); `false` if it existed.
    Create { reply: Reply<bool> },
}

/// What every actor shares.
pub struct Shared {
    pub store: Store,
    /// Writes the group commits (of every workspace).
    pub committer: Committer,
    pub server_id: Vec<u8>,
    pub auto_create: bool,
    pub compact_every: u64,
    pub max_clock_skew: Duration,
    /// Set when webhooks are configured: new outbox rows are signalled here.
    pub webhook: Option<Arc<Notify>>,
    /// Set when NATS replication is configured.
    pub nats: Option<Arc<Notify>>,
}

/// Live actors by workspace, with a generation number so an actor only ever removes itself.
type Actors = Arc<Mutex<HashMap<String, (u64, mpsc::Sender<Command>)>>>;

/// Finds or starts the actor of a workspace.
pub struct Registry {
    shared: Arc<Shared>,
    actors: Actors,
    next_gen: std::sync::atomic::AtomicU64,
}

#[derive(Clone)]
pub struct WorkspaceHandle {
    pub name: String,
    tx: mpsc::Sender<Command>,
}

impl Registry {
    pub fn new(shared: Arc<Shared>) -> Self {
        Registry { shared, actors: Default::default(), next_gen: Default::default() }
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Lets go of every actor: each stops once the last handle to it (sessions, requests) is gone.
    pub fn close_all(&self) {
        self.actors.lock().expect("registry lock").clear();
    }

    pub fn handle(&self, workspace: &str) -> WorkspaceHandle {
        let mut actors = self.actors.lock().expect("registry lock");
        if let Some((_, tx)) = actors.get(workspace) {
            if !tx.is_closed() {
                return WorkspaceHandle { name: workspace.to_owned(), tx: tx.clone() };
            }
        }
        let generation = self.next_gen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Bounded: a flood of writes waits here (backpressure on the sockets) instead of growing memory.
        let (tx, rx) = mpsc::channel(4096);
        actors.insert(workspace.to_owned(), (generation, tx.clone()));
        let actor = Actor {
            name: workspace.to_owned(),
            shared: self.shared.clone(),
            doc: Document::new(workspace, &self.shared.server_id),
            exists: false,
            hlc: Hlc::new(),
            next_seq: 0,
            since_compact: 0,
            subs: HashMap::new(),
            init_cache: None,
            catching_up: None,
        };
        let registry = self.actors.clone();
        tokio::spawn(actor.run(rx, registry, generation));
        WorkspaceHandle { name: workspace.to_owned(), tx }
    }
}

impl WorkspaceHandle {
    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, WorkspaceError> {
        let (reply, rx) = oneshot::channel();
        self.send(make(reply)).await?;
        rx.await.map_err(|_| self.unavailable())?
    }

    fn unavailable(&self) -> WorkspaceError {
        WorkspaceError::Unavailable { workspace: self.name.clone() }
    }

    pub async fn send(&self, cmd: Command) -> Result<(), WorkspaceError> {
        self.tx.send(cmd).await.map_err(|_| self.unavailable())
    }

    pub async fn subscribe(
        &self,
        conn: u64,
        v1: bool,
        resume: Option<Vec<String>>,
        out: mpsc::Sender<Utf8Bytes>,
        kick: oneshot::Sender<CloseReason>,
    ) -> Result<(), WorkspaceError> {
        self.call(|reply| Command::Subscribe { conn, v1, resume, out, kick, reply }).await
    }

    pub async fn unsubscribe(&self, conn: u64) {
        let _ = self.send(Command::Unsubscribe { conn }).await;
    }

    pub async fn write(&self, write: Write) -> Result<WriteOutcome, WorkspaceError> {
        self.call(|reply| Command::Write { source: Source::Http(reply), write }).await
    }

    pub async fn remote(&self, change: Vec<u8>) -> Result<(), WorkspaceError> {
        self.call(|reply| Command::Remote { change, reply }).await
    }

    pub async fn snapshot(&self) -> Result<Snapshot, WorkspaceError> {
        self.call(|reply| Command::Snapshot { reply }).await
    }

    pub async fn get(&self, key: String) -> Result<(Option<Entry>, Vec<String>), WorkspaceError> {
        self.call(|reply| Command::Get { key, reply }).await
    }

    pub async fn history(&self, limit: usize, at: Option<Vec<String>>) -> Result<HistoryReply, WorkspaceError> {
        self.call(|reply| Command::History { limit, at, reply }).await
    }

    pub async fn create(&self) -> Result<bool, WorkspaceError> {
        self.call(|reply| Command::Create { reply }).await
    }

    pub async fn delete(&self) -> Result<bool, WorkspaceError> {
        self.call(|reply| Command::Delete { reply }).await
    }

    pub async fn barrier(&self) {
        let (reply, rx) = oneshot::channel();
        if self.send(Command::Barrier { reply }).await.is_ok() {
            let _ = rx.await;
        }
    }
}

struct Subscriber {
    out: mpsc::Sender<Utf8Bytes>,
    kick: oneshot::Sender<CloseReason>,
    v1: bool,
}

/// What to do once the staged batch is committed.
enum Effect {
    /// Send to one session. `on_fail` replaces it if the commit fails (`None`: already durable).
    Send { conn: u64, text: Utf8Bytes, on_fail: Option<Utf8Bytes> },
    Http { reply: oneshot::Sender<Result<WriteOutcome, WorkspaceError>>, outcome: WriteOutcome },
    Broadcast { id: String, client: String, ops: Vec<Op>, heads: Vec<String> },
    Remote { reply: Reply<()> },
}

#[derive(Default)]
struct Pending {
    batch: CommitBatch,
    effects: Vec<Effect>,
    /// Acks of transactions staged in this batch, for a retry arriving in the same batch.
    acks: HashMap<(String, String), Utf8Bytes>,
}

struct Actor {
    name: String,
    shared: Arc<Shared>,
    doc: Document,
    /// Whether the workspace row is on disk.
    exists: bool,
    hlc: Hlc,
    next_seq: u64,
    since_compact: u64,
    subs: HashMap<u64, Subscriber>,
    init_cache: Option<Utf8Bytes>,
    /// The Automerge document on a background thread, being caught up (and maybe saved).
    catching_up: Option<CatchUp>,
}

pub fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn text(msg: &ServerMessage) -> Utf8Bytes {
    Utf8Bytes::from(serde_json::to_string(msg).expect("server messages serialise"))
}

pub fn error_message(code: u16, message: String, workspace: &str, id: Option<String>, key: Option<String>) -> ServerMessage {
    ServerMessage::Error { code, message, workspace: Some(workspace.to_owned()), id, key }
}

/// Seed-001 clients know no deletes: they see a deleted key as `value: null`.
fn seed_op(op: &Op) -> Op {
    Op { key: op.key.clone(), value: Some(op.value.clone().unwrap_or(Value::Null)), timestamp: op.timestamp, delete: false }
}

impl Actor {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Command>,
        registry: Actors,
        generation: u64,
    ) {
        if let Err(e) = self.load().await {
            error!(workspace = %self.name, error = %e, "cannot load workspace");
            // Forget this actor so the next request tries again; answer what is queued.
            {
                let mut actors = registry.lock().expect("registry lock");
                if actors.get(&self.name).is_some_and(|(g, _)| *g == generation) {
                    actors.remove(&self.name);
                }
            }
            rx.close();
            while let Ok(cmd) = rx.try_recv() {
                self.fail(cmd, || WorkspaceError::Unavailable { workspace: self.name.clone() });
            }
            return;
        }
        let mut cmds = Vec::with_capacity(MAX_BATCH);
        while rx.recv_many(&mut cmds, MAX_BATCH).await > 0 {
            let mut pending = Pending::default();
            for cmd in cmds.drain(..) {
                match cmd {
                    Command::Write { source, write } => self.stage_write(&mut pending, source, write),
                    Command::Remote { change, reply } => {
                        // Merging it needs the whole history in the document.
                        self.flush(&mut pending).await;
                        self.ensure_history().await;
                        self.stage_remote(&mut pending, change, reply);
                    }
                    other => {
                        // Reads and subscriptions must see only what is on disk.
                        self.flush(&mut pending).await;
                        self.handle(other).await;
                    }
                }
            }
            self.flush(&mut pending).await;
        }
        self.finish_catch_up().await;
    }

    async fn load(&mut self) -> Result<(), WorkspaceError> {
        let store = self.shared.store.clone();
        let name = self.name.clone();
        let id = self.shared.server_id.clone();
        let loaded = tokio::task::spawn_blocking(move || -> Result<_, WorkspaceError> {
            let Some(stored) = store.load_workspace(&name)? else { return Ok(None) };
            let last_seq = stored.changes.last().map(|c| c.0).or(stored.snapshot.as_ref().map(|s| s.0));
            let doc = Document::load(
                &name,
                &id,
                stored.snapshot.as_ref().map(|s| s.1.as_slice()),
                stored.changes.iter().map(|c| c.1.as_slice()),
            )?;
            Ok(Some((doc, last_seq, stored.changes.len() as u64)))
        })
        .await
        .map_err(|_| WorkspaceError::Unavailable { workspace: self.name.clone() })??;
        match loaded {
            Some((doc, last_seq, pending)) => {
                self.hlc.observe(doc.max_timestamp());
                self.doc = doc;
                self.exists = true;
                self.next_seq = last_seq.map_or(0, |s| s + 1);
                self.since_compact = pending;
            }
            None => {
                self.doc = Document::new(&self.name, &self.shared.server_id);
                self.exists = false;
                self.next_seq = 0;
                self.since_compact = 0;
            }
        }
        self.init_cache = None;
        Ok(())
    }

    fn fail(&self, cmd: Command, err: impl Fn() -> WorkspaceError) {
        match cmd {
            Command::Subscribe { reply, .. } => drop(reply.send(Err(err()))),
            Command::Write { source: Source::Http(reply), .. } => drop(reply.send(Err(err()))),
            Command::Remote { reply, .. } => drop(reply.send(Err(err()))),
            Command::Snapshot { reply } => drop(reply.send(Err(err()))),
            Command::Get { reply, .. } => drop(reply.send(Err(err()))),
            Command::History { reply, .. } => drop(reply.send(Err(err()))),
            Command::Delete { reply } | Command::Create { reply } => drop(reply.send(Err(err()))),
            Command::Barrier { reply } => drop(reply.send(())),
            Command::Write { source: Source::Socket(_), .. } | Command::Unsubscribe { .. } => {}
        }
    }

    fn reject(&mut self, source: Source, err: WorkspaceError, id: Option<String>, key: Option<String>) {
        match source {
            Source::Http(reply) => drop(reply.send(Err(err))),
            Source::Socket(conn) => {
                let msg = error_message(err.status(), err.to_string(), &self.name, id, key);
                self.send_to(conn, text(&msg));
            }
        }
    }

    fn stage_write(&mut self, p: &mut Pending, source: Source, write: Write) {
        let (ops, tx) = match write {
            Write::Op(op) => (vec![op], None),
            Write::Tx(TxMessage { id, client, ops }) => (ops, Some((client, id))),
        };
        let id = tx.as_ref().map(|t| t.1.clone());
        let bad = |message: String, key: Option<String>| WorkspaceError::BadRequest {
            workspace: self.name.clone(),
            key,
            id: id.clone(),
            message,
        };
        if let Some((client, tx_id)) = &tx {
            if client.is_empty() || tx_id.is_empty() {
                let e = bad("tx needs a non-empty `id` and `client`".into(), None);
                return self.reject(source, e, id.clone(), None);
            }
        }
        let now = now_ms();
        let now_micros = now_us();
        let horizon = now_micros.saturating_add(self.shared.max_clock_skew.as_micros() as u64);
        for op in &ops {
            if let Err(e) = op.validate() {
                let key = (!op.key.is_empty()).then(|| op.key.clone());
                let e = bad(e.to_string(), key.clone());
                return self.reject(source, e, id.clone(), key);
            }
            if op.timestamp.is_some_and(|t| t > horizon) {
                let e = bad(
                    format!(
                        "timestamp of key `{}` is more than {} s ahead of the server clock (timestamps are Unix microseconds)",
                        op.key,
                        self.shared.max_clock_skew.as_secs()
                    ),
                    Some(op.key.clone()),
                );
                return self.reject(source, e, id.clone(), Some(op.key.clone()));
            }
        }
        if !self.exists && !self.shared.auto_create {
            let e = WorkspaceError::NotFound { workspace: self.name.clone() };
            return self.reject(source, e, id.clone(), None);
        }
        // Idempotency: a transaction already committed is answered with its original ack.
        if let Some((client, tx_id)) = &tx {
            let staged = p.acks.get(&(client.clone(), tx_id.clone())).cloned();
            let stored = match staged {
                Some(_) => None,
                None => match self.shared.store.dedup_lookup(&self.name, client, tx_id) {
                    Ok(found) => found,
                    Err(e) => return self.reject(source, e.into(), id.clone(), None),
                },
            };
            if staged.is_some() || stored.is_some() {
                debug!(workspace = %self.name, client, tx = tx_id, "duplicate transaction answered from its dedup record");
                let ack = staged.unwrap_or_else(|| Utf8Bytes::from(String::from_utf8_lossy(&stored.unwrap_or_default()).into_owned()));
                match source {
                    Source::Socket(conn) => {
                        // Durable already unless it is from this very batch.
                        let on_fail = p.acks.contains_key(&(client.clone(), tx_id.clone())).then(|| {
                            text(&error_message(500, "persistence failure".into(), &self.name, id.clone(), None))
                        });
                        p.effects.push(Effect::Send { conn, text: ack, on_fail });
                    }
                    Source::Http(reply) => {
                        let parsed: Result<ServerMessage, _> = serde_json::from_str(&ack);
                        let outcome = match parsed {
                            Ok(ServerMessage::Ack { heads, superseded, .. }) => WriteOutcome { heads, applied: Vec::new(), superseded },
                            _ => WriteOutcome { heads: Vec::new(), applied: Vec::new(), superseded: Vec::new() },
                        };
                        p.effects.push(Effect::Http { reply, outcome });
                    }
                }
                return;
            }
        }

        let fill = self.hlc.tick_us(now_micros);
        let origin = ChangeOrigin { tx: tx.as_ref().map(|t| t.1.clone()), client: tx.as_ref().map(|t| t.0.clone()) };
        let out = match self.doc.apply_local(ops, fill, &origin, now as i64) {
            Ok(out) => out,
            Err(e) => return self.reject(source, e.into(), id.clone(), None),
        };
        if let Some(max) = out.applied.iter().filter_map(|o| o.timestamp).max() {
            self.hlc.observe(max);
        }
        let heads_raw = self.doc.heads();
        let heads = hex_heads(&heads_raw);
        let mut change_id = None;
        if let Some(change) = out.change {
            if !self.exists {
                p.batch.create = Some(now);
                self.exists = true;
            }
            let bytes = change.bytes;
            if self.shared.nats.is_some() {
                p.batch.nats.push(bytes.clone());
            }
            p.batch.changes.push((self.next_seq, bytes));
            self.next_seq += 1;
            let hash = change.hash.to_string();
            if self.shared.webhook.is_some() {
                let mut keys: Vec<&str> = out.applied.iter().map(|o| o.key.as_str()).collect();
                keys.sort_unstable();
                keys.dedup();
                let body = serde_json::json!({
                    "event": "doc.updated",
                    "id": hash,
                    "workspace": self.name,
                    "keys": keys,
                    "heads": heads,
                    "time": now,
                    "tx": origin.tx,
                    "client": origin.client,
                });
                p.batch.webhooks.push(body.to_string().into_bytes());
            }
            change_id = Some(hash);
        }
        let failure = || text(&error_message(500, "persistence failure: nothing was stored".into(), &self.name, id.clone(), None));
        match (source, &tx) {
            (Source::Socket(conn), Some((client, tx_id))) => {
                let ack = text(&self.ack(tx_id, &heads, &out.superseded));
                p.batch.dedup.push((client.clone(), tx_id.clone(), ack.as_str().as_bytes().to_vec()));
                p.acks.insert((client.clone(), tx_id.clone()), ack.clone());
                p.effects.push(Effect::Send { conn, text: ack, on_fail: Some(failure()) });
            }
            (Source::Socket(conn), None) => {
                if let Some(key) = out.superseded.first() {
                    // A seed-001 op that lost to a newer value: show the sender what stands.
                    if let Some(e) = self.doc.get(key) {
                        let current = text(&ServerMessage::Op { payload: seed_op(&e.to_op(key)) });
                        p.effects.push(Effect::Send { conn, text: current, on_fail: Some(failure()) });
                    }
                } else {
                    // Nothing to send to the sender now, but a failure must still be reported.
                    p.effects.push(Effect::Send { conn, text: Utf8Bytes::from_static(""), on_fail: Some(failure()) });
                }
            }
            (Source::Http(reply), _) => {
                if let Some((client, tx_id)) = &tx {
                    let ack = text(&self.ack(tx_id, &heads, &out.superseded));
                    p.batch.dedup.push((client.clone(), tx_id.clone(), ack.as_str().as_bytes().to_vec()));
                    p.acks.insert((client.clone(), tx_id.clone()), ack);
                }
                let outcome = WriteOutcome { heads: heads.clone(), applied: out.applied.clone(), superseded: out.superseded.clone() };
                p.effects.push(Effect::Http { reply, outcome });
            }
        }
        if let Some(hash) = change_id {
            let (id, client) = match tx {
                Some((client, id)) => (id, client),
                None => (hash, String::new()),
            };
            p.effects.push(Effect::Broadcast { id, client, ops: out.applied, heads });
        }
    }

    /// The ack of a transaction, with the value standing for each key whose op was superseded.
    fn ack(&self, tx_id: &str, heads: &[String], superseded: &[String]) -> ServerMessage {
        let standing = superseded.iter().filter_map(|key| self.doc.get(key).map(|e| e.to_op(key))).collect();
        ServerMessage::Ack { id: tx_id.to_owned(), heads: heads.to_vec(), superseded: superseded.to_vec(), standing }
    }

    fn stage_remote(&mut self, p: &mut Pending, change: Vec<u8>, reply: Reply<()>) {
        let out = match self.doc.apply_remote(&change) {
            Ok(out) => out,
            Err(e) => return drop(reply.send(Err(e.into()))),
        };
        if out.new {
            if !self.exists {
                p.batch.create = Some(now_ms());
                self.exists = true;
            }
            p.batch.changes.push((self.next_seq, change));
            self.next_seq += 1;
        }
        if let Some(max) = out.ops.iter().filter_map(|o| o.timestamp).max() {
            self.hlc.observe(max);
        }
        if !out.ops.is_empty() {
            let heads = hex_heads(&self.doc.heads());
            let id = out.origin.tx.unwrap_or_else(|| out.hash.to_string());
            p.effects.push(Effect::Broadcast { id, client: out.origin.client.unwrap_or_default(), ops: out.ops, heads });
        }
        p.effects.push(Effect::Remote { reply });
    }

    async fn flush(&mut self, p: &mut Pending) {
        if p.effects.is_empty() && p.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut p.batch);
        let effects = std::mem::take(&mut p.effects);
        p.acks.clear();
        let changes = batch.changes.len() as u64;
        let (webhooks, nats) = (!batch.webhooks.is_empty(), !batch.nats.is_empty());
        let result = if batch.is_empty() {
            Ok(())
        } else {
            self.shared.committer.commit(&self.name, batch).await
        };
        match result {
            Ok(()) => {
                if changes > 0 {
                    self.init_cache = None;
                    self.since_compact += changes;
                }
                if webhooks {
                    self.shared.webhook.as_ref().inspect(|n| n.notify_one());
                }
                if nats {
                    self.shared.nats.as_ref().inspect(|n| n.notify_one());
                }
                for effect in effects {
                    self.run_effect(effect);
                }
                // Only now, with everything staged on disk, may the document go to another
                // thread: a snapshot saved there covers exactly the committed changes.
                self.take_back_if_done().await;
                if self.catching_up.is_none() {
                    if self.since_compact >= self.shared.compact_every {
                        self.since_compact = 0;
                        self.start_catch_up(Some(self.next_seq.saturating_sub(1)));
                    } else if self.doc.catch_up_due() {
                        self.start_catch_up(None);
                    }
                }
            }
            Err(e) => {
                error!(workspace = %self.name, error = %e, "commit failed; nothing acknowledged or broadcast");
                // The in-memory state holds the failed changes: go back to what is on disk (the
                // document comes back first, so a failed reload leaves one in place).
                self.finish_catch_up().await;
                if let Err(e) = self.load().await {
                    error!(workspace = %self.name, error = %e, "reload after failed commit failed");
                }
                for effect in effects {
                    match effect {
                        Effect::Send { conn, on_fail: Some(text), .. } => self.send_to(conn, text),
                        Effect::Send { conn, text, on_fail: None } => self.send_to(conn, text),
                        Effect::Http { reply, .. } => {
                            let _ = reply.send(Err(WorkspaceError::CommitFailed { workspace: self.name.clone(), message: e.to_string() }));
                        }
                        Effect::Remote { reply } => {
                            let _ = reply.send(Err(WorkspaceError::Unavailable { workspace: self.name.clone() }));
                        }
                        Effect::Broadcast { .. } => {}
                    }
                }
            }
        }
    }

    /// Applies the document's unapplied local changes on a background thread while writes go on
    /// (see document.rs); with `compact_upto`, then saves the caught-up document as the
    /// workspace's snapshot, covering the changes stored up to that seq (a save costs
    /// milliseconds on a big document, which every write behind it would wait for). Only with
    /// nothing staged, and one at a time.
    fn start_catch_up(&mut self, compact_upto: Option<u64>) {
        debug_assert!(self.catching_up.is_none(), "one catch-up at a time");
        let (doc, changes) = self.doc.take_for_catch_up();
        let compaction = compact_upto.map(|upto| Compaction {
            store: self.shared.store.clone(),
            workspace: self.name.clone(),
            upto,
            runtime: tokio::runtime::Handle::current(),
        });
        self.catching_up = Some(CatchUp::start(doc, changes, compaction));
    }

    /// Waits for a catch-up on another thread, if any (hurrying it), and takes the document
    /// back. Only with nothing staged: if applying failed, the document is rebuilt from disk.
    async fn finish_catch_up(&mut self) {
        let Some(catch_up) = self.catching_up.take() else { return };
        self.take_back(catch_up.finish().await).await;
    }

    /// [`Actor::finish_catch_up`], if the catch-up is done already (one away for too long is
    /// hurried instead).
    async fn take_back_if_done(&mut self) {
        let Some(catch_up) = &mut self.catching_up else { return };
        let Some(done) = catch_up.try_take() else { return };
        self.catching_up = None;
        self.take_back(done).await;
    }

    /// `None`: the catch-up thread died, and the document with it.
    async fn take_back(&mut self, done: Option<CaughtUp>) {
        let failure = match done {
            Some((am, applied)) => {
                self.doc.put_back(am);
                applied.err().map(|e| e.to_string())
            }
            None => Some("the catch-up thread stopped".to_owned()),
        };
        if let Some(e) = failure {
            self.rebuild_after(e).await;
        }
    }

    /// Brings the Automerge document up to date, for the readers of its history. Only with
    /// nothing staged.
    async fn ensure_history(&mut self) -> &Document {
        self.finish_catch_up().await;
        if let Err(e) = self.doc.catch_up() {
            self.rebuild_after(e.to_string()).await;
        }
        &self.doc
    }

    /// Applying committed changes to the document cannot fail short of a bug; if it does, what
    /// is on disk is right, so the document is rebuilt from it.
    async fn rebuild_after(&mut self, error: String) {
        error!(workspace = %self.name, error, "applying local changes to the document failed; reloading it");
        if let Err(e) = self.load().await {
            error!(workspace = %self.name, error = %e, "reload after a failed catch-up failed");
        }
    }

    fn run_effect(&mut self, effect: Effect) {
        match effect {
            Effect::Send { conn, text, .. } => {
                if !text.as_str().is_empty() {
                    self.send_to(conn, text);
                }
            }
            Effect::Http { reply, outcome } => drop(reply.send(Ok(outcome))),
            Effect::Remote { reply } => drop(reply.send(Ok(()))),
            Effect::Broadcast { id, client, ops, heads } => {
                let any_v1 = self.subs.values().any(|s| s.v1);
                let any_seed = self.subs.values().any(|s| !s.v1);
                let v1 = any_v1.then(|| text(&ServerMessage::Tx { id, client, ops: ops.clone(), heads }));
                let seed: Vec<Utf8Bytes> = if any_seed {
                    ops.iter().map(|op| text(&ServerMessage::Op { payload: seed_op(op) })).collect()
                } else {
                    Vec::new()
                };
                let mut lagging = Vec::new();
                for (conn, sub) in &self.subs {
                    let msgs = if sub.v1 { std::slice::from_ref(v1.as_ref().expect("built when a v1 client exists")) } else { &seed[..] };
                    for m in msgs {
                        if sub.out.try_send(m.clone()).is_err() {
                            lagging.push(*conn);
                            break;
                        }
                    }
                }
                for conn in lagging {
                    self.kick(conn, CloseReason { code: close_code::RESYNC, reason: "too slow: reconnect and resume from your heads" });
                }
            }
        }
    }

    fn send_to(&mut self, conn: u64, text: Utf8Bytes) {
        let Some(sub) = self.subs.get(&conn) else { return };
        if sub.out.try_send(text).is_err() {
            self.kick(conn, CloseReason { code: close_code::RESYNC, reason: "too slow: reconnect and resume from your heads" });
        }
    }

    fn kick(&mut self, conn: u64, reason: CloseReason) {
        if let Some(sub) = self.subs.remove(&conn) {
            if !sub.out.is_closed() {
                warn!(workspace = %self.name, conn, code = reason.code, "disconnecting client: {}", reason.reason);
            }
            let _ = sub.kick.send(reason);
        }
    }

    fn init_text(&mut self) -> Utf8Bytes {
        if let Some(t) = &self.init_cache {
            return t.clone();
        }
        let t = text(&ServerMessage::Init { data: self.doc.data(), heads: hex_heads(&self.doc.heads()) });
        self.init_cache = Some(t.clone());
        t
    }

    async fn ensure_exists(&mut self) -> Result<(), WorkspaceError> {
        if self.exists {
            return Ok(());
        }
        if !self.shared.auto_create {
            return Err(WorkspaceError::NotFound { workspace: self.name.clone() });
        }
        let store = self.shared.store.clone();
        let name = self.name.clone();
        tokio::task::spawn_blocking(move || store.create_workspace(&name, now_ms()))
            .await
            .map_err(|_| WorkspaceError::Unavailable { workspace: self.name.clone() })??;
        info!(workspace = %self.name, "workspace created");
        self.exists = true;
        Ok(())
    }

    async fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Subscribe { conn, v1, resume, out, kick, reply } => {
                if let Err(e) = self.ensure_exists().await {
                    return drop(reply.send(Err(e)));
                }
                let current = hex_heads(&self.doc.heads());
                let first = match resume.filter(|_| v1) {
                    // Seen everything already: no need for the history.
                    Some(since) if since == current => Some(text(&ServerMessage::Changes { since, ops: Vec::new(), heads: current })),
                    Some(since) => match self.ensure_history().await.known_heads(&since) {
                        Ok(Some(hashes)) => match self.doc.ops_since(&hashes) {
                            Ok(ops) => Some(text(&ServerMessage::Changes { since, ops, heads: hex_heads(&self.doc.heads()) })),
                            Err(e) => return drop(reply.send(Err(e.into()))),
                        },
                        // Unknown or malformed heads: fall back to the whole state.
                        Ok(None) | Err(_) => None,
                    },
                    None => None,
                };
                let first = match first {
                    Some(t) => t,
                    None => self.init_text(),
                };
                if out.try_send(first).is_err() {
                    let _ = kick.send(CloseReason { code: close_code::RESYNC, reason: "outbound queue too small for the first message" });
                    return drop(reply.send(Ok(())));
                }
                self.subs.insert(conn, Subscriber { out, kick, v1 });
                let _ = reply.send(Ok(()));
            }
            Command::Unsubscribe { conn } => {
                self.subs.remove(&conn);
            }
            Command::Snapshot { reply } => {
                let r = if self.exists {
                    Ok(Snapshot { data: self.doc.data(), heads: hex_heads(&self.doc.heads()) })
                } else {
                    Err(WorkspaceError::NotFound { workspace: self.name.clone() })
                };
                let _ = reply.send(r);
            }
            Command::Get { key, reply } => {
                let r = if self.exists {
                    Ok((self.doc.get(&key).cloned(), hex_heads(&self.doc.heads())))
                } else {
                    Err(WorkspaceError::NotFound { workspace: self.name.clone() })
                };
                let _ = reply.send(r);
            }
            Command::History { limit, at, reply } => {
                if self.exists {
                    self.ensure_history().await;
                }
                let r = if !self.exists {
                    Err(WorkspaceError::NotFound { workspace: self.name.clone() })
                } else if let Some(at) = at {
                    self.doc.data_at(&at).map(|data| HistoryReply::At { data }).map_err(Into::into)
                } else {
                    let (total, changes) = self.doc.history(limit);
                    Ok(HistoryReply::Changes { total, heads: hex_heads(&self.doc.heads()), changes })
                };
                let _ = reply.send(r);
            }
            Command::Barrier { reply } => drop(reply.send(())),
            Command::Create { reply } => {
                if self.exists {
                    return drop(reply.send(Ok(false)));
                }
                let store = self.shared.store.clone();
                let name = self.name.clone();
                let r = tokio::task::spawn_blocking(move || store.create_workspace(&name, now_ms()))
                    .await
                    .map_err(|_| WorkspaceError::Unavailable { workspace: self.name.clone() })
                    .and_then(|r| r.map_err(Into::into));
                if r.is_ok() {
                    self.exists = true;
                }
                let _ = reply.send(r);
            }
            Command::Delete { reply } => {
                // A snapshot written after the delete would come back with the workspace.
                self.finish_catch_up().await;
                let conns: Vec<u64> = self.subs.keys().copied().collect();
                for conn in conns {
                    self.kick(conn, CloseReason { code: close_code::WORKSPACE_DELETED, reason: "workspace deleted" });
                }
                let store = self.shared.store.clone();
                let name = self.name.clone();
                let r = tokio::task::spawn_blocking(move || store.delete_workspace(&name))
                    .await
                    .map_err(|_| WorkspaceError::Unavailable { workspace: self.name.clone() })
                    .and_then(|r| r.map_err(Into::into));
                if r.is_ok() {
                    info!(workspace = %self.name, "workspace deleted");
                    self.doc = Document::new(&self.name, &self.shared.server_id);
                    self.exists = false;
                    self.next_seq = 0;
                    self.since_compact = 0;
                    self.init_cache = None;
                }
                let _ = reply.send(r);
            }
            Command::Write { .. } | Command::Remote { .. } => unreachable!("staged, not handled"),
        }
    }
}
