//! What a node says about itself in SUPPORTED, and which of its protocol
//! extensions we echo back in STARTUP.
//!
//! Everything here comes from the network, so parsing is total: a missing,
//! malformed or out-of-range value turns a feature off, never panics.

use std::collections::HashMap;

use crate::routing::sharder::{Sharder, SharderError};

/// SUPPORTED keys and STARTUP values (Scylla's protocol-extensions doc).
pub mod keys {
    pub const CQL_VERSION: &str = "CQL_VERSION";
    pub const COMPRESSION: &str = "COMPRESSION";
    pub const SHARD: &str = "SCYLLA_SHARD";
    pub const NR_SHARDS: &str = "SCYLLA_NR_SHARDS";
    pub const SHARDING_IGNORE_MSB: &str = "SCYLLA_SHARDING_IGNORE_MSB";
    pub const SHARD_AWARE_PORT: &str = "SCYLLA_SHARD_AWARE_PORT";
    pub const SHARD_AWARE_PORT_SSL: &str = "SCYLLA_SHARD_AWARE_PORT_SSL";
    pub const LWT_ADD_METADATA_MARK: &str = "SCYLLA_LWT_ADD_METADATA_MARK";
    pub const LWT_MASK_PREFIX: &str = "LWT_OPTIMIZATION_META_BIT_MASK=";
    pub const RATE_LIMIT_ERROR: &str = "SCYLLA_RATE_LIMIT_ERROR";
    pub const RATE_LIMIT_CODE_PREFIX: &str = "ERROR_CODE=";
    pub const TABLETS_ROUTING_V1: &str = "TABLETS_ROUTING_V1";
    pub const HOST_ID: &str = "SCYLLA_HOST_ID";
    pub const DRIVER_NAME: &str = "DRIVER_NAME";
    pub const DRIVER_VERSION: &str = "DRIVER_VERSION";
    pub const APPLICATION_NAME: &str = "APPLICATION_NAME";
    pub const APPLICATION_VERSION: &str = "APPLICATION_VERSION";
}

/// How the node splits tokens over its shards, and which shard serves this
/// connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShardingInfo {
    /// Shard that serves this connection.
    pub shard: u16,
    pub nr_shards: u16,
    pub ignore_msb: u8,
}

impl ShardingInfo {
    /// The token-to-shard function of the node.
    pub fn sharder(&self) -> Result<Sharder, SharderError> {
        Sharder::new(self.nr_shards, self.ignore_msb)
    }
}

/// The parsed SUPPORTED message of one connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerFeatures {
    /// Present only when all three sharding keys are present and valid.
    pub sharding: Option<ShardingInfo>,
    pub shard_aware_port: Option<u16>,
    /// Shard-aware port for TLS connections.
    pub shard_aware_port_ssl: Option<u16>,
    /// Bit of the PREPARED metadata flags that marks an LWT statement.
    pub lwt_mask: Option<u32>,
    pub tablets_routing_v1: bool,
    /// Error code the node uses for "rate limit reached".
    pub rate_limit_error_code: Option<i32>,
    /// Compression algorithms the node accepts (`lz4`, `snappy`).
    pub compression: Vec<String>,
    /// First `CQL_VERSION` the node offers.
    pub cql_version: Option<String>,
    /// The node's host id (`SCYLLA_HOST_ID`), as UUID bytes.
    pub host_id: Option<[u8; 16]>,
    /// Every key with every value, as sent.
    pub raw: HashMap<String, Vec<String>>,
}

impl ServerFeatures {
    /// Parses a SUPPORTED `[string multimap]`. Never fails: what cannot be
    /// understood is left off.
    pub fn parse(options: &[(String, Vec<String>)]) -> ServerFeatures {
        let mut raw: HashMap<String, Vec<String>> = HashMap::new();
        for (key, values) in options {
            raw.entry(key.clone())
                .or_default()
                .extend(values.iter().cloned());
        }
        let first = |key: &str| raw.get(key).and_then(|v| v.first()).map(|s| s.trim());
        let port = |key: &str| {
            first(key)
                .and_then(|v| v.parse::<u16>().ok())
                .filter(|p| *p != 0)
        };
        let prefixed = |key: &str, prefix: &str| -> Option<String> {
            raw.get(key)?.iter().find_map(|v| {
                v.trim()
                    .strip_prefix(prefix)
                    .map(|rest| rest.trim().to_owned())
            })
        };
        let sharding = (|| {
            let shard = first(keys::SHARD)?.parse::<u16>().ok()?;
            let nr_shards = first(keys::NR_SHARDS)?.parse::<u16>().ok()?;
            let ignore_msb = first(keys::SHARDING_IGNORE_MSB)?.parse::<u8>().ok()?;
            // Sharder::new rejects zero shards and ignore_msb >= 64.
            Sharder::new(nr_shards, ignore_msb).ok()?;
            (shard < nr_shards).then_some(ShardingInfo {
                shard,
                nr_shards,
                ignore_msb,
            })
        })();
        ServerFeatures {
            sharding,
            shard_aware_port: port(keys::SHARD_AWARE_PORT),
            shard_aware_port_ssl: port(keys::SHARD_AWARE_PORT_SSL),
            lwt_mask: prefixed(keys::LWT_ADD_METADATA_MARK, keys::LWT_MASK_PREFIX)
                .and_then(|v| v.parse::<u32>().ok())
                // A zero mask would mark every statement as LWT.
                .filter(|m| *m != 0),
            tablets_routing_v1: raw.contains_key(keys::TABLETS_ROUTING_V1),
            rate_limit_error_code: prefixed(keys::RATE_LIMIT_ERROR, keys::RATE_LIMIT_CODE_PREFIX)
                .and_then(|v| v.parse::<i32>().ok()),
            compression: raw.get(keys::COMPRESSION).cloned().unwrap_or_default(),
            cql_version: first(keys::CQL_VERSION)
                .filter(|v| !v.is_empty())
                .map(str::to_owned),
            host_id: first(keys::HOST_ID).and_then(parse_uuid),
            raw,
        }
    }

    /// Shard serving this connection, if the node is sharded.
    pub fn shard(&self) -> Option<u16> {
        self.sharding.map(|s| s.shard)
    }

    /// Whether the node speaks any Scylla extension.
    pub fn is_scylla(&self) -> bool {
        self.sharding.is_some()
            || self.shard_aware_port.is_some()
            || self.lwt_mask.is_some()
            || self.tablets_routing_v1
            || self.rate_limit_error_code.is_some()
    }

    /// Whether the node accepts the named compression algorithm.
    pub fn supports_compression(&self, name: &str) -> bool {
        self.compression
            .iter()
            .any(|c| c.eq_ignore_ascii_case(name))
    }
}

/// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` into bytes.
pub fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let bytes = text.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    let mut nibbles = 0usize;
    for (i, &c) in bytes.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        let v = (c as char).to_digit(16)? as u8;
        out[nibbles / 2] |= if nibbles % 2 == 0 { v << 4 } else { v };
        nibbles += 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        pairs
            .iter()
            .map(|(k, vs)| (k.to_string(), vs.iter().map(|v| v.to_string()).collect()))
            .collect()
    }

    fn scylla() -> Vec<(String, Vec<String>)> {
        opts(&[
            ("CQL_VERSION", &["3.3.1"]),
            ("COMPRESSION", &["lz4", "snappy"]),
            ("SCYLLA_SHARD", &["3"]),
            ("SCYLLA_NR_SHARDS", &["4"]),
            ("SCYLLA_SHARDING_ALGORITHM", &["biased-token-round-robin"]),
            ("SCYLLA_SHARDING_IGNORE_MSB", &["12"]),
            ("SCYLLA_SHARD_AWARE_PORT", &["19042"]),
            ("SCYLLA_SHARD_AWARE_PORT_SSL", &["19142"]),
            (
                "SCYLLA_LWT_ADD_METADATA_MARK",
                &["LWT_OPTIMIZATION_META_BIT_MASK=2147483648"],
            ),
            ("SCYLLA_RATE_LIMIT_ERROR", &["ERROR_CODE=61440"]),
            ("TABLETS_ROUTING_V1", &[""]),
            ("SCYLLA_HOST_ID", &["00000000-0000-4000-8000-00000000000a"]),
        ])
    }

    #[test]
    fn parses_a_full_scylla_supported() {
        let f = ServerFeatures::parse(&scylla());
        assert_eq!(
            f.sharding,
            Some(ShardingInfo {
                shard: 3,
                nr_shards: 4,
                ignore_msb: 12
            })
        );
        assert_eq!(f.shard(), Some(3));
        assert_eq!(f.sharding.unwrap().sharder().unwrap().nr_shards().get(), 4);
        assert_eq!(f.shard_aware_port, Some(19042));
        assert_eq!(f.shard_aware_port_ssl, Some(19142));
        assert_eq!(f.lwt_mask, Some(0x8000_0000));
        assert!(f.tablets_routing_v1);
        assert_eq!(f.rate_limit_error_code, Some(0xF000));
        assert_eq!(f.compression, vec!["lz4", "snappy"]);
        assert!(f.supports_compression("LZ4"));
        assert_eq!(f.cql_version.as_deref(), Some("3.3.1"));
        let mut host = [0u8; 16];
        host[6] = 0x40;
        host[8] = 0x80;
        host[15] = 0x0a;
        assert_eq!(f.host_id, Some(host));
        assert_eq!(
            f.raw.get("SCYLLA_SHARDING_ALGORITHM").unwrap(),
            &vec!["biased-token-round-robin".to_string()]
        );
        assert!(f.is_scylla());
    }

    #[test]
    fn cassandra_has_no_scylla_features() {
        let f = ServerFeatures::parse(&opts(&[
            ("CQL_VERSION", &["3.4.5"]),
            ("COMPRESSION", &["snappy", "lz4"]),
            ("PROTOCOL_VERSIONS", &["3/v3", "4/v4", "5/v5"]),
        ]));
        assert_eq!(f.sharding, None);
        assert_eq!(f.shard_aware_port, None);
        assert_eq!(f.lwt_mask, None);
        assert!(!f.tablets_routing_v1);
        assert!(!f.is_scylla());
        assert_eq!(f.cql_version.as_deref(), Some("3.4.5"));
    }

    #[test]
    fn sharding_needs_all_three_valid_keys() {
        let base = |shard: &str, nr: &str, msb: &str| {
            ServerFeatures::parse(&opts(&[
                ("SCYLLA_SHARD", &[shard]),
                ("SCYLLA_NR_SHARDS", &[nr]),
                ("SCYLLA_SHARDING_IGNORE_MSB", &[msb]),
            ]))
            .sharding
        };
        assert!(base("0", "1", "0").is_some());
        assert!(base("0", "1", "63").is_some());
        assert_eq!(base("0", "4", "64"), None, "ignore_msb >= 64");
        assert_eq!(base("0", "4", "255"), None);
        assert_eq!(base("0", "4", "256"), None, "not a u8");
        assert_eq!(base("0", "0", "12"), None, "zero shards");
        assert_eq!(base("4", "4", "12"), None, "shard out of range");
        assert_eq!(base("-1", "4", "12"), None);
        assert_eq!(base("x", "4", "12"), None);
        assert_eq!(base("1", "65536", "12"), None);
        assert_eq!(base("", "4", "12"), None);
        // A missing key disables sharding.
        let f = ServerFeatures::parse(&opts(&[
            ("SCYLLA_SHARD", &["1"]),
            ("SCYLLA_NR_SHARDS", &["4"]),
        ]));
        assert_eq!(f.sharding, None);
        // A key with no values too.
        let f = ServerFeatures::parse(&opts(&[
            ("SCYLLA_SHARD", &[]),
            ("SCYLLA_NR_SHARDS", &["4"]),
            ("SCYLLA_SHARDING_IGNORE_MSB", &["12"]),
        ]));
        assert_eq!(f.sharding, None);
    }

    #[test]
    fn malformed_extension_values_turn_features_off() {
        let f = ServerFeatures::parse(&opts(&[
            ("SCYLLA_SHARD_AWARE_PORT", &["70000"]),
            (
                "SCYLLA_LWT_ADD_METADATA_MARK",
                &["LWT_OPTIMIZATION_META_BIT_MASK=abc"],
            ),
            ("SCYLLA_RATE_LIMIT_ERROR", &["ERROR_CODE="]),
            ("SCYLLA_HOST_ID", &["not-a-uuid"]),
        ]));
        assert_eq!(f.shard_aware_port, None);
        assert_eq!(f.lwt_mask, None);
        assert_eq!(f.rate_limit_error_code, None);
        assert_eq!(f.host_id, None);
        let f = ServerFeatures::parse(&opts(&[
            ("SCYLLA_SHARD_AWARE_PORT", &["0"]),
            (
                "SCYLLA_LWT_ADD_METADATA_MARK",
                &["LWT_OPTIMIZATION_META_BIT_MASK=0"],
            ),
            ("SCYLLA_RATE_LIMIT_ERROR", &["OTHER=1", "ERROR_CODE=61440"]),
        ]));
        assert_eq!(f.shard_aware_port, None);
        assert_eq!(f.lwt_mask, None);
        assert_eq!(f.rate_limit_error_code, Some(61440));
    }

    #[test]
    fn repeated_keys_are_merged() {
        let f = ServerFeatures::parse(&opts(&[
            ("COMPRESSION", &["lz4"]),
            ("COMPRESSION", &["snappy"]),
        ]));
        assert_eq!(f.compression, vec!["lz4", "snappy"]);
    }

    #[test]
    fn uuid_parsing() {
        assert_eq!(
            parse_uuid("01234567-89ab-cdef-0123-456789ABCDEF"),
            Some([
                0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
                0xcd, 0xef
            ])
        );
        for bad in [
            "",
            "0123456789abcdef0123456789abcdef",
            "01234567-89ab-cdef-0123-456789abcdeg",
            "01234567+89ab-cdef-0123-456789abcdef",
            "01234567-89ab-cdef-0123-456789abcdé",
        ] {
            assert_eq!(parse_uuid(bad), None, "{bad}");
        }
    }

    /// Deterministic pseudo-random garbage: parsing must never panic.
    #[test]
    fn garbage_never_panics() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let keys = [
            "SCYLLA_SHARD",
            "SCYLLA_NR_SHARDS",
            "SCYLLA_SHARDING_IGNORE_MSB",
            "SCYLLA_SHARD_AWARE_PORT",
            "SCYLLA_LWT_ADD_METADATA_MARK",
            "SCYLLA_RATE_LIMIT_ERROR",
            "SCYLLA_HOST_ID",
            "COMPRESSION",
            "CQL_VERSION",
            "TABLETS_ROUTING_V1",
        ];
        let alphabet: Vec<char> = "0123456789-=abcdefLWT_ERROR_CODE \u{0}é\u{10ffff}"
            .chars()
            .collect();
        for _ in 0..2000 {
            let mut options = Vec::new();
            for _ in 0..(next() % 12) {
                let key = keys[(next() % keys.len() as u64) as usize].to_string();
                let values = (0..next() % 3)
                    .map(|_| {
                        (0..next() % 40)
                            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                            .collect::<String>()
                    })
                    .collect();
                options.push((key, values));
            }
            let f = ServerFeatures::parse(&options);
            if let Some(s) = f.sharding {
                assert!(s.shard < s.nr_shards && s.ignore_msb < 64);
            }
        }
    }
}
