//! Errors as JavaScript sees them: real `Error` objects with a stable `name` and their context
//! as properties (`collection`, `key`, `transactionId`, …). The core's `thiserror` enums are
//! converted here and nowhere else.

use js_sys::Reflect;
use tandem_core::{EngineError, ErrorInfo, MutationError, SyncError};
use wasm_bindgen::prelude::*;

use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Mutation(#[from] MutationError),
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A write that did not reach storage; the transactions named still run in memory.
    #[error("{error} (transactions not stored: {})", transaction_ids.join(", "))]
    StorageWrite { error: StorageError, transaction_ids: Vec<String> },
    #[error("{0}")]
    InvalidArgument(String),
    #[error("the client is closed")]
    Closed,
    #[error("the client was called while it was busy (a merge function must not call back into the client)")]
    Reentrant,
    #[error("client id `{client_id}` is already used by a live instance on database `{database}`")]
    ClientIdInUse { client_id: String, database: String },
    /// Rejects a transaction's `settled()` promise.
    #[error("transaction `{}` failed: {}", .0.transaction_id, .0.message)]
    TransactionFailed(Box<TransactionFailure>),
    /// User code called by the runtime (sync setup, awaitSync, a merge, a subscriber) threw.
    #[error("{what} threw: {message}")]
    Callback { name: &'static str, what: String, message: String, collection: Option<String>, cause: JsValue },
    /// An error a sync layer reported (its setup's `reportError`), delivered as it is.
    #[error("{message}")]
    Reported { message: String, error: JsValue },
}

#[derive(Debug)]
pub struct TransactionFailure {
    pub transaction_id: String,
    /// Set when it failed because a transaction it was queued behind failed.
    pub cause_transaction_id: Option<String>,
    pub message: String,
    pub cause: ErrorInfo,
}

impl Error {
    /// The stable `name` of the JS error.
    pub fn name(&self) -> &'static str {
        match self {
            Error::Mutation(e) => match e {
                MutationError::UnknownCollection { .. } => "UnknownCollectionError",
                MutationError::DuplicateKey { .. } => "DuplicateKeyError",
                MutationError::MissingKey { .. } => "MissingKeyError",
                MutationError::InvalidRecord { .. } => "InvalidRecordError",
                MutationError::KeyFieldChanged { .. } => "KeyFieldChangedError",
                MutationError::EmptyTransaction => "EmptyTransactionError",
                MutationError::UnknownMerge { .. } => "UnknownMergeError",
            },
            Error::Sync(e) => match e {
                SyncError::UnknownCollection { .. } => "UnknownCollectionError",
                SyncError::InvalidRecord { .. } => "InvalidRecordError",
            },
            Error::Engine(e) => match e {
                EngineError::UnknownTransaction { .. } => "UnknownTransactionError",
                EngineError::DuplicateCollection { .. } => "DuplicateCollectionError",
                EngineError::UnknownCollection { .. } | EngineError::RestoreUnknownCollection { .. } => {
                    "UnknownCollectionError"
                }
            },
            Error::Storage(_) | Error::StorageWrite { .. } => "StorageError",
            Error::InvalidArgument(_) => "InvalidArgumentError",
            Error::Closed => "ClientClosedError",
            Error::Reentrant => "ReentrancyError",
            Error::ClientIdInUse { .. } => "ClientIdInUseError",
            Error::TransactionFailed(_) => "TransactionFailedError",
            Error::Callback { name, .. } => name,
            Error::Reported { .. } => "SyncError",
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidArgument(message.into())
    }
}

impl From<Error> for JsValue {
    fn from(error: Error) -> JsValue {
        let error = match error {
            Error::Reported { error, .. } => return error,
            error => error,
        };
        let js = js_sys::Error::new(&error.to_string());
        js.set_name(error.name());
        let set = |key: &str, value: JsValue| crate::convert::set(&js, key, &value);
        let s = |v: &str| JsValue::from_str(v);
        match &error {
            Error::Mutation(e) => match e {
                MutationError::UnknownCollection { collection } => set("collection", s(collection)),
                MutationError::DuplicateKey { collection, key } | MutationError::MissingKey { collection, key } => {
                    set("collection", s(collection));
                    set("key", s(key));
                }
                MutationError::InvalidRecord { collection, index, problem } => {
                    set("collection", s(collection));
                    set("index", JsValue::from(*index as u32));
                    set("problem", s(&problem.to_string()));
                }
                MutationError::KeyFieldChanged { collection, key, field } => {
                    set("collection", s(collection));
                    set("key", s(key));
                    set("field", s(field));
                }
                MutationError::EmptyTransaction => {}
                MutationError::UnknownMerge { merge } => set("merge", s(merge)),
            },
            Error::Sync(e) => match e {
                SyncError::UnknownCollection { collection } => set("collection", s(collection)),
                SyncError::InvalidRecord { collection, index, problem } => {
                    set("collection", s(collection));
                    set("index", JsValue::from(*index as u32));
                    set("problem", s(&problem.to_string()));
                }
            },
            Error::Engine(e) => match e {
                EngineError::UnknownTransaction { id } => set("transactionId", s(id)),
                EngineError::DuplicateCollection { collection } | EngineError::UnknownCollection { collection } => {
                    set("collection", s(collection))
                }
                EngineError::RestoreUnknownCollection { id, collection } => {
                    set("transactionId", s(id));
                    set("collection", s(collection));
                }
            },
            Error::Storage(e) => set("kind", s(e.kind.as_str())),
            Error::StorageWrite { error, transaction_ids } => {
                set("kind", s(error.kind.as_str()));
                set("transactionIds", transaction_ids.iter().map(|id| s(id)).collect::<js_sys::Array>().into());
            }
            Error::InvalidArgument(_) | Error::Closed | Error::Reentrant => {}
            Error::ClientIdInUse { client_id, database } => {
                set("clientId", s(client_id));
                set("database", s(database));
            }
            Error::TransactionFailed(failure) => {
                let TransactionFailure { transaction_id, cause_transaction_id, cause, .. } = &**failure;
                set("transactionId", s(transaction_id));
                if let Some(cause_id) = cause_transaction_id {
                    set("causeTransactionId", s(cause_id));
                }
                let info = js_sys::Object::new();
                crate::convert::set(&info, "name", &s(&cause.name));
                crate::convert::set(&info, "message", &s(&cause.message));
                crate::convert::set(&info, "retriable", &JsValue::from_bool(cause.retriable));
                set("cause", info.into());
            }
            Error::Callback { collection, cause, .. } => {
                if let Some(collection) = collection {
                    set("collection", s(collection));
                }
                set("cause", cause.clone());
            }
            Error::Reported { .. } => unreachable!("returned as it is above"),
        }
        js.into()
    }
}

/// Reads what user code threw (an `Error`, or anything else) as the core's `ErrorInfo`: a thrown
/// error named `NonRetriableError` is not retried, anything else is.
pub fn error_info(thrown: &JsValue) -> ErrorInfo {
    let (name, message) = name_and_message(thrown);
    ErrorInfo::thrown(name, message)
}

/// `name` and `message` of a thrown value; `"Error"` and its string form for non-errors.
pub fn name_and_message(thrown: &JsValue) -> (String, String) {
    let field = |key: &str| {
        if thrown.is_object() {
            Reflect::get(thrown, &key.into()).ok().and_then(|v| v.as_string())
        } else {
            None
        }
    };
    let name = field("name").unwrap_or_else(|| "Error".to_string());
    let message = field("message").unwrap_or_else(|| {
        thrown.as_string().unwrap_or_else(|| js_sys::JSON::stringify(thrown).map(String::from).unwrap_or_default())
    });
    (name, message)
}
