//! The ordered strategy: per-object locks, queueing, cascading rollback.

mod common;

use common::*;
use serde_json::json;
use tandem_core::{ErrorInfo, TransactionInput, TransactionState::*};

#[test]
fn three_ordered_transactions_on_one_key_all_roll_back_when_the_first_fails_naming_it() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a", "n": 0})]);
    let t1 = h.update("a", json!({"n": 1}));
    let t2 = h.update("a", json!({"n": 2}));
    let t3 = h.update("a", json!({"n": 3}));
    assert_eq!((h.state(&t1), h.state(&t2), h.state(&t3)), (Persisting, Queued, Queued));
    assert_eq!(h.tx(&t2).queued_behind.as_deref(), Some(t1.as_str()));
    assert_eq!(h.tx(&t3).queued_behind.as_deref(), Some(t2.as_str()));
    assert_eq!(h.visible("a").unwrap()["n"], 3);

    h.persist_err(&t1, ErrorInfo::non_retriable("server said no"));

    for id in [&t1, &t2, &t3] {
        assert_eq!(h.state(id), Failed, "{id}");
    }
    assert_eq!(h.tx(&t1).error.as_ref().unwrap().transaction_id, None, "the root cause has no dependency");
    for id in [&t2, &t3] {
        let error = h.tx(id).error.clone().unwrap();
        assert_eq!(error.transaction_id.as_deref(), Some(t1.as_str()), "{id} names the first");
        assert!(error.message.contains("server said no"), "{}", error.message);
    }
    assert_eq!(h.visible("a"), Some(json!({"id": "a", "n": 0})), "every optimistic change rolled back");
    assert_eq!(h.persist_log.len(), 1, "queued transactions never persisted");
}

#[test]
fn transactions_on_disjoint_keys_persist_concurrently() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a"}), json!({"id": "b"})]);
    let ta = h.update("a", json!({"x": 1}));
    let tb = h.update("b", json!({"x": 1}));
    assert_eq!((h.state(&ta), h.state(&tb)), (Persisting, Persisting));
    assert_eq!(h.running.len(), 2);
}

#[test]
fn a_queued_transaction_starts_only_when_the_one_before_completes() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a"})]);
    let t1 = h.update("a", json!({"x": 1}));
    let t2 = h.update("a", json!({"x": 2}));
    assert!(!h.running.contains_key(&t2));
    h.persist_ok(&t1);
    assert_eq!(h.state(&t1), Completed);
    assert_eq!(h.state(&t2), Persisting);
    assert_eq!(h.tx(&t2).queued_behind, None);
    h.persist_ok(&t2);
    let completions: Vec<&String> =
        h.state_events.iter().filter(|(_, s)| *s == Completed).map(|(id, _)| id).collect();
    assert_eq!(completions, vec![&t1, &t2], "completed in creation order");
}

#[test]
fn a_transaction_on_two_keys_waits_for_every_blocker() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a"}), json!({"id": "b"})]);
    let ta = h.update("a", json!({"x": 1}));
    let tb = h.update("b", json!({"x": 1}));
    let both = h.mutate(TransactionInput::new().update(TODOS, "a", json!({"y": 1})).update(TODOS, "b", json!({"y": 1})));
    assert_eq!(h.tx(&both).queued_behind.as_deref(), Some(tb.as_str()), "behind the latest conflicting one");
    h.persist_ok(&tb);
    assert_eq!(h.state(&both), Queued);
    assert_eq!(h.tx(&both).queued_behind.as_deref(), Some(ta.as_str()));
    h.persist_ok(&ta);
    assert_eq!(h.state(&both), Persisting);
}

#[test]
fn a_failure_fails_exactly_its_dependents_transitively() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a"}), json!({"id": "b"}), json!({"id": "c"})]);
    let ta = h.update("a", json!({"x": 1}));
    let tab = h.mutate(TransactionInput::new().update(TODOS, "a", json!({"x": 2})).update(TODOS, "b", json!({"x": 2})));
    let tb = h.update("b", json!({"x": 3})); // behind tab, so transitively behind ta
    let tc = h.update("c", json!({"x": 1})); // independent
    h.persist_err(&ta, ErrorInfo::non_retriable("no"));
    assert_eq!([h.state(&ta), h.state(&tab), h.state(&tb)], [Failed, Failed, Failed]);
    assert_eq!(h.tx(&tb).error.as_ref().unwrap().transaction_id.as_deref(), Some(ta.as_str()));
    assert_eq!(h.state(&tc), Persisting, "an unrelated transaction is unaffected");
    let failures: Vec<&String> = h.state_events.iter().filter(|(_, s)| *s == Failed).map(|(id, _)| id).collect();
    assert_eq!(failures, vec![&ta, &tab, &tb], "failed in creation order");
}

#[test]
fn a_transaction_behind_a_completed_one_is_not_failed_by_a_later_failure() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a"})]);
    let t1 = h.update("a", json!({"x": 1}));
    h.persist_ok(&t1);
    let t2 = h.update("a", json!({"x": 2}));
    assert_eq!(h.state(&t2), Persisting, "nothing unfinished to queue behind");
    h.persist_err(&t2, ErrorInfo::non_retriable("no"));
    assert_eq!(h.state(&t1), Completed);
    assert_eq!(h.visible("a").unwrap()["x"], 1, "rolls back to the completed write, not further");
}

#[test]
fn objects_stay_locked_while_awaiting_sync() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a"})]);
    let t1 = h.mutate(TransactionInput::new().update(TODOS, "a", json!({"x": 1})).awaiting_sync());
    h.persist_ok(&t1);
    assert_eq!(h.state(&t1), PersistedAwaitingSync);
    assert_eq!(h.await_syncs, vec![t1.clone()]);
    assert!(h.engine.is_locked(TODOS, "a"));
    let t2 = h.update("a", json!({"x": 2}));
    assert_eq!(h.state(&t2), Queued);
    h.engine.await_sync_done(h.now, &t1).unwrap();
    h.drain();
    assert_eq!((h.state(&t1), h.state(&t2)), (Completed, Persisting));
}
