//! Recovery after a reload: transactions read back from storage are re-admitted.
//!
//! Seed 004: pending work is re-run; a transaction whose persist had succeeded is assumed synced
//! and its optimistic layer dropped. An attempt that was running when the page went away is
//! marked interrupted and does not count against the retry budget; the transaction keeps its
//! id, which is its idempotency key, so the server applies it at most once.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use crate::engine::{Engine, TxInternal, TxSlot};
use crate::error::EngineError;
use crate::mutate::Admission;
use crate::transaction::{ErrorInfo, MutationState, Transaction, TransactionState};

impl Engine {
    /// Re-admits stored transactions, oldest first. Unfinished ones resume (queued behind
    /// conflicting ordered work, including work already running in this engine); finished ones
    /// become history. Transactions the engine already knows are skipped, so adopting the same
    /// outbox twice runs nothing twice. Refused as a whole if one names an unknown collection.
    pub fn restore(&mut self, now: u64, records: Vec<Transaction>) -> Result<(), EngineError> {
        for tx in &records {
            if let Some(m) = tx.mutations.iter().find(|m| self.index_of(&m.collection).is_none()) {
                return Err(EngineError::RestoreUnknownCollection {
                    id: tx.id.to_string(),
                    collection: m.collection.to_string(),
                });
            }
        }
        // Oldest first, by a min-heap rather than a sort: the wasm client links heaps anyway, and
        // a sort implementation costs it ~1 KB gzipped. Ids are unique, so the order is total.
        let mut oldest_first: BinaryHeap<Reverse<ByTime>> = records.into_iter().map(|tx| Reverse(ByTime(tx))).collect();
        while let Some(Reverse(ByTime(mut tx))) = oldest_first.pop() {
            if self.tx_ids.contains(&tx.id) {
                continue;
            }
            self.hlc.observe(tx.timestamp);
            for m in &tx.mutations {
                self.hlc.observe(m.timestamp);
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            match tx.state {
                TransactionState::Completed | TransactionState::Failed => self.insert_finished(seq, tx),
                TransactionState::PersistedAwaitingSync => {
                    tx.state = TransactionState::Completed;
                    for m in &mut tx.mutations {
                        m.state = MutationState::Synced;
                        m.updated_at = now;
                    }
                    self.insert_finished(seq, tx);
                    self.touch(seq, now);
                }
                TransactionState::Queued | TransactionState::Pending | TransactionState::Persisting => {
                    if tx.state == TransactionState::Persisting {
                        if let Some(attempt) = tx.attempts.last_mut().filter(|a| a.completed_at.is_none()) {
                            attempt.completed_at = Some(now);
                            attempt.interrupted = true;
                            attempt.error = Some(ErrorInfo {
                                name: "Interrupted".into(),
                                message: "the page was closed or reloaded while this attempt ran".into(),
                                retriable: true,
                            });
                        }
                    }
                    let retry_at = match tx.state {
                        TransactionState::Pending => tx.attempts.last().and_then(|a| a.retry_scheduled_for),
                        _ => None,
                    };
                    tx.state = TransactionState::Pending;
                    tx.queued_behind = None;
                    for m in &mut tx.mutations {
                        m.state = MutationState::Created;
                    }
                    self.admit(now, seq, tx, Admission::Restored { retry_at });
                }
            }
        }
        self.settle(now);
        Ok(())
    }

    fn insert_finished(&mut self, seq: u64, tx: Transaction) {
        self.tx_ids.insert(tx.id.clone(), seq);
        self.txs.insert(seq, Box::new(TxSlot { tx, internal: TxInternal::default() }));
        self.finished.push_back(seq);
    }
}

/// A stored transaction ordered by (timestamp, id).
struct ByTime(Transaction);

impl Ord for ByTime {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.0.timestamp, &self.0.id).cmp(&(other.0.timestamp, &other.0.id))
    }
}

impl PartialOrd for ByTime {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for ByTime {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for ByTime {}
