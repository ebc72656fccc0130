//! A local collection (no sync layer): a completed transaction's changes become its synced
//! data, in creation order, and are reported so a driver can store them.

mod common;

use common::Harness;
use serde_json::json;
use tandem_core::{
    CollectionConfig, EngineConfig, ErrorInfo, HistoryPolicy, Strategy, SyncBatch, TransactionInput, TransactionState,
};

const NOTES: &str = "notes";

fn harness() -> Harness {
    let mut h = Harness::new();
    h.engine.create_collection(CollectionConfig::new(NOTES).local()).unwrap();
    h
}

fn insert(h: &mut Harness, record: serde_json::Value, strategy: Strategy) -> String {
    h.mutate(TransactionInput::new().insert(NOTES, record).strategy(strategy))
}

fn update(h: &mut Harness, key: &str, changes: serde_json::Value, strategy: Strategy) -> String {
    h.mutate(TransactionInput::new().update(NOTES, key, changes).strategy(strategy))
}

fn synced(h: &Harness, key: &str) -> Option<serde_json::Value> {
    h.engine.get_synced(NOTES, key).map(|r| r.to_value())
}

fn visible(h: &Harness, key: &str) -> Option<serde_json::Value> {
    h.engine.get(NOTES, key).map(|r| r.to_value())
}

#[test]
fn a_completed_transaction_becomes_the_synced_data_and_is_reported() {
    let mut h = harness();
    let t1 = insert(&mut h, json!({"id": "a", "n": 1}), Strategy::Ordered);
    assert_eq!(synced(&h, "a"), None, "not before it completes");
    let data_changes = h.data_changes.len();
    h.persist_ok(&t1);
    assert_eq!(synced(&h, "a"), Some(json!({"id": "a", "n": 1})));
    assert_eq!(h.local_synced, vec![(NOTES.into(), "a".into(), Some(json!({"id": "a", "n": 1})))]);
    assert_eq!(visible(&h, "a"), Some(json!({"id": "a", "n": 1})));
    assert_eq!(h.data_changes.len(), data_changes, "folding changes nothing visible: no DataChanged");

    let t2 = h.mutate(TransactionInput::new().delete(NOTES, "a"));
    h.persist_ok(&t2);
    assert_eq!((synced(&h, "a"), visible(&h, "a")), (None, None));
    assert_eq!(h.local_synced.last(), Some(&(NOTES.into(), "a".into(), None)));

    // A collection with a sync layer keeps waiting for it (no flicker).
    let t3 = h.insert(json!({"id": "s", "n": 1}));
    h.persist_ok(&t3);
    assert_eq!(h.engine.get_synced(common::TODOS, "s"), None);
    assert_eq!(h.local_synced.len(), 2);
}

#[test]
fn a_change_completed_out_of_order_waits_for_the_ones_before_it_on_its_key() {
    let mut h = harness();
    let parallel = Strategy::Parallel { merge: None };
    let seed = insert(&mut h, json!({"id": "a", "n": 0, "m": 0}), parallel.clone());
    h.persist_ok(&seed);
    let t1 = update(&mut h, "a", json!({"n": 1}), parallel.clone());
    let t2 = update(&mut h, "a", json!({"m": 2}), parallel.clone());
    h.persist_ok(&t2);
    assert_eq!(synced(&h, "a"), Some(json!({"id": "a", "n": 0, "m": 0})), "t2 waits behind the unfinished t1");
    assert_eq!(visible(&h, "a"), Some(json!({"id": "a", "n": 1, "m": 2})));
    h.persist_ok(&t1);
    assert_eq!(synced(&h, "a"), Some(json!({"id": "a", "n": 1, "m": 2})), "both, in creation order");
    assert_eq!(h.local_synced.len(), 2, "one report per key and input");

    // A failed transaction before a completed one: the completed one is folded without it.
    let t3 = update(&mut h, "a", json!({"n": 3}), parallel.clone());
    let t4 = update(&mut h, "a", json!({"m": 4}), parallel);
    h.persist_ok(&t4);
    h.persist_err(&t3, ErrorInfo::thrown(ErrorInfo::NON_RETRIABLE, "no"));
    assert_eq!(h.state(&t3), TransactionState::Failed);
    assert_eq!(synced(&h, "a"), Some(json!({"id": "a", "n": 1, "m": 4})));
    assert_eq!(visible(&h, "a"), Some(json!({"id": "a", "n": 1, "m": 4})));
}

#[test]
fn folded_transactions_leave_no_overlay_so_history_can_prune_them() {
    let history = HistoryPolicy { max_finished: Some(1), max_age_ms: None };
    let mut h = Harness::with_config(EngineConfig { history, ..common::config() });
    h.engine.create_collection(CollectionConfig::new(NOTES).local()).unwrap();
    let ids: Vec<String> = (0..3).map(|n| insert(&mut h, json!({"id": format!("k{n}")}), Strategy::Ordered)).collect();
    for id in &ids {
        h.persist_ok(id);
    }
    assert_eq!(h.engine.transactions().count(), 1, "all but the newest finished one pruned");
    assert!(h.engine.transaction(&ids[2]).is_some());
    assert_eq!((0..3).filter(|n| synced(&h, &format!("k{n}")).is_some()).count(), 3);
}

#[test]
fn a_synced_record_restored_from_a_cache_is_the_base_of_later_changes() {
    let mut h = harness();
    let t1 = insert(&mut h, json!({"id": "a", "n": 1}), Strategy::Ordered);
    let t2 = update(&mut h, "a", json!({"n": 2}), Strategy::Ordered);
    h.persist_ok(&t1);
    h.persist_ok(&t2);
    assert_eq!(synced(&h, "a"), Some(json!({"id": "a", "n": 2})));
    // Restoring a driver's cache (as a snapshot batch) and then a new change: built on it.
    let mut batch = SyncBatch::new(NOTES).as_snapshot();
    batch.changes.push(tandem_core::SyncChange::Upsert(json!({"id": "a", "n": 2})));
    h.sync(batch);
    let t3 = update(&mut h, "a", json!({"m": 1}), Strategy::Ordered);
    h.persist_ok(&t3);
    assert_eq!(synced(&h, "a"), Some(json!({"id": "a", "n": 2, "m": 1})));
    assert_eq!(h.engine.transactions().filter(|tx| tx.state == TransactionState::Completed).count(), 3);
}
