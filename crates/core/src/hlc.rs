//! Hybrid logical clock: integer Unix microseconds, strictly increasing per clock.
//!
//! The physical part comes from the caller's `now` (milliseconds, so the sub-millisecond
//! microseconds are free); when `now` stalls or goes backwards the clock keeps counting up from
//! its last value, so those low digits act as the logical counter. Observing a remote timestamp
//! moves the clock past it, so a write made after seeing another orders after it.

#[derive(Clone, Debug, Default)]
pub struct Hlc {
    last: u64,
}

impl Hlc {
    pub fn new() -> Self {
        Self::default()
    }

    /// A timestamp greater than every one this clock has issued or observed, from a
    /// millisecond clock (the engine's `now`).
    pub fn tick(&mut self, now_ms: u64) -> u64 {
        self.tick_us(now_ms.saturating_mul(1000))
    }

    /// The same from a microsecond clock (the server's), so a timestamp it fills never sorts
    /// before a client's taken a moment earlier.
    pub fn tick_us(&mut self, now_us: u64) -> u64 {
        self.last = now_us.max(self.last + 1);
        self.last
    }

    /// Moves the clock past a timestamp seen elsewhere (a server op, a restored transaction).
    pub fn observe(&mut self, timestamp: u64) {
        self.last = self.last.max(timestamp);
    }

    /// The last timestamp issued or observed.
    pub fn last(&self) -> u64 {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_wall_clock_in_microseconds() {
        let mut hlc = Hlc::new();
        assert_eq!(hlc.tick(1_000), 1_000_000);
        assert_eq!(hlc.tick(2_000), 2_000_000);
    }

    #[test]
    fn strictly_increases_when_time_stalls_or_goes_backwards() {
        let mut hlc = Hlc::new();
        let a = hlc.tick(5_000);
        let b = hlc.tick(5_000);
        let c = hlc.tick(4_000);
        assert!(a < b && b < c, "{a} {b} {c}");
        assert_eq!(c, 5_000_002);
    }

    #[test]
    fn orders_after_observed_remote_timestamps() {
        let mut hlc = Hlc::new();
        hlc.observe(9_000_000_123);
        assert_eq!(hlc.tick(1_000), 9_000_000_124);
    }
}
