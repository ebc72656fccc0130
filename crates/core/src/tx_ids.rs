//! Transaction ids to sequence numbers.
//!
//! History is unbounded by default (seed 004), so a hash map of every id grows, and rehashes,
//! with every mutation. The transactions this engine creates need none of it: their ids are
//! `{client_id}-{timestamp}` with strictly increasing HLC timestamps, so a list of
//! (timestamp, seq) in creation order is sorted, appended to without hashing and searched by
//! the timestamp read back from the id. Only restored and foreign-looking ids are hashed.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::transaction::TxId;

/// A removed entry of `created`, kept until the entries before it are gone too.
const REMOVED: u64 = u64::MAX;

pub(crate) struct TxIds {
    client_id: Arc<str>,
    /// (timestamp, seq) of the transactions `mutate` created, oldest first; those before
    /// `first` are removed. (A `Vec`, not a `VecDeque`: the wasm client has its code already.)
    created: Vec<(u64, u64)>,
    first: usize,
    created_live: usize,
    /// Every other transaction's.
    others: FxHashMap<TxId, u64>,
}

impl TxIds {
    pub fn new(client_id: Arc<str>) -> Self {
        TxIds { client_id, created: Vec::new(), first: 0, created_live: 0, others: FxHashMap::default() }
    }

    /// A transaction `mutate` created: its id is `{client_id}-{timestamp}`, and its timestamp
    /// is newer than every one created before.
    pub fn insert_created(&mut self, timestamp: u64, seq: u64) {
        debug_assert!(self.created.last().is_none_or(|&(last, _)| last < timestamp));
        self.created.push((timestamp, seq));
        self.created_live += 1;
    }

    /// Any other transaction (restored, or taken from storage).
    pub fn insert(&mut self, id: TxId, seq: u64) {
        self.others.insert(id, seq);
    }

    pub fn get(&self, id: &str) -> Option<u64> {
        match self.created_index(id) {
            Some(index) => Some(self.created[index].1),
            None => self.others.get(id).copied(),
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    pub fn remove(&mut self, id: &str) {
        let Some(index) = self.created_index(id) else {
            self.others.remove(id);
            return;
        };
        self.created[index].1 = REMOVED;
        self.created_live -= 1;
        while self.created.get(self.first).is_some_and(|&(_, seq)| seq == REMOVED) {
            self.first += 1;
        }
        // Removed entries at the front are dropped once they are half the list.
        if self.first * 2 > self.created.len() {
            let live = self.created.len() - self.first;
            self.created.copy_within(self.first.., 0);
            self.created.truncate(live);
            self.first = 0;
        }
    }

    pub fn len(&self) -> usize {
        self.created_live + self.others.len()
    }

    /// Where `id` is in `created`, if it is there (and not removed).
    fn created_index(&self, id: &str) -> Option<usize> {
        let digits = id.strip_prefix(&*self.client_id)?.strip_prefix('-')?;
        let timestamp = canonical_u64(digits)?;
        let index = self.first + self.created[self.first..].binary_search_by_key(&timestamp, |&(t, _)| t).ok()?;
        (self.created[index].1 != REMOVED).then_some(index)
    }
}

/// `digits` as written by `compose_id` (decimal, no sign, no leading zero), else `None`.
fn canonical_u64(digits: &str) -> Option<u64> {
    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    digits.bytes().try_fold(0u64, |n, b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_ids_are_found_by_their_timestamp_and_others_by_hash() {
        let mut ids = TxIds::new("tab-1".into());
        ids.insert_created(100, 1);
        ids.insert_created(250, 2);
        ids.insert("tab-1-50".into(), 3); // restored: same client, older
        ids.insert("other-7".into(), 4);
        assert_eq!(ids.get("tab-1-100"), Some(1));
        assert_eq!(ids.get("tab-1-250"), Some(2));
        assert_eq!(ids.get("tab-1-50"), Some(3));
        assert_eq!(ids.get("other-7"), Some(4));
        assert_eq!(ids.len(), 4);
        for unknown in ["tab-1-101", "tab-1-0100", "tab-1-", "tab-1-1x0", "tab-1-99999999999999999999", "tab-2-100", "tab-1"] {
            assert_eq!(ids.get(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn removed_ids_are_gone_in_any_order() {
        let mut ids = TxIds::new("c".into());
        for (t, seq) in [(10, 1), (20, 2), (30, 3)] {
            ids.insert_created(t, seq);
        }
        ids.insert("x".into(), 4);
        ids.remove("c-20");
        assert_eq!((ids.get("c-20"), ids.get("c-10"), ids.get("c-30")), (None, Some(1), Some(3)));
        ids.remove("c-10");
        ids.remove("x");
        assert_eq!((ids.get("c-10"), ids.get("x"), ids.len()), (None, None, 1));
        assert_eq!(ids.created.len() - ids.first, 1, "removed entries at the front are skipped");
        assert!(ids.created.len() < 3, "and dropped");
        ids.remove("c-30");
        assert_eq!(ids.len(), 0);
        ids.insert_created(40, 5);
        assert_eq!(ids.get("c-40"), Some(5));
    }
}
