//! The wire protocol between Tandem clients and tandem-server.
//!
//! Seed 001's three messages (`op` both ways, `init`, `error`) are reproduced exactly; everything
//! Tandem adds (transactions with ids and acks, deletes, resume from heads) is additive and
//! described, versioned, in `docs/protocol.md`. A client that knows only seed 001 never receives
//! a message type it does not know: the additions are only sent to clients that asked for
//! protocol version [`PROTOCOL_VERSION`] in the connection URL.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// Version of Tandem's additions to seed 001, requested with `?protocol=1` on the sync URL.
pub const PROTOCOL_VERSION: u32 = 1;

/// `value` as JSON text. Serialising the engine's values (JSON values, strings, transactions)
/// cannot fail; unlike `serde_json::to_string(..).expect(..)` this does not link the `Debug`
/// formatting of `serde_json::Error` (string escaping, Unicode tables) into the wasm client.
pub fn json_text<T: Serialize + ?Sized>(value: &T) -> String {
    match serde_json::to_string(value) {
        Ok(text) => text,
        Err(_) => unreachable!("JSON values serialise"),
    }
}

/// What is wrong with a JSON text, and where. Rather than `serde_json::Error`'s `Display`, which
/// links `std::io::Error`'s messages and a message per parse error into the wasm client (~1.1 KB
/// gzipped) for texts that JSON.stringify, storage or the server produced.
pub fn json_error(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match error.classify() {
        Category::Eof => "unexpected end of JSON",
        Category::Syntax => "invalid JSON",
        Category::Data => "JSON of an unexpected shape",
        Category::Io => "JSON that could not be read",
    };
    let (line, column) = (error.line() as u32, error.column() as u32);
    let mut text = String::from(what);
    text.push_str(" at line ");
    text.push_str(&line.to_string());
    text.push_str(" column ");
    text.push_str(&column.to_string());
    text
}

/// WebSocket close codes tandem-server uses besides the standard ones (1001 going away, 1009 too
/// big, 1011 server error). See `docs/protocol.md`.
pub mod close_code {
    /// The client fell behind (its outbound queue filled up): reconnect, resuming from its heads.
    pub const RESYNC: u16 = 4000;
    /// The token's `exp` passed while the socket was open: reconnect with a fresh token.
    pub const TOKEN_EXPIRED: u16 = 4001;
    /// No frame (not even a pong) arrived within the server's ping timeout.
    pub const PING_TIMEOUT: u16 = 4002;
    /// The workspace was deleted.
    pub const WORKSPACE_DELETED: u16 = 4004;
}

/// One key's new value (or deletion) with its hybrid-logical-clock timestamp (Unix µs).
///
/// This is seed 001's `payload`; `delete` is Tandem's addition. `value` is required unless
/// `delete` is true; a JSON `null` is a legitimate value and is kept apart from "absent".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Op {
    pub key: String,
    #[serde(
        default,
        deserialize_with = "present_value",
        skip_serializing_if = "Option::is_none"
    )]
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub delete: bool,
}

impl Op {
    pub fn put(key: impl Into<String>, value: Value, timestamp: Option<u64>) -> Self {
        Op { key: key.into(), value: Some(value), timestamp, delete: false }
    }

    pub fn delete(key: impl Into<String>, timestamp: Option<u64>) -> Self {
        Op { key: key.into(), value: None, timestamp, delete: true }
    }

    /// Checks the invariants serde cannot express: a key, and exactly one of value / delete.
    pub fn validate(&self) -> Result<(), OpError> {
        if self.key.is_empty() {
            return Err(OpError::EmptyKey);
        }
        match (&self.value, self.delete) {
            (None, false) => Err(OpError::MissingValue { key: self.key.clone() }),
            (Some(_), true) => Err(OpError::ValueWithDelete { key: self.key.clone() }),
            _ => Ok(()),
        }
    }
}

/// Why an [`Op`] is malformed; the server answers these with code 400.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    #[error("op has an empty `key`")]
    EmptyKey,
    #[error("op for key `{key}` has no `value` (send `\"delete\": true` to delete)")]
    MissingValue { key: String },
    #[error("op for key `{key}` has both a `value` and `\"delete\": true`")]
    ValueWithDelete { key: String },
}

/// Messages a client sends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Seed 001: one key's write.
    Op { payload: Op },
    /// Tandem v1: several writes applied atomically, idempotent per (`client`, `id`).
    Tx(TxMessage),
}

/// An atomic group of ops. `id` is the client's transaction id (stable across retries and
/// reloads), `client` the id of the client that created it; together they deduplicate retries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TxMessage {
    pub id: String,
    pub client: String,
    pub ops: Vec<Op>,
}

/// Messages the server sends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Seed 001: the whole current state and the heads it corresponds to. Always the first message
    /// unless the client resumed from heads the server knows.
    Init { data: Map<String, Value>, heads: Vec<String> },
    /// Seed 001: one committed write, broadcast to every client of the workspace.
    Op { payload: Op },
    /// Tandem v1: a committed transaction, broadcast to v1 clients (the sender included, so it can
    /// recognise its own `id` in the echo). `heads` are the document heads after it.
    Tx { id: String, client: String, ops: Vec<Op>, heads: Vec<String> },
    /// Tandem v1: the reply to a resume — only the changes the client lacks since `since`.
    Changes { since: Vec<String>, ops: Vec<Op>, heads: Vec<String> },
    /// Tandem v1: the sender's transaction is durable. `superseded` lists keys whose op was older
    /// (by HLC timestamp) than the stored value and so did not overwrite it; `standing` carries
    /// the value that stands for each of them, so the sender can drop its optimistic one (nothing
    /// is broadcast for a superseded op).
    Ack {
        id: String,
        heads: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        superseded: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        standing: Vec<Op>,
    },
    /// Seed 001's error (401/403/500), plus 400 for malformed input. `id` names the transaction
    /// and `key` the key when the error is about one.
    Error {
        code: u16,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workspace: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
}

fn present_value<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_errors_say_what_and_where() {
        let error = |text: &str| json_error(&serde_json::from_str::<Value>(text).unwrap_err());
        assert_eq!(error("{\"a\":\n  1,}"), "invalid JSON at line 2 column 5");
        assert_eq!(error("[1, 2"), "unexpected end of JSON at line 1 column 5");
        let shape = json_error(&serde_json::from_str::<u8>("\"x\"").unwrap_err());
        assert_eq!(shape, "JSON of an unexpected shape at line 1 column 3");
    }

    #[test]
    fn seed_001_op_round_trips_exactly() {
        let text = r#"{"type":"op","payload":{"key":"foo","value":"bar","timestamp":1700000000000000}}"#;
        let msg: ClientMessage = serde_json::from_str(text).unwrap();
        assert_eq!(
            msg,
            ClientMessage::Op { payload: Op::put("foo", json!("bar"), Some(1_700_000_000_000_000)) }
        );
        assert_eq!(serde_json::to_string(&msg).unwrap(), text);
    }

    #[test]
    fn null_value_is_a_value_not_a_missing_one() {
        let msg: ClientMessage =
            serde_json::from_str(r#"{"type":"op","payload":{"key":"k","value":null}}"#).unwrap();
        let ClientMessage::Op { payload } = msg else { panic!("not an op") };
        assert_eq!(payload.value, Some(Value::Null));
        assert!(payload.validate().is_ok());
    }

    #[test]
    fn op_without_value_or_delete_is_rejected_with_its_key() {
        let msg: ClientMessage =
            serde_json::from_str(r#"{"type":"op","payload":{"key":"k"}}"#).unwrap();
        let ClientMessage::Op { payload } = msg else { panic!("not an op") };
        assert_eq!(payload.validate(), Err(OpError::MissingValue { key: "k".into() }));
        assert!(Op { delete: true, ..payload.clone() }.validate().is_ok());
    }

    #[test]
    fn init_serialises_as_seed_001() {
        let msg = ServerMessage::Init {
            data: json!({"foo": "bar"}).as_object().unwrap().clone(),
            heads: vec!["ab12".into()],
        };
        assert_eq!(
            serde_json::to_value(&msg).unwrap(),
            json!({"type": "init", "data": {"foo": "bar"}, "heads": ["ab12"]})
        );
    }
}
