//! A stored [`Transaction`] read back from JSON by hand.
//!
//! `Transaction` derives serde (the server and native drivers use it), but the browser client
//! reads its outbox and its `persist` arguments through this reader instead: serde's derived
//! deserializers for `Transaction` and everything in it, instantiated for `serde_json`, cost the
//! wasm build ~30 KB gzipped (and pull in float formatting through serde's error messages). It
//! reads the JSON that `serde_json::to_string(&tx)` writes and accepts what serde's derive
//! accepts — missing optional fields, `null` for an `Option`, unknown fields ignored — which
//! the tests check against the derived form. (A duplicated field is the one difference: serde
//! refuses it, a `serde_json::Value` keeps the last one.)

use std::sync::Arc;

use serde_json::Value;

use crate::record::{Fields, Record};
use crate::transaction::{
    Attempt, DerivedId, ErrorInfo, MutationKind, MutationState, PendingMutation, Strategy, Transaction, TransactionError,
    TransactionState,
};

impl Transaction {
    /// Reads a transaction from the JSON `serde_json::to_string` writes for it.
    pub fn from_json(text: &str) -> Result<Transaction, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| crate::protocol::json_error(&e))?;
        Transaction::from_value(value)
    }

    /// Reads a transaction from its JSON value (as `serde_json::from_value` would).
    pub fn from_value(value: Value) -> Result<Transaction, String> {
        let mut f = Reader::of(
            value,
            &[
                "id",
                "client",
                "state",
                "strategy",
                "await_sync",
                "created_at",
                "updated_at",
                "timestamp",
                "mutations",
                "attempts",
                "current_attempt",
                "queued_behind",
                "error",
                "metadata",
            ],
        )?;
        Ok(Transaction {
            id: f.string("id")?.into(),
            client: f.string("client")?.into(),
            state: match f.string("state")?.as_str() {
                "queued" => TransactionState::Queued,
                "pending" => TransactionState::Pending,
                "persisting" => TransactionState::Persisting,
                "persisted_awaiting_sync" => TransactionState::PersistedAwaitingSync,
                "completed" => TransactionState::Completed,
                "failed" => TransactionState::Failed,
                _ => return Err(invalid("state", "a transaction state")),
            },
            strategy: strategy(f.required("strategy")?)?,
            await_sync: f.boolean("await_sync")?,
            created_at: f.number("created_at")?,
            updated_at: f.number("updated_at")?,
            timestamp: f.number("timestamp")?,
            mutations: f.list("mutations", pending_mutation)?,
            attempts: f.list("attempts", attempt)?,
            current_attempt: f.small("current_attempt")?,
            queued_behind: f.optional_string("queued_behind")?.map(Into::into),
            error: f.optional("error").map(transaction_error).transpose()?.map(Box::new),
            metadata: f.required("metadata")?,
        })
    }
}

/// The fields of an object that a type reads, taken out one by one; others are ignored.
struct Reader {
    names: &'static [&'static str],
    values: Vec<Option<Value>>,
}

impl Reader {
    fn of(value: Value, names: &'static [&'static str]) -> Result<Reader, String> {
        let Value::Object(map) = value else {
            return Err(invalid("a transaction record", "an object"));
        };
        let mut values: Vec<Option<Value>> = names.iter().map(|_| None).collect();
        for (name, value) in map {
            if let Some(i) = names.iter().position(|n| *n == name) {
                values[i] = Some(value);
            }
        }
        Ok(Reader { names, values })
    }

    /// The field, `None` if missing.
    fn take(&mut self, name: &str) -> Option<Value> {
        let i = self.names.iter().position(|n| *n == name).expect("a field the reader declared");
        self.values[i].take()
    }

    fn required(&mut self, name: &str) -> Result<Value, String> {
        self.take(name).ok_or_else(|| missing(name))
    }

    /// An `Option` field: missing or `null` is `None`.
    fn optional(&mut self, name: &str) -> Option<Value> {
        self.take(name).filter(|v| !v.is_null())
    }

    fn string(&mut self, name: &str) -> Result<String, String> {
        match self.required(name)? {
            Value::String(s) => Ok(s),
            _ => Err(invalid(name, "a string")),
        }
    }

    fn optional_string(&mut self, name: &str) -> Result<Option<String>, String> {
        match self.optional(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(invalid(name, "a string")),
        }
    }

    fn boolean(&mut self, name: &str) -> Result<bool, String> {
        self.required(name)?.as_bool().ok_or_else(|| invalid(name, "a boolean"))
    }

    fn number(&mut self, name: &str) -> Result<u64, String> {
        self.required(name)?.as_u64().ok_or_else(|| invalid(name, "a non-negative integer"))
    }

    fn optional_number(&mut self, name: &str) -> Result<Option<u64>, String> {
        self.optional(name).map(|v| v.as_u64().ok_or_else(|| invalid(name, "a non-negative integer"))).transpose()
    }

    fn small(&mut self, name: &str) -> Result<u32, String> {
        u32::try_from(self.number(name)?).map_err(|_| invalid(name, "a 32-bit integer"))
    }

    fn list<T>(&mut self, name: &str, read: fn(Value) -> Result<T, String>) -> Result<Vec<T>, String> {
        match self.required(name)? {
            Value::Array(items) => items.into_iter().map(read).collect(),
            _ => Err(invalid(name, "an array")),
        }
    }

    fn record(&mut self, name: &str) -> Result<Record, String> {
        match self.required(name)? {
            Value::Object(map) => Ok(Arc::new(Fields::from(map))),
            _ => Err(invalid(name, "an object")),
        }
    }
}

#[cold]
#[inline(never)]
fn missing(name: &str) -> String {
    format!("missing field `{name}`")
}

#[cold]
#[inline(never)]
fn invalid(name: &str, expected: &str) -> String {
    format!("`{name}` must be {expected}")
}

fn strategy(value: Value) -> Result<Strategy, String> {
    let mut f = Reader::of(value, &["type", "merge"])?;
    match f.string("type")?.as_str() {
        "ordered" => Ok(Strategy::Ordered),
        "parallel" => Ok(Strategy::Parallel { merge: f.optional_string("merge")? }),
        _ => Err(invalid("strategy.type", "'ordered' or 'parallel'")),
    }
}

fn pending_mutation(value: Value) -> Result<PendingMutation, String> {
    let mut f = Reader::of(
        value,
        &[
            "mutation_id",
            "type",
            "collection",
            "key",
            "original",
            "modified",
            "changes",
            "metadata",
            "timestamp",
            "created_at",
            "updated_at",
            "state",
        ],
    )?;
    Ok(PendingMutation {
        mutation_id: DerivedId::Text(f.string("mutation_id")?),
        kind: match f.string("type")?.as_str() {
            "insert" => MutationKind::Insert,
            "update" => MutationKind::Update,
            "delete" => MutationKind::Delete,
            _ => return Err(invalid("type", "'insert', 'update' or 'delete'")),
        },
        collection: f.string("collection")?.into(),
        key: f.string("key")?.into(),
        original: f.record("original")?,
        modified: f.record("modified")?,
        changes: f.record("changes")?,
        metadata: f.required("metadata")?,
        timestamp: f.number("timestamp")?,
        created_at: f.number("created_at")?,
        updated_at: f.number("updated_at")?,
        state: match f.string("state")?.as_str() {
            "created" => MutationState::Created,
            "persisting" => MutationState::Persisting,
            "synced" => MutationState::Synced,
            _ => return Err(invalid("state", "a mutation state")),
        },
    })
}

fn attempt(value: Value) -> Result<Attempt, String> {
    let mut f = Reader::of(
        value,
        &["id", "number", "started_at", "completed_at", "error", "retry_scheduled_for", "interrupted"],
    )?;
    Ok(Attempt {
        id: DerivedId::Text(f.string("id")?),
        number: f.small("number")?,
        started_at: f.number("started_at")?,
        completed_at: f.optional_number("completed_at")?,
        error: f.optional("error").map(error_info).transpose()?,
        retry_scheduled_for: f.optional_number("retry_scheduled_for")?,
        // `#[serde(default)]`: may be missing, but not `null`.
        interrupted: match f.take("interrupted") {
            None => false,
            Some(v) => v.as_bool().ok_or_else(|| invalid("interrupted", "a boolean"))?,
        },
    })
}

fn error_info(value: Value) -> Result<ErrorInfo, String> {
    let mut f = Reader::of(value, &["name", "message", "retriable"])?;
    Ok(ErrorInfo { name: f.string("name")?, message: f.string("message")?, retriable: f.boolean("retriable")? })
}

fn transaction_error(value: Value) -> Result<TransactionError, String> {
    let mut f = Reader::of(value, &["transaction_id", "message", "error"])?;
    Ok(TransactionError {
        transaction_id: f.optional_string("transaction_id")?.map(Into::into),
        message: f.string("message")?,
        error: error_info(f.required("error")?)?,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map};

    use super::*;

    /// A transaction with every optional part present.
    fn full() -> Value {
        json!({
            "id": "c-5", "client": "c", "state": "failed",
            "strategy": {"type": "parallel", "merge": "m"},
            "await_sync": true, "created_at": 1, "updated_at": 2, "timestamp": 5,
            "mutations": [{
                "mutation_id": "c-5/0", "type": "update", "collection": "todos", "key": "a",
                "original": {"id": "a", "n": 1}, "modified": {"id": "a", "n": 2.5}, "changes": {"n": 2.5},
                "metadata": {"why": [1, null]}, "timestamp": 5, "created_at": 1, "updated_at": 2, "state": "synced"
            }],
            "attempts": [
                {"id": "c-5#1", "number": 1, "started_at": 1, "completed_at": 2,
                 "error": {"name": "E", "message": "m", "retriable": true}, "retry_scheduled_for": 3,
                 "interrupted": true},
                {"id": "c-5#2", "number": 2, "started_at": 3}
            ],
            "current_attempt": 2, "queued_behind": "c-4",
            "error": {"transaction_id": "c-4", "message": "rolled back",
                      "error": {"name": "NonRetriableError", "message": "no", "retriable": false}},
            "metadata": "meta"
        })
    }

    fn derived(value: &Value) -> Result<Transaction, serde_json::Error> {
        serde_json::from_str(&value.to_string())
    }

    #[test]
    fn reads_what_serde_reads_and_round_trips() {
        let value = full();
        let tx = Transaction::from_json(&value.to_string()).unwrap();
        assert_eq!(tx, derived(&value).unwrap());
        assert_eq!(Transaction::from_json(&serde_json::to_string(&tx).unwrap()).unwrap(), tx);
    }

    #[test]
    fn optional_fields_may_be_missing_or_null_and_unknown_fields_are_ignored() {
        let mut value = full();
        let tx = value.as_object_mut().unwrap();
        tx.remove("queued_behind");
        tx.insert("error".into(), Value::Null);
        tx.insert("strategy".into(), json!({"type": "parallel"}));
        tx.insert("future_field".into(), json!({"x": 1}));
        let ours = Transaction::from_value(value.clone()).unwrap();
        assert_eq!(ours, derived(&value).unwrap());
        assert_eq!(ours.queued_behind, None);
        assert_eq!(ours.strategy, Strategy::Parallel { merge: None });
    }

    #[test]
    fn refuses_what_serde_refuses() {
        let broken: [fn(&mut Map<String, Value>); 10] = [
            |tx| drop(tx.remove("metadata")),
            |tx| drop(tx.remove("id")),
            |tx| drop(tx.insert("state".into(), json!("lost"))),
            |tx| drop(tx.insert("created_at".into(), json!(-1))),
            |tx| drop(tx.insert("created_at".into(), json!(1.5))),
            |tx| drop(tx.insert("current_attempt".into(), json!(1u64 << 40))),
            |tx| drop(tx.insert("strategy".into(), json!({"type": "random"}))),
            |tx| drop(tx.insert("await_sync".into(), json!("yes"))),
            |tx| drop(tx["mutations"][0].as_object_mut().unwrap().insert("original".into(), json!([1]))),
            |tx| drop(tx["attempts"][1].as_object_mut().unwrap().insert("interrupted".into(), Value::Null)),
        ];
        for (i, breaks) in broken.iter().enumerate() {
            let mut value = full();
            breaks(value.as_object_mut().unwrap());
            assert!(derived(&value).is_err(), "case {i}: serde refuses it");
            assert!(Transaction::from_value(value).is_err(), "case {i}: so does the reader");
        }
        assert!(Transaction::from_json("[1]").is_err());
        assert!(Transaction::from_json("{").is_err());
    }
}
