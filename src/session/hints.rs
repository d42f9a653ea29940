//! Hints a session in communicator mode adds to its requests, in the
//! request's custom payload (frame flag 0x04), so the daemon can route a
//! simple statement like a prepared one and apply the caller's timeout and
//! idempotence. The daemon removes them before anything reaches the
//! cluster; a CQL driver that sends none gets the daemon's defaults.

use std::collections::HashMap;
use std::time::Duration;

use super::types::{RoutingKey, Statement};
use crate::protocol::wire::put_bytes_map;
use crate::protocol::Value;
use crate::routing::token::encode_partition_key;

/// The serialized partition key (as the token hashes it).
pub const ROUTING_KEY: &str = "sshard-routing-key";
/// The partition key's keyspace (UTF-8).
pub const KEYSPACE: &str = "sshard-keyspace";
/// The partition key's table (UTF-8), needed on tablet keyspaces.
pub const TABLE: &str = "sshard-table";
/// Present (any value): the request may be sent twice.
pub const IDEMPOTENT: &str = "sshard-idempotent";
/// The caller's end-to-end timeout in milliseconds, u32 big-endian.
pub const TIMEOUT_MS: &str = "sshard-timeout-ms";

/// Every key above starts with this; the daemon strips them all.
pub const PREFIX: &str = "sshard-";

/// The hints of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hints {
    pub routing_key: Option<Vec<u8>>,
    pub keyspace: Option<String>,
    pub table: Option<String>,
    pub idempotent: bool,
    pub timeout: Option<Duration>,
}

impl Hints {
    /// What `statement` can tell the daemon (its routing key, for simple
    /// statements; prepared ones are routed by their metadata).
    pub fn of_statement(statement: &Statement, timeout: Option<Duration>) -> Hints {
        let mut hints = Hints {
            idempotent: statement.idempotent,
            timeout,
            ..Hints::default()
        };
        if let Some(routing) = &statement.routing {
            hints.routing_key = match &routing.key {
                RoutingKey::Bytes(key) if !key.is_empty() => Some(key.clone()),
                RoutingKey::Values(positions) if !positions.is_empty() => {
                    key_of_values(&statement.values, positions)
                }
                _ => None,
            };
            if hints.routing_key.is_some() {
                hints.keyspace = routing.keyspace.clone();
                hints.table = routing.table.clone();
            }
        }
        hints
    }

    /// The custom payload carrying these hints (empty map: no payload).
    pub fn to_payload(&self) -> HashMap<String, Vec<u8>> {
        let mut map = HashMap::new();
        if let Some(key) = &self.routing_key {
            map.insert(ROUTING_KEY.to_owned(), key.clone());
        }
        if let Some(keyspace) = &self.keyspace {
            map.insert(KEYSPACE.to_owned(), keyspace.as_bytes().to_vec());
        }
        if let Some(table) = &self.table {
            map.insert(TABLE.to_owned(), table.as_bytes().to_vec());
        }
        if self.idempotent {
            map.insert(IDEMPOTENT.to_owned(), vec![1]);
        }
        if let Some(timeout) = self.timeout {
            let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
            map.insert(TIMEOUT_MS.to_owned(), ms.to_be_bytes().to_vec());
        }
        map
    }

    /// Reads the hints out of a request's custom payload and removes them
    /// from it (what remains is meant for the server). Malformed hints are
    /// ignored, never an error: they only help routing.
    pub fn take_from(payload: &mut HashMap<String, Vec<u8>>) -> Hints {
        let text = |v: Vec<u8>| String::from_utf8(v).ok();
        let hints = Hints {
            routing_key: payload.remove(ROUTING_KEY).filter(|k| !k.is_empty()),
            keyspace: payload.remove(KEYSPACE).and_then(text),
            table: payload.remove(TABLE).and_then(text),
            idempotent: payload.remove(IDEMPOTENT).is_some(),
            timeout: payload
                .remove(TIMEOUT_MS)
                .and_then(|v| <[u8; 4]>::try_from(v.as_slice()).ok())
                .map(|b| Duration::from_millis(u64::from(u32::from_be_bytes(b)))),
        };
        payload.retain(|k, _| !k.starts_with(PREFIX));
        hints
    }

    /// Writes the payload at the start of an encoded request body (before
    /// the message); returns the frame flag to add (0 when there is
    /// nothing to send).
    pub fn write_payload(&self, body: &mut Vec<u8>) -> u8 {
        let payload = self.to_payload();
        if payload.is_empty() || put_bytes_map(body, &payload).is_err() {
            return 0;
        }
        crate::protocol::frame::flags::CUSTOM_PAYLOAD
    }
}

/// The partition key made of `values` at `positions`, serialized.
fn key_of_values(values: &[Value], positions: &[usize]) -> Option<Vec<u8>> {
    let mut components = Vec::with_capacity(positions.len());
    for &at in positions {
        components.push(values.get(at)?.as_bytes());
    }
    if components.iter().all(Option::is_none) {
        return None;
    }
    let mut key = Vec::new();
    encode_partition_key(&components, &mut key).ok()?;
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::StatementRouting;

    #[test]
    fn hints_round_trip_through_a_payload_and_leave_the_rest() {
        let mut statement = Statement::simple("SELECT v FROM ks.t WHERE a = ? AND b = ?");
        statement.values = vec![Value::Set(vec![0, 0, 0, 1]), Value::Set(b"x".to_vec())];
        statement.idempotent = true;
        statement.routing = Some(StatementRouting {
            keyspace: Some("ks".into()),
            table: Some("t".into()),
            key: RoutingKey::Values(vec![0, 1]),
        });
        let hints = Hints::of_statement(&statement, Some(Duration::from_millis(1500)));
        assert_eq!(
            hints.routing_key.as_deref(),
            Some(&[0, 4, 0, 0, 0, 1, 0, 0, 1, b'x', 0][..])
        );
        let mut payload = hints.to_payload();
        payload.insert("other".into(), vec![7]);
        payload.insert("sshard-future".into(), vec![7]);
        let back = Hints::take_from(&mut payload);
        assert_eq!(back, hints);
        assert_eq!(payload.keys().collect::<Vec<_>>(), vec!["other"]);
    }

    #[test]
    fn malformed_hints_are_ignored() {
        let mut payload = HashMap::new();
        payload.insert(TIMEOUT_MS.to_owned(), vec![1, 2]);
        payload.insert(KEYSPACE.to_owned(), vec![0xff]);
        assert_eq!(Hints::take_from(&mut payload), Hints::default());
        assert!(payload.is_empty());
    }
}
