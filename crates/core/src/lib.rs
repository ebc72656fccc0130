//! tandem-core: Tandem's deterministic, sans-IO transaction engine and wire protocol types.
//!
//! No clock, no randomness source, no I/O: every input takes `now` (Unix milliseconds) and the
//! engine's outputs are polled by its driver — [`Engine::poll_effect`] for work to do and
//! [`Engine::poll_timeout`] for the next instant it wants [`Engine::handle_timeout`].
//!
//! ```
//! use tandem_core::{CollectionConfig, Effect, Engine, EngineConfig, TransactionInput};
//! use serde_json::json;
//!
//! let mut engine = Engine::new(EngineConfig::default());
//! engine.create_collection(CollectionConfig::new("todos")).unwrap();
//! let tx = engine.mutate(0, TransactionInput::new().insert("todos", json!({"id": "a", "done": false}))).unwrap();
//! assert_eq!(engine.get("todos", "a").unwrap()["done"], false); // visible at once
//! while let Some(effect) = engine.poll_effect() {
//!     if let Effect::Persist { transaction, attempt } = effect {
//!         // …run the user's persist, then report back:
//!         engine.persist_succeeded(5, &transaction, attempt).unwrap();
//!     }
//! }
//! assert_eq!(engine.transaction(&tx).unwrap().state.as_str(), "completed");
//! ```

mod config;
mod effect;
mod engine;
mod error;
pub mod field_name;
mod history;
pub mod hlc;
mod lifecycle;
mod merge;
mod mutate;
pub mod protocol;
mod record;
mod record_json;
mod restore;
mod retry;
pub mod session;
mod sync;
mod transaction;
mod transaction_json;
mod tx_ids;
mod tx_table;
mod visible;

pub use config::{CollectionConfig, EngineConfig, HistoryPolicy};
pub use effect::{ChangeKind, Effect, KeyChange};
pub use engine::Engine;
pub use error::{EngineError, MutationError, SyncError};
pub use merge::{reapply, Merge};
pub use mutate::{Mutation, MutationOp, TransactionInput};
pub use field_name::{FieldName, Shape};
pub use record::{key_of, Fields, Key, Record, RecordProblem};
pub use retry::{RetryPolicy, SplitMix64};
pub use session::{Session, SessionConfig, SyncState};
pub use sync::{SyncBatch, SyncChange, UpsertRecord};
pub use transaction::{
    Attempt, DerivedId, ErrorInfo, MutationKind, MutationState, PendingMutation, Strategy, Transaction, TransactionError,
    TransactionState, TxId,
};
