//! What one optimistic update costs the engine as the browser bench runs it (scenario 1): a
//! 100k-record collection, history kept (the default), persists succeeding, no sync echo.
//! Prints time per `mutate` + effects and allocations per `mutate`. A second argument completes
//! the persists in bursts of that many updates, as the bench's samples of 20 do (default 1).
//!
//! Timings on a shared machine move ±20% between runs; instruction counts do not. For those:
//!   cargo build --release -p tandem-core --example update_cost
//!   valgrind --tool=callgrind --toggle-collect='*Engine*mutate*' target/release/examples/update_cost 20000
//! ("Collected" / 20000 = instructions per update; callgrind_annotate shows where.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use serde_json::json;
use tandem_core::{CollectionConfig, Effect, Engine, EngineConfig, SyncBatch, SyncChange, TransactionInput};

struct Counting;
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        System.realloc(ptr, layout, size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const RECORDS: usize = 100_000;

fn main() {
    let updates: usize = std::env::args().nth(1).map_or(30_000, |n| n.parse().expect("a number of updates"));
    let burst: usize = std::env::args().nth(2).map_or(1, |n| n.parse().expect("a burst size"));
    let mut engine = Engine::new(EngineConfig::default());
    engine.create_collection(CollectionConfig::new("todos")).unwrap();
    let mut batch = SyncBatch::new("todos").as_snapshot();
    batch.changes = (0..RECORDS)
        .map(|i| SyncChange::Upsert(json!({"id": format!("k{i}"), "title": format!("todo {i}"), "done": false, "n": 0})))
        .collect();
    engine.sync_received(0, batch).unwrap();
    while engine.poll_effect().is_some() {}

    let mut times = Vec::with_capacity(updates);
    let mut allocations = 0;
    let mut persists = Vec::new();
    for i in 0..updates {
        let now = 1 + i as u64;
        let key = format!("k{}", (i * 7919) % RECORDS);
        let input = TransactionInput::new().update("todos", &key, json!({"n": i, "done": i % 2 == 0}));
        let (start, allocated) = (Instant::now(), ALLOCATIONS.load(Relaxed));
        engine.mutate(now, input).unwrap();
        allocations += ALLOCATIONS.load(Relaxed) - allocated;
        while let Some(effect) = engine.poll_effect() {
            if let Effect::Persist { transaction, attempt } = effect {
                persists.push((transaction, attempt));
            }
        }
        times.push(start.elapsed());
        if (i + 1) % burst != 0 {
            continue;
        }
        for (tx, attempt) in persists.drain(..) {
            engine.persist_succeeded(now + 1, &tx, attempt).unwrap();
        }
        while engine.poll_effect().is_some() {}
    }
    std::mem::forget(engine); // Its teardown is no part of an update.
    if updates == 0 {
        return;
    }
    let mean = times.iter().sum::<Duration>() / updates as u32;
    times.sort();
    println!(
        "{updates} updates: mean {:.2} µs, p50 {:.2} µs, p90 {:.2} µs; {:.1} allocations per mutate",
        mean.as_secs_f64() * 1e6,
        times[updates / 2].as_secs_f64() * 1e6,
        times[updates * 9 / 10].as_secs_f64() * 1e6,
        allocations as f64 / updates as f64
    );
}
