//! Sync: held updates for locked objects, await-sync, confirmation by id, no flicker.

mod common;

use common::*;
use serde_json::json;
use tandem_core::{ChangeKind, Effect, ErrorInfo, Fields, Record, SyncBatch, SyncChange, TransactionInput, TransactionState::*};

#[test]
fn a_sync_update_to_a_locked_key_is_held_until_the_transaction_completes() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a", "title": "milk", "done": false})]);
    let t1 = h.update("a", json!({"done": true}));
    h.sync(SyncBatch::new(TODOS).upsert(json!({"id": "a", "title": "oat milk", "done": false})));
    assert_eq!(h.engine.get_synced(TODOS, "a").unwrap()["title"], "milk", "held, not applied");
    assert_eq!(h.visible("a").unwrap()["title"], "milk");
    h.persist_ok(&t1);
    assert_eq!(h.engine.get_synced(TODOS, "a").unwrap()["title"], "oat milk", "applied on release");
    assert_eq!(h.visible("a").unwrap()["title"], "oat milk");
}

#[test]
fn a_shared_record_is_kept_as_handed_over_also_when_held() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a", "n": 0}), json!({"id": "b", "n": 0})]);
    let t1 = h.update("a", json!({"n": 1}));
    let record = |value| Record::new(Fields::try_from(value).unwrap());
    let (sent_a, sent_b) = (record(json!({"id": "a", "n": 2})), record(json!({"id": "b", "n": 3})));
    let mut batch = SyncBatch::<Record>::of(TODOS);
    batch.changes = vec![SyncChange::Upsert(sent_a.clone()), SyncChange::Upsert(sent_b.clone())];
    h.engine.sync_received(h.now, batch).unwrap();
    assert!(Record::ptr_eq(h.engine.get_synced(TODOS, "b").unwrap(), &sent_b), "the same allocation, not a copy");
    assert_eq!(h.engine.get_synced(TODOS, "a").unwrap()["n"], 0, "held while `a` is locked");
    h.persist_ok(&t1);
    assert!(Record::ptr_eq(h.engine.get_synced(TODOS, "a").unwrap(), &sent_a), "applied on release, still shared");
}

#[test]
fn a_sync_update_to_an_unlocked_key_applies_at_once() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a"}), json!({"id": "b"})]);
    h.update("a", json!({"x": 1}));
    h.sync(SyncBatch::new(TODOS).upsert(json!({"id": "b", "x": 7})));
    assert_eq!(h.visible("b").unwrap()["x"], 7);
}

#[test]
fn held_updates_are_released_when_the_transaction_fails_too() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a", "x": 0})]);
    let t1 = h.update("a", json!({"x": 1}));
    h.sync(SyncBatch::new(TODOS).upsert(json!({"id": "a", "x": 5})));
    h.persist_err(&t1, ErrorInfo::non_retriable("no"));
    assert_eq!(h.visible("a").unwrap()["x"], 5, "rolled back onto the newest server data");
}

#[test]
fn the_optimistic_value_stays_until_the_synced_layer_has_it_no_flicker() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a", "x": 0})]);
    let t1 = h.update("a", json!({"x": 1}));
    h.persist_ok(&t1);
    assert_eq!(h.state(&t1), Completed);
    assert_eq!(h.visible("a").unwrap()["x"], 1, "completed, but the server data has not arrived yet");
    h.data_changes.clear();
    h.sync(SyncBatch::new(TODOS).upsert(json!({"id": "a", "x": 1})));
    assert_eq!(h.visible("a").unwrap()["x"], 1);
    assert!(h.data_changes.is_empty(), "the echo changes nothing visible: {:?}", h.data_changes);
    // The overlay is gone now: a later server change shows through.
    h.sync(SyncBatch::new(TODOS).upsert(json!({"id": "a", "x": 2})));
    assert_eq!(h.visible("a").unwrap()["x"], 2);
}

#[test]
fn a_stale_sync_update_from_before_the_persist_does_not_undo_a_completed_write() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a", "x": 0})]);
    let t1 = h.update("a", json!({"x": 1}));
    // Arrives while persisting: held; it predates the write.
    h.sync(SyncBatch::new(TODOS).upsert(json!({"id": "a", "x": 0, "y": 1})));
    h.persist_ok(&t1);
    assert_eq!(h.visible("a"), Some(json!({"id": "a", "x": 1, "y": 1})));
}

#[test]
fn await_sync_completes_when_a_sync_update_confirms_the_transaction() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a", "x": 0})]);
    let t1 = h.mutate(TransactionInput::new().update(TODOS, "a", json!({"x": 1})).awaiting_sync());
    h.persist_ok(&t1);
    assert_eq!(h.state(&t1), PersistedAwaitingSync);
    h.data_changes.clear();
    h.sync(SyncBatch::new(TODOS).upsert(json!({"id": "a", "x": 1})).confirming(&t1));
    assert_eq!(h.state(&t1), Completed);
    assert_eq!(h.engine.get_synced(TODOS, "a").unwrap()["x"], 1, "its own echo is applied, not held");
    assert!(h.data_changes.is_empty(), "no flicker: {:?}", h.data_changes);
    h.sync(SyncBatch::new(TODOS).upsert(json!({"id": "a", "x": 3})));
    assert_eq!(h.visible("a").unwrap()["x"], 3, "the confirmed overlay is gone");
}

#[test]
fn an_echo_that_overtakes_the_persist_response_completes_the_transaction() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a", "x": 0})]);
    let t1 = h.mutate(TransactionInput::new().update(TODOS, "a", json!({"x": 1})).awaiting_sync());
    h.sync(SyncBatch::new(TODOS).upsert(json!({"id": "a", "x": 1})).confirming(&t1));
    assert_eq!(h.state(&t1), Completed);
    h.persist_ok(&t1); // the late answer is ignored
    assert_eq!(h.state(&t1), Completed);
    assert_eq!(h.tx(&t1).attempts.len(), 1);
}

#[test]
fn a_confirmed_transaction_releases_its_queue_after_the_batch_applies() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a", "x": 0, "y": 0})]);
    let t1 = h.mutate(TransactionInput::new().update(TODOS, "a", json!({"x": 1})).awaiting_sync());
    let t2 = h.update("a", json!({"y": 2}));
    h.persist_ok(&t1);
    h.sync(SyncBatch::new(TODOS).upsert(json!({"id": "a", "x": 1, "y": 0})).confirming(&t1));
    assert_eq!(h.state(&t2), Persisting);
    assert_eq!(h.engine.get_synced(TODOS, "a").unwrap()["x"], 1, "applied before t2 locked the key");
    assert_eq!(h.visible("a"), Some(json!({"id": "a", "x": 1, "y": 2})));
}

#[test]
fn a_snapshot_replaces_the_synced_layer_and_deletes_what_it_does_not_mention() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a"}), json!({"id": "b"})]);
    h.data_changes.clear();
    h.seed(vec![json!({"id": "b", "v": 2}), json!({"id": "c"})]);
    assert_eq!(h.visible("a"), None);
    assert_eq!(h.visible("b"), Some(json!({"id": "b", "v": 2})));
    let mut kinds: Vec<(String, ChangeKind)> =
        h.data_changes[0].1.iter().map(|c| (c.key.to_string(), c.kind)).collect();
    kinds.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        kinds,
        vec![("a".into(), ChangeKind::Delete), ("b".into(), ChangeKind::Update), ("c".into(), ChangeKind::Insert)]
    );
}

#[test]
fn a_first_load_lists_every_record_once_as_an_insert_with_its_last_value() {
    let mut h = Harness::new();
    h.sync(
        SyncBatch::new(TODOS)
            .upsert(json!({"id": "a", "v": 1}))
            .upsert(json!({"id": "b"}))
            .upsert(json!({"id": "a", "v": 2})),
    );
    assert_eq!(h.visible("a"), Some(json!({"id": "a", "v": 2})));
    assert_eq!(h.engine.len(TODOS), 2);
    let changes: Vec<(String, ChangeKind)> = h.data_changes[0].1.iter().map(|c| (c.key.to_string(), c.kind)).collect();
    assert_eq!(changes, [("a".into(), ChangeKind::Insert), ("b".into(), ChangeKind::Insert)]);
    assert_eq!(h.data_changes.len(), 1);
    // The next load compares with what is there.
    h.sync(SyncBatch::new(TODOS).upsert(json!({"id": "b", "v": 3})));
    assert_eq!(h.data_changes[1].1.iter().map(|c| c.kind).collect::<Vec<_>>(), [ChangeKind::Update]);
}

#[test]
fn a_first_load_is_reported_as_loaded_keys_and_a_later_batch_as_changes() {
    let mut engine = tandem_core::Engine::new(config());
    engine.create_collection(tandem_core::CollectionConfig::new(TODOS)).unwrap();
    let effects = |engine: &mut tandem_core::Engine| std::iter::from_fn(|| engine.poll_effect()).collect::<Vec<_>>();
    let load = SyncBatch::new(TODOS).upsert(json!({"id": "b"})).upsert(json!({"id": "a"})).upsert(json!({"id": "b", "v": 1}));
    engine.sync_received(1, load).unwrap();
    match &effects(&mut engine)[..] {
        [Effect::Loaded { collection, keys }] => {
            assert_eq!(&**collection, TODOS);
            assert_eq!(keys.iter().map(|k| &**k).collect::<Vec<_>>(), ["b", "a"], "the batch's order, each key once");
        }
        other => panic!("expected one Loaded effect, got {other:?}"),
    }
    engine.sync_received(2, SyncBatch::new(TODOS).upsert(json!({"id": "c"}))).unwrap();
    assert!(matches!(&effects(&mut engine)[..], [Effect::DataChanged { .. }]), "the collection is not empty any more");
}

#[test]
fn a_first_load_with_a_bad_record_is_refused_whole_and_leaves_nothing_behind() {
    let mut h = Harness::new();
    let batch = SyncBatch::new(TODOS).upsert(json!({"id": "a"})).upsert(json!({"title": "no id"}));
    let error = h.engine.sync_received(h.now, batch).unwrap_err();
    assert!(error.to_string().contains("todos"), "{error}");
    assert!(matches!(error, tandem_core::SyncError::InvalidRecord { index: 1, .. }), "{error:?}");
    h.drain();
    assert_eq!((h.engine.len(TODOS), h.visible("a")), (0, None));
    assert!(h.data_changes.is_empty(), "nothing reported");
    h.sync(SyncBatch::new(TODOS).upsert(json!({"id": "a"})));
    assert_eq!(h.engine.len(TODOS), 1);
}

#[test]
fn a_first_load_while_a_transaction_is_pending_keeps_its_optimistic_value() {
    let mut h = Harness::new();
    h.insert(json!({"id": "a", "v": "mine"}));
    h.sync(SyncBatch::new(TODOS).upsert(json!({"id": "a", "v": "server"})).upsert(json!({"id": "b"})));
    assert_eq!(h.visible("a").unwrap()["v"], "mine");
    assert_eq!(h.engine.len(TODOS), 2);
}

#[test]
fn a_server_delete_of_a_locked_key_is_held_too() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a", "x": 0})]);
    let t1 = h.update("a", json!({"x": 1}));
    h.sync(SyncBatch::new(TODOS).delete("a"));
    assert!(h.visible("a").is_some());
    h.persist_err(&t1, ErrorInfo::non_retriable("gone"));
    assert_eq!(h.visible("a"), None);
}
