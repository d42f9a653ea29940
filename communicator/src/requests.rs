//! Client requests taken apart just enough to route and forward them: the
//! hints in a custom payload, a QUERY's text, an EXECUTE's id and values,
//! a BATCH's statements, and where each names its consistency. Values stay
//! borrowed from the frame; nothing is decoded that is not needed.

use scylla_shard::protocol::frame::flags;
use scylla_shard::protocol::wire::{BoundValue, Reader};
use scylla_shard::protocol::{Consistency, ProtocolError};
use scylla_shard::session::hints::Hints;

/// Query parameter flag bits (v4).
const VALUES: u8 = 0x01;
const VALUE_NAMES: u8 = 0x40;

/// The hints of a request body and where its message starts. A custom
/// payload is never passed on (Scylla takes none in v4): its hints are
/// kept, the rest dropped.
pub fn take_payload(frame_flags: u8, body: &[u8]) -> Result<(Hints, usize), ProtocolError> {
    if frame_flags & flags::CUSTOM_PAYLOAD == 0 {
        return Ok((Hints::default(), 0));
    }
    let mut r = Reader::new(body);
    let mut payload = r.bytes_map()?;
    let hints = Hints::take_from(&mut payload);
    Ok((hints, body.len() - r.remaining()))
}

/// A QUERY's text and the offset of its consistency.
pub fn query_text(message: &[u8]) -> Result<(&str, usize), ProtocolError> {
    let mut r = Reader::new(message);
    let text = r.long_string()?;
    Ok((text, message.len() - r.remaining()))
}

/// A PREPARE's text.
pub fn prepare_text(message: &[u8]) -> Result<&str, ProtocolError> {
    Reader::new(message).long_string()
}

/// What routing needs from an EXECUTE.
pub struct Execute<'a> {
    pub id: &'a [u8],
    pub consistency_at: usize,
    pub values: Vec<BoundValue<'a>>,
    /// Set when the values were sent by name.
    pub names: Option<Vec<&'a str>>,
}

pub fn execute(message: &[u8]) -> Result<Execute<'_>, ProtocolError> {
    let mut r = Reader::new(message);
    let id = r.short_bytes()?;
    let consistency_at = message.len() - r.remaining();
    let (values, names) = parameter_values(&mut r)?;
    Ok(Execute {
        id,
        consistency_at,
        values,
        names,
    })
}

type ValuesAndNames<'a> = (Vec<BoundValue<'a>>, Option<Vec<&'a str>>);

/// The values of `<query_parameters>` (positioned at its consistency).
fn parameter_values<'a>(r: &mut Reader<'a>) -> Result<ValuesAndNames<'a>, ProtocolError> {
    let _consistency = r.u16()?;
    let flags = r.u8()?;
    if flags & VALUES == 0 {
        return Ok((Vec::new(), None));
    }
    let named = flags & VALUE_NAMES != 0;
    let n = usize::from(r.u16()?);
    let mut values = Vec::with_capacity(n.min(r.remaining() / 4));
    let mut names = named.then(Vec::new);
    for _ in 0..n {
        if let Some(names) = names.as_mut() {
            names.push(r.string()?);
        }
        values.push(r.value()?);
    }
    Ok((values, names))
}

/// One statement of a BATCH.
pub enum BatchEntry<'a> {
    /// A simple statement (its text does not route the batch).
    Query,
    Prepared {
        id: &'a [u8],
        values: Vec<BoundValue<'a>>,
    },
}

pub struct Batch<'a> {
    pub entries: Vec<BatchEntry<'a>>,
    pub consistency_at: usize,
}

pub fn batch(message: &[u8]) -> Result<Batch<'_>, ProtocolError> {
    let mut r = Reader::new(message);
    let _kind = r.u8()?;
    let n = usize::from(r.u16()?);
    let mut entries = Vec::with_capacity(n.min(r.remaining() / 3));
    for _ in 0..n {
        let entry = match r.u8()? {
            0 => {
                r.long_string()?;
                skip_values(&mut r)?;
                BatchEntry::Query
            }
            1 => {
                let id = r.short_bytes()?;
                let count = usize::from(r.u16()?);
                let mut values = Vec::with_capacity(count.min(r.remaining() / 4));
                for _ in 0..count {
                    values.push(r.value()?);
                }
                BatchEntry::Prepared { id, values }
            }
            other => {
                return Err(ProtocolError::Invalid(format!(
                    "batch statement kind {other}"
                )))
            }
        };
        entries.push(entry);
    }
    let consistency_at = message.len() - r.remaining();
    // The consistency must be there.
    r.u16()?;
    Ok(Batch {
        entries,
        consistency_at,
    })
}

fn skip_values(r: &mut Reader<'_>) -> Result<(), ProtocolError> {
    for _ in 0..r.u16()? {
        r.value()?;
    }
    Ok(())
}

/// The message with its consistency replaced (a copy: only when the
/// daemon's policy forces one).
pub fn with_consistency(
    message: &[u8],
    at: usize,
    consistency: Consistency,
) -> Result<Vec<u8>, ProtocolError> {
    if message.len() < at + 2 {
        return Err(ProtocolError::Invalid("no consistency".into()));
    }
    let mut copy = message.to_vec();
    copy[at..at + 2].copy_from_slice(&(consistency as u16).to_be_bytes());
    Ok(copy)
}

/// Whether a statement only reads (so it is safe to send twice).
pub fn is_read(query: &str) -> bool {
    let head = query.trim_start();
    head.len() >= 6 && head[..6].eq_ignore_ascii_case("select")
}

#[cfg(test)]
mod tests {
    use super::*;
    use scylla_shard::protocol::request::{
        Batch as WireBatch, BatchKind, BatchStatement, BatchStatementKind,
    };
    use scylla_shard::protocol::{QueryParameters, Request, Value};
    use std::collections::HashMap;

    fn body(request: &Request) -> Vec<u8> {
        let mut out = Vec::new();
        request.write_body(&mut out).unwrap();
        out
    }

    #[test]
    fn execute_values_and_named_values_are_found() {
        let params = QueryParameters {
            consistency: Consistency::Quorum,
            values: vec![Value::Set(vec![1, 2]), Value::Null, Value::Unset],
            ..Default::default()
        };
        let message = body(&Request::Execute {
            id: b"abc".to_vec(),
            params: params.clone(),
        });
        let parts = execute(&message).unwrap();
        assert_eq!(parts.id, b"abc");
        assert_eq!(
            parts.values,
            vec![
                BoundValue::Set(&[1, 2]),
                BoundValue::Null,
                BoundValue::Unset
            ]
        );
        let patched = with_consistency(&message, parts.consistency_at, Consistency::One).unwrap();
        let Request::Execute { params: back, .. } =
            Request::read_body(scylla_shard::protocol::Opcode::Execute, &patched).unwrap()
        else {
            panic!()
        };
        assert_eq!(back.consistency, Consistency::One);
        assert_eq!(back.values, params.values);

        let named = body(&Request::Execute {
            id: b"abc".to_vec(),
            params: QueryParameters {
                values: vec![Value::Set(vec![7])],
                value_names: Some(vec!["k".into()]),
                ..Default::default()
            },
        });
        assert_eq!(execute(&named).unwrap().names, Some(vec!["k"]));
    }

    #[test]
    fn batches_payloads_and_truncation() {
        let message = body(&Request::Batch(WireBatch {
            kind: BatchKind::Logged,
            statements: vec![
                BatchStatement {
                    statement: BatchStatementKind::Query("INSERT 1".into()),
                    values: vec![Value::Null],
                },
                BatchStatement {
                    statement: BatchStatementKind::Prepared(b"id".to_vec()),
                    values: vec![Value::Set(vec![9])],
                },
            ],
            consistency: Consistency::Two,
            serial_consistency: None,
            timestamp: None,
        }));
        let parsed = batch(&message).unwrap();
        assert!(matches!(parsed.entries[0], BatchEntry::Query));
        assert!(
            matches!(&parsed.entries[1], BatchEntry::Prepared { id, values } if *id == b"id" && values == &[BoundValue::Set(&[9])])
        );
        assert_eq!(
            &message[parsed.consistency_at..parsed.consistency_at + 2],
            &[0, 2]
        );
        for cut in 0..message.len() - 2 {
            assert!(batch(&message[..cut]).is_err(), "cut at {cut}");
        }

        let mut payload = HashMap::new();
        payload.insert("sshard-idempotent".to_owned(), vec![1]);
        payload.insert("other".to_owned(), vec![2]);
        let mut with = Vec::new();
        scylla_shard::protocol::wire::put_bytes_map(&mut with, &payload).unwrap();
        with.extend_from_slice(b"rest");
        let (hints, at) = take_payload(flags::CUSTOM_PAYLOAD, &with).unwrap();
        assert!(hints.idempotent);
        assert_eq!(&with[at..], b"rest");
        assert!(is_read("  select * from t") && !is_read("INSERT"));
    }
}
