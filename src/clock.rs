//! `HybridClock`: the hybrid logical clock of `tandem-core` exposed to JavaScript.
//!
//! Timestamps are integer Unix microseconds. They cross the boundary as `number`, which is exact
//! up to 2^53 µs (the year 2255).

use tandem_core::hlc::Hlc;
use wasm_bindgen::prelude::*;

/// A clock whose timestamps strictly increase, even when the wall clock stalls or goes back.
#[wasm_bindgen]
#[derive(Default)]
pub struct HybridClock {
    inner: Hlc,
}

#[wasm_bindgen]
impl HybridClock {
    #[wasm_bindgen(constructor)]
    pub fn new() -> HybridClock {
        HybridClock::default()
    }

    /// A timestamp (Unix µs) greater than every one issued or observed. `nowMs` is
    /// `Date.now()`; negative or NaN values count as 0.
    pub fn tick(&mut self, #[wasm_bindgen(js_name = nowMs)] now_ms: f64) -> f64 {
        // `as` saturates: NaN and negatives become 0.
        self.inner.tick(now_ms as u64) as f64
    }

    /// Moves the clock past a timestamp (Unix µs) seen elsewhere.
    pub fn observe(&mut self, timestamp: f64) {
        self.inner.observe(timestamp as u64);
    }

    /// The last timestamp issued or observed (Unix µs).
    #[wasm_bindgen(getter)]
    pub fn last(&self) -> f64 {
        self.inner.last() as f64
    }
}
