//! The hasher of the maps routing reads on every request (keyspace and
//! table names, host ids). Their keys come from the cluster's own
//! metadata, not from a caller who could choose colliding keys, so
//! SipHash's protection buys nothing there; it cost about 150
//! instructions a lookup, two to four lookups a request.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` keyed by metadata names or ids.
pub type NameMap<K, V> = HashMap<K, V, BuildHasherDefault<NameHasher>>;

/// Multiply-rotate over 8-byte words, with a final mix so the low bits
/// (the bucket index) depend on every input bit.
#[derive(Default, Clone, Copy)]
pub struct NameHasher {
    hash: u64,
}

// An odd constant with well-spread bits (2^64 / the golden ratio).
const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

impl NameHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(23) ^ word).wrapping_mul(MULTIPLIER);
    }
}

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            self.add(u64::from_le_bytes(w));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            // The length keeps "a" and "a\0" apart.
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        let h = self.hash.wrapping_mul(MULTIPLIER);
        h ^ (h >> 32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    fn hash(s: &str) -> u64 {
        BuildHasherDefault::<NameHasher>::default().hash_one(s)
    }

    #[test]
    fn close_names_hash_apart_in_the_low_bits() {
        let names: Vec<String> = (0..1000).map(|i| format!("keyspace_{i}")).collect();
        let mut buckets = std::collections::HashSet::new();
        for n in &names {
            buckets.insert(hash(n) & 1023);
        }
        // 1,000 names in 1,024 buckets: a uniform hash fills about 632.
        assert!(buckets.len() > 550, "{} buckets used", buckets.len());
        assert_ne!(hash("a"), hash("a\0"));
        assert_ne!(hash("ab"), hash("ba"));
    }

    #[test]
    fn a_name_map_finds_what_it_holds() {
        let mut map: NameMap<String, usize> = NameMap::default();
        for i in 0..100 {
            map.insert(format!("table{i}"), i);
        }
        assert_eq!(map.get("table42"), Some(&42));
        assert_eq!(map.get("table100"), None);
    }
}
