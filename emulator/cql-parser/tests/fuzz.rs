//! Robustness: the parser must return `Err` (never panic or overflow the
//! stack) on arbitrary input, truncated statements and mutated statements.

use std::panic::{catch_unwind, AssertUnwindSafe};

use cql_parser::{parse_statement, parse_statements, parse_type, Statement};

const CORPUS: &[&str] = &[
    "SELECT peer, data_center, host_id, rack, release_version, rpc_address, schema_version, tokens FROM system.peers USING TIMEOUT 2000ms",
    "SELECT broadcast_address, cluster_name, data_center, host_id, listen_address, partitioner, rack, release_version, rpc_address, schema_version, tokens FROM system.local WHERE key='local' USING TIMEOUT 2000ms",
    "SELECT * FROM system_schema.tables WHERE keyspace_name = 'ks' AND table_name = 't'",
    "SELECT keyspace_name, initial_tablets FROM system_schema.scylla_keyspaces where keyspace_name in ? USING TIMEOUT 30000ms",
    "CREATE KEYSPACE IF NOT EXISTS ks WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 3} AND tablets = {'enabled': true, 'initial': 8}",
    "CREATE TABLE ks.t (pk int, ck text, v map<text, frozen<list<int>>>, s int static, PRIMARY KEY ((pk), ck)) WITH CLUSTERING ORDER BY (ck DESC) AND compaction = {'class': 'SizeTieredCompactionStrategy'}",
    "CREATE TABLE t (a int, b int, c int, d int, PRIMARY KEY ((a, b), c, d)) WITH COMPACT STORAGE AND comment = 'x'",
    "INSERT INTO ks.t (pk, ck, v) VALUES (?, ?, ?) IF NOT EXISTS USING TTL 10",
    "UPDATE t USING TIMESTAMP 5 SET v = v + {'a': [1]}, n = n + 1 WHERE pk = 1 AND ck = 'x' IF n = 3",
    "DELETE v['a'] FROM t WHERE pk = :p IF EXISTS",
    "SELECT pk, ck, writetime(v) AS w FROM t WHERE pk IN (1,2) AND ck >= 'a' AND ck < 'z' ORDER BY ck DESC LIMIT ? ALLOW FILTERING",
    "SELECT * FROM t WHERE token(pk) > ? AND token(pk) <= ?",
    "BEGIN UNLOGGED BATCH INSERT INTO t (a, b) VALUES (1, 2); UPDATE t SET b = 3 WHERE a = 1; APPLY BATCH",
    "SELECT COUNT(*) FROM \"MyTable\"",
    "INSERT INTO t (a, b, c, d, e, f) VALUES ({x: 1, \"Y\": [2]}, (1, 'a'), 0xcafe, 550e8400-e29b-41d4-a716-446655440000, 1y2mo3w4d5h6m7s8ms9us10ns, -3.5e-2)",
    "/* c */ SELECT a -- x\n FROM t // y\n WHERE (a, b) IN ((1, 2), (3, 4)) AND c CONTAINS KEY 'k'",
    "CREATE MATERIALIZED VIEW mv AS SELECT a, b FROM t WHERE a IS NOT NULL AND b IS NOT NULL PRIMARY KEY (b, a)",
    "CREATE CUSTOM INDEX IF NOT EXISTS i ON ks.t (keys(m)) USING 'cls' WITH OPTIONS = {'a': 'b'}",
    "ALTER TABLE t ADD (x int, y set<text> static)",
    "CREATE TYPE ks.addr (street text, zip int, tags frozen<set<text>>)",
    "UPDATE t SET l = [0] + l, m[?] = (bigint) 3, u.f = toTimestamp(now()) WHERE k = -Infinity",
    "SELECT JSON DISTINCT CAST(a AS text), ks.f(b, ?), u.f, m['k'] FROM t PER PARTITION LIMIT 1 BYPASS CACHE",
    "TRUNCATE TABLE ks.t USING TIMEOUT 1s",
    "INSERT INTO t JSON $${\"a\": 1}$$ DEFAULT UNSET",
];

/// A small deterministic PRNG (xorshift64*), since the crate has no dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Parses `text` with every entry point; fails the test (naming the input)
/// if anything panics, and checks bind-marker invariants on success.
fn check(text: &str) {
    let result = catch_unwind(AssertUnwindSafe(|| {
        if let Ok(stmt) = parse_statement(text) {
            check_markers(&stmt);
        }
        if let Ok(stmts) = parse_statements(text) {
            for s in &stmts {
                check_markers(s);
            }
        }
        if let Ok(ty) = parse_type(text) {
            let _ = parse_type(&ty.to_string());
        }
    }));
    if result.is_err() {
        panic!("parser panicked on input {text:?}");
    }
}

/// Markers must be numbered 0..n with exactly one receiver each.
fn check_markers(stmt: &Statement) {
    let vars = stmt.bind_variables();
    for (i, v) in vars.iter().enumerate() {
        assert_eq!(v.marker.index, i, "marker numbering in {stmt:?}");
        let _ = v.name();
    }
}

#[test]
fn corpus_parses() {
    for text in CORPUS {
        if let Err(e) = parse_statement(text) {
            panic!("{text}: {e}");
        }
    }
}

#[test]
fn every_prefix_and_suffix() {
    for text in CORPUS {
        for (i, _) in text.char_indices() {
            check(&text[..i]);
            check(&text[i..]);
        }
    }
    // A truncated statement is never silently accepted as the full one.
    for text in CORPUS {
        let full = parse_statement(text).unwrap();
        for (i, _) in text.char_indices() {
            if let Ok(partial) = parse_statement(&text[..i]) {
                assert_ne!(partial, full, "{text:?} truncated at {i}");
            }
        }
    }
}

#[test]
fn token_mutations() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for text in CORPUS {
        let words: Vec<&str> = text.split(' ').collect();
        for _ in 0..300 {
            let mut w = words.clone();
            match rng.below(4) {
                0 => {
                    let i = rng.below(w.len());
                    w.remove(i);
                }
                1 => {
                    let i = rng.below(w.len());
                    let j = rng.below(w.len());
                    w.swap(i, j);
                }
                2 => {
                    let i = rng.below(w.len());
                    let j = rng.below(w.len());
                    let dup = w[j];
                    w.insert(i, dup);
                }
                _ => {
                    let i = rng.below(w.len());
                    let donor = CORPUS[rng.below(CORPUS.len())];
                    let donor_words: Vec<&str> = donor.split(' ').collect();
                    w[i] = donor_words[rng.below(donor_words.len())];
                }
            }
            check(&w.join(" "));
        }
    }
}

#[test]
fn random_bytes() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    const INTERESTING: &[u8] = b"'\"$-/*?:;,.()[]{}<>=!+0123456789abcdefxXpPtT \n\xc2\xb5\xff";
    for _ in 0..20_000 {
        let len = rng.below(48);
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                if rng.below(2) == 0 {
                    INTERESTING[rng.below(INTERESTING.len())]
                } else {
                    rng.next() as u8
                }
            })
            .collect();
        check(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn random_token_soup() {
    const PIECES: &[&str] = &[
        "SELECT",
        "INSERT",
        "INTO",
        "UPDATE",
        "DELETE",
        "FROM",
        "WHERE",
        "AND",
        "SET",
        "VALUES",
        "IF",
        "NOT",
        "EXISTS",
        "USING",
        "TTL",
        "TIMESTAMP",
        "TIMEOUT",
        "BEGIN",
        "BATCH",
        "APPLY",
        "CREATE",
        "TABLE",
        "KEYSPACE",
        "TYPE",
        "WITH",
        "PRIMARY",
        "KEY",
        "IN",
        "CONTAINS",
        "token",
        "count",
        "writetime",
        "cast",
        "AS",
        "LIMIT",
        "ORDER",
        "BY",
        "DESC",
        "JSON",
        "DISTINCT",
        "frozen",
        "list",
        "map",
        "tuple",
        "int",
        "text",
        "a",
        "b",
        "ks",
        "t",
        "\"Q\"",
        "?",
        ":n",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        "<",
        ">",
        "=",
        "<=",
        "!=",
        ",",
        ".",
        ";",
        ":",
        "+",
        "-",
        "*",
        "1",
        "-2",
        "1.5",
        "'s'",
        "0xab",
        "1h",
        "true",
        "null",
        "NaN",
        "550e8400-e29b-41d4-a716-446655440000",
        "IS",
        "NULL",
        "ALLOW",
        "FILTERING",
        "PER",
        "PARTITION",
        "GROUP",
        "CLUSTERING",
        "STATIC",
        "MATERIALIZED",
        "VIEW",
        "INDEX",
        "ON",
    ];
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    for _ in 0..30_000 {
        let len = 1 + rng.below(24);
        let text: Vec<&str> = (0..len).map(|_| PIECES[rng.below(PIECES.len())]).collect();
        check(&text.join(" "));
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let n = 100_000;
    let cases = [
        format!("INSERT INTO t (a) VALUES ({})", "[".repeat(n)),
        format!(
            "INSERT INTO t (a) VALUES ({}1{})",
            "[".repeat(n),
            "]".repeat(n)
        ),
        format!("INSERT INTO t (a) VALUES ({}1", "(".repeat(n)),
        format!("INSERT INTO t (a) VALUES ({}", "{".repeat(n)),
        format!("INSERT INTO t (a) VALUES ({}", "f(".repeat(n)),
        format!("INSERT INTO t (a) VALUES ({}1", "(int)".repeat(n)),
        format!("SELECT {} FROM t", "f(".repeat(n)),
        format!("SELECT {}a FROM t", "cast(".repeat(n)),
        format!(
            "CREATE TABLE t (a {}int, PRIMARY KEY (a))",
            "frozen<".repeat(n)
        ),
        "frozen<".repeat(n),
        format!("{}int{}", "list<".repeat(n), ">".repeat(n)),
        format!("SELECT * FROM t WHERE a = {}", "-".repeat(n)),
    ];
    for text in &cases {
        // Run on a thread with a modest stack, like a tokio worker's 2 MiB.
        let text = text.clone();
        let handle = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                assert!(parse_statement(&text).is_err());
                assert!(parse_type(&text).is_err());
            })
            .unwrap();
        handle.join().expect("parser overflowed or panicked");
    }
    // Moderate nesting still works.
    let ok = format!(
        "INSERT INTO t (a) VALUES ({}1{})",
        "[".repeat(30),
        "]".repeat(30)
    );
    assert!(parse_statement(&ok).is_ok());
}

#[test]
fn long_inputs() {
    let many = (0..5000)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let text = format!("SELECT * FROM t WHERE k IN ({many})");
    assert!(parse_statement(&text).is_ok());
    let batch = format!(
        "BEGIN BATCH {} APPLY BATCH",
        "INSERT INTO t (a) VALUES (?);".repeat(2000)
    );
    let stmt = parse_statement(&batch).unwrap();
    assert_eq!(stmt.bind_marker_count(), 2000);
}
