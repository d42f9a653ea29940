//! Keyspace metadata the router needs: replication strategy and whether
//! the keyspace uses tablets.

use std::collections::HashMap;

use super::rows::NamedRows;
use crate::protocol::response::Rows;
use crate::routing::replication::ReplicationStrategy;

pub const KEYSPACES_QUERY: &str = "SELECT keyspace_name, replication FROM system_schema.keyspaces";
/// Scylla only; `initial_tablets` is non-null for tablet keyspaces. Other
/// servers answer Invalid, which means "no tablet keyspaces".
pub const SCYLLA_KEYSPACES_QUERY: &str =
    "SELECT keyspace_name, initial_tablets FROM system_schema.scylla_keyspaces";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyspaceInfo {
    pub strategy: ReplicationStrategy,
    pub uses_tablets: bool,
}

/// Builds keyspace metadata from the two schema queries.
pub fn parse_keyspaces(
    keyspaces: &Rows,
    scylla_keyspaces: Option<&Rows>,
) -> HashMap<String, KeyspaceInfo> {
    let mut tablet_keyspaces = std::collections::HashSet::new();
    if let Some(rows) = scylla_keyspaces {
        let named = NamedRows::new(rows);
        for row in 0..named.len() {
            if let (Some(name), Some(_)) = (
                named.text(row, "keyspace_name"),
                named.int(row, "initial_tablets"),
            ) {
                tablet_keyspaces.insert(name);
            }
        }
    }
    let named = NamedRows::new(keyspaces);
    (0..named.len())
        .filter_map(|row| {
            let name = named.text(row, "keyspace_name")?;
            let strategy =
                ReplicationStrategy::from_replication_map(named.text_map(row, "replication"));
            let uses_tablets = tablet_keyspaces.contains(&name);
            Some((
                name,
                KeyspaceInfo {
                    strategy,
                    uses_tablets,
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::topology::tests::rows;
    use crate::protocol::types::ColumnType;
    use crate::protocol::value::CqlValue;

    #[test]
    fn strategies_and_tablet_flags() {
        let map = ColumnType::Map(Box::new(ColumnType::Text), Box::new(ColumnType::Text));
        let text = |s: &str| CqlValue::Text(s.into());
        let keyspaces = rows(
            &[("keyspace_name", ColumnType::Text), ("replication", map)],
            vec![
                vec![
                    Some(text("a")),
                    Some(CqlValue::Map(vec![
                        (
                            text("class"),
                            text("org.apache.cassandra.locator.SimpleStrategy"),
                        ),
                        (text("replication_factor"), text("2")),
                    ])),
                ],
                vec![
                    Some(text("b")),
                    Some(CqlValue::Map(vec![
                        (text("class"), text("NetworkTopologyStrategy")),
                        (text("dc1"), text("3")),
                    ])),
                ],
            ],
        );
        let scylla = rows(
            &[
                ("keyspace_name", ColumnType::Text),
                ("initial_tablets", ColumnType::Int),
            ],
            vec![
                vec![Some(text("a")), None],
                vec![Some(text("b")), Some(CqlValue::Int(8))],
            ],
        );
        let parsed = parse_keyspaces(&keyspaces, Some(&scylla));
        assert_eq!(parsed["a"].strategy, ReplicationStrategy::Simple { rf: 2 });
        assert!(!parsed["a"].uses_tablets);
        assert!(parsed["b"].uses_tablets);
        assert_eq!(
            parsed["b"].strategy,
            ReplicationStrategy::NetworkTopology {
                per_dc: vec![("dc1".into(), 3)]
            }
        );
    }
}
