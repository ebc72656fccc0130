//! The visible record of a key: the synced record with its overlay applied, by the default
//! re-application or by the merge the newest parallel transaction on the key asks for.

use crate::engine::Engine;
use crate::merge::{apply_one, reapply};
use crate::record::{Key, Record};
use crate::transaction::{PendingMutation, Strategy};

impl Engine {
    /// The visible record of `key`, and whether it has an overlay.
    pub(crate) fn compute_visible(&self, c: u32, key: &Key) -> (Option<Record>, bool) {
        let collection = &self.collections[c as usize];
        let synced = collection.synced.get(key);
        let Some(overlaid) = collection.overlay.get(key).filter(|o| !o.entries.is_empty()) else {
            return (synced.cloned(), false);
        };
        (self.overlaid(c, synced, &overlaid.entries), true)
    }

    fn overlaid(&self, c: u32, synced: Option<&Record>, entries: &[crate::engine::MutationRef]) -> Option<Record> {
        let collection = &self.collections[c as usize];
        let mutation = |r: &crate::engine::MutationRef| -> &PendingMutation {
            &self.txs[&r.tx].tx.mutations[r.index as usize]
        };
        // The newest parallel transaction on the key decides which merge applies.
        let merge_name = entries.iter().rev().find_map(|r| match &self.txs[&r.tx].tx.strategy {
            Strategy::Parallel { merge } => Some(merge.as_ref().or(collection.merge.as_ref())),
            Strategy::Ordered => None,
        });
        match merge_name.flatten().and_then(|name| self.merges.get(name)) {
            Some(merge) => {
                let pending: Vec<&PendingMutation> = entries.iter().map(mutation).collect();
                merge.merge(synced, &pending)
            }
            None if entries.len() == 1 => apply_one(synced.cloned(), mutation(&entries[0])),
            None => {
                let pending: Vec<&PendingMutation> = entries.iter().map(mutation).collect();
                reapply(synced, &pending)
            }
        }
    }
}
