//! What the daemon answers itself: `USE`, and the system tables that make
//! it look like one node owning the whole ring (`system.local`, an empty
//! `system.peers`, and no `system.peers_v2`, as on Scylla). Recognising
//! them needs only the first words of a statement, after any comments.

use std::net::IpAddr;

use scylla_shard::protocol::response::{error_code, ResultMetadata, Rows};
use scylla_shard::protocol::{ColumnSpec, ColumnType, CqlValue, ErrorBody};

/// A statement the daemon handles without the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Local {
    /// `USE name`: the exact keyspace name (unquoted names folded to lower case).
    Use(String),
    /// `SELECT <columns> FROM system.<table>`; `None` columns: `*`.
    SystemSelect {
        table: SystemTable,
        columns: Option<Vec<String>>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemTable {
    Local,
    Peers,
    PeersV2,
}

/// How the daemon describes itself (learned from the cluster at start).
#[derive(Debug, Clone)]
pub struct LocalNode {
    pub cluster_name: String,
    pub release_version: String,
    pub cql_version: String,
    pub data_center: String,
    pub rack: String,
    pub rpc_address: IpAddr,
    pub host_id: [u8; 16],
    pub schema_version: [u8; 16],
}

impl LocalNode {
    /// How the daemon presents itself: one node of the cluster's name in
    /// the local datacenter, at `rpc_address`.
    pub fn of_cluster(
        _session: &scylla_shard::session::Session,
        rpc_address: IpAddr,
        local_dc: Option<&str>,
    ) -> LocalNode {
        // A stable id per daemon address, so a client reconnecting after a
        // restart sees the same node.
        let mut host_id = [0u8; 16];
        let text = rpc_address.to_string();
        for (i, b) in text.bytes().enumerate() {
            host_id[i % 16] ^= b;
        }
        host_id[6] = (host_id[6] & 0x0f) | 0x40;
        host_id[8] = (host_id[8] & 0x3f) | 0x80;
        LocalNode {
            cluster_name: "scylla-communicator".into(),
            release_version: "3.0.8".into(),
            cql_version: "3.3.1".into(),
            data_center: local_dc.unwrap_or("datacenter1").into(),
            rack: "rack1".into(),
            rpc_address,
            host_id,
            schema_version: host_id,
        }
    }
}

/// The lowest token: the one node owns `(min, min]`, the whole ring.
const WHOLE_RING_TOKEN: &str = "-9223372036854775808";
const PARTITIONER: &str = "org.apache.cassandra.dht.Murmur3Partitioner";

/// Recognises a local statement; `None`: send it to the cluster.
pub fn recognise(query: &str) -> Result<Option<Local>, ErrorBody> {
    let mut words = Words::new(query);
    let Some(first) = words.next_word() else {
        return Ok(None);
    };
    if first.eq_ignore_ascii_case("use") {
        let name = words
            .next_identifier()
            .ok_or_else(|| syntax("USE needs a keyspace name"))?;
        if !words.at_end() {
            return Err(syntax("unexpected words after USE <keyspace>"));
        }
        return Ok(Some(Local::Use(name)));
    }
    if !first.eq_ignore_ascii_case("select") {
        return Ok(None);
    }
    // SELECT <list> FROM <keyspace>.<table> ...
    let mut list = Vec::new();
    let mut star = false;
    loop {
        if words.eat('*') {
            star = true;
        } else {
            match words.next_identifier() {
                Some(name) => list.push(name),
                None => return Ok(None),
            }
        }
        if !words.eat(',') {
            break;
        }
    }
    match words.next_word() {
        Some(w) if w.eq_ignore_ascii_case("from") => {}
        _ => return Ok(None),
    }
    let Some(keyspace) = words.next_identifier() else {
        return Ok(None);
    };
    if keyspace != "system" || !words.eat('.') {
        return Ok(None);
    }
    let table = match words.next_identifier().as_deref() {
        Some("local") => SystemTable::Local,
        Some("peers") => SystemTable::Peers,
        Some("peers_v2") => SystemTable::PeersV2,
        _ => return Ok(None),
    };
    if star && !list.is_empty() {
        return Err(syntax("`*` cannot be mixed with columns"));
    }
    Ok(Some(Local::SystemSelect {
        table,
        columns: (!star).then_some(list),
    }))
}

fn syntax(message: &str) -> ErrorBody {
    ErrorBody::new(error_code::SYNTAX_ERROR, message)
}

/// A system table's columns: name and type.
type Schema = Vec<(&'static str, ColumnType)>;

/// The rows of a local system-table SELECT.
pub fn system_rows(
    node: &LocalNode,
    table: SystemTable,
    columns: Option<&[String]>,
) -> Result<Rows, ErrorBody> {
    let (name, schema, values): (&str, Schema, Vec<Option<CqlValue>>) = match table {
        SystemTable::PeersV2 => {
            return Err(ErrorBody::new(
                error_code::INVALID,
                "unconfigured table peers_v2",
            ))
        }
        SystemTable::Local => ("local", local_columns(), local_values(node)),
        SystemTable::Peers => ("peers", peers_columns(), Vec::new()),
    };
    let picked: Vec<usize> = match columns {
        None => (0..schema.len()).collect(),
        Some(names) => names
            .iter()
            .map(|n| {
                schema.iter().position(|(c, _)| c == n).ok_or_else(|| {
                    ErrorBody::new(error_code::INVALID, format!("Undefined column name {n}"))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let specs = picked
        .iter()
        .map(|&i| ColumnSpec::new("system", name, schema[i].0, schema[i].1.clone()))
        .collect();
    let mut rows = Rows::new(ResultMetadata::with_columns(specs));
    if !values.is_empty() {
        let cells: Vec<Option<Vec<u8>>> = picked
            .iter()
            .map(|&i| values[i].as_ref().and_then(|v| v.to_bytes().ok()))
            .collect();
        rows.push_row(cells.iter().map(Option::as_deref))
            .map_err(|e| ErrorBody::new(error_code::SERVER_ERROR, e.to_string()))?;
    }
    Ok(rows)
}

fn set_of_text() -> ColumnType {
    ColumnType::Set(Box::new(ColumnType::Text))
}

fn local_columns() -> Vec<(&'static str, ColumnType)> {
    use ColumnType::*;
    vec![
        ("key", Text),
        ("bootstrapped", Text),
        ("broadcast_address", Inet),
        ("cluster_name", Text),
        ("cql_version", Text),
        ("data_center", Text),
        ("gossip_generation", Int),
        ("host_id", Uuid),
        ("listen_address", Inet),
        ("native_protocol_version", Text),
        ("partitioner", Text),
        ("rack", Text),
        ("release_version", Text),
        ("rpc_address", Inet),
        ("schema_version", Uuid),
        ("supported_features", Text),
        ("tokens", set_of_text()),
        ("truncated_at", Map(Box::new(Uuid), Box::new(Blob))),
    ]
}

fn local_values(node: &LocalNode) -> Vec<Option<CqlValue>> {
    let text = |s: &str| Some(CqlValue::Text(s.to_owned()));
    let inet = Some(CqlValue::Inet(node.rpc_address));
    vec![
        text("local"),
        text("COMPLETED"),
        inet.clone(),
        text(&node.cluster_name),
        text(&node.cql_version),
        text(&node.data_center),
        Some(CqlValue::Int(1)),
        Some(CqlValue::Uuid(node.host_id)),
        inet.clone(),
        text("4"),
        text(PARTITIONER),
        text(&node.rack),
        text(&node.release_version),
        inet,
        Some(CqlValue::Uuid(node.schema_version)),
        text(""),
        Some(CqlValue::Set(vec![CqlValue::Text(
            WHOLE_RING_TOKEN.to_owned(),
        )])),
        None,
    ]
}

fn peers_columns() -> Vec<(&'static str, ColumnType)> {
    use ColumnType::*;
    vec![
        ("peer", Inet),
        ("data_center", Text),
        ("host_id", Uuid),
        ("preferred_ip", Inet),
        ("rack", Text),
        ("release_version", Text),
        ("rpc_address", Inet),
        ("schema_version", Uuid),
        ("supported_features", Text),
        ("tokens", set_of_text()),
    ]
}

/// A cursor over CQL text that skips blanks and comments.
struct Words<'a> {
    rest: &'a str,
}

impl<'a> Words<'a> {
    fn new(text: &'a str) -> Words<'a> {
        Words { rest: text }
    }

    fn skip_blank(&mut self) {
        loop {
            let trimmed = self.rest.trim_start();
            if let Some(after) = trimmed
                .strip_prefix("--")
                .or_else(|| trimmed.strip_prefix("//"))
            {
                self.rest = after.split_once('\n').map_or("", |(_, r)| r);
            } else if let Some(after) = trimmed.strip_prefix("/*") {
                self.rest = after.split_once("*/").map_or("", |(_, r)| r);
            } else {
                self.rest = trimmed;
                return;
            }
        }
    }

    /// An unquoted word (letters, digits, `_`), as written.
    fn next_word(&mut self) -> Option<&'a str> {
        self.skip_blank();
        let end = self
            .rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(self.rest.len());
        if end == 0 {
            return None;
        }
        let (word, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(word)
    }

    /// An identifier: `"Exact"` (with `""` for `"`) or a word folded to
    /// lower case.
    fn next_identifier(&mut self) -> Option<String> {
        self.skip_blank();
        if let Some(quoted) = self.rest.strip_prefix('"') {
            let mut name = String::new();
            let mut chars = quoted.char_indices();
            while let Some((i, c)) = chars.next() {
                if c == '"' {
                    if quoted[i + 1..].starts_with('"') {
                        name.push('"');
                        chars.next();
                        continue;
                    }
                    self.rest = &quoted[i + 1..];
                    return (!name.is_empty()).then_some(name);
                }
                name.push(c);
            }
            return None;
        }
        self.next_word().map(str::to_lowercase)
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_blank();
        match self.rest.strip_prefix(c) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn at_end(&mut self) -> bool {
        while self.eat(';') {}
        self.skip_blank();
        self.rest.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_and_system_selects_are_recognised() {
        assert_eq!(recognise("use Ks;").unwrap(), Some(Local::Use("ks".into())));
        assert_eq!(
            recognise("/* c */ -- x\n USE \"My\"\"Ks\"").unwrap(),
            Some(Local::Use("My\"Ks".into()))
        );
        assert!(recognise("USE a b").is_err());
        assert_eq!(
            recognise("SELECT * FROM system.local WHERE key='local'").unwrap(),
            Some(Local::SystemSelect {
                table: SystemTable::Local,
                columns: None
            })
        );
        assert_eq!(
            recognise("select peer, \"rpc_address\" from \"system\" . peers").unwrap(),
            Some(Local::SystemSelect {
                table: SystemTable::Peers,
                columns: Some(vec!["peer".into(), "rpc_address".into()])
            })
        );
        assert_eq!(
            recognise("SELECT * FROM system_schema.tables").unwrap(),
            None
        );
        assert_eq!(
            recognise("SELECT count(*) FROM system.local").unwrap(),
            None
        );
        assert_eq!(
            recognise("INSERT INTO system.local (key) VALUES ('x')").unwrap(),
            None
        );
        assert_eq!(recognise("  ").unwrap(), None);
    }

    #[test]
    fn system_local_describes_one_node_owning_the_ring() {
        let node = LocalNode {
            cluster_name: "c".into(),
            release_version: "3.0.8".into(),
            cql_version: "3.3.1".into(),
            data_center: "dc1".into(),
            rack: "r1".into(),
            rpc_address: "127.0.0.1".parse().unwrap(),
            host_id: [1; 16],
            schema_version: [2; 16],
        };
        let all = system_rows(&node, SystemTable::Local, None).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all.metadata.column_count, 18);
        let some = system_rows(
            &node,
            SystemTable::Local,
            Some(&["tokens".to_owned(), "rpc_address".to_owned()]),
        )
        .unwrap();
        let tokens = CqlValue::deserialize(&set_of_text(), some.cell(0, 0).unwrap()).unwrap();
        assert_eq!(
            tokens,
            CqlValue::Set(vec![CqlValue::Text(WHOLE_RING_TOKEN.into())])
        );
        assert_eq!(some.cell(0, 1), Some(&[127, 0, 0, 1][..]));
        assert!(system_rows(&node, SystemTable::Peers, None)
            .unwrap()
            .is_empty());
        assert_eq!(
            system_rows(&node, SystemTable::Local, Some(&["nope".to_owned()]))
                .unwrap_err()
                .code,
            error_code::INVALID
        );
        assert!(system_rows(&node, SystemTable::PeersV2, None).is_err());
    }
}
