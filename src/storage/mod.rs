//! Durable storage behind a small trait: the IndexedDB implementation the browser uses, an
//! in-memory one (`persistence: 'memory'`, and the fallback when IndexedDB fails), and room for
//! tests to wrap the real one and inject failures.
//!
//! What is stored:
//! * the outbox: every transaction record the engine asks to save, as JSON, with the id of the
//!   client instance that owns it (the one running it, see `tabs.rs`) — in IndexedDB one record
//!   per write, however many transactions it saves;
//! * per collection, a cache of the synced records (JSON) and an opaque sync position string,
//!   so a reload shows the last synced data before the network answers.

mod indexeddb;
mod memory;

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use tandem_core::{Key, Record};

pub use indexeddb::IndexedDbStorage;
pub use memory::MemoryStorage;

/// A boxed future that is not `Send` (everything here runs on the browser's one thread).
pub type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// A stored transaction record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredTx {
    pub id: String,
    /// Client id of the instance that runs it.
    pub owner: String,
    /// `tandem_core::Transaction` as JSON.
    pub json: String,
}

/// One change to the synced-record cache. A put holds the engine's records (shared, not
/// copies), turned into JSON only when written.
#[derive(Clone, Debug, PartialEq)]
pub enum CacheOp {
    /// Forget every cached record of the collection (before a snapshot is written).
    Clear {
        collection: Arc<str>,
    },
    /// Records stored under their keys (the `key_field` of each, read when written): one op
    /// for a run of them, so a 100k-record snapshot waiting for its write costs a pointer per
    /// record.
    Put {
        collection: Arc<str>,
        key_field: Arc<str>,
        records: Vec<Record>,
    },
    Delete {
        collection: Arc<str>,
        key: Key,
    },
    /// The collection's sync position (e.g. server heads); `None` forgets it.
    Position {
        collection: Arc<str>,
        position: Option<String>,
    },
}

/// Everything one drain of the engine asks to store, written in one storage transaction.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriteBatch {
    /// The writing instance's client id.
    pub writer: String,
    /// All with the writer's id as their owner (a record it took over joins its group when
    /// written again).
    pub put: Vec<StoredTx>,
    /// Transaction ids whose record is erased (pruned from history).
    pub erase: Vec<String>,
    /// Applied in order. Shared with the driver, which writes them again if this write fails:
    /// a large sync batch is not held twice while it is written.
    pub cache: std::rc::Rc<Vec<CacheOp>>,
}

impl WriteBatch {
    pub fn is_empty(&self) -> bool {
        self.put.is_empty() && self.erase.is_empty() && self.cache.is_empty()
    }
}

/// Between the record texts of one [`CacheContents`] entry. Never in JSON text: a control
/// character is escaped inside strings, and is not whitespace.
pub const CACHE_ROW_SEPARATOR: char = '\u{1}';

/// The synced cache as loaded at start, per collection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheContents {
    /// (collection, record JSON texts joined by [`CACHE_ROW_SEPARATOR`]: one record or
    /// several), grouped by collection in key order.
    pub records: Vec<(String, String)>,
    /// (collection, position).
    pub positions: Vec<(String, String)>,
}

/// What an adoption pass found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Adoption {
    /// Records of closed instances, now held by the adopter.
    pub adopted: Vec<StoredTx>,
    /// Other live instances that hold records: their release is worth watching.
    pub live_owners: Vec<String>,
}

/// Which owner groups an adopter takes.
///
/// Records carry the id of the client that wrote them (their *group*); storage keeps, per
/// group, the client *holding* it — the writer itself, or whoever adopted it. Adopting a group
/// rewrites its holder, so its records change hands in one small write however many there are
/// (a record re-saved later simply joins its new writer's group).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdoptionPlan {
    /// Groups whose holder is gone: take them.
    pub adopt: Vec<String>,
    /// Live holders other than `me`.
    pub live_holders: Vec<String>,
}

/// `reclaim_own`: also take the groups held by `me` — on start, where they can only have been
/// left by an earlier instance with the same (app-chosen) client id.
pub fn plan_adoption(me: &str, live: &[String], entries: &[(String, String)], reclaim_own: bool) -> AdoptionPlan {
    let mut plan = AdoptionPlan::default();
    for (group, holder) in entries {
        if holder == me {
            if reclaim_own {
                plan.adopt.push(group.clone());
            }
            continue;
        }
        if live.contains(holder) {
            if !plan.live_holders.contains(holder) {
                plan.live_holders.push(holder.clone());
            }
        } else {
            plan.adopt.push(group.clone());
        }
    }
    plan
}

/// Why a storage operation failed. `kind` is stable and crosses to JS as `StorageError.kind`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("storage ({kind}): {message}")]
pub struct StorageError {
    pub kind: StorageErrorKind,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageErrorKind {
    /// No IndexedDB (private mode, old browser, sandboxed frame) or it refused to open.
    Unavailable,
    /// The browser refused a write for lack of space (`QuotaExceededError`).
    Quota,
    /// The schema upgrade waited too long for an older tab to close its connection.
    Blocked,
    /// The connection closed under us (storage cleared, browser shutting the database).
    ConnectionLost,
    /// Another tab opened a newer version of the database; this one let go of it.
    VersionChange,
    /// A write failed for another reason.
    WriteFailed,
    /// Reading the stored state failed, or a stored record could not be read back.
    ReadFailed,
    /// Web Locks are missing: several tabs cannot be told apart, this one adopts everything.
    LocksUnavailable,
}

impl StorageErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StorageErrorKind::Unavailable => "unavailable",
            StorageErrorKind::Quota => "quota",
            StorageErrorKind::Blocked => "blocked",
            StorageErrorKind::ConnectionLost => "connection_lost",
            StorageErrorKind::VersionChange => "version_change",
            StorageErrorKind::WriteFailed => "write_failed",
            StorageErrorKind::ReadFailed => "read_failed",
            StorageErrorKind::LocksUnavailable => "locks_unavailable",
        }
    }

    /// After these the storage is gone for this instance: the client continues in memory.
    pub fn is_fatal(self) -> bool {
        matches!(
            self,
            StorageErrorKind::Unavailable
                | StorageErrorKind::Blocked
                | StorageErrorKind::ConnectionLost
                | StorageErrorKind::VersionChange
        )
    }
}

impl std::fmt::Display for StorageErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl StorageError {
    pub fn new(kind: StorageErrorKind, message: impl Into<String>) -> Self {
        StorageError { kind, message: message.into() }
    }

    /// Classifies a failed write by the `DOMException` name the browser gave.
    pub fn from_write_failure(name: &str, message: &str) -> Self {
        let kind = match name {
            "QuotaExceededError" => StorageErrorKind::Quota,
            "InvalidStateError" => StorageErrorKind::ConnectionLost,
            _ => StorageErrorKind::WriteFailed,
        };
        StorageError::new(kind, format!("{name}: {message}"))
    }
}

/// Called when the storage goes away on its own (connection closed, newer version elsewhere).
pub type LostHandler = Rc<dyn Fn(StorageError)>;

/// Durable storage for one client instance.
///
/// `write` must *issue* its work before returning (the future only waits for it), so writes
/// reach storage in call order; its future resolves only once the write is durable.
pub trait Storage {
    /// Every cached synced record and sync position.
    fn load_cache(&self) -> LocalFuture<Result<CacheContents, StorageError>>;

    /// Takes over the records held by clients not in `live` (and not `me`): in one atomic step
    /// it re-checks who holds them and makes `me` the holder, so two adopters never both get a
    /// record. See [`plan_adoption`].
    fn adopt(&self, me: &str, live: &[String], reclaim_own: bool) -> LocalFuture<Result<Adoption, StorageError>>;

    fn write(&self, batch: WriteBatch) -> LocalFuture<Result<(), StorageError>>;

    /// Registers the handler for the storage going away by itself.
    fn on_lost(&self, handler: LostHandler);

    /// Lets go of the connection; later calls fail. Work already issued still completes.
    fn close(&self);
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn write_failures_are_classified_by_dom_exception_name() {
        assert_eq!(StorageError::from_write_failure("QuotaExceededError", "full").kind, StorageErrorKind::Quota);
        assert_eq!(
            StorageError::from_write_failure("InvalidStateError", "closing").kind,
            StorageErrorKind::ConnectionLost
        );
        assert_eq!(StorageError::from_write_failure("UnknownError", "?").kind, StorageErrorKind::WriteFailed);
    }

    #[test]
    fn adoption_takes_the_groups_whose_holder_is_gone() {
        let entries = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(g, h)| (g.to_string(), h.to_string())).collect()
        };
        let live = vec!["me".to_string(), "alive".to_string()];
        let plan = plan_adoption(
            "me",
            &live,
            &entries(&[("me", "me"), ("alive", "alive"), ("dead", "dead"), ("older", "dead"), ("mine", "me")]),
            false,
        );
        assert_eq!(plan.adopt, vec!["dead".to_string(), "older".to_string()], "a dead adopter's groups too");
        assert_eq!(plan.live_holders, vec!["alive".to_string()]);
        let first = plan_adoption("me", &live, &entries(&[("me", "me"), ("dead", "dead")]), true);
        assert_eq!(first.adopt, vec!["me".to_string(), "dead".to_string()], "on start, a same-id predecessor's too");
    }

    #[test]
    fn only_losing_the_database_is_fatal() {
        assert!(StorageErrorKind::VersionChange.is_fatal());
        assert!(!StorageErrorKind::Quota.is_fatal());
        assert!(!StorageErrorKind::WriteFailed.is_fatal());
    }
}
