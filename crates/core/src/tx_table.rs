//! The engine's transactions by sequence number: O(1) lookup (the hot path looks a transaction
//! up a dozen times per mutation) and creation order for listing.
//!
//! Sequence numbers are handed out in increasing order and transactions are only removed by
//! pruning, so a deque indexed by `seq - first` holds them without hashing: a removed one
//! leaves a hole until the holes before it are gone too.

use std::collections::VecDeque;
use std::ops::Index;

use crate::engine::TxSlot;

#[derive(Default)]
pub(crate) struct TxTable {
    /// Sequence number of `slots[0]`.
    first: u64,
    slots: VecDeque<Option<Box<TxSlot>>>,
}

impl TxTable {
    /// Inserts the transaction with the next sequence number (greater than every one before).
    pub fn insert(&mut self, seq: u64, slot: Box<TxSlot>) {
        if self.slots.is_empty() {
            self.first = seq;
        }
        let index = (seq - self.first) as usize;
        assert!(index >= self.slots.len(), "transactions are inserted in sequence order");
        self.slots.resize_with(index, || None);
        self.slots.push_back(Some(slot));
    }

    pub fn remove(&mut self, seq: &u64) -> Option<TxSlot> {
        let index = usize::try_from(seq.checked_sub(self.first)?).ok()?;
        let slot = *self.slots.get_mut(index)?.take()?;
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.first += 1;
        }
        Some(slot)
    }

    pub fn get(&self, seq: &u64) -> Option<&TxSlot> {
        let index = usize::try_from(seq.checked_sub(self.first)?).ok()?;
        self.slots.get(index)?.as_deref()
    }

    pub fn get_mut(&mut self, seq: &u64) -> Option<&mut TxSlot> {
        let index = usize::try_from(seq.checked_sub(self.first)?).ok()?;
        self.slots.get_mut(index)?.as_deref_mut()
    }

    /// In creation order.
    pub fn values(&self) -> impl Iterator<Item = &TxSlot> {
        self.slots.iter().flatten().map(|slot| &**slot)
    }
}

impl Index<&u64> for TxTable {
    type Output = TxSlot;

    fn index(&self, seq: &u64) -> &TxSlot {
        self.get(seq).expect("a live transaction")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::TxInternal;
    use crate::transaction::{Strategy, Transaction, TransactionState};

    fn slot(id: &str) -> Box<TxSlot> {
        let tx = Transaction {
            id: id.into(),
            client: "c".into(),
            state: TransactionState::Completed,
            strategy: Strategy::Ordered,
            await_sync: false,
            created_at: 0,
            updated_at: 0,
            timestamp: 0,
            mutations: Vec::new(),
            attempts: Vec::new(),
            current_attempt: 0,
            queued_behind: None,
            error: None,
            metadata: serde_json::Value::Null,
        };
        Box::new(TxSlot { tx, internal: TxInternal::default() })
    }

    fn ids(table: &TxTable) -> Vec<&str> {
        table.values().map(|s| &*s.tx.id).collect()
    }

    #[test]
    fn keeps_creation_order_across_removals_anywhere() {
        let mut table = TxTable::default();
        for seq in 1..=5 {
            table.insert(seq, slot(&seq.to_string()));
        }
        assert_eq!(table.remove(&3).unwrap().tx.id.as_ref(), "3");
        assert!(table.get(&3).is_none() && table.remove(&3).is_none());
        assert_eq!(table.remove(&1).unwrap().tx.id.as_ref(), "1");
        assert_eq!(ids(&table), ["2", "4", "5"]);
        table.remove(&2);
        table.insert(9, slot("9"));
        assert_eq!(ids(&table), ["4", "5", "9"]);
        assert_eq!(table[&9].tx.id.as_ref(), "9");
        assert!(table.get(&0).is_none() && table.get(&8).is_none() && table.get(&10).is_none());
        for seq in [4, 5, 9] {
            table.remove(&seq);
        }
        assert_eq!(ids(&table), [] as [&str; 0]);
        table.insert(12, slot("12"));
        assert_eq!(ids(&table), ["12"]);
    }
}
