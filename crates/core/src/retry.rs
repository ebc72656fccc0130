//! Retry policy: exponential backoff with jitter drawn from the engine's seeded generator.

use serde::{Deserialize, Serialize};

/// How failed attempts are retried. The defaults are seed 004's: 4 retries (5 attempts).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 disables retrying.
    pub max_retries: u32,
    /// Delay before the first retry, in milliseconds.
    pub initial_delay_ms: u64,
    /// Each further retry waits `factor` times longer than the previous one…
    pub factor: f64,
    /// …up to this many milliseconds.
    pub max_delay_ms: u64,
    /// Fraction of the delay that is random, in `[0, 1]`: the delay is drawn uniformly from
    /// `[base × (1 − jitter), base]`, so clients that failed together do not retry together.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_retries: 4, initial_delay_ms: 1_000, factor: 2.0, max_delay_ms: 30_000, jitter: 0.25 }
    }
}

impl RetryPolicy {
    /// The un-jittered delay after `failed_attempts` failures (1 for the first retry).
    pub fn base_delay(&self, failed_attempts: u32) -> u64 {
        let exponent = failed_attempts.saturating_sub(1).min(64) as i32;
        let delay = self.initial_delay_ms as f64 * self.factor.max(1.0).powi(exponent);
        delay.min(self.max_delay_ms as f64) as u64
    }

    /// The delay to wait, with jitter from `rng`.
    pub fn delay(&self, failed_attempts: u32, rng: &mut SplitMix64) -> u64 {
        let base = self.base_delay(failed_attempts) as f64;
        let jitter = self.jitter.clamp(0.0, 1.0);
        (base * (1.0 - jitter * rng.next_f64())).round() as u64
    }

    /// Whether a transaction that has run `attempts` counted attempts may run another.
    pub fn allows_another(&self, attempts: u32) -> bool {
        attempts < self.max_retries.saturating_add(1)
    }
}

/// A small, fast, seedable generator: the engine's only source of randomness.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_delay_grows_by_factor_and_caps() {
        let p = RetryPolicy { initial_delay_ms: 100, factor: 3.0, max_delay_ms: 1_000, ..Default::default() };
        let delays: Vec<u64> = (1..=4).map(|n| p.base_delay(n)).collect();
        assert_eq!(delays, vec![100, 300, 900, 1_000]);
    }

    #[test]
    fn jittered_delay_stays_within_its_band() {
        let p = RetryPolicy { initial_delay_ms: 1_000, jitter: 0.5, ..Default::default() };
        let mut rng = SplitMix64::new(7);
        for _ in 0..1_000 {
            let d = p.delay(1, &mut rng);
            assert!((500..=1_000).contains(&d), "{d}");
        }
    }

    #[test]
    fn same_seed_same_delays() {
        let p = RetryPolicy::default();
        let (mut a, mut b) = (SplitMix64::new(1), SplitMix64::new(1));
        let da: Vec<u64> = (1..5).map(|n| p.delay(n, &mut a)).collect();
        let db: Vec<u64> = (1..5).map(|n| p.delay(n, &mut b)).collect();
        assert_eq!(da, db);
    }

    #[test]
    fn default_allows_five_attempts() {
        let p = RetryPolicy::default();
        assert!(p.allows_another(4));
        assert!(!p.allows_another(5));
    }
}
