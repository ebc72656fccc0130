//! Batches: 10,000+ records in one transaction, one persist, one change notification.

mod common;

use common::*;
use serde_json::json;
use tandem_core::{ChangeKind, TransactionInput, TransactionState};

#[test]
fn ten_thousand_inserts_are_one_transaction_with_one_persist_and_one_notification() {
    let mut h = Harness::new();
    let mut input = TransactionInput::new();
    for i in 0..10_000 {
        input = input.insert(TODOS, json!({"id": format!("r{i}"), "n": i}));
    }
    let id = h.mutate(input);
    assert_eq!(h.persist_log, vec![(id.clone(), 1)]);
    assert_eq!(h.engine.len(TODOS), 10_000);
    assert_eq!(h.data_changes.len(), 1);
    assert_eq!(h.data_changes[0].1.len(), 10_000);
    assert!(h.data_changes[0].1.iter().all(|c| c.kind == ChangeKind::Insert));
    let changes = h.tx(&id).changes();
    assert_eq!(changes[TODOS].as_object().unwrap().len(), 10_000);
    h.persist_ok(&id);
    assert_eq!(h.state(&id), TransactionState::Completed);
}

#[test]
fn a_batch_update_over_a_large_collection_touches_only_its_keys() {
    let mut h = Harness::new();
    h.seed((0..20_000).map(|i| json!({"id": format!("r{i}"), "n": i})).collect());
    h.data_changes.clear();
    let mut input = TransactionInput::new();
    for i in (0..20_000).step_by(2) {
        input = input.update(TODOS, &format!("r{i}"), json!({"even": true}));
    }
    h.mutate(input);
    let persists = h.persist_log.len();
    assert_eq!(persists, 1);
    assert_eq!(h.data_changes[0].1.len(), 10_000);
    // Draining leaves nothing behind.
    assert!(h.engine.poll_effect().is_none());
}
