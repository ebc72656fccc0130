//! One workspace's state: an Automerge document plus a resolved view of it.
//!
//! Layout inside the document: the root map has one entry per user key, a string holding a small
//! JSON envelope `{"t":<HLC timestamp>,"v":<value>}`, or `{"t":…,"d":true}` for a delete (a
//! tombstone, kept so an older write cannot resurrect the key). One scalar per write keeps the
//! timestamp and value of a write together, atomically: when two servers write the same key
//! concurrently, Automerge keeps both as conflicts and readers pick the highest timestamp (ties:
//! Automerge's own winner order). That is how "HLC order beats arrival order" survives merges, not
//! only local writes. (A nested map per entry would be more "Automerge-native", but costs three
//! ops per write: a 10k-op batch took ~5x longer.)
//!
//! A write is not made through an Automerge transaction (which inserts its puts into the
//! document's op columns one at a time: 30-70 µs for a one-op write, more as history grows): its
//! change is encoded directly from the resolved view (which keeps, per key, the ids of the values
//! an overwrite must name as `pred`), in ~2 µs, then stored, acknowledged and broadcast. Changes
//! are applied to the Automerge document later, many in one batched merge (`catch_up`), which
//! the workspace actor runs on another thread while writes go on. A merge walks every op of the
//! root map once, so it waits until the changes it applies number a fiftieth of the document's
//! ops (at least `CATCH_UP_MIN_OPS`): the walk then costs ~50 × 0.1-0.25 µs a written op. The
//! resolved view (`get`, `data`, `heads`) is always current; readers of the history
//! (`known_heads`, `ops_since`, `data_at`, `history`) need `catch_up` first. An encoded change has
//! the hash a transaction of the same puts would give it (a test checks it).

use std::collections::{BTreeSet, HashMap};
use std::num::NonZeroU64;

use automerge::legacy::{self, OpId};
use automerge::{ActorId, Automerge, AutomergeError, Change, ChangeHash, ExpandedChange, ObjId, PatchAction, Prop, ReadDoc, ScalarValue, Value as AmValue, ROOT};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tandem_core::protocol::Op;

#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("workspace `{workspace}`: automerge: {source}")]
    Automerge {
        workspace: String,
        #[source]
        source: Box<AutomergeError>,
    },
    #[error("workspace `{workspace}`: stored change is unreadable: {reason}")]
    Corrupt { workspace: String, reason: String },
    #[error("workspace `{workspace}`: `{head}` is not a change hash")]
    BadHead { workspace: String, head: String },
    #[error("workspace `{workspace}`: unknown heads {heads:?}")]
    UnknownHeads { workspace: String, heads: Vec<String> },
}

/// A key's current value (`None` = deleted) and the HLC timestamp of the write that set it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub timestamp: u64,
    pub value: Option<Value>,
}

impl Entry {
    pub fn to_op(&self, key: &str) -> Op {
        match &self.value {
            Some(v) => Op::put(key, v.clone(), Some(self.timestamp)),
            None => Op::delete(key, Some(self.timestamp)),
        }
    }
}

/// Who made a change: stored as the Automerge change message so it survives replication.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangeOrigin {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

impl ChangeOrigin {
    fn from_message(message: Option<&str>) -> Self {
        message.and_then(|m| serde_json::from_str(m).ok()).unwrap_or_default()
    }
}

/// A change made on this server, as stored.
#[derive(Debug)]
pub struct LocalChange {
    pub hash: ChangeHash,
    pub bytes: Vec<u8>,
    /// Number of ops.
    pub ops: usize,
}

/// The result of applying a client's ops.
#[derive(Debug)]
pub struct LocalOutcome {
    /// The new Automerge change; `None` when every op was superseded.
    pub change: Option<LocalChange>,
    /// The ops that took effect, timestamps filled in.
    pub applied: Vec<Op>,
    /// Keys whose op was older than the stored value and so changed nothing.
    pub superseded: Vec<String>,
}

/// The result of applying a change made elsewhere (another server, via NATS).
#[derive(Debug)]
pub struct RemoteOutcome {
    /// Whether the change was new to this document (and must be stored).
    pub new: bool,
    /// Current value of every key the change touched (empty while its dependencies are missing).
    pub ops: Vec<Op>,
    pub origin: ChangeOrigin,
    pub hash: ChangeHash,
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    pub hash: String,
    pub deps: Vec<String>,
    /// Commit time, Unix milliseconds.
    pub time: i64,
    pub keys: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

pub struct Document {
    workspace: String,
    actor: ActorId,
    doc: Automerge,
    state: HashMap<String, Slot>,
    /// Local changes built but not yet applied to `doc` (see [`Document::apply_local`]).
    unapplied: Vec<Change>,
    /// The heads once every local change is applied (`doc` may be behind, or away catching up).
    heads: Vec<ChangeHash>,
    /// `doc` is on another thread (between `take_for_catch_up` and `put_back`).
    away: bool,
    /// This server's latest change sequence number in `doc` (plus `unapplied`).
    seq: u64,
    /// The highest op counter in `doc` (plus `unapplied`): the next change starts after it.
    max_op: u64,
}

/// The fewest local ops worth a batched merge into the document (see the module docs).
const CATCH_UP_MIN_OPS: u64 = 256;

/// A key's resolved entry, and the ids of every value the document holds for it (its
/// conflicts): the `pred` of the next op that overwrites the key.
#[derive(Debug, Clone)]
struct Slot {
    entry: Entry,
    ids: Vec<OpId>,
}

pub fn hex_heads(heads: &[ChangeHash]) -> Vec<String> {
    heads.iter().map(|h| h.to_string()).collect()
}

impl Document {
    pub fn new(workspace: &str, actor: &[u8]) -> Self {
        let actor = ActorId::from(actor);
        Document {
            workspace: workspace.to_owned(),
            doc: Automerge::new().with_actor(actor.clone()),
            actor,
            state: HashMap::new(),
            unapplied: Vec::new(),
            heads: Vec::new(),
            away: false,
            seq: 0,
            max_op: 0,
        }
    }

    /// Rebuilds a document from its snapshot and the changes stored after it.
    pub fn load<'a>(
        workspace: &str,
        actor: &[u8],
        snapshot: Option<&[u8]>,
        changes: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Self, DocumentError> {
        let mut doc = match snapshot {
            Some(bytes) => Automerge::load(bytes).map_err(|source| DocumentError::Automerge { workspace: workspace.to_owned(), source: Box::new(source) })?,
            None => Automerge::new(),
        }
        .with_actor(ActorId::from(actor));
        let mut parsed = Vec::new();
        for bytes in changes {
            parsed.push(Change::from_bytes(bytes.to_vec()).map_err(|e| DocumentError::Corrupt {
                workspace: workspace.to_owned(),
                reason: e.to_string(),
            })?);
        }
        doc.apply_changes(parsed).map_err(|source| DocumentError::Automerge { workspace: workspace.to_owned(), source: Box::new(source) })?;
        let actor = ActorId::from(actor);
        let (mut seq, mut max_op) = (0, 0);
        for meta in doc.get_changes_meta(&[]) {
            max_op = max_op.max(meta.max_op);
            if *meta.actor == actor {
                seq = seq.max(meta.seq);
            }
        }
        let heads = doc.get_heads();
        let mut d =
            Document { workspace: workspace.to_owned(), actor, doc, state: HashMap::new(), unapplied: Vec::new(), heads, away: false, seq, max_op };
        d.rebuild_state()?;
        Ok(d)
    }

    fn am<T>(&self, r: Result<T, AutomergeError>) -> Result<T, DocumentError> {
        r.map_err(|source| DocumentError::Automerge { workspace: self.workspace.clone(), source: Box::new(source) })
    }

    fn rebuild_state(&mut self) -> Result<(), DocumentError> {
        let keys: Vec<String> = self.doc.keys(ROOT).collect();
        let mut state = HashMap::with_capacity(keys.len());
        for key in keys {
            if let Some(slot) = self.am(read_entry(&self.doc, &key, None))? {
                state.insert(key, slot);
            }
        }
        self.state = state;
        Ok(())
    }

    /// The heads once every local change is applied.
    pub fn heads(&self) -> Vec<ChangeHash> {
        self.heads.clone()
    }

    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.state.get(key).map(|s| &s.entry)
    }

    /// Highest timestamp stored (to move the server's clock past it after a load).
    pub fn max_timestamp(&self) -> u64 {
        self.state.values().map(|s| s.entry.timestamp).max().unwrap_or(0)
    }

    /// The live keys and values, as plain JSON (seed 001's `init.data`).
    pub fn data(&self) -> Map<String, Value> {
        self.state
            .iter()
            .filter_map(|(k, s)| s.entry.value.as_ref().map(|v| (k.clone(), v.clone())))
            .collect()
    }

    /// How many ops of local changes wait to be applied to the Automerge document.
    pub fn unapplied_ops(&self) -> usize {
        self.unapplied.iter().map(Change::len).sum()
    }

    /// Whether enough local changes wait for a batched merge to be worth its walk over the
    /// document (see the module docs).
    pub fn catch_up_due(&self) -> bool {
        self.unapplied_ops() as u64 >= CATCH_UP_MIN_OPS.max(self.max_op / 50)
    }

    /// Applies the local changes built since the last call to the Automerge document. Every
    /// reader of the document history (`known_heads`, `ops_since`, `data_at`, `history`) needs
    /// this first; the resolved state (`get`, `data`, `heads`) does not.
    pub fn catch_up(&mut self) -> Result<(), DocumentError> {
        debug_assert!(!self.away, "catch_up while the document is away");
        let changes = std::mem::take(&mut self.unapplied);
        if changes.is_empty() {
            return Ok(());
        }
        let r = self.doc.apply_changes(changes);
        self.am(r)
    }

    /// Moves the Automerge document and its unapplied changes out, so they can be applied on
    /// another thread; give the document back with [`Document::put_back`]. Meanwhile local
    /// writes go on (they only need the resolved view), but nothing that reads the history may
    /// be called, nor `catch_up` or `apply_remote`.
    pub fn take_for_catch_up(&mut self) -> (Automerge, Vec<Change>) {
        debug_assert!(!self.away, "the document is away already");
        self.away = true;
        (std::mem::take(&mut self.doc), std::mem::take(&mut self.unapplied))
    }

    /// Takes the document back, with the changes it was taken with applied.
    pub fn put_back(&mut self, doc: Automerge) {
        self.doc = doc;
        self.away = false;
    }

    /// Applies ops as one Automerge change. Ops must be validated; `fill` is the timestamp for
    /// ops that have none (raised past the key's current one, so a write without a timestamp —
    /// every seed-001 client — always takes effect).
    pub fn apply_local(&mut self, ops: Vec<Op>, fill: u64, origin: &ChangeOrigin, now_ms: i64) -> Result<LocalOutcome, DocumentError> {
        // Conflict order, O(1) a key: the timestamp each op gets, or `None` if superseded.
        // Within the transaction a key's latest applied op counts as its current value.
        let mut decided: Vec<Option<u64>> = Vec::with_capacity(ops.len());
        {
            let mut overlay: HashMap<&str, u64> = HashMap::new();
            for op in &ops {
                let current = overlay.get(op.key.as_str()).copied().or_else(|| self.state.get(op.key.as_str()).map(|s| s.entry.timestamp));
                let ts = match op.timestamp {
                    Some(ts) => ts,
                    None => current.map_or(fill, |c| fill.max(c.saturating_add(1))),
                };
                if current.is_some_and(|c| ts < c) {
                    decided.push(None);
                } else {
                    overlay.insert(op.key.as_str(), ts);
                    decided.push(Some(ts));
                }
            }
        }
        let mut applied = Vec::with_capacity(ops.len());
        let mut superseded = Vec::new();
        for (op, ts) in ops.into_iter().zip(decided) {
            match ts {
                Some(ts) => applied.push(Op { timestamp: Some(ts), ..op }),
                None => superseded.push(op.key),
            }
        }
        if applied.is_empty() {
            return Ok(LocalOutcome { change: None, applied, superseded });
        }
        // The change is encoded directly rather than made by an Automerge transaction (see the
        // module docs); `catch_up` applies it to the document later. Ops go in key order (the order a
        // transaction of sorted puts would have, so the change is the same) and only the last
        // write of a key repeated within the transaction is kept, as it is the one that stands.
        let mut order: Vec<usize> = (0..applied.len()).collect();
        order.sort_by(|&a, &b| applied[a].key.cmp(&applied[b].key));
        order.dedup_by(|later, earlier| {
            let same = applied[*later].key == applied[*earlier].key;
            if same {
                // `dedup_by` keeps the first of a run; keep the last write instead.
                *earlier = *later;
            }
            same
        });
        let envelopes: Vec<String> = order
            .iter()
            .map(|&i| {
                let op = &applied[i];
                let e = match &op.value {
                    Some(v) if !op.delete => Envelope { t: op.timestamp.unwrap_or_default(), v: Some(v), d: false },
                    _ => Envelope { t: op.timestamp.unwrap_or_default(), v: None, d: true },
                };
                serde_json::to_string(&e).expect("JSON values serialise")
            })
            .collect();
        let message = (origin != &ChangeOrigin::default()).then(|| serde_json::to_string(origin).unwrap_or_default());
        let start_op = self.max_op + 1;
        let local = {
            let operations = order
                .iter()
                .zip(&envelopes)
                .map(|(&i, envelope)| {
                    let key = applied[i].key.as_str();
                    legacy::Op {
                        action: legacy::OpType::Put(ScalarValue::Str(envelope.as_str().into())),
                        obj: legacy::ObjectId::Root,
                        key: legacy::Key::Map(key.into()),
                        pred: self.state.get(key).map(|s| s.ids.clone()).unwrap_or_default().into(),
                        insert: false,
                    }
                })
                .collect();
            let expanded = ExpandedChange {
                operations,
                actor_id: self.actor.clone(),
                hash: None,
                seq: self.seq + 1,
                start_op: NonZeroU64::new(start_op).expect("start_op > 0"),
                time: now_ms,
                message,
                deps: self.heads(),
                extra_bytes: Vec::new(),
                author: None,
            };
            let change = Change::from(expanded);
            self.seq += 1;
            self.max_op = change.max_op();
            // A local change depends on all the heads before it.
            self.heads = vec![change.hash()];
            let local = LocalChange { hash: change.hash(), bytes: change.raw_bytes().to_vec(), ops: change.len() };
            self.unapplied.push(change);
            local
        };
        self.state.reserve(order.len());
        for (n, &i) in order.iter().enumerate() {
            let op = &applied[i];
            let value = if op.delete { None } else { op.value.clone() };
            let slot = Slot {
                entry: Entry { timestamp: op.timestamp.unwrap_or_default(), value },
                ids: vec![OpId(start_op + n as u64, self.actor.clone())],
            };
            self.state.insert(op.key.clone(), slot);
        }
        Ok(LocalOutcome { change: Some(local), applied, superseded })
    }

    /// Applies a change made by another server. Idempotent.
    pub fn apply_remote(&mut self, bytes: &[u8]) -> Result<RemoteOutcome, DocumentError> {
        let change = Change::from_bytes(bytes.to_vec())
            .map_err(|e| DocumentError::Corrupt { workspace: self.workspace.clone(), reason: e.to_string() })?;
        let hash = change.hash();
        let origin = ChangeOrigin::from_message(change.message());
        self.catch_up()?;
        if self.doc.get_change_by_hash(&hash).is_some() {
            return Ok(RemoteOutcome { new: false, ops: Vec::new(), origin, hash });
        }
        let before = self.doc.get_heads();
        let change_max_op = change.max_op();
        let change_seq = (change.actor_id() == &self.actor).then(|| change.seq());
        let r = self.doc.apply_changes([change]);
        self.am(r)?;
        // A change waiting for its dependencies is queued, not applied: count it only once
        // it is (its ops are then in the document). Ours (seen again after a restore) too.
        if self.doc.get_change_by_hash(&hash).is_some() {
            self.max_op = self.max_op.max(change_max_op);
            if let Some(seq) = change_seq {
                self.seq = self.seq.max(seq);
            }
        }
        let after = self.doc.get_heads();
        self.heads = after.clone();
        let mut ops = Vec::new();
        if before != after {
            for key in self.touched_keys(&before, &after) {
                match self.am(read_entry(&self.doc, &key, None))? {
                    Some(slot) => {
                        ops.push(slot.entry.to_op(&key));
                        self.state.insert(key, slot);
                    }
                    None => {
                        self.state.remove(&key);
                    }
                }
            }
        }
        Ok(RemoteOutcome { new: true, ops, origin, hash })
    }

    /// Keys written between two sets of heads (`before` must be known to the document).
    fn touched_keys(&self, before: &[ChangeHash], after: &[ChangeHash]) -> BTreeSet<String> {
        let mut keys = BTreeSet::new();
        for patch in self.doc.diff(before, after) {
            if patch.obj == ROOT {
                match patch.action {
                    PatchAction::PutMap { key, .. } | PatchAction::DeleteMap { key } => {
                        keys.insert(key);
                    }
                    PatchAction::Conflict { prop: Prop::Map(key) } => {
                        keys.insert(key);
                    }
                    _ => {}
                }
            } else if let Some((_, Prop::Map(key))) = patch.path.first() {
                keys.insert(key.clone());
            }
        }
        keys
    }

    /// Parses hex heads; `Ok(None)` when any of them is not in this document.
    pub fn known_heads(&self, heads: &[String]) -> Result<Option<Vec<ChangeHash>>, DocumentError> {
        let mut out = Vec::with_capacity(heads.len());
        for h in heads {
            let hash: ChangeHash = h
                .parse()
                .map_err(|_| DocumentError::BadHead { workspace: self.workspace.clone(), head: h.clone() })?;
            if self.doc.get_change_by_hash(&hash).is_none() {
                return Ok(None);
            }
            out.push(hash);
        }
        Ok(Some(out))
    }

    /// The current value of every key changed since `heads` (which must be known): what a
    /// client that last saw `heads` lacks. One op per key, deletes included.
    pub fn ops_since(&self, heads: &[ChangeHash]) -> Result<Vec<Op>, DocumentError> {
        let now = self.doc.get_heads();
        if heads == now.as_slice() {
            return Ok(Vec::new());
        }
        let mut ops = Vec::new();
        for key in self.touched_keys(heads, &now) {
            if let Some(s) = self.state.get(&key) {
                ops.push(s.entry.to_op(&key));
            }
        }
        Ok(ops)
    }

    /// The live data as it was at `heads` (history `?at=`).
    pub fn data_at(&self, heads: &[String]) -> Result<Map<String, Value>, DocumentError> {
        let Some(heads) = self.known_heads(heads)? else {
            return Err(DocumentError::UnknownHeads { workspace: self.workspace.clone(), heads: heads.to_vec() });
        };
        let mut out = Map::new();
        let keys: Vec<String> = self.doc.keys_at(ROOT, &heads).collect();
        for key in keys {
            if let Some(Slot { entry: Entry { value: Some(v), .. }, .. }) = self.am(read_entry(&self.doc, &key, Some(&heads)))? {
                out.insert(key, v);
            }
        }
        Ok(out)
    }

    /// The latest `limit` changes, oldest first.
    pub fn history(&self, limit: usize) -> (usize, Vec<HistoryEntry>) {
        let metas = self.doc.get_changes_meta(&[]);
        let total = metas.len();
        let entries = metas[total.saturating_sub(limit)..]
            .iter()
            .map(|m| {
                let origin = ChangeOrigin::from_message(m.message.as_deref());
                HistoryEntry {
                    hash: m.hash.to_string(),
                    deps: hex_heads(&m.deps),
                    time: m.timestamp,
                    keys: self.touched_keys(&m.deps, &[m.hash]).into_iter().collect(),
                    tx: origin.tx,
                    client: origin.client,
                }
            })
            .collect();
        (total, entries)
    }
}

/// How one write is stored: see the module docs.
#[derive(Serialize)]
struct Envelope<'a> {
    t: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    v: Option<&'a Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    d: bool,
}

#[derive(Deserialize)]
struct StoredEnvelope {
    t: u64,
    #[serde(default)]
    v: Value,
    #[serde(default)]
    d: bool,
}

/// Reads a key's entry, resolving concurrent entries by highest timestamp, and the ids of all
/// its values.
fn read_entry(doc: &Automerge, key: &str, at: Option<&[ChangeHash]>) -> Result<Option<Slot>, AutomergeError> {
    let all = match at {
        Some(h) => doc.get_all_at(ROOT, key, h)?,
        None => doc.get_all(ROOT, key)?,
    };
    let mut best: Option<Entry> = None;
    let mut ids = Vec::with_capacity(all.len());
    for (value, id) in all {
        if let ObjId::Id(counter, actor, _) = id {
            ids.push(OpId(counter, actor));
        }
        let AmValue::Scalar(s) = value else { continue };
        let ScalarValue::Str(text) = s.as_ref() else { continue };
        // Not written by this server's layout: ignore rather than fail.
        let Ok(e) = serde_json::from_str::<StoredEnvelope>(text) else { continue };
        // `>=`: among equal timestamps the later conflict (Automerge's winner) wins.
        if best.as_ref().is_none_or(|b| e.t >= b.timestamp) {
            best = Some(Entry { timestamp: e.t, value: (!e.d).then_some(e.v) });
        }
    }
    Ok(best.map(|entry| Slot { entry, ids }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn older_op_is_superseded_and_newer_applies() {
        let mut d = Document::new("w", b"a");
        let o = ChangeOrigin::default();
        d.apply_local(vec![Op::put("k", json!(1), Some(100))], 0, &o, 0).unwrap();
        let out = d.apply_local(vec![Op::put("k", json!(2), Some(50))], 0, &o, 0).unwrap();
        assert!(out.change.is_none());
        assert_eq!(out.superseded, vec!["k".to_string()]);
        assert_eq!(d.get("k").unwrap().value, Some(json!(1)));
        let out = d.apply_local(vec![Op::put("k", json!(3), None)], 10, &o, 0).unwrap();
        assert_eq!(out.applied[0].timestamp, Some(101), "a missing timestamp is raised past the current one");
    }

    #[test]
    fn concurrent_writes_on_two_replicas_converge_to_the_highest_timestamp() {
        let mut a = Document::new("w", b"a");
        let mut b = Document::new("w", b"b");
        let o = ChangeOrigin::default();
        let ca = a.apply_local(vec![Op::put("k", json!("a"), Some(200))], 0, &o, 0).unwrap().change.unwrap();
        let cb = b.apply_local(vec![Op::put("k", json!("b"), Some(100))], 0, &o, 0).unwrap().change.unwrap();
        b.apply_remote(ca.bytes.as_slice()).unwrap();
        a.apply_remote(cb.bytes.as_slice()).unwrap();
        assert_eq!(a.data(), b.data());
        assert_eq!(a.get("k").unwrap().value, Some(json!("a")));
        assert_eq!(a.heads(), b.heads());
    }

    /// The change `apply_local` encodes directly must be the very change an Automerge
    /// transaction of the same puts makes (same ops, preds, deps, hash): new keys, overwrites,
    /// and a key holding two conflicting values after a merge.
    #[test]
    fn encoded_change_equals_the_transaction_built_one() {
        use automerge::transaction::{CommitOptions, Transactable};
        let o = ChangeOrigin { tx: Some("t".into()), client: Some("c".into()) };
        let mut d = Document::new("w", b"server-a");
        let mut reference = Automerge::new().with_actor(ActorId::from(&b"server-a"[..]));
        let mut other = Document::new("w", b"server-b");
        let check = |d: &mut Document, reference: &mut Automerge, ops: Vec<Op>, time: i64| {
            let out = d.apply_local(ops.clone(), 1, &o, time).unwrap();
            let mut tx = reference.transaction();
            let mut sorted = ops.clone();
            sorted.sort_by(|a, b| a.key.cmp(&b.key));
            for op in &sorted {
                let e = match &op.value {
                    Some(v) if !op.delete => Envelope { t: op.timestamp.unwrap(), v: Some(v), d: false },
                    _ => Envelope { t: op.timestamp.unwrap(), v: None, d: true },
                };
                tx.put(ROOT, op.key.as_str(), serde_json::to_string(&e).unwrap()).unwrap();
            }
            let (hash, _) = tx.commit_with(CommitOptions::default().with_time(time).with_message(serde_json::to_string(&o).unwrap()));
            let change = Change::from_bytes(out.change.unwrap().bytes).unwrap();
            assert_eq!(Some(change.hash()), hash, "{:?}\nvs\n{:?}", change.decode(), reference.get_change_by_hash(&hash.unwrap()).unwrap().decode());
            d.catch_up().unwrap();
            assert_eq!(d.heads(), reference.get_heads());
            change
        };
        let batch = |keys: &[&str], ts: u64| keys.iter().map(|k| Op::put(*k, json!({"k": k, "ts": ts}), Some(ts))).collect::<Vec<_>>();
        check(&mut d, &mut reference, batch(&["b", "a", "c"], 10), 1);
        check(&mut d, &mut reference, batch(&["a", "d"], 20), 2);
        // A concurrent write of `a` from another server: `a` then holds two values.
        let theirs = other.apply_local(batch(&["a", "z"], 15), 1, &ChangeOrigin::default(), 3).unwrap().change.unwrap();
        let theirs = Change::from_bytes(theirs.bytes).unwrap();
        d.apply_remote(theirs.raw_bytes()).unwrap();
        reference.apply_changes([theirs.clone()]).unwrap();
        assert_eq!(d.state.get("a").unwrap().ids.len(), 2, "a conflict after the merge");
        assert_eq!(d.get("a").unwrap().timestamp, 20, "the higher timestamp stands");
        let mut del = batch(&["c"], 30);
        del.push(Op::delete("a", Some(30)));
        check(&mut d, &mut reference, del, 4);
        assert_eq!(d.state.get("a").unwrap().ids.len(), 1, "the overwrite replaced both values");
        // Reloading from the stored changes rebuilds the same state, seq and max op.
        let changes: Vec<Vec<u8>> = reference.get_changes(&[]).iter().map(|c| c.raw_bytes().to_vec()).collect();
        let mut loaded = Document::load("w", b"server-a", None, changes.iter().map(Vec::as_slice)).unwrap();
        assert_eq!((loaded.seq, loaded.max_op), (d.seq, d.max_op));
        assert_eq!(loaded.data(), d.data());
        check(&mut loaded, &mut reference, batch(&["a", "e"], 40), 5);
    }

    #[test]
    fn a_key_repeated_in_one_transaction_is_written_once_with_its_last_value() {
        let mut d = Document::new("w", b"a");
        let o = ChangeOrigin::default();
        let ops = vec![Op::put("k", json!(1), Some(5)), Op::put("j", json!(0), Some(5)), Op::put("k", json!(2), Some(6))];
        let out = d.apply_local(ops, 0, &o, 0).unwrap();
        assert_eq!(out.applied.len(), 3);
        assert_eq!(out.change.as_ref().unwrap().ops, 2);
        d.catch_up().unwrap();
        let reloaded = Document::load("w", b"a", None, [out.change.unwrap().bytes.as_slice()]).unwrap();
        assert_eq!(reloaded.get("k").unwrap().value, Some(json!(2)));
        assert_eq!(reloaded.data(), d.data());
    }

    #[test]
    fn reload_from_changes_gives_same_state_and_heads() {
        let mut a = Document::new("w", b"a");
        let o = ChangeOrigin { tx: Some("t1".into()), client: Some("c".into()) };
        let c1 = a.apply_local(vec![Op::put("x", json!({"n": 1}), None)], 5, &o, 0).unwrap().change.unwrap();
        let c2 = a.apply_local(vec![Op::delete("x", None)], 6, &o, 0).unwrap().change.unwrap();
        let b = Document::load("w", b"a", None, [c1.bytes.as_slice(), c2.bytes.as_slice()]).unwrap();
        assert_eq!(b.heads(), a.heads());
        assert!(b.data().is_empty());
        assert_eq!(b.get("x").unwrap().timestamp, 6);
        let (total, h) = b.history(10);
        assert_eq!(total, 2);
        assert_eq!(h[1].keys, vec!["x".to_string()]);
        assert_eq!(h[1].tx.as_deref(), Some("t1"));
        assert_eq!(b.data_at(&[h[0].hash.clone()]).unwrap(), json!({"x": {"n": 1}}).as_object().unwrap().clone());
        assert_eq!(b.ops_since(&[c1.hash]).unwrap(), vec![Op::delete("x", Some(6))]);
    }
}
