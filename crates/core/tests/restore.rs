//! Recovery after a reload, from the records the engine asked the driver to store.

mod common;

use common::*;
use serde_json::json;
use tandem_core::{Engine, EngineConfig, ErrorInfo, SyncBatch, Transaction, TransactionInput, TransactionState::*};

/// A reload: a new engine (new client id, as a new page would have) restored from storage
/// round-tripped through JSON, with the synced cache restored first. Records are read back as
/// the browser reads them (`Transaction::from_json`), which must agree with serde's derive.
fn reload(before: &Harness) -> Harness {
    let records: Vec<Transaction> = before
        .stored
        .values()
        .map(|tx| {
            let json = serde_json::to_string(tx).unwrap();
            let read = Transaction::from_json(&json).unwrap();
            assert_eq!(read, serde_json::from_str::<Transaction>(&json).unwrap(), "{json}");
            assert_eq!(&read, tx);
            read
        })
        .collect();
    let mut after = Harness::with_config(EngineConfig { client_id: "reloaded".into(), ..config() });
    after.now = before.now + 1_000;
    let cache: Vec<serde_json::Value> =
        before.engine.synced_records(TODOS).map(|(_, r)| json!(**r)).collect();
    after.seed(cache);
    after.engine.restore(after.now, records).unwrap();
    after.drain();
    after
}

#[test]
fn every_state_is_stored_as_it_changes() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a"})]);
    let id = h.update("a", json!({"x": 1}));
    assert_eq!(h.stored[&id].state, Persisting);
    h.persist_err(&id, retriable("503"));
    assert_eq!(h.stored[&id].state, Pending);
    assert_eq!(h.stored[&id].attempts.len(), 1);
}

#[test]
fn a_transaction_persisting_at_reload_is_rerun_with_the_same_id_and_the_attempt_marked_interrupted() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a", "x": 0})]);
    let id = h.update("a", json!({"x": 1}));
    let after = reload(&h);
    assert_eq!(after.visible("a").unwrap()["x"], 1, "optimistic state is back before any network");
    assert_eq!(after.persist_log, vec![(id.clone(), 2)], "re-run, same id = same idempotency key");
    let tx = after.tx(&id);
    assert!(tx.attempts[0].interrupted);
    assert_eq!(tx.counted_attempts(), 1, "the interrupted attempt does not count");
}

#[test]
fn a_transaction_waiting_to_retry_keeps_its_schedule() {
    let retry = tandem_core::RetryPolicy { initial_delay_ms: 10_000, ..config().retry };
    let mut h = Harness::with_config(EngineConfig { retry, ..config() });
    h.seed(vec![json!({"id": "a"})]);
    let id = h.update("a", json!({"x": 1}));
    h.persist_err(&id, retriable("503"));
    let due = h.tx(&id).attempts[0].retry_scheduled_for.unwrap();
    assert!(due > h.now + 1_000, "the reload below comes before the retry is due");
    let mut after = reload(&h);
    assert_eq!(after.state(&id), Pending);
    assert!(after.persist_log.is_empty());
    assert_eq!(after.engine.poll_timeout(), Some(due));
    after.advance_to_next_timer();
    assert_eq!(after.persist_log, vec![(id, 2)]);
}

#[test]
fn queued_transactions_resume_queued_in_their_original_order() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a"})]);
    let t1 = h.update("a", json!({"x": 1}));
    let t2 = h.update("a", json!({"x": 2}));
    let mut after = reload(&h);
    assert_eq!((after.state(&t1), after.state(&t2)), (Persisting, Queued));
    assert_eq!(after.tx(&t2).queued_behind.as_deref(), Some(t1.as_str()));
    assert_eq!(after.visible("a").unwrap()["x"], 2);
    after.persist_ok(&t1);
    after.persist_ok(&t2);
    assert_eq!(after.state(&t2), Completed);
}

#[test]
fn a_transaction_persisted_awaiting_sync_at_reload_is_assumed_synced_and_not_resent() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a", "x": 0})]);
    let id = h.mutate(TransactionInput::new().update(TODOS, "a", json!({"x": 1})).awaiting_sync());
    h.persist_ok(&id);
    assert_eq!(h.stored[&id].state, PersistedAwaitingSync);
    let after = reload(&h);
    assert_eq!(after.state(&id), Completed);
    assert!(after.persist_log.is_empty(), "not re-sent");
    assert!(after.await_syncs.is_empty());
    assert_eq!(after.visible("a").unwrap()["x"], 0, "optimistic layer dropped, as seed 004 says");
    assert_eq!(after.stored[&id].state, Completed);
}

#[test]
fn finished_transactions_come_back_as_history() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a"})]);
    let ok = h.update("a", json!({"x": 1}));
    h.persist_ok(&ok);
    let bad = h.update("a", json!({"x": 2}));
    h.persist_err(&bad, ErrorInfo::non_retriable("no"));
    let after = reload(&h);
    assert_eq!((after.state(&ok), after.state(&bad)), (Completed, Failed));
    assert_eq!(after.tx(&bad).error.as_ref().unwrap().message, "no");
    assert!(after.persist_log.is_empty());
    let ids: Vec<&str> = after.engine.transactions().map(|t| &*t.id).collect();
    assert_eq!(ids, vec![ok.as_str(), bad.as_str()]);
}

#[test]
fn restoring_the_same_records_twice_runs_nothing_twice() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a"})]);
    h.update("a", json!({"x": 1}));
    let mut after = reload(&h);
    let records: Vec<Transaction> = h.stored.values().cloned().collect();
    after.engine.restore(after.now, records).unwrap();
    after.drain();
    assert_eq!(after.persist_log.len(), 1);
}

#[test]
fn adopted_work_queues_behind_live_work_on_the_same_key() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a"})]);
    let orphan = h.update("a", json!({"x": 1}));
    let orphaned: Vec<Transaction> = h.stored.values().cloned().collect();
    let mut live = Harness::with_config(EngineConfig { client_id: "live".into(), ..config() });
    live.seed(vec![json!({"id": "a"})]);
    let mine = live.update("a", json!({"y": 1}));
    live.engine.restore(live.now, orphaned).unwrap();
    live.drain();
    assert_eq!(live.state(&orphan), Queued);
    assert_eq!(live.tx(&orphan).queued_behind.as_deref(), Some(mine.as_str()));
}

#[test]
fn a_record_naming_an_unknown_collection_is_refused_with_its_id() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a"})]);
    let id = h.update("a", json!({"x": 1}));
    let mut bare = Engine::new(config());
    let err = bare.restore(0, h.stored.values().cloned().collect()).unwrap_err();
    assert_eq!(err.to_string(), format!("restoring transaction `{id}`: collection `todos` does not exist"));
}

#[test]
fn new_transactions_after_a_reload_get_fresh_ids_and_later_timestamps() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a"})]);
    let old = h.update("a", json!({"x": 1}));
    let mut after = reload(&h);
    after.now = 0; // even with a clock far behind
    after.sync(SyncBatch::new(TODOS).upsert(json!({"id": "b"})));
    let new = after.update("b", json!({"x": 1}));
    assert_ne!(old, new);
    assert!(after.tx(&new).timestamp > after.tx(&old).timestamp);
}
