//! Collections: keyed records, a synced layer and an optimistic layer, typed errors.

mod common;

use common::*;
use serde_json::json;
use tandem_core::{
    ChangeKind, CollectionConfig, MutationError, MutationKind, RecordProblem, SyncBatch, TransactionInput,
    TransactionState,
};

#[test]
fn visible_record_is_synced_record_with_pending_changes_applied_in_order() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a", "title": "milk", "done": false, "n": 0})]);
    let t1 = h.update("a", json!({"done": true}));
    let t2 = h.update("a", json!({"n": 1}));
    assert_eq!(h.visible("a"), Some(json!({"id": "a", "title": "milk", "done": true, "n": 1})));
    assert_eq!(h.engine.get_synced(TODOS, "a").unwrap()["done"], false, "synced layer untouched");
    assert_eq!(h.state(t1.as_str()), TransactionState::Persisting);
    assert_eq!(h.state(t2.as_str()), TransactionState::Queued);
}

#[test]
fn pending_mutation_carries_original_modified_changes_and_metadata() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a", "title": "milk", "done": false})]);
    let mut input = TransactionInput::new().update(TODOS, "a", json!({"done": true}));
    input.mutations[0].metadata = json!({"source": "checkbox"});
    let id = h.mutate(input);
    let m = &h.tx(&id).mutations[0];
    assert_eq!(m.kind, MutationKind::Update);
    assert_eq!(&*m.key, "a");
    assert_eq!(json!(*m.original), json!({"id": "a", "title": "milk", "done": false}));
    assert_eq!(json!(*m.modified), json!({"id": "a", "title": "milk", "done": true}));
    assert_eq!(json!(*m.changes), json!({"done": true}));
    assert_eq!(m.metadata, json!({"source": "checkbox"}));
    assert_eq!(m.created_at, h.now);
    assert_eq!(m.mutation_id.text(), format!("{id}/0"));
    assert_eq!(h.tx(&id).attempts[0].id.text(), format!("{id}#1"));
}

#[test]
fn insert_of_existing_key_is_a_typed_error_naming_collection_and_key() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a"})]);
    let err = h.engine.mutate(h.now, TransactionInput::new().insert(TODOS, json!({"id": "a"}))).unwrap_err();
    assert_eq!(err, MutationError::DuplicateKey { collection: TODOS.into(), key: "a".into() });
    assert_eq!(err.to_string(), "collection `todos`: a record with key `a` already exists");
}

#[test]
fn update_or_delete_of_missing_key_is_a_typed_error() {
    let mut h = Harness::new();
    let update = h.engine.mutate(h.now, TransactionInput::new().update(TODOS, "zz", json!({"x": 1})));
    let delete = h.engine.mutate(h.now, TransactionInput::new().delete(TODOS, "zz"));
    let expected = MutationError::MissingKey { collection: TODOS.into(), key: "zz".into() };
    assert_eq!(update.unwrap_err(), expected);
    assert_eq!(delete.unwrap_err(), expected);
}

#[test]
fn a_refused_transaction_applies_none_of_its_mutations() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a"})]);
    let input = TransactionInput::new().insert(TODOS, json!({"id": "b"})).insert(TODOS, json!({"id": "a"}));
    assert!(matches!(h.engine.mutate(h.now, input), Err(MutationError::DuplicateKey { .. })));
    h.drain();
    assert_eq!(h.visible("b"), None);
    assert_eq!(h.engine.transactions().count(), 0);
    assert!(h.persist_log.is_empty());
}

#[test]
fn later_mutations_of_a_transaction_see_earlier_ones() {
    let mut h = Harness::new();
    let id = h.mutate(
        TransactionInput::new()
            .insert(TODOS, json!({"id": "a", "n": 1}))
            .update(TODOS, "a", json!({"n": 2}))
            .insert(TODOS, json!({"id": "b"}))
            .delete(TODOS, "b"),
    );
    assert_eq!(h.visible("a"), Some(json!({"id": "a", "n": 2})));
    assert_eq!(h.visible("b"), None);
    assert_eq!(h.tx(&id).changes(), *json!({"todos": {"a": {"id": "a", "n": 2}, "b": null}}).as_object().unwrap());
}

#[test]
fn invalid_records_and_key_changes_are_refused() {
    let mut h = Harness::new();
    let err = h.engine.mutate(h.now, TransactionInput::new().insert(TODOS, json!({"title": "no id"}))).unwrap_err();
    assert_eq!(
        err,
        MutationError::InvalidRecord { collection: TODOS.into(), index: 0, problem: RecordProblem::MissingKeyField }
    );
    let not_an_object = TransactionInput::new().insert(TODOS, json!({"id": "ok"})).insert(TODOS, json!(["id"]));
    assert_eq!(
        h.engine.mutate(h.now, not_an_object).unwrap_err(),
        MutationError::InvalidRecord { collection: TODOS.into(), index: 1, problem: RecordProblem::NotAnObject }
    );
    assert_eq!(h.visible("ok"), None, "nothing of a refused transaction is applied");
    h.seed(vec![json!({"id": "a"})]);
    let err = h.engine.mutate(h.now, TransactionInput::new().update(TODOS, "a", json!({"id": "b"}))).unwrap_err();
    assert!(matches!(err, MutationError::KeyFieldChanged { ref key, .. } if key == "a"), "{err}");
    let err = h.engine.mutate(h.now, TransactionInput::new().insert("nope", json!({"id": "x"}))).unwrap_err();
    assert_eq!(err, MutationError::UnknownCollection { collection: "nope".into() });
    assert_eq!(h.engine.mutate(h.now, TransactionInput::new()).unwrap_err(), MutationError::EmptyTransaction);
}

#[test]
fn key_field_is_configurable() {
    let mut h = Harness::new();
    h.engine.create_collection(CollectionConfig::new("users").key_field("email")).unwrap();
    h.mutate(TransactionInput::new().insert("users", json!({"email": "a@x.org", "name": "A"})));
    assert_eq!(h.engine.get("users", "a@x.org").unwrap()["name"], "A");
}

#[test]
fn subscribers_are_told_only_the_keys_that_changed() {
    let mut h = Harness::new();
    h.seed((0..100).map(|i| json!({"id": format!("k{i}"), "n": i})).collect());
    h.data_changes.clear();
    h.update("k7", json!({"n": -1}));
    assert_eq!(h.data_changes.len(), 1);
    let (collection, changes) = &h.data_changes[0];
    assert_eq!(collection, TODOS);
    assert_eq!(changes.len(), 1);
    assert_eq!((&*changes[0].key, changes[0].kind), ("k7", ChangeKind::Update));
}

#[test]
fn a_transaction_spans_collections() {
    let mut h = Harness::new();
    h.engine.create_collection(CollectionConfig::new("lists")).unwrap();
    let id = h.mutate(
        TransactionInput::new().insert("lists", json!({"id": "l1"})).insert(TODOS, json!({"id": "t1", "list": "l1"})),
    );
    assert_eq!(h.persist_log.len(), 1, "one persist for the whole transaction");
    h.persist_err(&id, tandem_core::ErrorInfo::non_retriable("rejected"));
    assert_eq!(h.engine.get("lists", "l1"), None, "all or nothing: both roll back");
    assert_eq!(h.visible("t1"), None);
}

#[test]
fn sync_of_an_unknown_collection_or_malformed_record_is_refused_whole() {
    let mut h = Harness::new();
    let err = h.engine.sync_received(h.now, SyncBatch::new("nope")).unwrap_err();
    assert_eq!(err.to_string(), "sync for collection `nope`: collection does not exist");
    let batch = SyncBatch::new(TODOS).upsert(json!({"id": "ok"})).upsert(json!({"no": "id"}));
    let err = h.engine.sync_received(h.now, batch).unwrap_err();
    assert_eq!(err.to_string(), "sync for collection `todos`: change 1: the record has no key field");
    assert_eq!(h.visible("ok"), None);
}
