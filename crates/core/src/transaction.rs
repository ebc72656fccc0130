//! Transactions, their attempts and pending mutations — seed 004's types, serialisable so the
//! driver can store them in an outbox and hand them back to [`crate::Engine::restore`].
//!
//! Times are Unix milliseconds as given by the driver; `timestamp`s are HLC microseconds.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::record::{Key, Record};

/// A transaction id: shared, since it is handed around in effects and indexes.
pub type TxId = std::sync::Arc<str>;

/// The id of a mutation (`{transaction}/{index}`) or an attempt (`{transaction}#{number}`).
/// Every mutation and attempt has one and few are ever read, so a new one is kept as its parts
/// and spelt when serialised (two allocations and two number formattings less per update);
/// one read back from storage keeps the text it had.
#[derive(Clone, Debug)]
pub enum DerivedId {
    Parts { transaction: TxId, separator: char, n: u32 },
    Text(String),
}

impl DerivedId {
    pub(crate) fn new(transaction: &TxId, separator: char, n: u32) -> Self {
        DerivedId::Parts { transaction: transaction.clone(), separator, n }
    }

    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            DerivedId::Parts { transaction, separator, n } => compose_id(transaction, *separator, u64::from(*n)).into(),
            DerivedId::Text(text) => text.as_str().into(),
        }
    }
}

/// Equal when spelt the same, however kept.
impl PartialEq for DerivedId {
    fn eq(&self, other: &Self) -> bool {
        self.text() == other.text()
    }
}

impl Eq for DerivedId {}

impl Serialize for DerivedId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text())
    }
}

impl<'de> Deserialize<'de> for DerivedId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(DerivedId::Text)
    }
}

/// Seed 004's transaction states, spelled as in the seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransactionState {
    /// Waiting for an earlier transaction on a common object (`queued_behind`).
    Queued,
    /// Created, or waiting for its next attempt after a retriable failure.
    Pending,
    /// The driver is running `persist` for `current_attempt`.
    Persisting,
    /// Persist succeeded; waiting for the sync step to report the change.
    PersistedAwaitingSync,
    Completed,
    /// Failed on its own or because a transaction it was queued behind failed.
    Failed,
}

impl TransactionState {
    pub fn is_terminal(self) -> bool {
        matches!(self, TransactionState::Completed | TransactionState::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TransactionState::Queued => "queued",
            TransactionState::Pending => "pending",
            TransactionState::Persisting => "persisting",
            TransactionState::PersistedAwaitingSync => "persisted_awaiting_sync",
            TransactionState::Completed => "completed",
            TransactionState::Failed => "failed",
        }
    }
}

/// Ordered transactions queue behind earlier ones on common objects and fail with them;
/// parallel ones run at once and their changes are merged over every sync update.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Strategy {
    #[default]
    Ordered,
    Parallel {
        /// Name of a merge registered with [`crate::Engine::register_merge`]; `None` uses the
        /// collection's merge, or the default field-by-field re-application.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        merge: Option<String>,
    },
}

impl Strategy {
    pub fn is_ordered(&self) -> bool {
        matches!(self, Strategy::Ordered)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MutationKind {
    Insert,
    Update,
    Delete,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MutationState {
    Created,
    Persisting,
    Synced,
}

/// One change to one record, as seed 004's `PendingMutation`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingMutation {
    pub mutation_id: DerivedId,
    #[serde(rename = "type")]
    pub kind: MutationKind,
    pub collection: std::sync::Arc<str>,
    pub key: Key,
    /// The visible record before this mutation (`{}` for an insert).
    pub original: Record,
    /// The record after it (`{}` for a delete).
    pub modified: Record,
    /// What the mutation sets: the whole record for an insert, the changed fields for an update,
    /// `{}` for a delete.
    pub changes: Record,
    pub metadata: Value,
    /// HLC timestamp (Unix µs) ordering this write against others.
    pub timestamp: u64,
    pub created_at: u64,
    pub updated_at: u64,
    pub state: MutationState,
}

/// An error as it crosses into transaction history: a stable `name`, a message, and whether a
/// retry could help. `NonRetriableError` (by name) is never retried.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub name: String,
    pub message: String,
    pub retriable: bool,
}

impl ErrorInfo {
    pub const NON_RETRIABLE: &'static str = "NonRetriableError";

    /// An error thrown by user code: retriable unless it is named `NonRetriableError`.
    pub fn thrown(name: impl Into<String>, message: impl Into<String>) -> Self {
        let name = name.into();
        let retriable = name != Self::NON_RETRIABLE;
        ErrorInfo { name, message: message.into(), retriable }
    }

    pub fn non_retriable(message: impl Into<String>) -> Self {
        Self::thrown(Self::NON_RETRIABLE, message)
    }
}

/// Why a transaction failed. `transaction_id` is set when it failed because the transaction it
/// was queued behind (directly or transitively) failed, and names that root cause.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionError {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<TxId>,
    pub message: String,
    pub error: ErrorInfo,
}

/// One run of `persist`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub id: DerivedId,
    /// 1-based.
    pub number: u32,
    pub started_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_scheduled_for: Option<u64>,
    /// The page went away while this attempt ran; it is not counted against the retry budget.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

/// A transaction: seed 004's fields plus what the engine needs to restore it after a reload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    /// Stable across attempts and reloads: also the idempotency key sent to the server.
    pub id: TxId,
    /// The client (engine instance) that created it.
    pub client: std::sync::Arc<str>,
    pub state: TransactionState,
    pub strategy: Strategy,
    /// Whether persist success waits for the sync step (`persisted_awaiting_sync`).
    pub await_sync: bool,
    pub created_at: u64,
    pub updated_at: u64,
    /// HLC timestamp of creation; orders restored transactions.
    pub timestamp: u64,
    pub mutations: Vec<PendingMutation>,
    pub attempts: Vec<Attempt>,
    /// Number of the attempt running or last run; 0 before the first.
    pub current_attempt: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_behind: Option<TxId>,
    /// Boxed: a failure is rare, and without its room in line a transaction's box in the engine
    /// is under 256 bytes, the size from which the wasm allocator (dlmalloc) searches a tree of
    /// free chunks rather than taking one from an exact-size list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Box<TransactionError>>,
    pub metadata: Value,
}

impl Transaction {
    /// Attempts that count against the retry budget (interrupted ones do not).
    pub fn counted_attempts(&self) -> u32 {
        self.attempts.iter().filter(|a| !a.interrupted).count() as u32
    }

    /// The changes of this transaction, by collection then key: a record's changed fields for an
    /// insert or update, `null` for a delete. This is seed 004's `changes` given to `persist`.
    pub fn changes(&self) -> Map<String, Value> {
        let mut by_collection: Map<String, Value> = Map::new();
        for m in &self.mutations {
            let entry = by_collection
                .entry(String::from(&*m.collection))
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(keys) = entry else { unreachable!("collections map to objects") };
            let change = match m.kind {
                MutationKind::Delete => Value::Null,
                _ => Value::Object(m.changes.to_map()),
            };
            match (keys.get_mut(&*m.key), change) {
                // Several mutations of one key in one transaction: later fields win.
                (Some(Value::Object(prev)), Value::Object(next)) if m.kind == MutationKind::Update => {
                    prev.extend(next)
                }
                (_, change) => {
                    keys.insert(String::from(&*m.key), change);
                }
            }
        }
        by_collection
    }

    /// [`Transaction::changes`] as JSON text. A transaction of one mutation (an app's usual
    /// one) is written straight from it, without the map and the copy of its fields that
    /// `changes()` makes: the persist call of every update gets this text.
    pub fn changes_json(&self) -> String {
        let [only] = self.mutations.as_slice() else {
            return crate::protocol::json_text(&self.changes());
        };
        let fields = (only.kind != MutationKind::Delete).then_some(&*only.changes);
        crate::protocol::json_text(&OneEntry(&only.collection, OneEntry(&only.key, fields)))
    }
}

/// A JSON object of one entry.
struct OneEntry<'a, V>(&'a str, V);

impl<V: Serialize> Serialize for OneEntry<'_, V> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(self.0, &self.1)?;
        map.end()
    }
}

/// `prefix`, `separator`, then `n` in decimal, without the formatting machinery: ids are built
/// for every transaction, mutation and attempt, and `format!` shows in profiles.
pub(crate) fn compose_id(prefix: &str, separator: char, n: u64) -> String {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(n);
    let mut id = String::with_capacity(prefix.len() + separator.len_utf8() + digits.len());
    id.push_str(prefix);
    id.push(separator);
    id.push_str(digits);
    id
}

/// [`compose_id`] as a shared id, in one allocation when it is short (as ids are).
pub(crate) fn compose_shared_id(prefix: &str, separator: char, n: u64) -> std::sync::Arc<str> {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(n);
    let mut buffer = [0u8; 96];
    let len = prefix.len() + separator.len_utf8() + digits.len();
    if len > buffer.len() {
        return compose_id(prefix, separator, n).into();
    }
    buffer[..prefix.len()].copy_from_slice(prefix.as_bytes());
    separator.encode_utf8(&mut buffer[prefix.len()..]);
    buffer[len - digits.len()..len].copy_from_slice(digits.as_bytes());
    match std::str::from_utf8(&buffer[..len]) {
        Ok(id) => id.into(),
        // Not `expect`, which would link `Utf8Error`'s `Debug` into the wasm client.
        Err(_) => unreachable!("built from strings"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefix_separator_decimal_whatever_the_prefix_length() {
        assert_eq!(compose_id("c", '/', 0), "c/0");
        assert_eq!(&*compose_shared_id("client", '-', 1_700_000_000_000_123), "client-1700000000000123");
        let long = "é".repeat(60);
        assert_eq!(&*compose_shared_id(&long, '#', u64::MAX), format!("{long}#{}", u64::MAX));
    }

    #[test]
    fn changes_json_is_the_changes_map_for_one_mutation_or_several() {
        use crate::{CollectionConfig, Engine, EngineConfig, SyncBatch, SyncChange, TransactionInput};
        use serde_json::json;
        let mut engine = Engine::new(EngineConfig::default());
        engine.create_collection(CollectionConfig::new("todos")).unwrap();
        let mut batch = SyncBatch::new("todos");
        batch.changes = vec![SyncChange::Upsert(json!({"id": "a", "n": 1})), SyncChange::Upsert(json!({"id": "b"}))];
        engine.sync_received(0, batch).unwrap();
        let inputs = [
            TransactionInput::new().update("todos", "a", json!({"n": 2, "t": "é\"x"})),
            TransactionInput::new().insert("todos", json!({"id": "c", "z": 1, "a": [1]})),
            TransactionInput::new().delete("todos", "b"),
            TransactionInput::new().update("todos", "a", json!({"n": 3})).update("todos", "a", json!({"m": 4})),
        ];
        for (i, input) in inputs.into_iter().enumerate() {
            let id = engine.mutate(1 + i as u64, input).unwrap();
            let tx = engine.transaction(&id).unwrap();
            let written: Value = serde_json::from_str(&tx.changes_json()).unwrap();
            assert_eq!(written, Value::Object(tx.changes()), "input {i}");
        }
    }
}
