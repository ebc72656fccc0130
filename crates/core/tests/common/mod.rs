//! A test driver: runs the engine's effects the way a real driver would, but records them, and
//! lets the test decide when each persist resolves and how time passes.
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_json::Value;
use tandem_core::{
    ChangeKind, CollectionConfig, Effect, Engine, EngineConfig, ErrorInfo, KeyChange, RetryPolicy, SyncBatch, Transaction,
    TransactionInput, TransactionState,
};

pub const TODOS: &str = "todos";

pub struct Harness {
    pub engine: Engine,
    pub now: u64,
    /// Persist calls not answered yet: transaction id → attempt.
    pub running: BTreeMap<String, u32>,
    /// Every persist call, in order.
    pub persist_log: Vec<(String, u32)>,
    pub await_syncs: Vec<String>,
    /// The outbox: what `SaveTransaction`/`EraseTransaction` left in storage.
    pub stored: BTreeMap<String, Transaction>,
    pub data_changes: Vec<(String, Vec<KeyChange>)>,
    pub state_events: Vec<(String, TransactionState)>,
    /// `LocalSynced` effects: (collection, key, record).
    pub local_synced: Vec<(String, String, Option<Value>)>,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_config(config())
    }

    pub fn with_config(config: EngineConfig) -> Self {
        let mut engine = Engine::new(config);
        engine.create_collection(CollectionConfig::new(TODOS)).unwrap();
        Harness {
            engine,
            now: 1_000,
            running: BTreeMap::new(),
            persist_log: Vec::new(),
            await_syncs: Vec::new(),
            stored: BTreeMap::new(),
            data_changes: Vec::new(),
            state_events: Vec::new(),
            local_synced: Vec::new(),
        }
    }

    pub fn drain(&mut self) {
        while let Some(effect) = self.engine.poll_effect() {
            match effect {
                Effect::Persist { transaction, attempt } => {
                    self.persist_log.push((transaction.to_string(), attempt));
                    self.running.insert(transaction.to_string(), attempt);
                }
                Effect::AwaitSync { transaction } => self.await_syncs.push(transaction.to_string()),
                Effect::SaveTransaction { transaction } => {
                    let record = self.engine.transaction(&transaction).expect("saved transactions exist").clone();
                    self.stored.insert(transaction.to_string(), record);
                }
                Effect::EraseTransaction { transaction } => {
                    self.stored.remove(&*transaction);
                }
                Effect::TransactionChanged { transaction, state } => {
                    self.state_events.push((transaction.to_string(), state))
                }
                Effect::DataChanged { collection, changes } => self.data_changes.push((collection.to_string(), changes)),
                Effect::LocalSynced { collection, key, record } => {
                    self.local_synced.push((collection.to_string(), key.to_string(), record.map(|r| r.to_value())))
                }
                Effect::Loaded { collection, keys } => {
                    let record = |key: &str| self.engine.get(&collection, key).cloned();
                    let inserts = keys
                        .into_iter()
                        .map(|key| KeyChange { record: record(&key), key, kind: ChangeKind::Insert })
                        .collect();
                    self.data_changes.push((collection.to_string(), inserts))
                }
            }
        }
    }

    pub fn mutate(&mut self, input: TransactionInput) -> String {
        let id = self.engine.mutate(self.now, input).expect("mutation accepted");
        self.drain();
        id.to_string()
    }

    pub fn insert(&mut self, record: Value) -> String {
        self.mutate(TransactionInput::new().insert(TODOS, record))
    }

    pub fn update(&mut self, key: &str, changes: Value) -> String {
        self.mutate(TransactionInput::new().update(TODOS, key, changes))
    }

    /// Resolves the running persist of `id`.
    pub fn persist_ok(&mut self, id: &str) {
        let attempt = self.running.remove(id).unwrap_or_else(|| panic!("{id} is not persisting"));
        self.engine.persist_succeeded(self.now, id, attempt).unwrap();
        self.drain();
    }

    /// Rejects the running persist of `id`.
    pub fn persist_err(&mut self, id: &str, error: ErrorInfo) {
        let attempt = self.running.remove(id).unwrap_or_else(|| panic!("{id} is not persisting"));
        self.engine.persist_failed(self.now, id, attempt, error).unwrap();
        self.drain();
    }

    pub fn sync(&mut self, batch: SyncBatch) {
        self.engine.sync_received(self.now, batch).unwrap();
        self.drain();
    }

    pub fn advance(&mut self, ms: u64) {
        self.now += ms;
        self.engine.handle_timeout(self.now);
        self.drain();
    }

    /// Runs time forward to the engine's next timer.
    pub fn advance_to_next_timer(&mut self) -> u64 {
        let due = self.engine.poll_timeout().expect("a timer is set");
        let waited = due - self.now;
        self.advance(waited);
        waited
    }

    pub fn visible(&self, key: &str) -> Option<Value> {
        self.engine.get(TODOS, key).map(|r| r.to_value())
    }

    pub fn state(&self, id: &str) -> TransactionState {
        self.engine.transaction(id).unwrap().state
    }

    pub fn tx(&self, id: &str) -> &Transaction {
        self.engine.transaction(id).unwrap()
    }

    /// Seeds the synced layer as a sync step's initial data would.
    pub fn seed(&mut self, records: Vec<Value>) {
        let mut batch = SyncBatch::new(TODOS).as_snapshot();
        batch.changes = records.into_iter().map(tandem_core::SyncChange::Upsert).collect();
        self.sync(batch);
    }
}

/// A fixed seed and short, jitter-free retries so tests can state exact delays.
pub fn config() -> EngineConfig {
    EngineConfig {
        client_id: "test".into(),
        seed: 42,
        retry: RetryPolicy { initial_delay_ms: 100, factor: 2.0, max_delay_ms: 10_000, jitter: 0.0, max_retries: 4 },
        ..EngineConfig::default()
    }
}

pub fn retriable(message: &str) -> ErrorInfo {
    ErrorInfo::thrown("Error", message)
}
