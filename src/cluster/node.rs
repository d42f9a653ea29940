//! What the driver holds per live node besides metadata: its connection
//! pool and the per-shard request, error and latency counters shown in
//! the metrics.
//!
//! A `NodeRuntime` outlives state snapshots: a topology refresh that keeps
//! a node hands the same `Arc` to the next snapshot, so pools and counters
//! survive refreshes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::pool::NodePool;
use crate::session::LatencyHistogram;

/// Shards counted individually; requests on higher shards (or on
/// connections without a shard) go to the overflow counter.
const MAX_COUNTED_SHARDS: usize = 1024;

/// Requests sent per shard, lock-free.
#[derive(Debug, Default)]
pub struct ShardCounters {
    /// Sized on first use from the node's shard count.
    per_shard: OnceLock<Box<[AtomicU64]>>,
    other: AtomicU64,
}

impl ShardCounters {
    /// Counts one request on `shard`; `nr_shards` (the node's shard count)
    /// is only asked for until the counters are sized.
    pub fn count(&self, shard: Option<u16>, nr_shards: impl FnOnce() -> Option<u16>) {
        let slot = shard.and_then(|shard| {
            let counters = match self.per_shard.get() {
                Some(c) => c,
                None => {
                    let n = usize::from(nr_shards()?).min(MAX_COUNTED_SHARDS);
                    self.per_shard
                        .get_or_init(|| (0..n).map(|_| AtomicU64::new(0)).collect())
                }
            };
            counters.get(usize::from(shard))
        });
        slot.unwrap_or(&self.other).fetch_add(1, Ordering::Relaxed);
    }

    /// Requests per shard, then those that could not be attributed.
    pub fn snapshot(&self) -> (Vec<u64>, u64) {
        let per_shard = self
            .per_shard
            .get()
            .map(|c| c.iter().map(|a| a.load(Ordering::Relaxed)).collect())
            .unwrap_or_default();
        (per_shard, self.other.load(Ordering::Relaxed))
    }
}

/// The pool of one node and its counters.
pub struct NodeRuntime {
    pub pool: NodePool,
    pub requests: ShardCounters,
    /// Attempts that failed on this node.
    pub errors: AtomicU64,
    /// Attempts' latencies on this node.
    pub latency: LatencyHistogram,
}

impl NodeRuntime {
    pub fn new(pool: NodePool) -> NodeRuntime {
        NodeRuntime {
            pool,
            requests: ShardCounters::default(),
            errors: AtomicU64::new(0),
            latency: LatencyHistogram::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_shard_and_overflow() {
        let c = ShardCounters::default();
        c.count(Some(1), || None); // size unknown yet: overflow
        c.count(Some(1), || Some(4));
        c.count(Some(3), || panic!("sized already"));
        c.count(Some(9), || Some(4));
        c.count(None, || Some(4));
        assert_eq!(c.snapshot(), (vec![0, 1, 0, 1], 3));
    }
}
