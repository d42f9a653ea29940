//! The partition token of a bound prepared statement.
//!
//! PREPARED metadata lists, for each partition-key column in key order, the
//! bind marker that carries it (`pk_indexes`). The token is the Murmur3
//! hash of those values in key order: one component raw, several as
//! `u16 length + bytes + 0x00` each, NULL components left out.

use super::types::Prepared;
use crate::protocol::Value;
use crate::routing::token::{token_of_partition_key, Token};

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
                let at = names.iter().position(|n| n == column)?;
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
                    .map(|n| ColumnSpec {
                        keyspace: "ks".into(),
                        table: "t".into(),
                        name: (*n).into(),
                        ty: ColumnType::Int,
                    })
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
