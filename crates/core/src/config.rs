//! Engine and collection configuration.

use serde::{Deserialize, Serialize};

use crate::retry::RetryPolicy;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineConfig {
    /// Identifies this engine instance; part of every transaction id, and the `client` the
    /// server deduplicates retries by. Should be unique per instance (the browser runtime uses a
    /// random id per page load).
    pub client_id: String,
    /// Seeds the generator behind retry jitter, so a run can be reproduced exactly.
    pub seed: u64,
    pub retry: RetryPolicy,
    /// A persist attempt that has not reported back after this long counts as a retriable
    /// failure. `None` waits forever.
    pub attempt_timeout_ms: Option<u64>,
    pub history: HistoryPolicy,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            client_id: "local".into(),
            seed: 0,
            retry: RetryPolicy::default(),
            attempt_timeout_ms: None,
            history: HistoryPolicy::default(),
        }
    }
}

/// Opt-in pruning of finished transactions. Seed 004 keeps all history, so by default nothing is
/// pruned; a long-running app sets a bound. Pruned transactions are erased from storage too.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HistoryPolicy {
    /// Keep at most this many finished (completed or failed) transactions.
    pub max_finished: Option<usize>,
    /// Drop finished transactions older than this (by when they finished), in milliseconds.
    pub max_age_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CollectionConfig {
    pub name: String,
    /// The record field holding the key.
    pub key_field: String,
    /// Merge (registered with `Engine::register_merge`) for parallel transactions on this
    /// collection that do not name their own.
    pub merge: Option<String>,
    /// No sync layer shows this collection's writes (a local collection): a completed
    /// transaction's changes become its synced data (`Effect::LocalSynced`) instead of waiting
    /// in the overlay for a sync change that never comes.
    pub local: bool,
}

impl Default for CollectionConfig {
    fn default() -> Self {
        CollectionConfig { name: String::new(), key_field: "id".into(), merge: None, local: false }
    }
}

impl CollectionConfig {
    pub fn new(name: impl Into<String>) -> Self {
        CollectionConfig { name: name.into(), ..Default::default() }
    }

    pub fn key_field(mut self, field: impl Into<String>) -> Self {
        self.key_field = field.into();
        self
    }

    pub fn merge(mut self, merge: impl Into<String>) -> Self {
        self.merge = Some(merge.into());
        self
    }

    pub fn local(mut self) -> Self {
        self.local = true;
        self
    }
}
