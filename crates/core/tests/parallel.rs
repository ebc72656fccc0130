//! The parallel strategy: no locks, no queueing, no cascading; pending changes merged over sync.

mod common;

use std::sync::Arc;

use common::*;
use serde_json::{json, Value};
use tandem_core::{CollectionConfig, ErrorInfo, MutationKind, PendingMutation, Record, SyncBatch, TransactionInput, TransactionState::*};

fn parallel_update(h: &mut Harness, key: &str, changes: Value) -> String {
    h.mutate(TransactionInput::new().update(TODOS, key, changes).parallel())
}

#[test]
fn parallel_transactions_on_one_key_all_persist_at_once() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a"})]);
    let t1 = parallel_update(&mut h, "a", json!({"x": 1}));
    let t2 = parallel_update(&mut h, "a", json!({"y": 2}));
    assert_eq!((h.state(&t1), h.state(&t2)), (Persisting, Persisting));
    assert!(!h.engine.is_locked(TODOS, "a"));
}

#[test]
fn sync_updates_apply_at_once_and_pending_changes_are_reapplied_over_them() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a", "title": "milk", "x": 0, "y": 0})]);
    parallel_update(&mut h, "a", json!({"x": 1}));
    // Someone else renamed it and changed x; our pending x wins, their title stays.
    h.sync(SyncBatch::new(TODOS).upsert(json!({"id": "a", "title": "oat milk", "x": 9, "y": 5})));
    assert_eq!(h.engine.get_synced(TODOS, "a").unwrap()["title"], "oat milk", "not held");
    assert_eq!(h.visible("a"), Some(json!({"id": "a", "title": "oat milk", "x": 1, "y": 5})));
}

#[test]
fn a_failed_parallel_transaction_drops_only_its_own_changes() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a", "x": 0, "y": 0})]);
    let t1 = parallel_update(&mut h, "a", json!({"x": 1}));
    let t2 = parallel_update(&mut h, "a", json!({"y": 1}));
    h.persist_err(&t1, ErrorInfo::non_retriable("no"));
    assert_eq!((h.state(&t1), h.state(&t2)), (Failed, Persisting), "no cascading");
    assert_eq!(h.visible("a"), Some(json!({"id": "a", "x": 0, "y": 1})));
}

#[test]
fn ordered_transactions_do_not_queue_behind_parallel_ones() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a"})]);
    parallel_update(&mut h, "a", json!({"x": 1}));
    let ordered = h.update("a", json!({"y": 1}));
    assert_eq!(h.state(&ordered), Persisting);
}

/// A counter merge: pending increments are added to whatever the server says.
fn add_increments(synced: Option<&Record>, pending: &[&PendingMutation]) -> Option<Record> {
    let mut record = synced.cloned()?;
    let base = record.get("count").and_then(Value::as_i64).unwrap_or(0);
    let delta: i64 = pending
        .iter()
        .filter(|m| m.kind == MutationKind::Update)
        .filter_map(|m| m.metadata.get("increment").and_then(Value::as_i64))
        .sum();
    Arc::make_mut(&mut record).insert("count", json!(base + delta));
    Some(record)
}

#[test]
fn a_pluggable_merge_recomputes_the_visible_record_on_every_sync() {
    let mut h = Harness::new();
    h.engine.register_merge("add", Box::new(add_increments));
    h.engine.create_collection(CollectionConfig::new("counters").merge("add")).unwrap();
    h.sync(SyncBatch::new("counters").upsert(json!({"id": "c", "count": 10})));
    let mut input = TransactionInput::new().update("counters", "c", json!({})).parallel();
    input.mutations[0].metadata = json!({"increment": 2});
    h.mutate(input);
    assert_eq!(h.engine.get("counters", "c").unwrap()["count"], 12);
    h.sync(SyncBatch::new("counters").upsert(json!({"id": "c", "count": 100})));
    assert_eq!(h.engine.get("counters", "c").unwrap()["count"], 102);
}

#[test]
fn a_transaction_may_name_its_own_merge() {
    let mut h = Harness::new();
    h.engine.register_merge("keep-synced", Box::new(|s: Option<&Record>, _: &[&PendingMutation]| s.cloned()));
    h.seed(vec![json!({"id": "a", "x": 0})]);
    let strategy = tandem_core::Strategy::Parallel { merge: Some("keep-synced".into()) };
    h.mutate(TransactionInput::new().update(TODOS, "a", json!({"x": 1})).strategy(strategy));
    assert_eq!(h.visible("a").unwrap()["x"], 0);
    let unknown = tandem_core::Strategy::Parallel { merge: Some("nope".into()) };
    let err = h.engine.mutate(h.now, TransactionInput::new().update(TODOS, "a", json!({})).strategy(unknown));
    assert_eq!(err.unwrap_err().to_string(), "merge `nope` is not registered");
}
