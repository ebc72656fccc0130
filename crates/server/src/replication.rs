//! Scale-out through NATS JetStream (`--nats-url`).
//!
//! Each committed local change is also written, in the same redb transaction, to a NATS outbox;
//! a publisher drains it into the stream (`<subject prefix>.<workspace>`, message id = change hash
//! so JetStream drops duplicates after a crash-and-republish; header `Tandem-Origin` = server id).
//! Each server reads the whole stream through its own durable consumer (named after its server
//! id, so it resumes where it stopped), skips its own changes, and hands the others to the
//! workspace actor, which merges, commits and broadcasts them like local writes. The message is
//! acked only after that commit, so a crash replays it (merging is idempotent).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream, AckKind};
use futures_util::StreamExt;
use tokio::sync::{watch, Notify};
use tracing::{debug, error, info, warn};

use crate::config::NatsConfig;
use crate::store::Store;
use crate::workspace::Registry;

const ORIGIN: &str = "Tandem-Origin";

#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    #[error("cannot connect to NATS at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("JetStream stream `{stream}`: {message}")]
    Stream { stream: String, message: String },
}

/// Subjects are `<stream name, lowercased>.<workspace>`.
fn subject_prefix(stream: &str) -> String {
    stream.to_ascii_lowercase()
}

pub async fn start(
    cfg: NatsConfig,
    server_id: String,
    store: Store,
    registry: Arc<Registry>,
    notify: Arc<Notify>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), ReplicationError> {
    let client = async_nats::ConnectOptions::new()
        .name(format!("tandem-server {server_id}"))
        .connect(cfg.url.as_str())
        .await
        .map_err(|e| ReplicationError::Connect { url: cfg.url.clone(), message: e.to_string() })?;
    let js = jetstream::new(client);
    let prefix = subject_prefix(&cfg.stream);
    let stream_err = |e: &dyn std::fmt::Display| ReplicationError::Stream { stream: cfg.stream.clone(), message: e.to_string() };
    let stream = js
        .get_or_create_stream(stream::Config {
            name: cfg.stream.clone(),
            subjects: vec![format!("{prefix}.>")],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(|e| stream_err(&e))?;
    let durable = format!("tandem-{server_id}");
    let consumer = stream
        .get_or_create_consumer(
            &durable,
            consumer::pull::Config {
                durable_name: Some(durable.clone()),
                ack_policy: consumer::AckPolicy::Explicit,
                deliver_policy: consumer::DeliverPolicy::All,
                ack_wait: Duration::from_secs(30),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| stream_err(&e))?;
    info!(url = %cfg.url, stream = %cfg.stream, consumer = %durable, "NATS replication started");

    tokio::spawn(publish_loop(js.clone(), prefix.clone(), server_id.clone(), store, notify, shutdown.clone()));
    tokio::spawn(consume_loop(consumer, prefix, server_id, registry, shutdown));
    Ok(())
}

async fn publish_loop(js: jetstream::Context, prefix: String, server_id: String, store: Store, notify: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let s = store.clone();
        let rows = match tokio::task::spawn_blocking(move || s.nats_outbox(256)).await {
            Ok(Ok(rows)) => rows,
            Ok(Err(e)) => {
                error!(error = %e, "cannot read NATS outbox");
                Vec::new()
            }
            Err(_) => return,
        };
        if rows.is_empty() {
            tokio::select! {
                _ = notify.notified() => continue,
                _ = crate::until_shutdown(&mut shutdown) => return,
                _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
            }
        }
        let mut done = None;
        for (id, workspace, change) in rows {
            let hash = match automerge::Change::from_bytes(change.clone()) {
                Ok(c) => c.hash().to_string(),
                Err(e) => {
                    error!(workspace, error = %e, "unreadable change in NATS outbox; skipped");
                    done = Some(id);
                    continue;
                }
            };
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(async_nats::header::NATS_MESSAGE_ID, hash.as_str());
            headers.insert(ORIGIN, server_id.as_str());
            let published = async {
                js.publish_with_headers(format!("{prefix}.{workspace}"), headers, change.into()).await?.await
            }
            .await;
            match published {
                Ok(_) => {
                    debug!(workspace, change = %hash, "published");
                    done = Some(id);
                    backoff = Duration::from_millis(100);
                }
                Err(e) => {
                    warn!(workspace, change = %hash, error = %e, "NATS publish failed; will retry");
                    break;
                }
            }
        }
        let failed = done.is_none();
        if let Some(upto) = done {
            let s = store.clone();
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || s.nats_done(upto)).await {
                error!(error = %e, "cannot clear NATS outbox");
            }
        }
        if failed {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }
}

async fn consume_loop(consumer: consumer::PullConsumer, prefix: String, server_id: String, registry: Arc<Registry>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let mut messages = match consumer.messages().await {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "NATS consumer unavailable; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            let next = tokio::select! {
                m = messages.next() => m,
                _ = crate::until_shutdown(&mut shutdown) => return,
            };
            let msg = match next {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    warn!(error = %e, "NATS consumer error");
                    continue;
                }
                None => break,
            };
            let own = msg.headers.as_ref().and_then(|h| h.get(ORIGIN)).is_some_and(|o| o.as_str() == server_id);
            let workspace = msg.subject.as_str().strip_prefix(&format!("{prefix}.")).unwrap_or_default().to_owned();
            if own || workspace.is_empty() {
                let _ = msg.ack().await;
                continue;
            }
            match registry.handle(&workspace).remote(msg.payload.to_vec()).await {
                Ok(()) => {
                    let _ = msg.ack().await;
                }
                Err(e) => {
                    warn!(workspace, error = %e, "cannot apply replicated change; redelivery requested");
                    let _ = msg.ack_with(AckKind::Nak(Some(Duration::from_secs(1)))).await;
                }
            }
        }
    }
}
