//! Which shard of a Scylla node owns a token, and which local source ports
//! make the node's shard-aware port hand a new connection to a given shard.

use std::fmt;
use std::iter::FusedIterator;
use std::num::NonZeroU16;

use crate::routing::token::Token;

/// Why a [`Sharder`] could not be built from the node's SUPPORTED values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SharderError {
    /// `SCYLLA_NR_SHARDS` was 0.
    ZeroShards,
    /// `SCYLLA_SHARDING_IGNORE_MSB` was 64 or more; shifting by that much
    /// would discard the whole token.
    IgnoreMsbTooLarge(u8),
}

impl fmt::Display for SharderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SharderError::ZeroShards => f.write_str("number of shards must be at least 1"),
            SharderError::IgnoreMsbTooLarge(v) => {
                write!(f, "sharding ignore_msb {v} is out of range (must be < 64)")
            }
        }
    }
}

impl std::error::Error for SharderError {}

/// Scylla's `biased-token-round-robin` sharding parameters of one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sharder {
    nr_shards: NonZeroU16,
    ignore_msb: u8,
}

impl Sharder {
    /// Validated so that `shard_of` can never divide by zero or over-shift.
    pub fn new(nr_shards: u16, ignore_msb: u8) -> Result<Sharder, SharderError> {
        let nr_shards = NonZeroU16::new(nr_shards).ok_or(SharderError::ZeroShards)?;
        if ignore_msb >= 64 {
            return Err(SharderError::IgnoreMsbTooLarge(ignore_msb));
        }
        Ok(Sharder {
            nr_shards,
            ignore_msb,
        })
    }

    /// Number of shards of the node.
    pub fn nr_shards(&self) -> NonZeroU16 {
        self.nr_shards
    }

    /// Number of most significant token bits the node ignores.
    pub fn ignore_msb(&self) -> u8 {
        self.ignore_msb
    }

    /// Shard owning `token`: bias to unsigned, drop the ignored top bits,
    /// then scale into `0..nr_shards` with a 64x64->128 multiply.
    pub fn shard_of(&self, token: Token) -> u16 {
        let biased = (token.value() as u64).wrapping_add(1 << 63);
        let shifted = biased << self.ignore_msb;
        let scaled = (u128::from(shifted) * u128::from(self.nr_shards.get())) >> 64;
        scaled as u16
    }

    /// Shard that the shard-aware port assigns to a connection from `port`.
    pub fn shard_of_source_port(&self, port: u16) -> u16 {
        port % self.nr_shards.get()
    }

    /// Candidate source ports for a connection to `shard`; see
    /// [`source_ports_for_shard`].
    pub fn source_ports_for_shard(
        &self,
        range: ShardAwarePortRange,
        shard: u16,
        random_start: u64,
    ) -> SourcePortsForShard {
        source_ports_for_shard(range, shard, self.nr_shards.get(), random_start)
    }
}

/// Why a [`ShardAwarePortRange`] was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortRangeError {
    /// `start > end`.
    Empty { start: u16, end: u16 },
    /// `start < 1024`: privileged ports cannot be bound by ordinary users.
    StartsBelow1024 { start: u16 },
}

impl fmt::Display for PortRangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortRangeError::Empty { start, end } => {
                write!(f, "local port range {start}..={end} is empty")
            }
            PortRangeError::StartsBelow1024 { start } => {
                write!(
                    f,
                    "local port range must start at 1024 or above, not {start}"
                )
            }
        }
    }
}

impl std::error::Error for PortRangeError {}

/// Inclusive range of local ports the driver may bind when connecting to
/// the shard-aware port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShardAwarePortRange {
    start: u16,
    end: u16,
}

impl ShardAwarePortRange {
    /// The IANA ephemeral range, 49152..=65535; also the default.
    pub const EPHEMERAL: ShardAwarePortRange = ShardAwarePortRange {
        start: 49152,
        end: 65535,
    };

    /// A validated non-empty range starting at 1024 or above.
    pub fn new(start: u16, end: u16) -> Result<ShardAwarePortRange, PortRangeError> {
        if start > end {
            return Err(PortRangeError::Empty { start, end });
        }
        if start < 1024 {
            return Err(PortRangeError::StartsBelow1024 { start });
        }
        Ok(ShardAwarePortRange { start, end })
    }

    /// First port of the range.
    pub fn start(&self) -> u16 {
        self.start
    }

    /// Last port of the range (inclusive).
    pub fn end(&self) -> u16 {
        self.end
    }

    /// Number of ports in the range.
    pub fn port_count(&self) -> u32 {
        u32::from(self.end) - u32::from(self.start) + 1
    }

    /// Whether `port` lies in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.start..=self.end).contains(&port)
    }
}

impl Default for ShardAwarePortRange {
    fn default() -> Self {
        ShardAwarePortRange::EPHEMERAL
    }
}

/// Iterator over the ports `p` of a range with `p % nr_shards == shard`.
///
/// Starts at a caller-chosen pseudo-random index and wraps around, so that
/// concurrent connection attempts rarely fight over the same port while every
/// candidate is still tried exactly once.
#[derive(Clone, Debug)]
pub struct SourcePortsForShard {
    first: u32,
    step: u32,
    count: u32,
    start_index: u32,
    emitted: u32,
}

impl Iterator for SourcePortsForShard {
    type Item = u16;

    fn next(&mut self) -> Option<u16> {
        if self.emitted >= self.count {
            return None;
        }
        let index = (self.start_index + self.emitted) % self.count;
        self.emitted += 1;
        Some((self.first + index * self.step) as u16)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.count - self.emitted) as usize;
        (left, Some(left))
    }
}

impl ExactSizeIterator for SourcePortsForShard {}

impl FusedIterator for SourcePortsForShard {}

/// Every port of `range` that the shard-aware port maps to `shard`, each
/// exactly once, beginning at index `random_start % candidates`.
///
/// Empty if `nr_shards` is 0, `shard >= nr_shards`, or the range is too small
/// to contain a port of that shard.
pub fn source_ports_for_shard(
    range: ShardAwarePortRange,
    shard: u16,
    nr_shards: u16,
    random_start: u64,
) -> SourcePortsForShard {
    let empty = SourcePortsForShard {
        first: 0,
        step: 1,
        count: 0,
        start_index: 0,
        emitted: 0,
    };
    if nr_shards == 0 || shard >= nr_shards {
        return empty;
    }
    let n = u32::from(nr_shards);
    let start = u32::from(range.start);
    let end = u32::from(range.end);
    // Smallest port >= start that is congruent to `shard` modulo n.
    let first = start + (n - start % n + u32::from(shard)) % n;
    if first > end {
        return empty;
    }
    let count = (end - first) / n + 1;
    SourcePortsForShard {
        first,
        step: n,
        count,
        start_index: (random_start % u64::from(count)) as u32,
        emitted: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_parameters() {
        assert_eq!(Sharder::new(0, 12), Err(SharderError::ZeroShards));
        assert_eq!(
            Sharder::new(4, 64),
            Err(SharderError::IgnoreMsbTooLarge(64))
        );
        assert_eq!(
            Sharder::new(4, 255),
            Err(SharderError::IgnoreMsbTooLarge(255))
        );
        let s = Sharder::new(4, 63).unwrap();
        assert_eq!(s.nr_shards().get(), 4);
        assert_eq!(s.ignore_msb(), 63);
        assert!(!SharderError::ZeroShards.to_string().is_empty());
    }

    #[test]
    fn gocql_vectors() {
        let s = Sharder::new(4, 12).unwrap();
        assert_eq!(s.shard_of(Token::new(-9219783007514621794)), 3);
        assert_eq!(s.shard_of(Token::new(9222582454147032830)), 3);
    }

    #[test]
    fn shard_of_edges() {
        let one = Sharder::new(1, 0).unwrap();
        for t in [i64::MIN + 1, -1, 0, 1, i64::MAX] {
            assert_eq!(one.shard_of(Token::new(t)), 0);
        }
        // Without ignored bits the ring is cut into equal consecutive pieces.
        let s = Sharder::new(4, 0).unwrap();
        assert_eq!(s.shard_of(Token::MIN), 0);
        assert_eq!(s.shard_of(Token::new(-4611686018427387905)), 0);
        assert_eq!(s.shard_of(Token::new(-4611686018427387904)), 1);
        assert_eq!(s.shard_of(Token::new(-1)), 1);
        assert_eq!(s.shard_of(Token::new(0)), 2);
        assert_eq!(s.shard_of(Token::MAX), 3);
        // Maximal shard count never yields an out-of-range shard.
        let big = Sharder::new(u16::MAX, 63).unwrap();
        for t in [i64::MIN + 1, -1, 0, 1, i64::MAX, 12345, -98765] {
            assert!(big.shard_of(Token::new(t)) < u16::MAX);
        }
    }

    #[test]
    fn source_port_shard() {
        let s = Sharder::new(7, 12).unwrap();
        assert_eq!(s.shard_of_source_port(49152), 49152 % 7);
        assert_eq!(s.shard_of_source_port(0), 0);
        assert_eq!(s.shard_of_source_port(65535), 65535 % 7);
    }

    #[test]
    fn port_range_validation() {
        assert_eq!(
            ShardAwarePortRange::default(),
            ShardAwarePortRange::new(49152, 65535).unwrap()
        );
        assert_eq!(ShardAwarePortRange::default().port_count(), 16384);
        assert_eq!(
            ShardAwarePortRange::new(2000, 1999),
            Err(PortRangeError::Empty {
                start: 2000,
                end: 1999
            })
        );
        assert_eq!(
            ShardAwarePortRange::new(1023, 2000),
            Err(PortRangeError::StartsBelow1024 { start: 1023 })
        );
        let r = ShardAwarePortRange::new(1024, 1024).unwrap();
        assert_eq!(r.port_count(), 1);
        assert!(r.contains(1024) && !r.contains(1025));
        assert_eq!((r.start(), r.end()), (1024, 1024));
    }

    fn brute_force(range: ShardAwarePortRange, shard: u16, n: u16) -> Vec<u16> {
        (range.start()..=range.end())
            .filter(|p| p % n == shard)
            .collect()
    }

    #[test]
    fn ports_cover_every_candidate_once() {
        let ranges = [
            ShardAwarePortRange::EPHEMERAL,
            ShardAwarePortRange::new(1024, 1030).unwrap(),
            ShardAwarePortRange::new(60000, 60000).unwrap(),
            ShardAwarePortRange::new(65530, 65535).unwrap(),
        ];
        for range in ranges {
            for n in [1u16, 2, 3, 4, 7, 12, 64] {
                for shard in 0..n {
                    let want = brute_force(range, shard, n);
                    for seed in [0u64, 1, 5, 4095, u64::MAX] {
                        let it = source_ports_for_shard(range, shard, n, seed);
                        assert_eq!(it.len(), want.len());
                        let got: Vec<u16> = it.collect();
                        let mut sorted = got.clone();
                        sorted.sort_unstable();
                        assert_eq!(sorted, want, "range {range:?} n {n} shard {shard}");
                        // Rotation of the sorted list, starting at seed % len.
                        if !want.is_empty() {
                            let k = (seed % want.len() as u64) as usize;
                            assert_eq!(got[0], want[k]);
                            let mut rotated = want.clone();
                            rotated.rotate_left(k);
                            assert_eq!(got, rotated);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn ports_default_range_four_shards() {
        let s = Sharder::new(4, 12).unwrap();
        let ports: Vec<u16> = s
            .source_ports_for_shard(ShardAwarePortRange::default(), 3, 7)
            .collect();
        assert_eq!(ports.len(), 4096);
        assert_eq!(ports[0], 49152 + 3 + 7 * 4);
        assert!(ports.iter().all(|p| s.shard_of_source_port(*p) == 3));
    }

    #[test]
    fn ports_degenerate_inputs_are_empty() {
        let r = ShardAwarePortRange::default();
        assert_eq!(source_ports_for_shard(r, 0, 0, 1).count(), 0);
        assert_eq!(source_ports_for_shard(r, 4, 4, 1).count(), 0);
        // Range holding only ports of other shards.
        let tiny = ShardAwarePortRange::new(50000, 50001).unwrap();
        assert_eq!(source_ports_for_shard(tiny, 5, 8, 3).count(), 0);
        let mut it = source_ports_for_shard(tiny, 0, 8, 3);
        assert_eq!(it.next(), Some(50000));
        assert_eq!(it.next(), None);
        assert_eq!(it.next(), None);
    }
}
