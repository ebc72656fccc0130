//! The engine's transactions by sequence number: O(1) lookup (the hot path looks a transaction
//! up a dozen times per mutation) plus a creation-order index for listing.

use std::collections::BTreeSet;
use std::ops::Index;

use rustc_hash::FxHashMap;

use crate::engine::TxSlot;

#[derive(Default)]
pub(crate) struct TxTable {
    slots: FxHashMap<u64, TxSlot>,
    order: BTreeSet<u64>,
}

impl TxTable {
    pub fn insert(&mut self, seq: u64, slot: TxSlot) {
        self.order.insert(seq);
        self.slots.insert(seq, slot);
    }

    pub fn remove(&mut self, seq: &u64) -> Option<TxSlot> {
        self.order.remove(seq);
        self.slots.remove(seq)
    }

    pub fn get_mut(&mut self, seq: &u64) -> Option<&mut TxSlot> {
        self.slots.get_mut(seq)
    }

    /// In creation order.
    pub fn values(&self) -> impl Iterator<Item = &TxSlot> {
        self.order.iter().map(|seq| &self.slots[seq])
    }
}

impl Index<&u64> for TxTable {
    type Output = TxSlot;

    fn index(&self, seq: &u64) -> &TxSlot {
        &self.slots[seq]
    }
}
