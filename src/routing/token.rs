//! Tokens on the Murmur3 ring, and how a partition key becomes one.
//!
//! The hash must agree bit for bit with Cassandra's `Murmur3Partitioner`
//! (which Scylla copies), otherwise every token-aware request is misrouted.

use std::fmt;

/// A position on the Murmur3 token ring.
///
/// `i64::MIN` is not a legal token: Scylla uses it as the ring's "minimum
/// token", the exclusive start of the first range. A key hashing to it is
/// therefore given `i64::MAX`, as Cassandra and the drivers do.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Token(i64);

impl Token {
    /// Smallest legal token (`i64::MIN + 1`).
    pub const MIN: Token = Token(i64::MIN + 1);
    /// Largest legal token; also where `i64::MIN` is mapped to.
    pub const MAX: Token = Token(i64::MAX);

    /// Wraps a raw value, mapping the illegal `i64::MIN` to `i64::MAX`.
    pub const fn new(value: i64) -> Token {
        if value == i64::MIN {
            Token::MAX
        } else {
            Token(value)
        }
    }

    /// The raw signed 64-bit token.
    pub const fn value(self) -> i64 {
        self.0
    }
}

impl From<Token> for i64 {
    fn from(token: Token) -> i64 {
        token.0
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

const C1: u64 = 0x87c3_7b91_1142_53d5;
const C2: u64 = 0x4cf5_ad43_2745_937f;

#[inline]
fn mix_k1(k1: u64) -> u64 {
    k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2)
}

#[inline]
fn mix_k2(k2: u64) -> u64 {
    k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1)
}

#[inline]
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// Streaming Cassandra-flavoured Murmur3 x64_128 (seed 0).
///
/// Streaming lets a composite partition key be hashed piece by piece without
/// first being copied into one buffer.
#[derive(Clone, Debug, Default)]
pub struct Murmur3Hasher {
    h1: u64,
    h2: u64,
    buf: [u8; 16],
    buf_len: usize,
    total_len: u64,
}

impl Murmur3Hasher {
    /// A hasher with no input yet.
    pub const fn new() -> Self {
        Murmur3Hasher {
            h1: 0,
            h2: 0,
            buf: [0; 16],
            buf_len: 0,
            total_len: 0,
        }
    }

    #[inline]
    fn block(&mut self, block: &[u8; 16]) {
        let mut k1_bytes = [0u8; 8];
        let mut k2_bytes = [0u8; 8];
        k1_bytes.copy_from_slice(&block[..8]);
        k2_bytes.copy_from_slice(&block[8..]);
        let k1 = u64::from_le_bytes(k1_bytes);
        let k2 = u64::from_le_bytes(k2_bytes);

        self.h1 ^= mix_k1(k1);
        self.h1 = self
            .h1
            .rotate_left(27)
            .wrapping_add(self.h2)
            .wrapping_mul(5)
            .wrapping_add(0x52dc_e729);
        self.h2 ^= mix_k2(k2);
        self.h2 = self
            .h2
            .rotate_left(31)
            .wrapping_add(self.h1)
            .wrapping_mul(5)
            .wrapping_add(0x3849_5ab5);
    }

    /// Feeds more bytes.
    pub fn write(&mut self, mut bytes: &[u8]) {
        self.total_len = self.total_len.wrapping_add(bytes.len() as u64);
        if self.buf_len > 0 {
            let take = (16 - self.buf_len).min(bytes.len());
            self.buf[self.buf_len..self.buf_len + take].copy_from_slice(&bytes[..take]);
            self.buf_len += take;
            bytes = &bytes[take..];
            if self.buf_len < 16 {
                return;
            }
            let full = self.buf;
            self.block(&full);
            self.buf_len = 0;
        }
        let mut chunks = bytes.chunks_exact(16);
        for chunk in &mut chunks {
            let mut block = [0u8; 16];
            block.copy_from_slice(chunk);
            self.block(&block);
        }
        let rest = chunks.remainder();
        self.buf[..rest.len()].copy_from_slice(rest);
        self.buf_len = rest.len();
    }

    /// The token of everything written so far (the hasher is not consumed).
    pub fn finish(&self) -> Token {
        let mut h1 = self.h1;
        let mut h2 = self.h2;
        let tail = &self.buf[..self.buf_len];
        // Cassandra reads tail bytes as Java (signed) bytes, so each one is
        // sign-extended before being shifted into place. Real Murmur3 does not.
        let mut k1 = 0u64;
        let mut k2 = 0u64;
        for (i, &b) in tail.iter().enumerate() {
            let v = b as i8 as i64 as u64;
            if i < 8 {
                k1 ^= v << (8 * i);
            } else {
                k2 ^= v << (8 * (i - 8));
            }
        }
        if tail.len() > 8 {
            h2 ^= mix_k2(k2);
        }
        if !tail.is_empty() {
            h1 ^= mix_k1(k1);
        }

        h1 ^= self.total_len;
        h2 ^= self.total_len;
        h1 = h1.wrapping_add(h2);
        h2 = h2.wrapping_add(h1);
        h1 = fmix64(h1);
        h2 = fmix64(h2);
        h1 = h1.wrapping_add(h2);
        Token::new(h1 as i64)
    }
}

/// Token of raw (already serialized) partition-key bytes. Allocation-free.
pub fn murmur3_token(key: &[u8]) -> Token {
    let mut hasher = Murmur3Hasher::new();
    hasher.write(key);
    hasher.finish()
}

/// A component of a composite partition key is longer than its u16 length
/// prefix can express.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyTooLong {
    /// Length of the offending component in bytes.
    pub len: usize,
}

impl fmt::Display for KeyTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "partition key component of {} bytes exceeds the 65535-byte limit of composite keys",
            self.len
        )
    }
}

impl std::error::Error for KeyTooLong {}

/// Calls `sink` with the pieces of the serialized partition key, in order.
///
/// NULL components are skipped (as the drivers do), so a composite key with
/// only one non-NULL value is hashed like a single-column key.
fn visit_encoded<F: FnMut(&[u8])>(
    components: &[Option<&[u8]>],
    mut sink: F,
) -> Result<(), KeyTooLong> {
    let mut present = components.iter().flatten();
    let Some(first) = present.next() else {
        return Ok(());
    };
    if present.next().is_none() {
        sink(first);
        return Ok(());
    }
    // Validate everything first so no caller ever sees a half-encoded key.
    for c in components.iter().flatten() {
        if c.len() > usize::from(u16::MAX) {
            return Err(KeyTooLong { len: c.len() });
        }
    }
    for c in components.iter().flatten() {
        let len = c.len() as u16;
        sink(&len.to_be_bytes());
        sink(c);
        sink(&[0]);
    }
    Ok(())
}

/// Serializes a partition key the way Cassandra hashes it.
///
/// `out` is cleared first. One non-NULL component is written raw; two or more
/// are each written as u16 BE length, bytes, `0x00`. NULLs are skipped.
pub fn encode_partition_key(
    components: &[Option<&[u8]>],
    out: &mut Vec<u8>,
) -> Result<(), KeyTooLong> {
    out.clear();
    visit_encoded(components, |piece| out.extend_from_slice(piece))
}

/// Token of a partition key given as serialized column values, in key order.
///
/// Hashes the encoding of [`encode_partition_key`] without building it.
pub fn token_of_partition_key(components: &[Option<&[u8]>]) -> Result<Token, KeyTooLong> {
    let mut hasher = Murmur3Hasher::new();
    visit_encoded(components, |piece| hasher.write(piece))?;
    Ok(hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn token_new_maps_min_to_max() {
        assert_eq!(Token::new(i64::MIN), Token::MAX);
        assert_eq!(Token::new(i64::MIN).value(), i64::MAX);
        assert_eq!(Token::new(i64::MIN + 1), Token::MIN);
        assert_eq!(Token::new(-5).value(), -5);
        assert!(Token::MIN < Token::new(0) && Token::new(0) < Token::MAX);
        assert_eq!(i64::from(Token::new(7)), 7);
        assert_eq!(Token::new(-3).to_string(), "-3");
    }

    /// Vectors from the Python scylla-driver's `Murmur3Token.hash_fn`.
    const VECTORS: &[(&str, i64)] = &[
        ("", 0),
        ("61", -8839064797231613815),
        ("74657374", -6017608668500074083),
        ("313233343536373839303132333435", -8615384237594390570),
        ("31323334353637383930313233343536", 5746133278497385720),
        ("ff8001", -6979169580508520651),
        ("00000001", -4069959284402364209),
        // Tails of every length 1..=16 made of bytes >= 0x80 (sign extension).
        ("80", -5284281814142962636),
        ("8087", 2018950863064893639),
        ("80878e", 2883035100252727777),
        ("80878e95", 3009979607048216379),
        ("80878e959c", -2847373446435714001),
        ("80878e959ca3", -2244203985003959096),
        ("80878e959ca3aa", -5968304505574019857),
        ("80878e959ca3aab1", 512842628024960352),
        ("80878e959ca3aab1b8", 683171345539645642),
        ("80878e959ca3aab1b8bf", 7840819521531847175),
        ("80878e959ca3aab1b8bfc6", 422083457162203766),
        ("80878e959ca3aab1b8bfc6cd", 1542238518037374429),
        ("80878e959ca3aab1b8bfc6cdd4", -3139204666512434709),
        ("80878e959ca3aab1b8bfc6cdd4db", -3282293895579786473),
        ("80878e959ca3aab1b8bfc6cdd4dbe2", 3052317648445578018),
        ("80878e959ca3aab1b8bfc6cdd4dbe2e9", -2954592189485143609),
    ];

    #[test]
    fn murmur3_matches_python_driver() {
        for &(hex, want) in VECTORS {
            assert_eq!(murmur3_token(&unhex(hex)).value(), want, "input {hex}");
        }
        let seq: Vec<u8> = (0u8..40).collect();
        assert_eq!(murmur3_token(&seq).value(), -4350383952250503068);
        let high: Vec<u8> = (0x80u8..0xff).collect();
        assert_eq!(murmur3_token(&high).value(), -2577012652252034753);
    }

    #[test]
    fn streaming_equals_one_shot_for_every_split() {
        let data: Vec<u8> = (0u8..=80).map(|b| b.wrapping_mul(37)).collect();
        for len in 0..data.len() {
            let whole = murmur3_token(&data[..len]);
            for a in 0..=len {
                for b in a..=len {
                    let mut h = Murmur3Hasher::new();
                    h.write(&data[..a]);
                    h.write(&data[a..b]);
                    h.write(&data[b..len]);
                    assert_eq!(h.finish(), whole, "len {len} split {a} {b}");
                }
            }
        }
    }

    #[test]
    fn encode_single_and_composite() {
        let mut out = vec![9, 9, 9];
        encode_partition_key(&[Some(b"abc")], &mut out).unwrap();
        assert_eq!(out, b"abc");

        encode_partition_key(&[Some(&[0, 0, 0, 1]), Some(b"abc")], &mut out).unwrap();
        assert_eq!(out, unhex("0004 00000001 00 0003 616263 00"));

        // NULLs are skipped: a lone non-NULL value is written raw.
        encode_partition_key(&[None, Some(b"abc"), None], &mut out).unwrap();
        assert_eq!(out, b"abc");
        encode_partition_key(&[None, None], &mut out).unwrap();
        assert!(out.is_empty());
        encode_partition_key(&[], &mut out).unwrap();
        assert!(out.is_empty());

        // An empty (not NULL) component still counts.
        encode_partition_key(&[Some(b""), Some(b"x")], &mut out).unwrap();
        assert_eq!(out, unhex("0000 00 0001 78 00"));
    }

    #[test]
    fn composite_tokens_match_python_driver() {
        let one = 1i32.to_be_bytes();
        assert_eq!(
            token_of_partition_key(&[Some(&one), Some(b"abc")])
                .unwrap()
                .value(),
            8771735466527499816
        );
        let v = 42i64.to_be_bytes();
        assert_eq!(
            token_of_partition_key(&[Some(&v), Some(&v)])
                .unwrap()
                .value(),
            7725101682711164464
        );
        assert_eq!(
            token_of_partition_key(&[Some(&one)]).unwrap().value(),
            -4069959284402364209
        );
        assert_eq!(token_of_partition_key(&[]).unwrap().value(), 0);
    }

    #[test]
    fn composite_length_limit() {
        let max = vec![7u8; 65535];
        let over = vec![7u8; 65536];
        let mut out = Vec::new();
        encode_partition_key(&[Some(&max), Some(b"a")], &mut out).unwrap();
        assert_eq!(out.len(), 2 + 65535 + 1 + 2 + 1 + 1);
        assert_eq!(&out[..2], &[0xff, 0xff]);
        assert_eq!(
            encode_partition_key(&[Some(b"a"), Some(&over)], &mut out),
            Err(KeyTooLong { len: 65536 })
        );
        assert_eq!(
            token_of_partition_key(&[Some(&over), Some(b"a")]),
            Err(KeyTooLong { len: 65536 })
        );
        // A single component has no length prefix, hence no limit.
        encode_partition_key(&[Some(&over)], &mut out).unwrap();
        assert_eq!(out.len(), 65536);
        assert!(KeyTooLong { len: 65536 }.to_string().contains("65536"));
    }

    #[test]
    fn token_of_key_equals_hash_of_encoding() {
        let a = [1u8, 2, 3, 0x80, 0xff];
        let b = [0xaa; 23];
        let cases: [&[Option<&[u8]>]; 4] = [
            &[Some(&a), Some(&b)],
            &[Some(&b), None, Some(&a), Some(&[])],
            &[Some(&b)],
            &[None, Some(&a)],
        ];
        let mut buf = Vec::new();
        for c in cases {
            encode_partition_key(c, &mut buf).unwrap();
            assert_eq!(token_of_partition_key(c).unwrap(), murmur3_token(&buf));
        }
    }
}
