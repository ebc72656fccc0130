//! Retry: exponential backoff with jitter, 5 attempts by default, NonRetriableError opts out.

mod common;

use common::*;
use serde_json::json;
use tandem_core::{EngineConfig, ErrorInfo, RetryPolicy, TransactionState::*};

#[test]
fn backoff_delays_follow_the_configuration_and_stop_after_five_attempts() {
    let mut h = Harness::new(); // 100 ms, ×2, no jitter, 4 retries
    h.seed(vec![json!({"id": "a", "x": 0})]);
    let id = h.update("a", json!({"x": 1}));
    let mut waits = Vec::new();
    for _ in 0..4 {
        h.persist_err(&id, retriable("503"));
        assert_eq!(h.state(&id), Pending, "waiting for its retry");
        assert_eq!(h.visible("a").unwrap()["x"], 1, "still optimistic while retrying");
        waits.push(h.advance_to_next_timer());
        assert_eq!(h.state(&id), Persisting);
    }
    assert_eq!(waits, vec![100, 200, 400, 800]);
    h.persist_err(&id, retriable("503"));
    assert_eq!(h.state(&id), Failed);
    let tx = h.tx(&id);
    assert_eq!(tx.attempts.len(), 5);
    assert_eq!(tx.current_attempt, 5);
    assert!(tx.error.as_ref().unwrap().message.contains("gave up after 5 attempts"));
    assert_eq!(h.visible("a").unwrap()["x"], 0, "rolled back");
    assert_eq!(h.engine.poll_timeout(), None);
}

#[test]
fn every_attempt_is_recorded_with_its_times_error_and_scheduled_retry() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a"})]);
    let id = h.update("a", json!({"x": 1}));
    let started = h.now;
    h.advance(5);
    h.persist_err(&id, retriable("timeout"));
    let first = h.tx(&id).attempts[0].clone();
    assert_eq!((first.number, first.started_at, first.completed_at), (1, started, Some(started + 5)));
    assert_eq!(first.error.unwrap().message, "timeout");
    assert_eq!(first.retry_scheduled_for, Some(started + 5 + 100));
    h.advance_to_next_timer();
    h.persist_ok(&id);
    let tx = h.tx(&id);
    assert_eq!(tx.attempts.len(), 2);
    assert_eq!(tx.attempts[1].started_at, started + 105);
    assert_eq!(tx.attempts[1].error, None);
    assert_eq!(h.state(&id), Completed);
}

#[test]
fn a_non_retriable_error_fails_after_one_attempt() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a"})]);
    let id = h.update("a", json!({"x": 1}));
    h.persist_err(&id, ErrorInfo::thrown("NonRetriableError", "422 invalid title"));
    assert_eq!(h.state(&id), Failed);
    assert_eq!(h.tx(&id).attempts.len(), 1);
    let error = h.tx(&id).error.clone().unwrap();
    assert_eq!((error.error.name.as_str(), error.message.as_str()), ("NonRetriableError", "422 invalid title"));
}

#[test]
fn jitter_is_drawn_from_the_seed_and_stays_in_its_band() {
    let policy = RetryPolicy { initial_delay_ms: 1_000, factor: 2.0, max_delay_ms: 60_000, jitter: 0.5, max_retries: 4 };
    let run = |seed| {
        let mut h = Harness::with_config(EngineConfig { seed, retry: policy.clone(), ..config() });
        h.seed(vec![json!({"id": "a"})]);
        let id = h.update("a", json!({"x": 1}));
        (0..4)
            .map(|_| {
                h.persist_err(&id, retriable("503"));
                h.advance_to_next_timer()
            })
            .collect::<Vec<u64>>()
    };
    let (a, b, c) = (run(1), run(1), run(2));
    assert_eq!(a, b, "same seed, same delays");
    assert_ne!(a, c, "another seed, other delays");
    for (n, delay) in a.iter().enumerate() {
        let base = 1_000u64 << n;
        assert!((base / 2..=base).contains(delay), "retry {n}: {delay} not in [{}, {base}]", base / 2);
    }
}

#[test]
fn zero_retries_means_one_attempt() {
    let config = EngineConfig { retry: RetryPolicy { max_retries: 0, ..config().retry }, ..config() };
    let mut h = Harness::with_config(config);
    h.seed(vec![json!({"id": "a"})]);
    let id = h.update("a", json!({"x": 1}));
    h.persist_err(&id, retriable("503"));
    assert_eq!(h.state(&id), Failed);
}

#[test]
fn an_attempt_that_never_answers_times_out_and_is_retried() {
    let mut h = Harness::with_config(EngineConfig { attempt_timeout_ms: Some(5_000), ..config() });
    h.seed(vec![json!({"id": "a"})]);
    let id = h.update("a", json!({"x": 1}));
    let stale_attempt = h.running.remove(&id).unwrap();
    h.advance(5_000);
    assert_eq!(h.state(&id), Pending);
    assert_eq!(h.tx(&id).attempts[0].error.as_ref().unwrap().name, "TimeoutError");
    // The hung call finally answers: too late, ignored.
    h.engine.persist_succeeded(h.now, &id, stale_attempt).unwrap();
    assert_eq!(h.state(&id), Pending);
    h.advance_to_next_timer();
    h.persist_ok(&id);
    assert_eq!(h.state(&id), Completed);
}

#[test]
fn retrying_keeps_the_queue_behind_it_waiting_and_the_key_locked() {
    let mut h = Harness::new();
    h.seed(vec![json!({"id": "a"})]);
    let t1 = h.update("a", json!({"x": 1}));
    let t2 = h.update("a", json!({"x": 2}));
    h.persist_err(&t1, retriable("503"));
    assert_eq!(h.state(&t2), Queued, "must not overtake a transaction waiting to retry");
    assert!(h.engine.is_locked(TODOS, "a"));
    h.advance_to_next_timer();
    h.persist_ok(&t1);
    assert_eq!(h.state(&t2), Persisting);
}

#[test]
fn deadlines_of_finished_attempts_never_fire_nor_linger_in_poll_timeout() {
    let mut h = Harness::with_config(EngineConfig { attempt_timeout_ms: Some(5_000), ..config() });
    h.seed(vec![json!({"id": "a"}), json!({"id": "b"}), json!({"id": "c"})]);
    let a = h.update("a", json!({"x": 1}));
    h.advance(1_000);
    let b = h.update("b", json!({"x": 1}));
    h.advance(1_000);
    let c = h.update("c", json!({"x": 1}));
    assert_eq!(h.engine.poll_timeout(), Some(6_000), "a's deadline first (started at 1 s)");
    // A cleared deadline under the earliest one, then the earliest one.
    h.persist_ok(&b);
    assert_eq!(h.engine.poll_timeout(), Some(6_000));
    h.persist_ok(&a);
    assert_eq!(h.engine.poll_timeout(), Some(8_000), "b's cleared deadline is skipped: c's is next");
    h.advance(5_000);
    assert_eq!(h.state(&c), Pending, "c timed out at 8 s and waits to retry");
    assert_eq!(h.tx(&c).attempts.len(), 1);
    assert_eq!(h.state(&a), Completed);
    assert_eq!(h.state(&b), Completed);
    h.persist_ok(&c);
    assert_eq!(h.state(&c), Pending, "the timed-out attempt's late answer is ignored");
    h.advance_to_next_timer();
    h.persist_ok(&c);
    assert_eq!(h.state(&c), Completed);
    assert_eq!(h.engine.poll_timeout(), None);
}
