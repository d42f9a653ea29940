//! Reconnection delays: jittered exponential backoff, and the small random
//! number source it and the source-port choice need.
//!
//! Jitter matters as much as the growth: many clients that lost the same
//! node at the same moment must not come back in lockstep.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Lowest factor a delay is multiplied by.
const JITTER_LOW: f64 = 0.85;
/// Highest factor a delay is multiplied by.
const JITTER_HIGH: f64 = 1.15;

/// A small xorshift generator: good enough to spread ports and delays, and
/// free of any dependency. Never used for anything secret.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// Seeded from the process's hash keys, a counter and the clock, so two
    /// pools (or two processes) draw different sequences.
    pub(crate) fn new() -> Rng {
        static CALLS: AtomicU64 = AtomicU64::new(0);
        let mut h = RandomState::new().build_hasher();
        h.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
        h.write_u32(std::process::id());
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        Rng::with_seed(h.finish())
    }

    /// A deterministic sequence, for tests. The seed is scrambled first
    /// (splitmix64's finaliser) so nearby seeds give unrelated sequences.
    pub(crate) fn with_seed(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // Zero is the one state xorshift never leaves.
        Rng(z | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `[low, high]`.
    fn next_f64_in(&mut self, low: f64, high: f64) -> f64 {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        low + (high - low) * unit
    }
}

/// Delay before the next reconnection attempt after failures.
///
/// The nominal delay starts at `base` and doubles with every consecutive
/// failure up to `max`; each returned delay is the nominal one times a
/// random factor in 0.85..=1.15, clamped to `[base, max]`. A success
/// resets it to `base`.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    /// Consecutive failures since the last reset.
    failures: u32,
    rng: Rng,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff::with_rng(base, max, Rng::new())
    }

    pub(crate) fn with_rng(base: Duration, max: Duration, rng: Rng) -> Backoff {
        // A zero base would never grow; a max below base would be ignored.
        let base = base.max(Duration::from_millis(1));
        let max = max.max(base);
        Backoff {
            base,
            max,
            failures: 0,
            rng,
        }
    }

    /// The delay to wait after one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let nominal = self.nominal(self.failures);
        self.failures = self.failures.saturating_add(1);
        let factor = self.rng.next_f64_in(JITTER_LOW, JITTER_HIGH);
        nominal.mul_f64(factor).clamp(self.base, self.max)
    }

    /// Forgets earlier failures: the next delay is about `base` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Consecutive failures since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// `base * 2^failures`, saturating at `max`.
    fn nominal(&self, failures: u32) -> Duration {
        // 2^31 times any sensible base is far past any max, so cap the shift.
        let factor = 1u32 << failures.min(31);
        self.base.saturating_mul(factor).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff(seed: u64) -> Backoff {
        Backoff::with_rng(
            Duration::from_millis(100),
            Duration::from_secs(10),
            Rng::with_seed(seed),
        )
    }

    #[test]
    fn grows_exponentially_within_jitter_bounds() {
        let mut b = backoff(7);
        let mut nominal = 100.0f64;
        for _ in 0..20 {
            let d = b.next_delay().as_secs_f64() * 1000.0;
            let low = (nominal * JITTER_LOW).max(100.0);
            let high = (nominal * JITTER_HIGH).min(10_000.0);
            assert!(
                d >= low - 1e-6 && d <= high + 1e-6,
                "{d} ms outside [{low}, {high}]"
            );
            nominal = (nominal * 2.0).min(10_000.0);
        }
    }

    #[test]
    fn is_bounded_by_base_and_max() {
        for seed in 1..200 {
            let mut b = backoff(seed);
            for _ in 0..100 {
                let d = b.next_delay();
                assert!(d >= Duration::from_millis(100), "{d:?}");
                assert!(d <= Duration::from_secs(10), "{d:?}");
            }
        }
        // Saturation never overflows even after very many failures.
        let mut b = backoff(3);
        b.failures = u32::MAX - 1;
        assert!(b.next_delay() <= Duration::from_secs(10));
        assert!(b.next_delay() <= Duration::from_secs(10));
    }

    #[test]
    fn is_jittered() {
        // Same failure count, different generators: the delays differ.
        let delays: std::collections::HashSet<Duration> =
            (1..50).map(|seed| backoff(seed).next_delay()).collect();
        assert!(delays.len() > 10, "only {} distinct delays", delays.len());
        // And at the cap the jitter still spreads clients below max.
        let capped: std::collections::HashSet<Duration> = (1..50)
            .map(|seed| {
                let mut b = backoff(seed);
                b.failures = 20;
                b.next_delay()
            })
            .collect();
        assert!(capped.len() > 10);
        assert!(capped.iter().any(|d| *d < Duration::from_secs(10)));
    }

    #[test]
    fn resets_after_success() {
        let mut b = backoff(11);
        for _ in 0..5 {
            b.next_delay();
        }
        // Sixth failure: nominal 3.2 s.
        assert!(b.next_delay() >= Duration::from_millis(3200 * 85 / 100));
        b.reset();
        assert_eq!(b.failures(), 0);
        let d = b.next_delay();
        assert!(d <= Duration::from_millis(115), "{d:?}");
    }

    #[test]
    fn degenerate_settings_are_sane() {
        let mut b = Backoff::with_rng(Duration::ZERO, Duration::ZERO, Rng::with_seed(5));
        assert_eq!(b.next_delay(), Duration::from_millis(1));
        let mut b = Backoff::with_rng(
            Duration::from_secs(2),
            Duration::from_secs(1),
            Rng::with_seed(5),
        );
        assert_eq!(b.next_delay(), Duration::from_secs(2));
    }

    #[test]
    fn rng_is_not_constant() {
        let mut r = Rng::with_seed(0);
        let a = r.next_u64();
        let b = r.next_u64();
        assert_ne!(a, b);
        assert_ne!(Rng::new().next_u64(), Rng::new().next_u64());
    }
}
