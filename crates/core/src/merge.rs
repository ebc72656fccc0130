//! How the visible record is computed from the synced one and the pending mutations on it.

use crate::record::{apply_changes, Record};
use crate::transaction::{MutationKind, PendingMutation};

/// A pluggable merge for the parallel strategy: seed 004's
/// `merge(syncedData, pendingMutations)`. `pending` are in creation order. Returning `None`
/// means the record is not visible.
///
/// Called synchronously while the engine recomputes a record: it must not call back into the
/// engine.
pub trait Merge {
    fn merge(&self, synced: Option<&Record>, pending: &[&PendingMutation]) -> Option<Record>;
}

impl<F> Merge for F
where
    F: Fn(Option<&Record>, &[&PendingMutation]) -> Option<Record>,
{
    fn merge(&self, synced: Option<&Record>, pending: &[&PendingMutation]) -> Option<Record> {
        self(synced, pending)
    }
}

/// The default merge: re-apply each pending mutation on top of the synced record, an insert as
/// the whole record, an update field by field, a delete as removal. An update whose record is
/// gone (deleted on the server) stays gone.
pub fn reapply(synced: Option<&Record>, pending: &[&PendingMutation]) -> Option<Record> {
    pending.iter().fold(synced.cloned(), |record, m| apply_one(record, m))
}

pub(crate) fn apply_one(record: Option<Record>, m: &PendingMutation) -> Option<Record> {
    // Applied on exactly the record it was computed from: the result is already known.
    if record.as_ref().is_some_and(|r| std::sync::Arc::ptr_eq(r, &m.original)) {
        return (m.kind != MutationKind::Delete).then(|| m.modified.clone());
    }
    match m.kind {
        MutationKind::Insert => Some(m.changes.clone()),
        MutationKind::Update => record.map(|mut r| {
            apply_changes(&mut r, &m.changes);
            r
        }),
        MutationKind::Delete => None,
    }
}
