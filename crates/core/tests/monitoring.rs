//! Monitoring and history: an event for every state change, every transaction listed,
//! opt-in pruning.

mod common;

use common::*;
use serde_json::json;
use tandem_core::{EngineConfig, ErrorInfo, HistoryPolicy, TransactionState::*};

#[test]
fn every_state_change_is_an_event() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a"})]);
    let t1 = h.update("a", json!({"x": 1}));
    let t2 = h.update("a", json!({"x": 2}));
    h.persist_err(&t1, retriable("503"));
    h.advance_to_next_timer();
    h.persist_ok(&t1);
    h.persist_ok(&t2);
    let of = |id: &str| h.state_events.iter().filter(|(t, _)| t == id).map(|(_, s)| *s).collect::<Vec<_>>();
    assert_eq!(of(&t1), vec![Persisting, Pending, Persisting, Completed]);
    assert_eq!(of(&t2), vec![Queued, Persisting, Completed]);
}

#[test]
fn all_transactions_are_kept_by_default() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a"})]);
    for i in 0..50 {
        let id = h.update("a", json!({"x": i}));
        h.persist_ok(&id);
    }
    assert_eq!(h.engine.transactions().count(), 50);
    assert!(h.engine.transactions().all(|t| t.state == Completed));
}

#[test]
fn pruning_by_count_erases_the_oldest_finished_transactions() {
    let history = HistoryPolicy { max_finished: Some(3), max_age_ms: None };
    let mut h = Harness::with_config(EngineConfig { history, ..config() });
    h.seed(vec![json!({"id": "a"}), json!({"id": "b"})]);
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = h.update("a", json!({"x": i}));
        h.persist_err(&id, ErrorInfo::non_retriable("no")); // failed: out of the overlay at once
        ids.push(id);
    }
    let live = h.update("b", json!({"x": 1}));
    let kept: Vec<&str> = h.engine.transactions().map(|t| &*t.id).collect();
    assert_eq!(kept, vec![ids[2].as_str(), ids[3].as_str(), ids[4].as_str(), live.as_str()]);
    assert!(!h.stored.contains_key(&ids[0]), "erased from storage too");
    assert!(h.stored.contains_key(&ids[4]));
}

#[test]
fn pruning_by_age_never_drops_unfinished_or_still_visible_work() {
    let history = HistoryPolicy { max_finished: None, max_age_ms: Some(1_000) };
    let mut h = Harness::with_config(EngineConfig { history, ..config() });
    h.seed(vec![json!({"id": "a"}), json!({"id": "b"})]);
    let done = h.update("a", json!({"x": 1}));
    h.persist_ok(&done); // completed, but its data is not synced yet: still needed for the overlay
    let pending = h.update("b", json!({"x": 1}));
    h.advance(5_000);
    assert!(h.engine.transaction(&done).is_some());
    assert!(h.engine.transaction(&pending).is_some());
    assert_eq!(h.visible("a").unwrap()["x"], 1);
    h.sync(tandem_core::SyncBatch::new(TODOS).upsert(json!({"id": "a", "x": 1})));
    h.advance(5_000);
    assert!(h.engine.transaction(&done).is_none(), "pruned once synced and old");
    assert!(h.engine.transaction(&pending).is_some());
}
