//! Speculative execution: an idempotent request that has not been
//! answered after a delay is sent again to the next target of its plan
//! while the earlier attempts keep running; the first answer wins and the
//! others are dropped (their stream ids stay reserved until the late
//! responses arrive, as for a timeout). Each execution retries by its own
//! retry state; they share the plan, so no two executions use one target.

use std::time::Duration;

use super::latency::LatencyHistogram;

/// Most executions (the first included) one request may run.
pub const MAX_SPECULATIVE_ATTEMPTS: u32 = 16;

/// Latencies the session must have recorded before a percentile delay
/// is trusted (until then requests do not speculate).
pub const PERCENTILE_MIN_SAMPLES: u64 = 100;

/// When an idempotent request is sent again meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum SpeculativeExecution {
    /// Never (the default).
    #[default]
    None,
    /// After `delay` without an answer, and again after each further
    /// `delay`, up to `max_attempts` executions in total (the first one
    /// included).
    Constant { delay: Duration, max_attempts: u32 },
    /// As `Constant`, with the delay the session's request latency at
    /// `percentile` (0 to 100, exclusive) so far; no speculation before
    /// [`PERCENTILE_MIN_SAMPLES`] requests completed.
    Percentile { percentile: f64, max_attempts: u32 },
}

impl SpeculativeExecution {
    /// The delay between executions and their number, if this policy
    /// speculates now; `latency` is the session's request histogram.
    pub fn schedule(&self, latency: &LatencyHistogram) -> Option<(Duration, u32)> {
        match *self {
            SpeculativeExecution::None => None,
            SpeculativeExecution::Constant {
                delay,
                max_attempts,
            } => (max_attempts > 1).then_some((delay, max_attempts)),
            SpeculativeExecution::Percentile {
                percentile,
                max_attempts,
            } if max_attempts > 1 => latency
                .percentile_after(percentile / 100.0, PERCENTILE_MIN_SAMPLES)
                .map(|delay| (delay, max_attempts)),
            SpeculativeExecution::Percentile { .. } => None,
        }
    }

    /// Checks the policy's numbers (what a caller may set).
    pub fn validate(&self) -> Result<(), String> {
        let max = match *self {
            SpeculativeExecution::None => return Ok(()),
            SpeculativeExecution::Constant { max_attempts, .. } => max_attempts,
            SpeculativeExecution::Percentile {
                percentile,
                max_attempts,
            } => {
                if !(percentile > 0.0 && percentile < 100.0) {
                    return Err(format!(
                        "percentile {percentile} (must be above 0 and below 100)"
                    ));
                }
                max_attempts
            }
        };
        if !(1..=MAX_SPECULATIVE_ATTEMPTS).contains(&max) {
            return Err(format!(
                "{max} speculative attempts (1..={MAX_SPECULATIVE_ATTEMPTS}, the first included)"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_speculates_with_two_attempts_or_more() {
        let h = LatencyHistogram::default();
        let delay = Duration::from_millis(5);
        let one = SpeculativeExecution::Constant {
            delay,
            max_attempts: 1,
        };
        assert_eq!(one.schedule(&h), None);
        let three = SpeculativeExecution::Constant {
            delay,
            max_attempts: 3,
        };
        assert_eq!(three.schedule(&h), Some((delay, 3)));
        assert_eq!(SpeculativeExecution::None.schedule(&h), None);
    }

    #[test]
    fn percentile_waits_for_samples_then_follows_the_histogram() {
        let h = LatencyHistogram::default();
        let p99 = SpeculativeExecution::Percentile {
            percentile: 99.0,
            max_attempts: 2,
        };
        for _ in 0..PERCENTILE_MIN_SAMPLES - 1 {
            h.record(Duration::from_micros(1000));
        }
        assert_eq!(p99.schedule(&h), None);
        h.record(Duration::from_micros(1000));
        let (delay, attempts) = p99.schedule(&h).unwrap();
        assert_eq!(attempts, 2);
        // Within the histogram's bucket precision (12.5%).
        assert!((1000..=1125).contains(&delay.as_micros()), "{delay:?}");
        // A slow tail moves the 99th percentile up.
        for _ in 0..10 {
            h.record(Duration::from_millis(50));
        }
        assert!(p99.schedule(&h).unwrap().0 >= Duration::from_millis(40));
    }

    #[test]
    fn validation_bounds_percentile_and_attempts() {
        let ok = |s: SpeculativeExecution| s.validate().is_ok();
        assert!(ok(SpeculativeExecution::None));
        assert!(ok(SpeculativeExecution::Constant {
            delay: Duration::ZERO,
            max_attempts: 1
        }));
        assert!(!ok(SpeculativeExecution::Constant {
            delay: Duration::ZERO,
            max_attempts: 0
        }));
        assert!(!ok(SpeculativeExecution::Constant {
            delay: Duration::ZERO,
            max_attempts: MAX_SPECULATIVE_ATTEMPTS + 1
        }));
        for bad in [0.0, 100.0, -1.0, f64::NAN] {
            assert!(!ok(SpeculativeExecution::Percentile {
                percentile: bad,
                max_attempts: 2
            }));
        }
        assert!(ok(SpeculativeExecution::Percentile {
            percentile: 99.9,
            max_attempts: 2
        }));
    }
}
