//! The prepared statements clients made through the daemon, by id: what
//! an EXECUTE needs to be routed (partition-key markers, table, LWT bit)
//! and re-prepared. Ids are the server's (MD5 of keyspace and text, the
//! same on every node), passed through unchanged.
//!
//! Bounded: past its capacity the least recently used statements are
//! forgotten, a tenth at a time; an EXECUTE of a forgotten id is answered
//! UNPREPARED, and the client prepares it again, as drivers do.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use scylla_shard::session::Prepared;

struct Entry {
    prepared: Arc<Prepared>,
    last_used: AtomicU64,
}

pub struct Registry {
    capacity: usize,
    clock: AtomicU64,
    map: Mutex<HashMap<Vec<u8>, Entry>>,
}

impl Registry {
    pub fn new(capacity: usize) -> Registry {
        Registry {
            capacity: capacity.max(1),
            clock: AtomicU64::new(0),
            map: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, id: &[u8]) -> Option<Arc<Prepared>> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.get(id)?;
        entry.last_used.store(
            self.clock.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        Some(entry.prepared.clone())
    }

    pub fn insert(&self, prepared: Arc<Prepared>) {
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(
            prepared.id.clone(),
            Entry {
                prepared,
                last_used: AtomicU64::new(now),
            },
        );
        if map.len() > self.capacity {
            let mut uses: Vec<u64> = map
                .values()
                .map(|e| e.last_used.load(Ordering::Relaxed))
                .collect();
            uses.sort_unstable();
            let cutoff = uses[(map.len() - self.capacity) + self.capacity / 10];
            map.retain(|_, e| e.last_used.load(Ordering::Relaxed) >= cutoff);
        }
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(i: usize) -> Arc<Prepared> {
        Arc::new(Prepared {
            id: i.to_be_bytes().to_vec(),
            query: format!("q{i}"),
            keyspace: None,
            metadata: Default::default(),
            result_metadata: Default::default(),
        })
    }

    #[test]
    fn keeps_the_recently_used_within_capacity() {
        let registry = Registry::new(100);
        registry.insert(statement(0));
        for i in 1..1000 {
            registry.get(&0usize.to_be_bytes());
            registry.insert(statement(i));
            assert!(registry.len() <= 100);
        }
        assert!(registry.get(&0usize.to_be_bytes()).is_some());
        assert!(registry.get(&999usize.to_be_bytes()).is_some());
        assert!(registry.get(&1usize.to_be_bytes()).is_none());
    }
}
