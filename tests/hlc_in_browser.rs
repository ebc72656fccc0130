//! The hybrid logical clock, driven through its JavaScript binding in headless Chromium.
#![cfg(target_arch = "wasm32")]

use tandem::HybridClock;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn timestamps_strictly_increase_when_the_wall_clock_goes_backwards() {
    let mut clock = HybridClock::new();
    let now = js_sys::Date::now();
    let a = clock.tick(now);
    let b = clock.tick(now);
    let c = clock.tick(now - 60_000.0);
    assert!(a < b && b < c, "{a} {b} {c}");
    assert_eq!(a, now.trunc() * 1000.0);
    assert_eq!(c, a + 2.0);
    assert_eq!(clock.last(), c);
}

#[wasm_bindgen_test]
fn ticks_after_an_observed_remote_timestamp() {
    let mut clock = HybridClock::new();
    let remote = js_sys::Date::now() * 1000.0 + 5_000_000.0;
    clock.observe(remote);
    assert_eq!(clock.tick(js_sys::Date::now()), remote.trunc() + 1.0);
}
