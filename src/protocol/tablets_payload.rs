//! The `tablets-routing-v1` custom-payload value: where a tablet lives.
//!
//! Scylla attaches it to the RESULT of a misrouted request. The value is the
//! serialized CQL `tuple<bigint, bigint, list<tuple<uuid, int>>>` (protocol
//! v4, no outer length prefix). Decoding is strict because the bytes come
//! from the network and a wrong tablet would misroute every later request.

use std::fmt;

/// Key of the value in the RESULT frame's custom payload (`[bytes map]`).
pub const TABLETS_ROUTING_V1_KEY: &str = "tablets-routing-v1";

/// Serialized size of one `tuple<uuid, int>` (two length-prefixed elements).
const REPLICA_TUPLE_LEN: i32 = 4 + 16 + 4 + 4;

/// One tablet: the token range `(first_token, last_token]` and its replicas
/// as `(host_id, shard)` in the tablet's replica order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TabletRoutingInfo {
    /// Exclusive lower bound (`i64::MIN` for the first tablet).
    pub first_token: i64,
    /// Inclusive upper bound.
    pub last_token: i64,
    /// Host UUID bytes and shard of each replica.
    pub replicas: Vec<([u8; 16], i32)>,
}

/// Why a `tablets-routing-v1` value was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TabletPayloadError {
    /// The input ended while `what` was being read.
    Truncated { what: &'static str },
    /// A length prefix of `what` was `found` where `expected` is required.
    BadLength {
        what: &'static str,
        expected: i32,
        found: i32,
    },
    /// A tuple or list element was NULL (negative length).
    NullElement { what: &'static str },
    /// The list announced a negative element count.
    NegativeCount(i32),
    /// `last_token <= first_token`; Scylla never sends wrapping ranges.
    BadTokenRange { first: i64, last: i64 },
    /// A replica's shard was negative.
    NegativeShard(i32),
    /// Bytes were left after the value (`count` of them).
    TrailingBytes { count: usize },
}

impl fmt::Display for TabletPayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TabletPayloadError::Truncated { what } => {
                write!(f, "tablet payload truncated while reading {what}")
            }
            TabletPayloadError::BadLength {
                what,
                expected,
                found,
            } => write!(
                f,
                "tablet payload: {what} has length {found}, expected {expected}"
            ),
            TabletPayloadError::NullElement { what } => {
                write!(f, "tablet payload: {what} is null")
            }
            TabletPayloadError::NegativeCount(n) => {
                write!(f, "tablet payload: negative replica count {n}")
            }
            TabletPayloadError::BadTokenRange { first, last } => write!(
                f,
                "tablet payload: empty or wrapping token range ({first}, {last}]"
            ),
            TabletPayloadError::NegativeShard(s) => {
                write!(f, "tablet payload: negative shard {s}")
            }
            TabletPayloadError::TrailingBytes { count } => {
                write!(f, "tablet payload: {count} trailing bytes")
            }
        }
    }
}

impl std::error::Error for TabletPayloadError {}

/// Bounds-checked big-endian reader over the payload.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], TabletPayloadError> {
        if self.rest.len() < n {
            return Err(TabletPayloadError::Truncated { what });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn i32(&mut self, what: &'static str) -> Result<i32, TabletPayloadError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4, what)?);
        Ok(i32::from_be_bytes(b))
    }

    fn i64(&mut self, what: &'static str) -> Result<i64, TabletPayloadError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8, what)?);
        Ok(i64::from_be_bytes(b))
    }

    /// Reads an element's `[int]` length prefix and insists on `expected`.
    fn length(&mut self, what: &'static str, expected: i32) -> Result<(), TabletPayloadError> {
        let found = self.i32(what)?;
        if found < 0 {
            return Err(TabletPayloadError::NullElement { what });
        }
        if found != expected {
            return Err(TabletPayloadError::BadLength {
                what,
                expected,
                found,
            });
        }
        Ok(())
    }
}

impl TabletRoutingInfo {
    /// Exact size of [`encode`](Self::encode)'s output.
    pub fn encoded_len(&self) -> usize {
        4 + 8 + 4 + 8 + 4 + 4 + self.replicas.len() * (4 + REPLICA_TUPLE_LEN as usize)
    }

    /// Serializes the value (without an outer length prefix).
    ///
    /// # Panics
    /// If there are so many replicas (over ~67 million) that the list length
    /// does not fit the protocol's `[int]`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// Appends the serialized value to `out`; see [`encode`](Self::encode).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let count = i32::try_from(self.replicas.len()).ok();
        let list_len = count.and_then(|n| n.checked_mul(4 + REPLICA_TUPLE_LEN)?.checked_add(4));
        let (Some(count), Some(list_len)) = (count, list_len) else {
            panic!("too many tablet replicas: {}", self.replicas.len());
        };
        out.extend_from_slice(&8i32.to_be_bytes());
        out.extend_from_slice(&self.first_token.to_be_bytes());
        out.extend_from_slice(&8i32.to_be_bytes());
        out.extend_from_slice(&self.last_token.to_be_bytes());
        out.extend_from_slice(&list_len.to_be_bytes());
        out.extend_from_slice(&count.to_be_bytes());
        for (host_id, shard) in &self.replicas {
            out.extend_from_slice(&REPLICA_TUPLE_LEN.to_be_bytes());
            out.extend_from_slice(&16i32.to_be_bytes());
            out.extend_from_slice(host_id);
            out.extend_from_slice(&4i32.to_be_bytes());
            out.extend_from_slice(&shard.to_be_bytes());
        }
    }

    /// Parses and validates a value exactly as found in the custom payload.
    pub fn decode(bytes: &[u8]) -> Result<TabletRoutingInfo, TabletPayloadError> {
        let mut r = Reader { rest: bytes };
        r.length("first_token", 8)?;
        let first_token = r.i64("first_token")?;
        r.length("last_token", 8)?;
        let last_token = r.i64("last_token")?;

        let list_len = r.i32("replica list length")?;
        if list_len < 0 {
            return Err(TabletPayloadError::NullElement {
                what: "replica list",
            });
        }
        let mut list = Reader {
            rest: r.take(list_len as usize, "replica list")?,
        };
        if !r.rest.is_empty() {
            return Err(TabletPayloadError::TrailingBytes {
                count: r.rest.len(),
            });
        }

        let count = list.i32("replica count")?;
        if count < 0 {
            return Err(TabletPayloadError::NegativeCount(count));
        }
        // The count is untrusted: never reserve more than the bytes can hold.
        let capacity = (count as usize).min(list.rest.len() / (4 + REPLICA_TUPLE_LEN as usize));
        let mut replicas = Vec::with_capacity(capacity);
        for _ in 0..count {
            list.length("replica tuple", REPLICA_TUPLE_LEN)?;
            list.length("host_id", 16)?;
            let mut host_id = [0u8; 16];
            host_id.copy_from_slice(list.take(16, "host_id")?);
            list.length("shard", 4)?;
            let shard = list.i32("shard")?;
            if shard < 0 {
                return Err(TabletPayloadError::NegativeShard(shard));
            }
            replicas.push((host_id, shard));
        }
        if !list.rest.is_empty() {
            return Err(TabletPayloadError::TrailingBytes {
                count: list.rest.len(),
            });
        }
        if last_token <= first_token {
            return Err(TabletPayloadError::BadTokenRange {
                first: first_token,
                last: last_token,
            });
        }
        Ok(TabletRoutingInfo {
            first_token,
            last_token,
            replicas,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORKED_EXAMPLE: &str = "00000008 8000000000000000 00000008 bfffffffffffffff \
        00000044 00000002 \
        0000001c 00000010 00000000000000000000000000000001 00000004 00000001 \
        0000001c 00000010 00000000000000000000000000000002 00000004 00000000";

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn host(n: u8) -> [u8; 16] {
        let mut h = [0u8; 16];
        h[15] = n;
        h
    }

    fn example() -> TabletRoutingInfo {
        TabletRoutingInfo {
            first_token: i64::MIN,
            last_token: -4611686018427387905,
            replicas: vec![(host(1), 1), (host(2), 0)],
        }
    }

    #[test]
    fn worked_example_round_trips() {
        let bytes = unhex(WORKED_EXAMPLE);
        assert_eq!(bytes.len(), 96);
        assert_eq!(example().encode(), bytes);
        assert_eq!(example().encoded_len(), 96);
        assert_eq!(TabletRoutingInfo::decode(&bytes), Ok(example()));
        assert_eq!(TABLETS_ROUTING_V1_KEY, "tablets-routing-v1");
    }

    #[test]
    fn zero_replicas_and_encode_into_appends() {
        let t = TabletRoutingInfo {
            first_token: -1,
            last_token: 0,
            replicas: vec![],
        };
        let mut out = vec![0xee];
        t.encode_into(&mut out);
        assert_eq!(out[0], 0xee);
        assert_eq!(out.len(), 1 + t.encoded_len());
        assert_eq!(&out[25..33], &[0, 0, 0, 4, 0, 0, 0, 0]);
        assert_eq!(TabletRoutingInfo::decode(&out[1..]), Ok(t));
    }

    #[test]
    fn every_truncation_errors() {
        let bytes = unhex(WORKED_EXAMPLE);
        for cut in 0..bytes.len() {
            let err = TabletRoutingInfo::decode(&bytes[..cut]).unwrap_err();
            assert!(!err.to_string().is_empty(), "cut {cut}");
        }
    }

    #[test]
    fn trailing_bytes_rejected() {
        let mut bytes = unhex(WORKED_EXAMPLE);
        bytes.push(0);
        assert_eq!(
            TabletRoutingInfo::decode(&bytes),
            Err(TabletPayloadError::TrailingBytes { count: 1 })
        );
        // Slack inside the list (its length claims 4 more bytes).
        let mut bytes = unhex(WORKED_EXAMPLE);
        bytes[27] = 0x48;
        bytes.extend_from_slice(&[0; 4]);
        assert_eq!(
            TabletRoutingInfo::decode(&bytes),
            Err(TabletPayloadError::TrailingBytes { count: 4 })
        );
    }

    fn corrupt(offset: usize, value: &[u8]) -> Result<TabletRoutingInfo, TabletPayloadError> {
        let mut bytes = unhex(WORKED_EXAMPLE);
        bytes[offset..offset + value.len()].copy_from_slice(value);
        TabletRoutingInfo::decode(&bytes)
    }

    #[test]
    fn strict_field_validation() {
        let minus_one = (-1i32).to_be_bytes();
        assert_eq!(
            corrupt(0, &minus_one),
            Err(TabletPayloadError::NullElement {
                what: "first_token"
            })
        );
        assert_eq!(
            corrupt(12, &4i32.to_be_bytes()),
            Err(TabletPayloadError::BadLength {
                what: "last_token",
                expected: 8,
                found: 4
            })
        );
        assert_eq!(
            corrupt(24, &minus_one),
            Err(TabletPayloadError::NullElement {
                what: "replica list"
            })
        );
        assert_eq!(
            corrupt(28, &minus_one),
            Err(TabletPayloadError::NegativeCount(-1))
        );
        // Count says 3 but only two tuples fit in the list.
        assert_eq!(
            corrupt(28, &3i32.to_be_bytes()),
            Err(TabletPayloadError::Truncated {
                what: "replica tuple"
            })
        );
        // Count says 1: the second tuple is left over.
        assert_eq!(
            corrupt(28, &1i32.to_be_bytes()),
            Err(TabletPayloadError::TrailingBytes { count: 32 })
        );
        assert_eq!(
            corrupt(32, &minus_one),
            Err(TabletPayloadError::NullElement {
                what: "replica tuple"
            })
        );
        assert_eq!(
            corrupt(32, &29i32.to_be_bytes()),
            Err(TabletPayloadError::BadLength {
                what: "replica tuple",
                expected: 28,
                found: 29
            })
        );
        assert_eq!(
            corrupt(36, &minus_one),
            Err(TabletPayloadError::NullElement { what: "host_id" })
        );
        assert_eq!(
            corrupt(36, &15i32.to_be_bytes()),
            Err(TabletPayloadError::BadLength {
                what: "host_id",
                expected: 16,
                found: 15
            })
        );
        assert_eq!(
            corrupt(56, &minus_one),
            Err(TabletPayloadError::NullElement { what: "shard" })
        );
        assert_eq!(
            corrupt(60, &minus_one),
            Err(TabletPayloadError::NegativeShard(-1))
        );
        // A huge list length must not be trusted for allocation.
        assert_eq!(
            corrupt(24, &i32::MAX.to_be_bytes()),
            Err(TabletPayloadError::Truncated {
                what: "replica list"
            })
        );
        assert_eq!(
            corrupt(28, &i32::MAX.to_be_bytes()),
            Err(TabletPayloadError::Truncated {
                what: "replica tuple"
            })
        );
    }

    #[test]
    fn token_range_must_be_nonempty_and_non_wrapping() {
        let same = corrupt(16, &i64::MIN.to_be_bytes());
        assert_eq!(
            same,
            Err(TabletPayloadError::BadTokenRange {
                first: i64::MIN,
                last: i64::MIN
            })
        );
        let mut t = example();
        t.first_token = 5;
        t.last_token = 4;
        assert_eq!(
            TabletRoutingInfo::decode(&t.encode()),
            Err(TabletPayloadError::BadTokenRange { first: 5, last: 4 })
        );
        t.first_token = i64::MIN;
        t.last_token = i64::MAX;
        assert_eq!(TabletRoutingInfo::decode(&t.encode()), Ok(t));
    }

    #[test]
    fn random_garbage_never_panics() {
        let base = unhex(WORKED_EXAMPLE);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let mut bytes = base.clone();
            let flips = next() % 4 + 1;
            for _ in 0..flips {
                let i = (next() % bytes.len() as u64) as usize;
                bytes[i] = next() as u8;
            }
            let cut = (next() % (bytes.len() as u64 + 1)) as usize;
            let _ = TabletRoutingInfo::decode(&bytes[..cut]);
            let _ = TabletRoutingInfo::decode(&bytes);
        }
    }
}
