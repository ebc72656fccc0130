//! Time for the engine: the wall clock it is fed, and the one timer that wakes it when
//! `poll_timeout` says (retries, attempt deadlines).

use gloo_timers::callback::Timeout;

/// Unix milliseconds, the engine's `now`.
pub fn now() -> u64 {
    js_sys::Date::now() as u64
}

/// The engine's next wake-up. One timer at a time: armed for the earliest instant asked for;
/// a wake-up that comes early is harmless (the engine does nothing before a timer is due, and
/// the driver re-arms for the next instant).
#[derive(Default)]
pub struct WakeUp {
    armed: Option<(u64, Timeout)>,
}

impl WakeUp {
    /// Arms for `due` (Unix ms). Keeps an already armed timer that fires no later; `None`
    /// disarms.
    pub fn arm(&mut self, due: Option<u64>, fire: impl FnOnce() + 'static) {
        let Some(due) = due else {
            self.armed = None;
            return;
        };
        if self.armed.as_ref().is_some_and(|(armed, _)| *armed <= due) {
            return;
        }
        let delay = due.saturating_sub(now()).min(i32::MAX as u64) as u32;
        self.armed = Some((due, Timeout::new(delay, fire)));
    }

    /// The timer fired: the next `arm` starts afresh.
    pub fn fired(&mut self) {
        // Dropping a gloo timeout from inside its own callback is fine: wasm-bindgen counts
        // running invocations and frees the closure after it returns.
        self.armed = None;
    }

    pub fn cancel(&mut self) {
        self.armed = None;
    }
}
