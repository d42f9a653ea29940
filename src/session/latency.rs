//! A latency histogram the request path can record into from any thread
//! without a lock: log-linear buckets of microseconds (exact below 16 us,
//! then 8 buckets per power of two, so a percentile is within 12.5% of
//! the true value), read as percentiles for metrics and for speculative
//! execution's delay.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Sub-buckets per power of two, as a power of two.
const SUB_BITS: u32 = 3;
const SUB_BUCKETS: u64 = 1 << SUB_BITS;
/// Values below this many microseconds get a bucket each.
const LINEAR: u64 = SUB_BUCKETS * 2;
/// The largest power of two kept apart (2^36 us, about 19 hours); longer
/// latencies count in the last bucket.
const MAX_EXPONENT: u32 = 35;
const BUCKETS: usize = (LINEAR + (MAX_EXPONENT as u64 - SUB_BITS as u64) * SUB_BUCKETS) as usize;

/// Percentiles of the latencies recorded so far, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencySummary {
    pub count: u64,
    /// Sum of every latency recorded.
    pub sum_us: u64,
    pub mean_us: u64,
    pub p50_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

pub struct LatencyHistogram {
    buckets: Box<[AtomicU64]>,
    sum_us: AtomicU64,
    max_us: AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LatencyHistogram")
            .field(&self.summary())
            .finish()
    }
}

fn bucket_of(us: u64) -> usize {
    if us < LINEAR {
        return us as usize;
    }
    let exponent = (63 - us.leading_zeros()).min(MAX_EXPONENT);
    let sub = if exponent == MAX_EXPONENT && us >= 1 << (MAX_EXPONENT + 1) {
        SUB_BUCKETS - 1
    } else {
        (us >> (exponent - SUB_BITS)) & (SUB_BUCKETS - 1)
    };
    (LINEAR + u64::from(exponent - SUB_BITS - 1) * SUB_BUCKETS + sub) as usize
}

/// The largest value bucket `index` holds.
fn bucket_top(index: usize) -> u64 {
    let index = index as u64;
    if index < LINEAR {
        return index;
    }
    let exponent = (index - LINEAR) / SUB_BUCKETS + u64::from(SUB_BITS) + 1;
    let sub = (index - LINEAR) % SUB_BUCKETS;
    let width = 1u64 << (exponent - u64::from(SUB_BITS));
    (SUB_BUCKETS + sub) * width + width - 1
}

impl LatencyHistogram {
    pub fn record(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(us)].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    /// The latency below which `quantile` (0 to 1) of the recorded ones
    /// fall (the top of its bucket, at most the largest recorded), or
    /// None before anything was recorded.
    pub fn percentile(&self, quantile: f64) -> Option<Duration> {
        let counts: Vec<u64> = self.counts();
        let total: u64 = counts.iter().sum();
        (total > 0).then(|| Duration::from_micros(top_at(&counts, total, quantile, self.max())))
    }

    /// As [`percentile`](Self::percentile), once at least `min_count`
    /// latencies were recorded; reads the buckets without allocating (the
    /// request path asks it for speculative execution's delay).
    pub fn percentile_after(&self, quantile: f64, min_count: u64) -> Option<Duration> {
        let load = |b: &AtomicU64| b.load(Ordering::Relaxed);
        let total: u64 = self.buckets.iter().map(load).sum();
        if total == 0 || total < min_count {
            return None;
        }
        let rank = ((quantile.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let max = self.max();
        let mut seen = 0;
        for (index, bucket) in self.buckets.iter().enumerate() {
            seen += load(bucket);
            if seen >= rank {
                return Some(Duration::from_micros(bucket_top(index).min(max)));
            }
        }
        Some(Duration::from_micros(max))
    }

    fn counts(&self) -> Vec<u64> {
        self.buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect()
    }

    fn max(&self) -> u64 {
        self.max_us.load(Ordering::Relaxed)
    }

    pub fn summary(&self) -> LatencySummary {
        let counts = self.counts();
        let count: u64 = counts.iter().sum();
        if count == 0 {
            return LatencySummary::default();
        }
        let max = self.max();
        let at = |q| top_at(&counts, count, q, max);
        let sum_us = self.sum_us.load(Ordering::Relaxed);
        LatencySummary {
            count,
            sum_us,
            mean_us: sum_us / count,
            p50_us: at(0.5),
            p95_us: at(0.95),
            p99_us: at(0.99),
            p999_us: at(0.999),
            max_us: max,
        }
    }
}

fn top_at(counts: &[u64], total: u64, quantile: f64, max: u64) -> u64 {
    // The rank of the value wanted, 1-based: at least the first one.
    let rank = ((quantile.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
    let mut seen = 0;
    for (index, count) in counts.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return bucket_top(index).min(max);
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut last = 0;
        for us in 0..2_000_000u64 {
            let b = bucket_of(us);
            assert!(b >= last, "buckets go up with values ({us})");
            last = b;
            let top = bucket_top(b);
            assert!(top >= us, "{us} in bucket {b} topped at {top}");
            // The top is within 12.5% above the value.
            assert!(top as f64 <= us as f64 * 1.125, "{us} topped at {top}");
        }
        for us in [1 << 30, (1 << 36) - 1] {
            assert!(bucket_top(bucket_of(us)) >= us);
        }
        assert_eq!(bucket_of(1 << 36), BUCKETS - 1);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        let h = LatencyHistogram::default();
        assert_eq!(h.percentile(0.5), None);
        assert_eq!(h.summary(), LatencySummary::default());
        // 1..=1000 us, once each.
        for us in 1..=1000 {
            h.record(Duration::from_micros(us));
        }
        let s = h.summary();
        assert_eq!(s.count, 1000);
        assert_eq!(s.mean_us, 500);
        assert_eq!(s.max_us, 1000);
        for (got, want) in [
            (s.p50_us, 500),
            (s.p95_us, 950),
            (s.p99_us, 990),
            (s.p999_us, 999),
        ] {
            assert!(
                got >= want && got as f64 <= want as f64 * 1.125,
                "{got} vs {want}"
            );
        }
        let p99 = h.percentile(0.99).unwrap();
        assert_eq!(p99, Duration::from_micros(s.p99_us));
        // One huge outlier moves the max, not the median.
        h.record(Duration::from_secs(3600 * 100));
        let s2 = h.summary();
        assert_eq!(s2.max_us, 360_000_000_000);
        assert_eq!(s2.p50_us, s.p50_us);
    }
}
