//! Engine benchmarks (GUIDE §8): one optimistic update on a 100k-record collection (≤ 5 µs),
//! a 10k-record batch insert (≤ 10 ms), 10k sync updates with 100 transactions pending — as
//! JSON values, which the engine converts to its record form, and as `Fields`, parsed straight
//! into it.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use serde_json::{json, Value};
use tandem_core::{
    CollectionConfig, Effect, Engine, EngineConfig, Fields, HistoryPolicy, SyncBatch, SyncChange, TransactionInput,
};

const TODOS: &str = "todos";

fn record(i: usize) -> Value {
    json!({"id": format!("k{i}"), "title": format!("todo number {i}"), "done": false, "priority": i % 5})
}

fn engine_with(records: usize) -> Engine {
    let history = HistoryPolicy { max_finished: Some(1_000), max_age_ms: None };
    let mut engine = Engine::new(EngineConfig { history, ..EngineConfig::default() });
    engine.create_collection(CollectionConfig::new(TODOS)).unwrap();
    let mut batch = SyncBatch::new(TODOS).as_snapshot();
    batch.changes = (0..records).map(|i| SyncChange::Upsert(record(i))).collect();
    engine.sync_received(0, batch).unwrap();
    drain(&mut engine);
    engine
}

/// What a driver does after each call; returns the persist requests.
fn drain(engine: &mut Engine) -> Vec<(tandem_core::TxId, u32)> {
    let mut persists = Vec::new();
    while let Some(effect) = engine.poll_effect() {
        if let Effect::Persist { transaction, attempt } = effect {
            persists.push((transaction, attempt));
        } else {
            black_box(effect);
        }
    }
    persists
}

fn one_update(c: &mut Criterion) {
    let mut engine = engine_with(100_000);
    let mut now = 1;
    let mut i = 0usize;
    c.bench_function("one optimistic update, 100k records (mutate → change notified)", |b| {
        b.iter_custom(|iters| {
            let mut measured = Duration::ZERO;
            for _ in 0..iters {
                i = (i + 7919) % 100_000;
                let key = format!("k{i}");
                let input = TransactionInput::new().update(TODOS, &key, json!({"done": true, "n": i}));
                let start = Instant::now();
                engine.mutate(now, input).unwrap();
                let persists = drain(&mut engine);
                measured += start.elapsed();
                // Settle it outside the measurement, so the collection stays in a steady state.
                now += 1;
                for (tx, attempt) in persists {
                    engine.persist_succeeded(now, &tx, attempt).unwrap();
                }
                let mut echo = SyncBatch::new(TODOS);
                echo.changes.push(SyncChange::Upsert(engine.get(TODOS, &key).map(|r| json!(**r)).unwrap()));
                engine.sync_received(now, echo).unwrap();
                drain(&mut engine);
            }
            measured
        })
    });
}

fn batch_insert(c: &mut Criterion) {
    let mut input = TransactionInput::new();
    for i in 0..10_000 {
        input = input.insert(TODOS, record(i));
    }
    c.bench_function("10k-record batch insert, one transaction", |b| {
        b.iter_batched(
            || (engine_with(0), input.clone()),
            |(mut engine, input)| {
                engine.mutate(1, input).unwrap();
                drain(&mut engine);
                engine // dropped outside the measurement
            },
            BatchSize::LargeInput,
        )
    });
}

fn sync_with_pending(c: &mut Criterion) {
    sync_updates(c, "10k sync updates, 100 transactions pending", |v| v);
    sync_updates(c, "10k sync updates as Fields, 100 transactions pending", |v| Fields::try_from(v).unwrap());
}

/// 10k sync updates whose records are `R`s made by `record` (outside the measurement).
fn sync_updates<R: tandem_core::UpsertRecord>(c: &mut Criterion, name: &str, record: fn(Value) -> R) {
    let setup = || {
        let mut engine = engine_with(10_000);
        for i in 0..100 {
            let key = format!("k{}", i * 100);
            engine.mutate(1, TransactionInput::new().update(TODOS, &key, json!({"done": true}))).unwrap();
        }
        drain(&mut engine);
        let mut batch = SyncBatch::of(TODOS);
        batch.changes = (0..10_000)
            .map(|i| SyncChange::Upsert(record(json!({"id": format!("k{i}"), "title": "renamed", "done": false}))))
            .collect();
        (engine, batch)
    };
    c.bench_function(name, |b| {
        b.iter_batched(
            setup,
            |(mut engine, batch)| {
                engine.sync_received(2, batch).unwrap();
                drain(&mut engine);
                engine
            },
            BatchSize::LargeInput,
        )
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(4));
    targets = one_update, batch_insert, sync_with_pending
}
criterion_main!(benches);
