//! Cluster topology from `system.local` and `system.peers`: which nodes
//! exist, where they are, and which tokens they own.

use std::net::{IpAddr, SocketAddr};

use super::rows::NamedRows;
use crate::protocol::response::Rows;
use crate::routing::token::Token;

/// The query the control connection reads its own node from.
pub const LOCAL_QUERY: &str =
    "SELECT host_id, rpc_address, data_center, rack, tokens, cluster_name FROM system.local WHERE key='local'";
/// The query for every other node.
pub const PEERS_QUERY: &str =
    "SELECT host_id, rpc_address, data_center, rack, tokens FROM system.peers";

/// One node as the system tables describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub host_id: [u8; 16],
    /// The CQL address: `rpc_address` with the cluster's CQL port.
    pub address: SocketAddr,
    pub datacenter: String,
    pub rack: String,
    pub tokens: Vec<Token>,
}

/// Why a row was skipped (kept for logging).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRow(pub String);

/// Reads node rows. Rows without a host id, an address or a datacenter are
/// skipped, as the real drivers do; `fallback` replaces an unusable
/// `rpc_address` (0.0.0.0) of the local row with the address we connected to.
pub fn parse_nodes(
    rows: &Rows,
    port: u16,
    fallback: Option<IpAddr>,
) -> (Vec<PeerInfo>, Vec<SkippedRow>) {
    let named = NamedRows::new(rows);
    let mut nodes = Vec::new();
    let mut skipped = Vec::new();
    for row in 0..named.len() {
        let Some(host_id) = named.uuid(row, "host_id") else {
            skipped.push(SkippedRow("row without host_id".into()));
            continue;
        };
        let address = match named.inet(row, "rpc_address") {
            Some(ip) if !ip.is_unspecified() => ip,
            _ => match fallback {
                Some(ip) => ip,
                None => {
                    skipped.push(SkippedRow("row without a usable rpc_address".into()));
                    continue;
                }
            },
        };
        let Some(datacenter) = named.text(row, "data_center") else {
            skipped.push(SkippedRow(format!("node {address} without data_center")));
            continue;
        };
        let rack = named.text(row, "rack").unwrap_or_default();
        let tokens = named
            .text_list(row, "tokens")
            .iter()
            .filter_map(|t| t.parse::<i64>().ok())
            .map(Token::new)
            .collect();
        nodes.push(PeerInfo {
            host_id,
            address: SocketAddr::new(address, port),
            datacenter,
            rack,
            tokens,
        });
    }
    (nodes, skipped)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::protocol::response::{ColumnSpec, ResultMetadata};
    use crate::protocol::types::ColumnType;
    use crate::protocol::value::CqlValue;

    pub fn rows(columns: &[(&str, ColumnType)], data: Vec<Vec<Option<CqlValue>>>) -> Rows {
        Rows::from_cells(
            ResultMetadata::with_columns(
                columns
                    .iter()
                    .map(|(n, t)| ColumnSpec::new("system", "t", n, t.clone()))
                    .collect(),
            ),
            data.into_iter()
                .map(|r| {
                    r.into_iter()
                        .map(|v| v.map(|v| v.to_bytes().unwrap()))
                        .collect()
                })
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn parses_peers_and_skips_incomplete_rows() {
        let tokens = ColumnType::Set(Box::new(ColumnType::Text));
        let rows = rows(
            &[
                ("host_id", ColumnType::Uuid),
                ("rpc_address", ColumnType::Inet),
                ("data_center", ColumnType::Text),
                ("rack", ColumnType::Text),
                ("tokens", tokens),
            ],
            vec![
                vec![
                    Some(CqlValue::Uuid([1; 16])),
                    Some(CqlValue::Inet("127.0.0.2".parse().unwrap())),
                    Some(CqlValue::Text("dc1".into())),
                    Some(CqlValue::Text("r1".into())),
                    Some(CqlValue::Set(vec![
                        CqlValue::Text("-5".into()),
                        CqlValue::Text("7".into()),
                    ])),
                ],
                vec![
                    None,
                    Some(CqlValue::Inet("127.0.0.3".parse().unwrap())),
                    None,
                    None,
                    None,
                ],
                vec![
                    Some(CqlValue::Uuid([2; 16])),
                    Some(CqlValue::Inet("0.0.0.0".parse().unwrap())),
                    Some(CqlValue::Text("dc1".into())),
                    None,
                    None,
                ],
            ],
        );
        let (nodes, skipped) = parse_nodes(&rows, 9042, None);
        assert_eq!(nodes.len(), 1);
        assert_eq!(skipped.len(), 2);
        assert_eq!(nodes[0].address, "127.0.0.2:9042".parse().unwrap());
        assert_eq!(nodes[0].tokens, vec![Token::new(-5), Token::new(7)]);
        let (nodes, _) = parse_nodes(&rows, 9042, Some("10.0.0.9".parse().unwrap()));
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[1].address.ip().to_string(), "10.0.0.9");
    }
}
