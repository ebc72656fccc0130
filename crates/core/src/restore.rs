//! Recovery after a reload: transactions read back from storage are re-admitted.
//!
//! Seed 004: pending work is re-run; a transaction whose persist had succeeded is assumed synced
//! and its optimistic layer dropped. An attempt that was running when the page went away is
//! marked interrupted and does not count against the retry budget; the transaction keeps its
//! id, which is its idempotency key, so the server applies it at most once.

use crate::engine::{Engine, TxInternal, TxSlot};
use crate::error::EngineError;
use crate::transaction::{ErrorInfo, MutationState, Transaction, TransactionState};

impl Engine {
    /// Re-admits stored transactions, oldest first. Unfinished ones resume (queued behind
    /// conflicting ordered work, including work already running in this engine); finished ones
    /// become history. Transactions the engine already knows are skipped, so adopting the same
    /// outbox twice runs nothing twice. Refused as a whole if one names an unknown collection.
    pub fn restore(&mut self, now: u64, mut records: Vec<Transaction>) -> Result<(), EngineError> {
        for tx in &records {
            if let Some(m) = tx.mutations.iter().find(|m| !self.collection_index.contains_key(&*m.collection)) {
                return Err(EngineError::RestoreUnknownCollection {
                    id: tx.id.to_string(),
                    collection: m.collection.to_string(),
                });
            }
        }
        // Ids are unique, so an unstable sort orders exactly like a stable one (and saves the wasm
        // client a second sort implementation).
        records.sort_unstable_by(|a, b| (a.timestamp, &a.id).cmp(&(b.timestamp, &b.id)));
        for mut tx in records {
            if self.seq_by_id.contains_key(&tx.id) {
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
                    self.admit(now, seq, tx, retry_at);
                }
            }
        }
        self.settle(now);
        Ok(())
    }

    fn insert_finished(&mut self, seq: u64, tx: Transaction) {
        self.seq_by_id.insert(tx.id.clone(), seq);
        self.txs.insert(seq, TxSlot { tx, internal: TxInternal::default() });
        self.finished.push_back(seq);
    }
}
