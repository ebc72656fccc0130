//! tandem-server: the sync server of Tandem.
//!
//! Seed 001's contract (`GET /v1/sync/{workspace}`, JWT HS256, `init`/`op`/`error`) plus Tandem's
//! versioned additions (transactions with acks, deletes, idempotent retries, resume from heads),
//! described in `docs/protocol.md`. [`app`] builds the router, apart from `main`, so tests run the
//! real thing on a loopback port.

pub mod auth;
pub mod background;
pub mod catch_up;
pub mod committer;
pub mod config;
pub mod document;
pub mod http;
pub mod replication;
pub mod store;
pub mod webhook;
pub mod workspace;
pub mod ws;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use tokio::sync::{watch, Notify};

pub use crate::config::Config;
use crate::auth::Authenticator;
use crate::committer::Committer;
use crate::store::{Store, StoreError};
use crate::workspace::{Registry, Shared};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("webhook client: {0}")]
    Webhook(String),
    #[error(transparent)]
    Replication(#[from] replication::ReplicationError),
}

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub auth: Authenticator,
    pub store: Store,
    pub registry: Arc<Registry>,
    shutdown: watch::Sender<bool>,
    sessions: Sessions,
    next_conn: AtomicU64,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Opens the store and starts the background workers (webhooks, NATS). Needs a Tokio runtime.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        let dir = config.data_dir.clone();
        let store = tokio::task::spawn_blocking(move || Store::open(&dir))
            .await
            .map_err(|e| StartError::Store(StoreError::DataDir { path: e.to_string(), source: std::io::Error::other("open panicked") }))??;
        let server_id = store.server_id()?;
        let webhook_notify = config.webhook.as_ref().map(|_| Arc::new(Notify::new()));
        let nats_notify = config.nats.as_ref().map(|_| Arc::new(Notify::new()));
        let committer = Committer::start(store.clone()).map_err(|source| StoreError::Thread { source })?;
        let shared = Arc::new(Shared {
            store: store.clone(),
            committer,
            server_id: server_id.clone(),
            auto_create: config.auto_create,
            compact_every: config.compact_every,
            max_clock_skew: config.max_clock_skew,
            webhook: webhook_notify.clone(),
            nats: nats_notify.clone(),
        });
        let registry = Arc::new(Registry::new(shared));
        let (shutdown, _) = watch::channel(false);
        if let (Some(cfg), Some(notify)) = (&config.webhook, webhook_notify) {
            webhook::spawn(cfg.clone(), store.clone(), notify, shutdown.subscribe()).map_err(StartError::Webhook)?;
        }
        if let (Some(cfg), Some(notify)) = (&config.nats, nats_notify) {
            replication::start(cfg.clone(), hex::encode(&server_id), store.clone(), registry.clone(), notify, shutdown.subscribe()).await?;
        }
        Ok(AppState(Arc::new(Inner {
            auth: Authenticator::new(&config.jwt_secret),
            config,
            store,
            registry,
            shutdown,
            sessions: Sessions::default(),
            next_conn: AtomicU64::new(1),
        })))
    }

    /// Starts a graceful shutdown: sockets stop reading, in-flight writes are committed and
    /// answered, then every socket is closed with 1001.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Waits until every WebSocket session has ended (or `timeout`); `true` if they all did.
    pub async fn wait_sessions_closed(&self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.sessions.wait_idle()).await.is_ok()
    }

    /// Shuts down and waits until every actor, session and request has let go of the database,
    /// so it is closed when this returns `true` (a restart in the same process can reopen it).
    pub async fn close(self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        self.begin_shutdown();
        self.wait_sessions_closed(timeout).await;
        self.registry.close_all();
        loop {
            let idle = Arc::strong_count(&self.0) == 1 && Arc::strong_count(self.registry.shared()) == 1;
            if idle {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Number of open WebSocket sessions.
    pub fn open_sessions(&self) -> usize {
        self.sessions.count.load(Ordering::SeqCst)
    }
}

/// Resolves once shutdown has begun (or the state is gone).
pub(crate) async fn until_shutdown(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|down| *down).await;
}

/// Counts live sessions so shutdown can wait for them (upgraded sockets are not tracked by hyper).
#[derive(Default)]
struct Sessions {
    count: AtomicUsize,
    idle: Notify,
}

struct SessionGuard<'a>(&'a Sessions);

impl Sessions {
    fn enter(&self) -> SessionGuard<'_> {
        self.count.fetch_add(1, Ordering::SeqCst);
        SessionGuard(self)
    }

    async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for SessionGuard<'_> {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// The whole HTTP surface.
pub fn app(state: AppState) -> Router {
    let body_limit = state.config.max_message_bytes;
    Router::new()
        .route("/healthz", get(http::healthz))
        .route("/v1/sync/{workspace}", get(ws::sync))
        .route("/v1/history/{workspace}", get(http::history))
        .route("/v1/workspaces", get(http::list_workspaces).post(http::create_workspace))
        .route("/v1/workspaces/{workspace}", get(http::get_workspace).delete(http::delete_workspace))
        .route(
            "/v1/workspaces/{workspace}/keys/{*key}",
            get(http::get_key).put(http::put_key).delete(http::delete_key),
        )
        .fallback(http::not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}
