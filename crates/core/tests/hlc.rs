//! Every mutation carries a hybrid-logical-clock timestamp: Unix µs, strictly increasing.

mod common;

use common::*;
use serde_json::json;
use tandem_core::{SyncBatch, TransactionInput};

#[test]
fn mutation_timestamps_are_unix_microseconds_and_strictly_increase_even_when_time_goes_back() {
    let mut h = Harness::new();
    h.now = 1_700_000_000_000;
    let a = h.mutate(TransactionInput::new().insert(TODOS, json!({"id": "a"})).insert(TODOS, json!({"id": "b"})));
    h.now -= 60_000; // the wall clock jumps back a minute
    let c = h.insert(json!({"id": "c"}));
    let stamps: Vec<u64> =
        [&a, &c].iter().flat_map(|id| h.tx(id).mutations.iter().map(|m| m.timestamp)).collect();
    assert_eq!(stamps[0], 1_700_000_000_000_000);
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{stamps:?}");
}

#[test]
fn writes_after_seeing_a_newer_server_timestamp_order_after_it() {
    let mut h = Harness::new();
    h.now = 1_000;
    let mut batch = SyncBatch::new(TODOS).upsert(json!({"id": "a"}));
    batch.max_timestamp = Some(9_000_000_000);
    h.sync(batch);
    let id = h.update("a", json!({"x": 1}));
    assert!(h.tx(&id).mutations[0].timestamp > 9_000_000_000);
}
