//! `doc.updated` webhooks.
//!
//! Events are written to an outbox table in the same redb transaction as the change they
//! describe, so a committed change always gets its event (even across a crash) and a retried
//! client transaction, answered from its dedup record, never makes a second one. This worker
//! delivers the outbox off the socket path: POST, `X-Tandem-Signature: sha256=<hex HMAC-SHA256 of
//! the body>`, retried with exponential backoff and jitter; the row is deleted once delivered or
//! given up on.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::sync::{watch, Notify, Semaphore};
use tracing::{debug, error, warn};

use crate::config::WebhookConfig;
use crate::store::Store;

/// Deliveries in flight at once.
const CONCURRENCY: usize = 8;

/// `sha256=<hex>` of `body` under `secret`: the value of the `X-Tandem-Signature` header.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub fn install_tls_provider() {
    // reqwest is built without a bundled provider; ring is already linked for NATS.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn spawn(cfg: WebhookConfig, store: Store, notify: Arc<Notify>, mut shutdown: watch::Receiver<bool>) -> Result<(), String> {
    install_tls_provider();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("tandem-server/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())?;
    let cfg = Arc::new(cfg);
    tokio::spawn(async move {
        let permits = Arc::new(Semaphore::new(CONCURRENCY));
        let mut last: Option<u64> = None;
        loop {
            let s = store.clone();
            let rows = tokio::task::spawn_blocking(move || s.webhook_outbox(last, 256)).await;
            let rows = match rows {
                Ok(Ok(rows)) => rows,
                Ok(Err(e)) => {
                    error!(error = %e, "cannot read webhook outbox");
                    Vec::new()
                }
                Err(_) => Vec::new(),
            };
            if rows.is_empty() {
                tokio::select! {
                    _ = notify.notified() => continue,
                    _ = crate::until_shutdown(&mut shutdown) => return,
                    // Belt and braces: also look again now and then.
                    _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
                }
            }
            for (id, body) in rows {
                last = Some(id);
                let Ok(permit) = permits.clone().acquire_owned().await else { return };
                let (client, cfg, store) = (client.clone(), cfg.clone(), store.clone());
                tokio::spawn(async move {
                    deliver(&client, &cfg, id, body).await;
                    let _ = tokio::task::spawn_blocking(move || store.webhook_done(id)).await;
                    drop(permit);
                });
            }
        }
    });
    Ok(())
}

async fn deliver(client: &reqwest::Client, cfg: &WebhookConfig, id: u64, body: Vec<u8>) {
    let sig = signature(&cfg.secret, &body);
    let event_id = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_owned))
        .unwrap_or_default();
    let mut delay = cfg.initial_backoff;
    for attempt in 1..=cfg.max_attempts {
        let result = client
            .post(&cfg.url)
            .header("content-type", "application/json")
            .header("x-tandem-event", "doc.updated")
            .header("x-tandem-delivery", &event_id)
            .header("x-tandem-signature", &sig)
            .body(body.clone())
            .send()
            .await;
        match result {
            Ok(res) if res.status().is_success() => {
                debug!(outbox = id, event = %event_id, attempt, "webhook delivered");
                return;
            }
            Ok(res) => warn!(outbox = id, event = %event_id, attempt, status = res.status().as_u16(), "webhook refused"),
            Err(e) => warn!(outbox = id, event = %event_id, attempt, error = %e, "webhook failed"),
        }
        if attempt < cfg.max_attempts {
            tokio::time::sleep(jitter(delay)).await;
            delay = (delay * 2).min(cfg.max_backoff);
        }
    }
    error!(outbox = id, event = %event_id, attempts = cfg.max_attempts, "webhook given up");
}

/// 75–125 % of `d`, so retries of many events do not stampede together.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |t| t.subsec_nanos());
    d.mul_f64(0.75 + (nanos % 1000) as f64 / 2000.0)
}
