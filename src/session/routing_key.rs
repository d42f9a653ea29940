//! The partition token of a bound prepared statement.
//!
//! PREPARED metadata lists, for each partition-key column in key order, the
//! bind marker that carries it (`pk_indexes`). The token is the Murmur3
//! hash of those values in key order: one component raw, several as
//! `u16 length + bytes + 0x00` each, NULL components left out.

use super::route::RoutingInfo;
use super::types::{Prepared, Query, RoutingKey, Statement};
use crate::cluster::ClusterState;
use crate::protocol::Value;
use crate::routing::token::{murmur3_token, token_of_partition_key, Token};

/// Most partition keys have few components; longer ones spill to the heap.
const INLINE_COMPONENTS: usize = 8;

/// Token of the partition `values` address, or `None` when the statement
/// is not token-aware (no partition key markers), a key value is missing
/// or every key value is NULL.
pub fn token_of(prepared: &Prepared, values: &[Value], names: Option<&[String]>) -> Option<Token> {
    let pk = &prepared.metadata.pk_indexes;
    if pk.is_empty() {
        return None;
    }
    let value_of = |marker: u16| -> Option<&Value> {
        let marker = usize::from(marker);
        match names {
            None => values.get(marker),
            Some(names) => {
                let column = &prepared.metadata.bind_columns.get(marker)?.name;
                let at = names.iter().position(|n| **n == **column)?;
                values.get(at)
            }
        }
    };
    let mut inline: [Option<&[u8]>; INLINE_COMPONENTS] = [None; INLINE_COMPONENTS];
    let mut spilled = Vec::new();
    let components: &mut [Option<&[u8]>] = if pk.len() <= INLINE_COMPONENTS {
        &mut inline[..pk.len()]
    } else {
        spilled.resize(pk.len(), None);
        &mut spilled
    };
    for (slot, &marker) in components.iter_mut().zip(pk) {
        *slot = value_of(marker)?.as_bytes();
    }
    if components.iter().all(Option::is_none) {
        return None;
    }
    token_of_partition_key(components).ok()
}

/// Where `statement` goes: its explicit routing key if it has one, else its
/// prepared metadata. `use_keyspace` is the session's `USE` keyspace (for a
/// routing key that names none). A routing key on a tablet keyspace needs
/// its table; without one the statement is not routed (it would teach the
/// tablet map nothing it could use).
pub fn routing_of<'a>(
    statement: &'a Statement,
    use_keyspace: Option<&'a str>,
    state: &ClusterState,
) -> Option<RoutingInfo<'a>> {
    if let Some(routing) = &statement.routing {
        let keyspace = routing.keyspace.as_deref().or(use_keyspace)?;
        let table = match routing.table.as_deref() {
            Some(table) => table,
            None if state.keyspace(keyspace)?.uses_tablets => return None,
            None => "",
        };
        let token = match &routing.key {
            RoutingKey::Bytes(key) if !key.is_empty() => murmur3_token(key),
            RoutingKey::Values(positions) if !positions.is_empty() => {
                token_of_values(&statement.values, positions)?
            }
            // No key given yet: like no routing at all.
            _ => return routing_of_metadata(statement),
        };
        return Some(RoutingInfo {
            keyspace,
            table,
            token,
            // Scylla answers with a tablet payload only when the key is
            // bound with markers.
            learns: !statement.values.is_empty(),
        });
    }
    routing_of_metadata(statement)
}

/// Where a prepared statement's metadata and values say it goes.
fn routing_of_metadata(statement: &Statement) -> Option<RoutingInfo<'_>> {
    match &statement.query {
        Query::Prepared(p) => {
            let (keyspace, table) = p.table()?;
            Some(RoutingInfo {
                keyspace,
                table,
                token: token_of(p, &statement.values, statement.value_names.as_deref())?,
                learns: true,
            })
        }
        Query::Simple(_) => None,
    }
}

/// Token of the partition key made of `values` at `positions`.
fn token_of_values(values: &[Value], positions: &[usize]) -> Option<Token> {
    let mut components = Vec::with_capacity(positions.len());
    for &at in positions {
        components.push(values.get(at)?.as_bytes());
    }
    if components.iter().all(Option::is_none) {
        return None;
    }
    token_of_partition_key(&components).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::response::{ColumnSpec, PreparedMetadata, ResultMetadata};
    use crate::protocol::types::ColumnType;
    use crate::routing::token::murmur3_token;

    fn prepared(columns: &[&str], pk_indexes: Vec<u16>) -> Prepared {
        Prepared {
            id: vec![1],
            query: String::new(),
            keyspace: None,
            metadata: PreparedMetadata {
                is_lwt: false,
                pk_indexes,
                bind_columns: columns
                    .iter()
                    .map(|n| ColumnSpec::new("ks", "t", n, ColumnType::Int))
                    .collect(),
            },
            result_metadata: ResultMetadata::default(),
        }
    }

    fn set(b: &[u8]) -> Value {
        Value::Set(b.to_vec())
    }

    #[test]
    fn single_component_is_hashed_raw() {
        let p = prepared(&["v", "k"], vec![1]);
        let values = [set(b"value"), set(&[0, 0, 0, 7])];
        assert_eq!(
            token_of(&p, &values, None),
            Some(murmur3_token(&[0, 0, 0, 7]))
        );
    }

    #[test]
    fn composite_key_is_reordered_by_pk_index() {
        // Markers: (v, b, a); the key is (a, b).
        let p = prepared(&["v", "b", "a"], vec![2, 1]);
        let values = [set(b"x"), set(b"B"), set(b"A")];
        let mut key = Vec::new();
        for c in [&b"A"[..], b"B"] {
            key.extend_from_slice(&(c.len() as u16).to_be_bytes());
            key.extend_from_slice(c);
            key.push(0);
        }
        assert_eq!(token_of(&p, &values, None), Some(murmur3_token(&key)));
        // By name, in any order.
        let names: Vec<String> = ["a", "v", "b"].iter().map(|s| s.to_string()).collect();
        let named = [set(b"A"), set(b"x"), set(b"B")];
        assert_eq!(
            token_of(&p, &named, Some(&names)),
            Some(murmur3_token(&key))
        );
    }

    #[test]
    fn routing_keys_of_simple_statements_hash_like_prepared_ones() {
        let state = ClusterState::empty();
        let mut s = Statement::simple("INSERT INTO ks.t (a, b, v) VALUES (?, ?, ?)");
        s.values = vec![set(b"A"), set(b"x"), set(b"B")];
        assert!(routing_of(&s, None, &state).is_none());
        s.routing = Some(crate::session::StatementRouting {
            keyspace: Some("ks".into()),
            table: Some("t".into()),
            key: RoutingKey::Values(vec![0, 2]),
        });
        let p = prepared(&["a", "x", "b"], vec![0, 2]);
        let from_values = routing_of(&s, None, &state).unwrap();
        assert_eq!((from_values.keyspace, from_values.table), ("ks", "t"));
        assert_eq!(Some(from_values.token), token_of(&p, &s.values, None));
        s.routing.as_mut().unwrap().key = RoutingKey::Bytes(b"A".to_vec());
        assert_eq!(
            routing_of(&s, None, &state).unwrap().token,
            murmur3_token(b"A")
        );
        // No keyspace given: the session's; none there either: not routed.
        s.routing.as_mut().unwrap().keyspace = None;
        assert_eq!(
            routing_of(&s, Some("other"), &state).unwrap().keyspace,
            "other"
        );
        assert!(routing_of(&s, None, &state).is_none());
    }

    #[test]
    fn nulls_are_skipped_and_missing_values_disable_routing() {
        let p = prepared(&["a", "b"], vec![0, 1]);
        assert_eq!(
            token_of(&p, &[Value::Null, set(b"B")], None),
            Some(murmur3_token(b"B"))
        );
        assert_eq!(token_of(&p, &[Value::Null, Value::Unset], None), None);
        assert_eq!(token_of(&p, &[set(b"A")], None), None);
        assert_eq!(
            token_of(&prepared(&["a"], vec![]), &[set(b"A")], None),
            None
        );
    }
}
