//! The engine's errors: one enum per kind of input, each naming the collection, key or
//! transaction it is about.

use crate::record::RecordProblem;

/// A mutation the engine refused; nothing of its transaction was applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MutationError {
    #[error("collection `{collection}` does not exist")]
    UnknownCollection { collection: String },
    #[error("collection `{collection}`: a record with key `{key}` already exists")]
    DuplicateKey { collection: String, key: String },
    #[error("collection `{collection}`: no record with key `{key}`")]
    MissingKey { collection: String, key: String },
    #[error("collection `{collection}`: mutation {index}: the record {problem}")]
    InvalidRecord { collection: String, index: usize, problem: RecordProblem },
    #[error("collection `{collection}`: key `{key}`: an update may not change the key field `{field}`")]
    KeyFieldChanged { collection: String, key: String, field: String },
    #[error("a transaction needs at least one mutation")]
    EmptyTransaction,
    #[error("merge `{merge}` is not registered")]
    UnknownMerge { merge: String },
}

/// A sync batch the engine refused; none of it was applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error("sync for collection `{collection}`: collection does not exist")]
    UnknownCollection { collection: String },
    #[error("sync for collection `{collection}`: change {index}: the record {problem}")]
    InvalidRecord { collection: String, index: usize, problem: RecordProblem },
}

/// A driver call the engine cannot act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("no transaction `{id}`")]
    UnknownTransaction { id: String },
    #[error("collection `{collection}` already exists")]
    DuplicateCollection { collection: String },
    #[error("collection `{collection}` does not exist")]
    UnknownCollection { collection: String },
    #[error("restoring transaction `{id}`: collection `{collection}` does not exist")]
    RestoreUnknownCollection { id: String, collection: String },
}

impl std::error::Error for RecordProblem {}
