//! Server configuration: command-line flags (`tandem-server --help`) and secrets from the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Tandem's sync server: JWT-authenticated WebSocket sync of one Automerge document per workspace,
/// stored durably in an embedded redb database.
///
/// Secrets come from the environment, never from flags: TANDEM_JWT_SECRET (required, the HS256
/// secret tokens are verified with) and TANDEM_WEBHOOK_SECRET (required with --webhook-url, the
/// HMAC-SHA256 key that signs webhook bodies).
#[derive(Debug, Clone, Parser)]
#[command(name = "tandem-server", version)]
pub struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Directory holding the database (created if missing).
    #[arg(long, default_value = "./tandem-data", value_name = "DIR")]
    pub data: PathBuf,

    /// POST a signed `doc.updated` event here after each committed change.
    #[arg(long, value_name = "URL")]
    pub webhook_url: Option<String>,

    /// Give up on a webhook event after this many failed attempts (exponential backoff between them).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub webhook_max_attempts: u32,

    /// NATS server to replicate committed changes through (JetStream), e.g. nats://127.0.0.1:4222.
    /// Servers sharing a NATS cluster and stream converge; each keeps its own --data.
    #[arg(long, value_name = "URL")]
    pub nats_url: Option<String>,

    /// JetStream stream carrying the changes (subjects `<stream-lowercase>.<workspace>`).
    #[arg(long, default_value = "TANDEM_CHANGES", value_name = "NAME")]
    pub nats_stream: String,

    /// Largest WebSocket message accepted, in bytes; larger ones close the socket with 1009.
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    pub max_message_bytes: usize,

    /// Messages queued per client before it is considered too slow and disconnected (close 4000).
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub outbound_queue: usize,

    /// Seconds between server pings.
    #[arg(long, default_value_t = 20, value_name = "SECS")]
    pub ping_interval_secs: u64,

    /// Seconds without any frame from a client (pongs included) before it is dropped.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub ping_timeout_secs: u64,

    /// Save a compacted snapshot of a workspace after this many stored changes.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub compact_every: u64,

    /// Refuse op timestamps more than this many seconds ahead of the server clock (400), so one
    /// client with a broken clock cannot make a key unwritable.
    #[arg(long, default_value_t = 3600, value_name = "SECS")]
    pub max_clock_skew_secs: u64,

    /// Answer 404 for unknown workspaces instead of creating them on first use.
    #[arg(long)]
    pub no_auto_create: bool,

    /// Log as JSON lines instead of human-readable text.
    #[arg(long)]
    pub log_json: bool,
}

/// Everything the server needs, resolved (secrets included). Built by `main` from [`Cli`] and the
/// environment, or directly by tests.
#[derive(Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub jwt_secret: Vec<u8>,
    pub webhook: Option<WebhookConfig>,
    pub nats: Option<NatsConfig>,
    pub max_message_bytes: usize,
    pub outbound_queue: usize,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub compact_every: u64,
    pub max_clock_skew: Duration,
    pub auto_create: bool,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("jwt_secret", &"<redacted>")
            .field("webhook", &self.webhook.as_ref().map(|w| &w.url))
            .field("nats", &self.nats)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("outbound_queue", &self.outbound_queue)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub struct WebhookConfig {
    pub url: String,
    pub secret: Vec<u8>,
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

#[derive(Clone, Debug)]
pub struct NatsConfig {
    pub url: String,
    pub stream: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("TANDEM_JWT_SECRET is not set (or empty): refusing to start without a token secret")]
    MissingJwtSecret,
    #[error("--webhook-url is set but TANDEM_WEBHOOK_SECRET is not: refusing to send unsigned webhooks")]
    MissingWebhookSecret,
    #[error("--{flag} must be at least {min}")]
    TooSmall { flag: &'static str, min: u64 },
}

impl Config {
    /// Defaults for everything but the data directory and secret (what tests start from).
    pub fn new(data_dir: impl Into<PathBuf>, jwt_secret: impl Into<Vec<u8>>) -> Self {
        Config {
            data_dir: data_dir.into(),
            jwt_secret: jwt_secret.into(),
            webhook: None,
            nats: None,
            max_message_bytes: 1 << 20,
            outbound_queue: 1024,
            ping_interval: Duration::from_secs(20),
            ping_timeout: Duration::from_secs(60),
            compact_every: 1000,
            max_clock_skew: Duration::from_secs(3600),
            auto_create: true,
        }
    }

    pub fn from_cli(cli: &Cli, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let jwt_secret = env("TANDEM_JWT_SECRET").filter(|s| !s.is_empty()).ok_or(ConfigError::MissingJwtSecret)?;
        let webhook = match &cli.webhook_url {
            None => None,
            Some(url) => {
                let secret = env("TANDEM_WEBHOOK_SECRET")
                    .filter(|s| !s.is_empty())
                    .ok_or(ConfigError::MissingWebhookSecret)?;
                Some(WebhookConfig {
                    url: url.clone(),
                    secret: secret.into_bytes(),
                    max_attempts: cli.webhook_max_attempts.max(1),
                    initial_backoff: Duration::from_millis(500),
                    max_backoff: Duration::from_secs(300),
                })
            }
        };
        for (flag, value, min) in [
            ("outbound-queue", cli.outbound_queue as u64, 1),
            ("max-message-bytes", cli.max_message_bytes as u64, 1024),
            ("ping-interval-secs", cli.ping_interval_secs, 1),
            ("ping-timeout-secs", cli.ping_timeout_secs, 1),
            ("compact-every", cli.compact_every, 1),
        ] {
            if value < min {
                return Err(ConfigError::TooSmall { flag, min });
            }
        }
        Ok(Config {
            data_dir: cli.data.clone(),
            jwt_secret: jwt_secret.into_bytes(),
            webhook,
            nats: cli.nats_url.as_ref().map(|url| NatsConfig { url: url.clone(), stream: cli.nats_stream.clone() }),
            max_message_bytes: cli.max_message_bytes,
            outbound_queue: cli.outbound_queue,
            ping_interval: Duration::from_secs(cli.ping_interval_secs),
            ping_timeout: Duration::from_secs(cli.ping_timeout_secs),
            compact_every: cli.compact_every,
            max_clock_skew: Duration::from_secs(cli.max_clock_skew_secs),
            auto_create: !cli.no_auto_create,
        })
    }
}
