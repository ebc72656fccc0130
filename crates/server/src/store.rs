//! Durable storage: one redb database per server, every commit with immediate durability.
//!
//! A workspace is stored as its last compacted Automerge snapshot plus the changes committed
//! since, each change appended as its own row (incremental), so a commit writes only what is new.
//! The dedup record of a transaction and the outbox rows for webhooks and NATS are written in the
//! same redb transaction as the change they belong to: either all of it is on disk or none.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

/// workspace → creation time (Unix ms).
const WORKSPACES: TableDefinition<&str, u64> = TableDefinition::new("workspaces");
/// (workspace, seq) → one Automerge change, in commit order.
const CHANGES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("changes");
/// workspace → (last seq folded in, saved document).
const SNAPSHOTS: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("snapshots");
/// (workspace, client, tx id) → the ack sent for it (JSON), so a retry gets the same answer.
const DEDUP: TableDefinition<(&str, &str, &str), &[u8]> = TableDefinition::new("tx_dedup");
/// Server-wide settings (the server id).
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// id → webhook event body, deleted once delivered (or given up on).
const WEBHOOK_OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("webhook_outbox");
/// id → (workspace, change) still to publish to NATS.
const NATS_OUTBOX: TableDefinition<u64, (&str, &[u8])> = TableDefinition::new("nats_outbox");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error in workspace `{workspace}`: {source}")]
    Workspace {
        workspace: String,
        #[source]
        source: redb::Error,
    },
    #[error("storage error: {0}")]
    Db(#[from] redb::Error),
    #[error("could not create data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("injected persistence failure (test hook)")]
    Injected,
    /// The commit that took this workspace's batch with others failed.
    #[error("storage error in workspace `{workspace}` (written with other workspaces' changes): {message}")]
    Group { workspace: String, message: String },
    #[error("workspace `{workspace}`: the store's writer has stopped (server shutting down?)")]
    Stopped { workspace: String },
    #[error("cannot start the store's writer thread: {source}")]
    Thread { source: std::io::Error },
}

fn db_err<E: Into<redb::Error>>(workspace: &str) -> impl FnOnce(E) -> StoreError + '_ {
    move |e| StoreError::Workspace { workspace: workspace.to_owned(), source: e.into() }
}

/// What is on disk for one workspace.
#[derive(Debug, Default)]
pub struct StoredWorkspace {
    pub created_ms: u64,
    pub snapshot: Option<(u64, Vec<u8>)>,
    pub changes: Vec<(u64, Vec<u8>)>,
}

/// Everything one group commit writes, atomically.
#[derive(Debug, Default)]
pub struct CommitBatch {
    /// Set when the workspace row does not exist yet (creation time).
    pub create: Option<u64>,
    pub changes: Vec<(u64, Vec<u8>)>,
    pub dedup: Vec<(String, String, Vec<u8>)>,
    pub webhooks: Vec<Vec<u8>>,
    pub nats: Vec<Vec<u8>>,
}

impl CommitBatch {
    pub fn is_empty(&self) -> bool {
        self.create.is_none()
            && self.changes.is_empty()
            && self.dedup.is_empty()
            && self.webhooks.is_empty()
            && self.nats.is_empty()
    }
}

#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    fail_commits: Arc<AtomicU32>,
}

impl Store {
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|source| StoreError::DataDir { path: dir.display().to_string(), source })?;
        let db = Database::create(dir.join("tandem.redb")).map_err(redb::Error::from)?;
        // Create every table up front so read transactions never meet a missing one.
        let tx = db.begin_write().map_err(redb::Error::from)?;
        {
            tx.open_table(WORKSPACES).map_err(redb::Error::from)?;
            tx.open_table(CHANGES).map_err(redb::Error::from)?;
            tx.open_table(SNAPSHOTS).map_err(redb::Error::from)?;
            tx.open_table(DEDUP).map_err(redb::Error::from)?;
            tx.open_table(META).map_err(redb::Error::from)?;
            tx.open_table(WEBHOOK_OUTBOX).map_err(redb::Error::from)?;
            tx.open_table(NATS_OUTBOX).map_err(redb::Error::from)?;
        }
        tx.commit().map_err(redb::Error::from)?;
        Ok(Store { db: Arc::new(db), fail_commits: Arc::new(AtomicU32::new(0)) })
    }

    /// Test hook: the next `n` group commits fail as a disk error would.
    #[doc(hidden)]
    pub fn inject_commit_failures(&self, n: u32) {
        self.fail_commits.store(n, Ordering::SeqCst);
    }

    /// This server's stable identity (NATS origin, Automerge actor), created on first start.
    pub fn server_id(&self) -> Result<Vec<u8>, StoreError> {
        let tx = self.db.begin_write().map_err(redb::Error::from)?;
        let id = {
            let mut meta = tx.open_table(META).map_err(redb::Error::from)?;
            let existing = meta.get("server_id").map_err(redb::Error::from)?.map(|v| v.value().to_vec());
            match existing {
                Some(id) => id,
                None => {
                    let id = automerge::ActorId::random().to_bytes().to_vec();
                    meta.insert("server_id", id.as_slice()).map_err(redb::Error::from)?;
                    id
                }
            }
        };
        tx.commit().map_err(redb::Error::from)?;
        Ok(id)
    }

    pub fn workspace_exists(&self, workspace: &str) -> Result<bool, StoreError> {
        let tx = self.db.begin_read().map_err(db_err(workspace))?;
        let t = tx.open_table(WORKSPACES).map_err(db_err(workspace))?;
        Ok(t.get(workspace).map_err(db_err(workspace))?.is_some())
    }

    pub fn list_workspaces(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let tx = self.db.begin_read().map_err(redb::Error::from)?;
        let t = tx.open_table(WORKSPACES).map_err(redb::Error::from)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(redb::Error::from)? {
            let (k, v) = row.map_err(redb::Error::from)?;
            out.push((k.value().to_owned(), v.value()));
        }
        Ok(out)
    }

    /// Creates the workspace row; `false` if it already existed.
    pub fn create_workspace(&self, workspace: &str, now_ms: u64) -> Result<bool, StoreError> {
        let tx = self.begin_write(workspace)?;
        let created = {
            let mut t = tx.open_table(WORKSPACES).map_err(db_err(workspace))?;
            if t.get(workspace).map_err(db_err(workspace))?.is_some() {
                false
            } else {
                t.insert(workspace, now_ms).map_err(db_err(workspace))?;
                true
            }
        };
        tx.commit().map_err(db_err(workspace))?;
        Ok(created)
    }

    pub fn load_workspace(&self, workspace: &str) -> Result<Option<StoredWorkspace>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err(workspace))?;
        let ws = tx.open_table(WORKSPACES).map_err(db_err(workspace))?;
        let Some(created) = ws.get(workspace).map_err(db_err(workspace))? else { return Ok(None) };
        let mut out = StoredWorkspace { created_ms: created.value(), ..Default::default() };
        let snaps = tx.open_table(SNAPSHOTS).map_err(db_err(workspace))?;
        if let Some(s) = snaps.get(workspace).map_err(db_err(workspace))? {
            let (seq, bytes) = s.value();
            out.snapshot = Some((seq, bytes.to_vec()));
        }
        let changes = tx.open_table(CHANGES).map_err(db_err(workspace))?;
        for row in changes.range((workspace, 0)..=(workspace, u64::MAX)).map_err(db_err(workspace))? {
            let (k, v) = row.map_err(db_err(workspace))?;
            out.changes.push((k.value().1, v.value().to_vec()));
        }
        Ok(Some(out))
    }

    /// The stored ack for a transaction already committed, if any.
    pub fn dedup_lookup(&self, workspace: &str, client: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err(workspace))?;
        let t = tx.open_table(DEDUP).map_err(db_err(workspace))?;
        Ok(t.get((workspace, client, id)).map_err(db_err(workspace))?.map(|v| v.value().to_vec()))
    }

    /// Writes the batches of several workspaces in one durable transaction (one fsync for
    /// all): all of them or none. Returns only once they are on disk.
    pub fn commit_all(&self, batches: &[(&str, &CommitBatch)]) -> Result<(), StoreError> {
        if self
            .fail_commits
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StoreError::Injected);
        }
        let first = batches.first().map_or("", |(workspace, _)| *workspace);
        let tx = self.begin_write(first)?;
        for (workspace, batch) in batches {
            write_batch(&tx, workspace, batch)?;
        }
        tx.commit().map_err(db_err(first))?;
        Ok(())
    }

    /// Replaces the stored changes up to `upto` by one saved document.
    pub fn compact(&self, workspace: &str, upto: u64, saved: &[u8]) -> Result<(), StoreError> {
        let tx = self.begin_write(workspace)?;
        {
            let mut snaps = tx.open_table(SNAPSHOTS).map_err(db_err(workspace))?;
            snaps.insert(workspace, (upto, saved)).map_err(db_err(workspace))?;
            let mut changes = tx.open_table(CHANGES).map_err(db_err(workspace))?;
            changes.retain_in((workspace, 0)..=(workspace, upto), |_, _| false).map_err(db_err(workspace))?;
        }
        tx.commit().map_err(db_err(workspace))?;
        Ok(())
    }

    /// Removes every row of the workspace (its webhook/NATS outbox rows stay: they describe
    /// changes that did happen).
    pub fn delete_workspace(&self, workspace: &str) -> Result<bool, StoreError> {
        let tx = self.begin_write(workspace)?;
        let existed = {
            let mut ws = tx.open_table(WORKSPACES).map_err(db_err(workspace))?;
            let existed = ws.remove(workspace).map_err(db_err(workspace))?.is_some();
            let mut snaps = tx.open_table(SNAPSHOTS).map_err(db_err(workspace))?;
            snaps.remove(workspace).map_err(db_err(workspace))?;
            let mut changes = tx.open_table(CHANGES).map_err(db_err(workspace))?;
            changes.retain_in((workspace, 0)..=(workspace, u64::MAX), |_, _| false).map_err(db_err(workspace))?;
            let mut dedup = tx.open_table(DEDUP).map_err(db_err(workspace))?;
            dedup.retain(|(w, _, _), _| w != workspace).map_err(db_err(workspace))?;
            existed
        };
        tx.commit().map_err(db_err(workspace))?;
        Ok(existed)
    }

    pub fn webhook_outbox(&self, after: Option<u64>, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let tx = self.db.begin_read().map_err(redb::Error::from)?;
        let t = tx.open_table(WEBHOOK_OUTBOX).map_err(redb::Error::from)?;
        let start = after.map_or(0, |a| a + 1);
        let mut out = Vec::new();
        for row in t.range(start..).map_err(redb::Error::from)?.take(limit) {
            let (k, v) = row.map_err(redb::Error::from)?;
            out.push((k.value(), v.value().to_vec()));
        }
        Ok(out)
    }

    pub fn webhook_done(&self, id: u64) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().map_err(redb::Error::from)?;
        // Losing this delete in a crash only means one more delivery (receivers dedup by event id).
        let _ = tx.set_durability(Durability::None); // if refused, the default (immediate) applies
        tx.open_table(WEBHOOK_OUTBOX).map_err(redb::Error::from)?.remove(id).map_err(redb::Error::from)?;
        tx.commit().map_err(redb::Error::from)?;
        Ok(())
    }

    pub fn nats_outbox(&self, limit: usize) -> Result<Vec<(u64, String, Vec<u8>)>, StoreError> {
        let tx = self.db.begin_read().map_err(redb::Error::from)?;
        let t = tx.open_table(NATS_OUTBOX).map_err(redb::Error::from)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(redb::Error::from)?.take(limit) {
            let (k, v) = row.map_err(redb::Error::from)?;
            let (ws, bytes) = v.value();
            out.push((k.value(), ws.to_owned(), bytes.to_vec()));
        }
        Ok(out)
    }

    pub fn nats_done(&self, upto: u64) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().map_err(redb::Error::from)?;
        // Republishing after a crash is harmless: JetStream dedups by message id (the change hash).
        let _ = tx.set_durability(Durability::None); // if refused, the default (immediate) applies
        tx.open_table(NATS_OUTBOX).map_err(redb::Error::from)?.retain_in(0..=upto, |_, _| false).map_err(redb::Error::from)?;
        tx.commit().map_err(redb::Error::from)?;
        Ok(())
    }

    fn begin_write(&self, workspace: &str) -> Result<redb::WriteTransaction, StoreError> {
        let mut tx = self.db.begin_write().map_err(db_err(workspace))?;
        tx.set_durability(Durability::Immediate).map_err(db_err(workspace))?;
        Ok(tx)
    }
}

/// Stages one workspace's batch in a write transaction.
fn write_batch(tx: &redb::WriteTransaction, workspace: &str, batch: &CommitBatch) -> Result<(), StoreError> {
    if let Some(created) = batch.create {
        let mut t = tx.open_table(WORKSPACES).map_err(db_err(workspace))?;
        if t.get(workspace).map_err(db_err(workspace))?.is_none() {
            t.insert(workspace, created).map_err(db_err(workspace))?;
        }
    }
    // Only the tables this batch writes: opening one costs a lookup per commit.
    if !batch.changes.is_empty() {
        let mut changes = tx.open_table(CHANGES).map_err(db_err(workspace))?;
        for (seq, bytes) in &batch.changes {
            changes.insert((workspace, *seq), bytes.as_slice()).map_err(db_err(workspace))?;
        }
    }
    if !batch.dedup.is_empty() {
        let mut dedup = tx.open_table(DEDUP).map_err(db_err(workspace))?;
        for (client, id, ack) in &batch.dedup {
            dedup.insert((workspace, client.as_str(), id.as_str()), ack.as_slice()).map_err(db_err(workspace))?;
        }
    }
    if !batch.webhooks.is_empty() || !batch.nats.is_empty() {
        // Outbox ids come from counters kept in META, never from the table's last row: rows
        // are deleted once handled, and a reused id would hide behind a worker's cursor.
        let mut meta = tx.open_table(META).map_err(db_err(workspace))?;
        let mut counter = |name: &str, n: usize| -> Result<u64, StoreError> {
            if n == 0 {
                return Ok(0);
            }
            let start = match meta.get(name).map_err(db_err(workspace))? {
                Some(v) => u64::from_be_bytes(v.value().try_into().unwrap_or([0; 8])),
                None => 0,
            };
            meta.insert(name, (start + n as u64).to_be_bytes().as_slice()).map_err(db_err(workspace))?;
            Ok(start)
        };
        let first_hook = counter("webhook_next", batch.webhooks.len())?;
        let first_nats = counter("nats_next", batch.nats.len())?;
        if !batch.webhooks.is_empty() {
            let mut hooks = tx.open_table(WEBHOOK_OUTBOX).map_err(db_err(workspace))?;
            for (i, body) in batch.webhooks.iter().enumerate() {
                hooks.insert(first_hook + i as u64, body.as_slice()).map_err(db_err(workspace))?;
            }
        }
        if !batch.nats.is_empty() {
            let mut nats = tx.open_table(NATS_OUTBOX).map_err(db_err(workspace))?;
            for (i, change) in batch.nats.iter().enumerate() {
                nats.insert(first_nats + i as u64, (workspace, change.as_slice())).map_err(db_err(workspace))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_ids_are_never_reused_after_rows_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let batch = CommitBatch { webhooks: vec![b"a".to_vec()], ..Default::default() };
        store.commit_all(&[("w", &batch)]).unwrap();
        let first = store.webhook_outbox(None, 10).unwrap();
        assert_eq!(first.len(), 1);
        store.webhook_done(first[0].0).unwrap();
        store.commit_all(&[("w", &batch)]).unwrap();
        let second = store.webhook_outbox(None, 10).unwrap();
        assert!(second[0].0 > first[0].0, "a worker whose cursor passed {} would never see it", first[0].0);
    }

    #[test]
    fn injected_failure_commits_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.inject_commit_failures(1);
        let batch = CommitBatch { create: Some(1), changes: vec![(0, b"x".to_vec())], ..Default::default() };
        assert!(store.commit_all(&[("w", &batch)]).is_err());
        assert!(!store.workspace_exists("w").unwrap());
        store.commit_all(&[("w", &batch)]).unwrap();
        assert_eq!(store.load_workspace("w").unwrap().unwrap().changes.len(), 1);
    }
}
