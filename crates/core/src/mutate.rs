//! Creating a transaction: validate every mutation against the visible state (all or nothing),
//! record it in the overlay, then queue it behind conflicting ordered work or start it.

use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::engine::{Engine, MutationRef, TxInternal, TxSlot};
use crate::error::MutationError;
use crate::record::{apply_changes, record_of, Fields, Key, Record, RecordProblem};
use crate::transaction::{
    compose_shared_id, DerivedId, MutationKind, MutationState, PendingMutation, Strategy, Transaction, TransactionState,
    TxId,
};

/// One mutation as the app asks for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mutation {
    /// Shared: a driver's mutations of one collection name it without an allocation each.
    pub collection: Arc<str>,
    pub op: MutationOp,
    #[serde(default)]
    pub metadata: Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MutationOp {
    /// A whole new record, which must carry the collection's key field.
    Insert { record: Fields },
    /// Fields to set on an existing record.
    Update { key: String, changes: Fields },
    Delete { key: String },
}

/// A transaction as the app asks for it: mutations applied all together or not at all.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TransactionInput {
    pub mutations: Vec<Mutation>,
    pub strategy: Strategy,
    /// Persist success waits for the sync step (`persisted_awaiting_sync`) before completing.
    pub await_sync: bool,
    pub metadata: Value,
    /// The first mutation `insert` was given a non-object for: refused as `NotAnObject` when
    /// `mutate` reaches it, so the error names the real problem and its place.
    #[serde(skip)]
    pub not_an_object: Option<usize>,
}

impl TransactionInput {
    pub fn new() -> Self {
        Self::default()
    }

    /// `record` must be a JSON object; anything else makes `mutate` refuse the transaction with
    /// `InvalidRecord { problem: NotAnObject }` at this mutation's index.
    pub fn insert(mut self, collection: &str, record: Value) -> Self {
        let record = Fields::try_from(record).unwrap_or_else(|_| {
            self.not_an_object.get_or_insert(self.mutations.len());
            Fields::new()
        });
        self.push(collection, MutationOp::Insert { record });
        self
    }

    /// `changes` must be a JSON object; anything else is an empty update.
    pub fn update(mut self, collection: &str, key: &str, changes: Value) -> Self {
        let changes = Fields::try_from(changes).unwrap_or_default();
        self.push(collection, MutationOp::Update { key: key.into(), changes });
        self
    }

    pub fn delete(mut self, collection: &str, key: &str) -> Self {
        self.push(collection, MutationOp::Delete { key: key.into() });
        self
    }

    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    pub fn parallel(self) -> Self {
        self.strategy(Strategy::Parallel { merge: None })
    }

    pub fn awaiting_sync(mut self) -> Self {
        self.await_sync = true;
        self
    }

    fn push(&mut self, collection: &str, op: MutationOp) {
        self.mutations.push(Mutation { collection: collection.into(), op, metadata: Value::Null });
    }
}

/// How a transaction reaches [`Engine::admit`].
#[derive(Clone, Copy)]
pub(crate) enum Admission {
    /// Created by `mutate` in this input: validated against the visible state just now.
    Validated,
    /// Restored from storage; `retry_at` delays the start of one that was waiting for a retry.
    Restored { retry_at: Option<u64> },
}

impl Engine {
    /// Applies a transaction optimistically and schedules its persist. Returns its id.
    pub fn mutate(&mut self, now: u64, input: TransactionInput) -> Result<TxId, MutationError> {
        let TransactionInput { mutations, strategy, await_sync, metadata, not_an_object } = input;
        let mut mutations = self.validate(now, mutations, &strategy, not_an_object)?;
        let seq = self.next_seq;
        self.next_seq += 1;
        let timestamp = mutations[0].timestamp;
        let id: TxId = compose_shared_id(&self.client_id, '-', timestamp);
        for (i, m) in mutations.iter_mut().enumerate() {
            m.mutation_id = DerivedId::new(&id, '/', i as u32);
        }
        let tx = Transaction {
            id: id.clone(),
            client: self.client_id.clone(),
            state: TransactionState::Pending,
            strategy,
            await_sync,
            created_at: now,
            updated_at: now,
            timestamp,
            mutations,
            attempts: Vec::new(),
            current_attempt: 0,
            queued_behind: None,
            error: None,
            metadata,
        };
        self.admit(now, seq, tx, Admission::Validated);
        self.settle_after(now, Some(seq));
        Ok(id)
    }

    /// Checks every mutation in order against the visible state as the earlier ones of the same
    /// transaction leave it, and builds the pending mutations. Changes nothing on error.
    fn validate(
        &mut self,
        now: u64,
        mutations: Vec<Mutation>,
        strategy: &Strategy,
        not_an_object: Option<usize>,
    ) -> Result<Vec<PendingMutation>, MutationError> {
        if mutations.is_empty() {
            return Err(MutationError::EmptyTransaction);
        }
        if let Strategy::Parallel { merge: Some(name) } = strategy {
            if !self.merges.contains_key(name) {
                return Err(MutationError::UnknownMerge { merge: name.clone() });
            }
        }
        // Keys this transaction already touched, with the record as it leaves them; only needed
        // when there is more than one mutation.
        let mut scratch: Option<FxHashMap<(u32, Key), Option<Record>>> = (mutations.len() > 1)
            .then(|| FxHashMap::with_capacity_and_hasher(mutations.len(), Default::default()));
        let mut out = Vec::with_capacity(mutations.len());
        let mut last_collection: Option<u32> = None;
        for (index, mutation) in mutations.into_iter().enumerate() {
            // Batches name one collection: compared with the last one's name, not hashed.
            let c = match last_collection {
                Some(c) if *self.collections[c as usize].name == *mutation.collection => c,
                _ => self
                    .index_of(&mutation.collection)
                    .ok_or_else(|| MutationError::UnknownCollection { collection: mutation.collection.to_string() })?,
            };
            last_collection = Some(c);
            let collection = &self.collections[c as usize];
            let current = |key: &Key| match scratch.as_ref().and_then(|s| s.get(&(c, key.clone()))) {
                Some(record) => record.clone(),
                None => collection.visible(key).cloned(),
            };
            // The key as the collection already holds it (so the mutation shares its allocation),
            // with its current record, in one lookup.
            let resolve = |key: String| match collection.visible_entry(key.as_str()) {
                Some((known, record)) => match scratch.as_ref().and_then(|s| s.get(&(c, known.clone()))) {
                    Some(record) => (known.clone(), record.clone()),
                    None => (known.clone(), record.cloned()),
                },
                None => {
                    let key = Key::from(key);
                    let record = current(&key);
                    (key, record)
                }
            };
            let missing = |key: &Key| MutationError::MissingKey {
                collection: collection.name.to_string(),
                key: key.to_string(),
            };
            let (kind, key, original, modified, changes) = match mutation.op {
                MutationOp::Insert { record } => {
                    let checked = match not_an_object == Some(index) {
                        true => Err(RecordProblem::NotAnObject),
                        false => record_of(record, &collection.key_field),
                    };
                    let (key, record) = checked.map_err(|problem| MutationError::InvalidRecord {
                        collection: collection.name.to_string(),
                        index,
                        problem,
                    })?;
                    if current(&key).is_some() {
                        return Err(MutationError::DuplicateKey {
                            collection: collection.name.to_string(),
                            key: key.to_string(),
                        });
                    }
                    (MutationKind::Insert, key, self.empty_record.clone(), record.clone(), record)
                }
                MutationOp::Update { key, changes } => {
                    let (key, original) = resolve(key);
                    let original = original.ok_or_else(|| missing(&key))?;
                    if let Some(new_key) = changes.get(&collection.key_field) {
                        if original.get(&collection.key_field) != Some(new_key) {
                            return Err(MutationError::KeyFieldChanged {
                                collection: collection.name.to_string(),
                                key: key.to_string(),
                                field: collection.key_field.clone(),
                            });
                        }
                    }
                    let mut modified = original.clone();
                    apply_changes(&mut modified, &changes);
                    (MutationKind::Update, key, original, modified, Arc::new(changes))
                }
                MutationOp::Delete { key } => {
                    let (key, original) = resolve(key);
                    let original = original.ok_or_else(|| missing(&key))?;
                    (MutationKind::Delete, key, original, self.empty_record.clone(), self.empty_record.clone())
                }
            };
            if let Some(scratch) = scratch.as_mut() {
                let after = (kind != MutationKind::Delete).then(|| modified.clone());
                scratch.insert((c, key.clone()), after);
            }
            out.push(PendingMutation {
                mutation_id: DerivedId::Text(String::new()),
                kind,
                collection: collection.name.clone(),
                key,
                original,
                modified,
                changes,
                metadata: mutation.metadata,
                timestamp: 0,
                created_at: now,
                updated_at: now,
                state: MutationState::Created,
            });
        }
        // Validation passed: only now take timestamps, so a refused transaction leaves no trace.
        for m in &mut out {
            m.timestamp = self.hlc.tick(now);
        }
        Ok(out)
    }

    /// Registers a transaction whose state is `Pending` or `Queued` (new or restored): puts its
    /// mutations in the overlay and, for ordered ones, queues it behind the latest unfinished
    /// ordered transaction on each of its objects.
    pub(crate) fn admit(&mut self, now: u64, seq: u64, tx: Transaction, admission: Admission) {
        let retry_at = match admission {
            Admission::Validated => None,
            Admission::Restored { retry_at } => retry_at,
        };
        // Boxed once, where the table keeps it, rather than moved there at the end.
        let mut slot = Box::new(TxSlot { tx, internal: TxInternal::default() });
        let TxSlot { tx, internal } = &mut *slot;
        let ordered = tx.strategy.is_ordered();
        let n = tx.mutations.len();
        // Nothing marked yet in this input: a key this transaction has not touched before is
        // not marked either (no duplicate check, so no set of the batch's keys).
        let first_marks = self.dirty.is_empty();
        if n > 1 {
            // Grow the indexes once for a batch rather than by repeated doubling and rehashing.
            self.dirty.reserve(n);
            if ordered {
                self.objects.reserve(n);
                internal.objects.reserve(n);
            }
            // Batches almost always touch one collection: size the first one's overlay.
            let first = self.index_of(&tx.mutations[0].collection).expect("validated") as usize;
            self.collections[first].overlay.reserve(n);
        }
        let mut last_collection: Option<(&Arc<str>, u32)> = None;
        for (index, m) in tx.mutations.iter().enumerate() {
            // Batches name one collection: looked up once.
            let c = match last_collection {
                Some((name, c)) if Arc::ptr_eq(name, &m.collection) => c,
                _ => self.index_of(&m.collection).expect("validated"),
            };
            last_collection = Some((&m.collection, c));
            let entries = &mut self.collections[c as usize].overlay.entry(m.key.clone()).or_default().entries;
            // The overlay lists a key's mutations in order: this transaction's last one there
            // means it touched the key before (marked, and one of its objects, already).
            let touched = entries.last().is_some_and(|r| r.tx == seq);
            entries.push(MutationRef { tx: seq, index: index as u32 });
            internal.overlay_entries += 1;
            if touched {
                continue;
            }
            if first_marks {
                // Just validated against the visible state, a key's first mutation knows the
                // record it saw (an insert saw none): no lookup of it again.
                let before = match admission {
                    Admission::Validated => (m.kind != MutationKind::Insert).then(|| m.original.clone()),
                    Admission::Restored { .. } => self.collections[c as usize].visible(&m.key).cloned(),
                };
                self.dirty.push((c, m.key.clone(), before));
            } else {
                self.mark_dirty(c, &m.key);
            }
            if ordered {
                internal.objects.push((c, m.key.clone()));
            }
        }
        // Objects nobody queues on are locked at once, in the same lookup; undone below if
        // another object makes the transaction wait (then it locks them all when it starts).
        for obj in &internal.objects {
            let queue = self.objects.entry(obj.clone()).or_default();
            match queue.chain.last() {
                Some(&blocker) => {
                    internal.waiting_on.insert(blocker);
                }
                None => queue.locks += 1,
            }
            queue.chain.push(seq);
        }
        internal.holds_locks = !internal.objects.is_empty();
        if !internal.waiting_on.is_empty() && internal.holds_locks {
            internal.holds_locks = false;
            for obj in &internal.objects {
                let queue = self.objects.get_mut(obj).expect("just queued");
                if queue.chain[0] == seq {
                    queue.locks -= 1;
                }
            }
        }
        match admission {
            Admission::Validated => self.tx_ids.insert_created(tx.timestamp, seq),
            Admission::Restored { .. } => self.tx_ids.insert(tx.id.clone(), seq),
        }
        let blockers: Vec<u64> = internal.waiting_on.iter().copied().collect();
        self.txs.insert(seq, slot);
        for blocker in &blockers {
            self.txs.get_mut(blocker).expect("blocker exists").internal.dependents.push(seq);
        }
        // Unblocked, it holds its locks already (taken above).
        if blockers.is_empty() {
            match retry_at.filter(|&at| at > now) {
                Some(at) => {
                    self.set_state(seq, TransactionState::Pending);
                    self.set_timer(seq, at);
                    self.touch(seq, now);
                }
                None => self.begin_attempt(seq, now),
            }
        } else {
            self.set_state(seq, TransactionState::Queued);
            self.update_queued_behind(seq);
            self.touch(seq, now);
        }
    }
}
