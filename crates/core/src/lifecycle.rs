//! A transaction's life after it is admitted: attempts, retries with backoff, completion, and
//! failure cascading to everything queued behind it. Also the per-object locks of the ordered
//! strategy, which are held from a transaction's first attempt until it finishes.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use crate::effect::Effect;
use crate::engine::{remove_draining, Engine};
use crate::error::EngineError;
use crate::transaction::{Attempt, DerivedId, ErrorInfo, MutationState, TransactionError, TransactionState};

impl Engine {
    /// The user's persist resolved.
    pub fn persist_succeeded(&mut self, now: u64, id: &str, attempt: u32) -> Result<(), EngineError> {
        let seq = self.seq_of(id)?;
        if !self.is_current_attempt(seq, attempt) {
            return Ok(()); // A late answer to an attempt that timed out or a finished transaction.
        }
        self.clear_timer(seq);
        self.observe_from_next_sync(seq);
        let tx = &mut self.txs.get_mut(&seq).expect("checked above").tx;
        tx.attempts.last_mut().expect("a current attempt").completed_at = Some(now);
        if tx.await_sync {
            let id = tx.id.clone();
            self.set_state(seq, TransactionState::PersistedAwaitingSync);
            self.set_mutation_state(seq, MutationState::Synced, now);
            self.touch(seq, now);
            self.effects.push_back(Effect::AwaitSync { transaction: id });
        } else {
            self.complete(seq, now);
        }
        self.settle(now);
        Ok(())
    }

    /// The user's persist rejected. Retriable errors are retried with backoff until the budget
    /// is spent; then, or for a non-retriable error, the transaction fails and rolls back.
    pub fn persist_failed(&mut self, now: u64, id: &str, attempt: u32, error: ErrorInfo) -> Result<(), EngineError> {
        let seq = self.seq_of(id)?;
        if !self.is_current_attempt(seq, attempt) {
            return Ok(());
        }
        self.clear_timer(seq);
        self.attempt_failed(seq, now, error);
        self.settle(now);
        Ok(())
    }

    /// The await-sync step reported that the sync has the transaction's data.
    pub fn await_sync_done(&mut self, now: u64, id: &str) -> Result<(), EngineError> {
        let seq = self.seq_of(id)?;
        if self.txs[&seq].tx.state == TransactionState::PersistedAwaitingSync {
            self.complete(seq, now);
            self.settle(now);
        }
        Ok(())
    }

    /// Starts retries that are due and fails attempts that ran past their deadline.
    pub fn handle_timeout(&mut self, now: u64) {
        loop {
            // What the last round popped or cleared may have left a cleared timer on top.
            self.prune_timers();
            let Some(&Reverse((due, seq))) = self.timers.peek() else { break };
            if due > now {
                break;
            }
            self.timers.pop();
            let slot = self.txs.get_mut(&seq).expect("timers name live transactions");
            slot.internal.timer = None;
            match slot.tx.state {
                TransactionState::Pending => self.begin_attempt(seq, now),
                TransactionState::Persisting => {
                    let timeout = self.attempt_timeout_ms.unwrap_or_default();
                    let attempt = slot.tx.current_attempt;
                    let error = ErrorInfo {
                        name: "TimeoutError".into(),
                        message: format!("persist attempt {attempt} did not finish within {timeout} ms"),
                        retriable: true,
                    };
                    self.attempt_failed(seq, now, error);
                }
                _ => {}
            }
        }
        self.settle(now);
    }

    fn is_current_attempt(&self, seq: u64, attempt: u32) -> bool {
        let tx = &self.txs[&seq].tx;
        tx.state == TransactionState::Persisting && tx.current_attempt == attempt
    }

    fn attempt_failed(&mut self, seq: u64, now: u64, error: ErrorInfo) {
        let tx = &mut self.txs.get_mut(&seq).expect("failing transaction exists").tx;
        let counted = tx.counted_attempts();
        let last = tx.attempts.last_mut().expect("a current attempt");
        last.completed_at = Some(now);
        last.error = Some(error.clone());
        if error.retriable && self.retry.allows_another(counted) {
            let due = now + self.retry.delay(counted, &mut self.rng);
            last.retry_scheduled_for = Some(due);
            self.set_state(seq, TransactionState::Pending);
            self.set_mutation_state(seq, MutationState::Created, now);
            self.set_timer(seq, due);
            self.touch(seq, now);
        } else {
            let message = if error.retriable {
                format!("{} (gave up after {counted} attempts)", error.message)
            } else {
                error.message.clone()
            };
            self.fail(seq, now, TransactionError { transaction_id: None, message, error });
        }
    }

    pub(crate) fn begin_attempt(&mut self, seq: u64, now: u64) {
        let timeout = self.attempt_timeout_ms;
        let tx = &mut self.txs.get_mut(&seq).expect("started transaction exists").tx;
        let number = tx.attempts.len() as u32 + 1;
        tx.attempts.reserve_exact(1); // Most transactions make one attempt.
        tx.attempts.push(Attempt {
            id: DerivedId::new(&tx.id, '#', number),
            number,
            started_at: now,
            completed_at: None,
            error: None,
            retry_scheduled_for: None,
            interrupted: false,
        });
        tx.current_attempt = number;
        let id = tx.id.clone();
        self.set_state(seq, TransactionState::Persisting);
        self.set_mutation_state(seq, MutationState::Persisting, now);
        if let Some(timeout) = timeout {
            self.set_timer(seq, now + timeout);
        }
        // Saved before persist runs, so a driver that honours effect order has the transaction
        // on disk before the network sees it.
        self.touch(seq, now);
        self.effects.push_back(Effect::Persist { transaction: id, attempt: number });
    }

    pub(crate) fn complete(&mut self, seq: u64, now: u64) {
        self.clear_timer(seq);
        // Completed by a sync confirmation while persist still ran: that attempt is over too.
        let tx = &mut self.txs.get_mut(&seq).expect("completing transaction exists").tx;
        if tx.state == TransactionState::Persisting {
            if let Some(attempt) = tx.attempts.last_mut().filter(|a| a.completed_at.is_none()) {
                attempt.completed_at = Some(now);
            }
        }
        self.set_state(seq, TransactionState::Completed);
        self.set_mutation_state(seq, MutationState::Synced, now);
        self.touch(seq, now);
        self.release(seq);
        // Its overlay stays until the synced layer shows its data (see sync.rs): no flicker.
        if self.txs[&seq].internal.overlay_entries == 0 {
            self.finished.push_back(seq);
        }
        // Unless no sync layer ever will: then it is the synced data (after the ones before it).
        self.fold_local(seq);
        let dependents = std::mem::take(&mut self.txs.get_mut(&seq).expect("exists").internal.dependents);
        for dependent in dependents {
            let slot = self.txs.get_mut(&dependent).expect("dependents exist");
            slot.internal.waiting_on.remove(&seq);
            if slot.tx.state == TransactionState::Queued {
                if slot.internal.waiting_on.is_empty() {
                    self.ready.push(Reverse(dependent));
                } else {
                    self.update_queued_behind(dependent);
                    self.touch(dependent, now);
                }
            }
        }
    }

    /// Fails a transaction, rolls back its optimistic changes, and fails everything queued
    /// behind it (transitively) with `transaction_id` naming it.
    pub(crate) fn fail(&mut self, seq: u64, now: u64, error: TransactionError) {
        let root_id = self.txs[&seq].tx.id.clone();
        let cause = TransactionError {
            transaction_id: Some(root_id.clone()),
            message: format!(
                "rolled back because transaction `{root_id}`, which it was queued behind, failed: {}",
                error.message
            ),
            error: error.error.clone(),
        };
        // Dependents always come later than what they wait on: lowest sequence first fails
        // everything in creation order. `seq` fails with `error`, the others with `cause`; one
        // reached twice is terminal the second time. (A min-heap of sequence numbers, not a
        // B-tree map to the errors: each B-tree key/value type costs the wasm client ~3 KB
        // gzipped.)
        let root = seq;
        let mut to_fail = BinaryHeap::from([Reverse(seq)]);
        while let Some(Reverse(seq)) = to_fail.pop() {
            let error = if seq == root { &error } else { &cause };
            if self.txs[&seq].tx.state.is_terminal() {
                continue;
            }
            self.clear_timer(seq);
            self.txs.get_mut(&seq).expect("exists").tx.error = Some(Box::new(error.clone()));
            self.set_state(seq, TransactionState::Failed);
            self.remove_from_overlay(seq);
            self.touch(seq, now);
            self.release(seq);
            self.finished.push_back(seq);
            // Completed changes it held back on a local collection's keys can be folded now.
            self.fold_local(seq);
            let dependents = std::mem::take(&mut self.txs.get_mut(&seq).expect("exists").internal.dependents);
            for dependent in dependents {
                to_fail.push(Reverse(dependent));
            }
        }
    }

    /// Starts the queued transactions whose blockers all finished, in creation order.
    pub(crate) fn start_ready(&mut self, now: u64) {
        while !self.ready.is_empty() {
            // A min-heap, as the one failing dependents uses: the wasm client links no sort.
            let mut ready = std::mem::take(&mut self.ready);
            while let Some(Reverse(seq)) = ready.pop() {
                let slot = &self.txs[&seq];
                if slot.tx.state == TransactionState::Queued && slot.internal.waiting_on.is_empty() {
                    self.txs.get_mut(&seq).expect("exists").tx.queued_behind = None;
                    self.acquire_locks(seq);
                    self.begin_attempt(seq, now);
                }
            }
        }
    }

    pub(crate) fn acquire_locks(&mut self, seq: u64) {
        let slot = self.txs.get_mut(&seq).expect("locking transaction exists");
        if slot.internal.holds_locks || slot.internal.objects.is_empty() {
            return;
        }
        slot.internal.holds_locks = true;
        for obj in &slot.internal.objects {
            self.objects.get_mut(obj).expect("a transaction's objects are queued").locks += 1;
        }
    }

    /// Releases a finishing transaction's locks and chain entries; sync changes held for objects
    /// that are now free are applied.
    fn release(&mut self, seq: u64) {
        let slot = self.txs.get_mut(&seq).expect("releasing transaction exists");
        let objects = std::mem::take(&mut slot.internal.objects);
        let held_locks = std::mem::replace(&mut slot.internal.holds_locks, false);
        for obj in &objects {
            let Some(queue) = self.objects.get_mut(obj) else { continue };
            queue.chain.retain(|s| *s != seq);
            let unlocked = held_locks && {
                queue.locks -= 1;
                queue.locks == 0
            };
            if queue.chain.is_empty() && queue.locks == 0 {
                remove_draining(&mut self.objects, obj);
            }
            if unlocked {
                self.apply_held(obj.0, &obj.1);
            }
        }
    }

    pub(crate) fn update_queued_behind(&mut self, seq: u64) {
        let latest = self.txs[&seq].internal.waiting_on.last().copied();
        let behind = latest.map(|b| self.txs[&b].tx.id.clone());
        self.txs.get_mut(&seq).expect("exists").tx.queued_behind = behind;
    }

    pub(crate) fn set_state(&mut self, seq: u64, state: TransactionState) {
        self.txs.get_mut(&seq).expect("exists").tx.state = state;
    }

    fn set_mutation_state(&mut self, seq: u64, state: MutationState, now: u64) {
        for m in &mut self.txs.get_mut(&seq).expect("exists").tx.mutations {
            m.state = state;
            m.updated_at = now;
        }
    }

    /// After persist success, a sync batch that arrives from now on reflects the write.
    pub(crate) fn observe_from_next_sync(&mut self, seq: u64) {
        self.txs.get_mut(&seq).expect("exists").internal.observe_from = self.sync_seq + 1;
    }

    /// For each key of a local collection that transaction `seq` touched: folds the completed
    /// transactions' mutations at the front of its overlay into the synced record, in order,
    /// and reports the result (`Effect::LocalSynced`). An unfinished transaction's mutation
    /// stops the fold: what follows it waits until it completes or fails.
    pub(crate) fn fold_local(&mut self, seq: u64) {
        if !self.collections.iter().any(|c| c.local) {
            return;
        }
        let mut keys = self.keys_of(seq);
        keys.retain(|(c, _)| self.collections[*c as usize].local);
        for (c, key) in keys {
            let mut folded = false;
            loop {
                let collection = &self.collections[c as usize];
                let Some(first) = collection.overlay.get(&key).and_then(|o| o.entries.first().copied()) else {
                    break;
                };
                let slot = &self.txs[&first.tx];
                if slot.tx.state != TransactionState::Completed {
                    break;
                }
                if !folded {
                    // The visible record stays; its overlay copy goes once the overlay is empty.
                    self.mark_dirty(c, &key);
                    folded = true;
                }
                let mutation = &self.txs[&first.tx].tx.mutations[first.index as usize];
                let collection = &mut self.collections[c as usize];
                match crate::merge::apply_one(collection.synced.get(&key).cloned(), mutation) {
                    Some(record) => collection.synced.insert(key.clone(), record),
                    None => collection.synced.remove(&key),
                };
                // An emptied entry goes at the end of the input (the key is marked).
                collection.overlay.get_mut(&key).expect("just read").entries.remove(0);
                let internal = &mut self.txs.get_mut(&first.tx).expect("overlay names live transactions").internal;
                internal.overlay_entries -= 1;
                if internal.overlay_entries == 0 {
                    self.finished.push_back(first.tx);
                }
            }
            if folded {
                let collection = &self.collections[c as usize];
                let record = collection.synced.get(&key).cloned();
                self.effects.push_back(Effect::LocalSynced { collection: collection.name.clone(), key, record });
            }
        }
    }

    /// The (collection, key) of each of `seq`'s mutations, in order.
    fn keys_of(&self, seq: u64) -> Vec<(u32, crate::record::Key)> {
        let mut keys = Vec::new();
        let mut last: Option<(&Arc<str>, u32)> = None;
        for m in &self.txs[&seq].tx.mutations {
            // Batches name one collection: looked up once.
            let c = match last {
                Some((name, c)) if Arc::ptr_eq(name, &m.collection) => c,
                _ => self.index_of(&m.collection).expect("admitted mutations name known collections"),
            };
            last = Some((&m.collection, c));
            keys.push((c, m.key.clone()));
        }
        keys
    }

    fn remove_from_overlay(&mut self, seq: u64) {
        let slot = self.txs.get_mut(&seq).expect("exists");
        if slot.internal.overlay_entries == 0 {
            return;
        }
        slot.internal.overlay_entries = 0;
        for (c, key) in self.keys_of(seq) {
            // An emptied entry shows what it showed until the end of the input drops it: the
            // "before" marking takes.
            if let Some(overlaid) = self.collections[c as usize].overlay.get_mut(&key) {
                overlaid.entries.retain(|r| r.tx != seq);
            }
            self.mark_dirty(c, &key);
        }
    }
}
