//! Latency percentiles and the process's own CPU time.

use serde_json::{json, Value};

/// Every latency of a phase, in nanoseconds (exact percentiles, no
/// bucketing: a 10-second run at 100k requests/s keeps 8 MB).
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    ns: Vec<u64>,
}

impl Latencies {
    pub fn with_capacity(n: usize) -> Latencies {
        Latencies {
            ns: Vec::with_capacity(n),
        }
    }

    pub fn record(&mut self, ns: u64) {
        self.ns.push(ns);
    }

    pub fn merge(&mut self, other: Latencies) {
        self.ns.extend(other.ns);
    }

    pub fn len(&self) -> usize {
        self.ns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ns.is_empty()
    }

    /// p50, p90, p99, p99.9, max and mean in microseconds.
    pub fn summary_us(mut self) -> Value {
        self.ns.sort_unstable();
        let us = |ns: u64| ns as f64 / 1000.0;
        let mean = if self.ns.is_empty() {
            0.0
        } else {
            self.ns.iter().map(|&n| n as f64).sum::<f64>() / self.ns.len() as f64 / 1000.0
        };
        json!({
            "p50": us(percentile(&self.ns, 0.50)),
            "p90": us(percentile(&self.ns, 0.90)),
            "p99": us(percentile(&self.ns, 0.99)),
            "p999": us(percentile(&self.ns, 0.999)),
            "max": us(self.ns.last().copied().unwrap_or(0)),
            "mean": mean,
        })
    }
}

/// Nearest-rank percentile of sorted values (0 when empty).
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// User and system CPU time of this process (all its threads), seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rusage {
    pub user: f64,
    pub sys: f64,
}

impl Rusage {
    pub fn now() -> Rusage {
        // SAFETY: getrusage only writes the struct we pass.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointer to a rusage; RUSAGE_SELF is always valid.
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
            return Rusage::default();
        }
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Rusage {
            user: secs(ru.ru_utime),
            sys: secs(ru.ru_stime),
        }
    }

    pub fn since(&self, earlier: &Rusage) -> Rusage {
        Rusage {
            user: self.user - earlier.user,
            sys: self.sys - earlier.sys,
        }
    }

    pub fn json(&self) -> Value {
        json!({"user": self.user, "sys": self.sys})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 0.5), 500);
        assert_eq!(percentile(&v, 0.99), 990);
        assert_eq!(percentile(&v, 0.999), 999);
        assert_eq!(percentile(&v, 1.0), 1000);
        assert_eq!(percentile(&[7], 0.999), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    #[test]
    fn summary_in_microseconds() {
        let mut l = Latencies::default();
        for ns in [3000, 1000, 2000] {
            l.record(ns);
        }
        let s = l.summary_us();
        assert_eq!(s["p50"], 2.0);
        assert_eq!(s["max"], 3.0);
        assert_eq!(s["mean"], 2.0);
    }

    #[test]
    fn rusage_grows() {
        let a = Rusage::now();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let d = Rusage::now().since(&a);
        assert!(d.user >= 0.0 && d.sys >= 0.0);
    }
}
