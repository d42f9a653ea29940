//! Request messages (client to server), encoded and decoded.
//!
//! The driver encodes them, the emulator decodes them; both use this module
//! so the real drivers check it from both sides.

use super::consistency::Consistency;
use super::error::{invalid, ProtocolError};
use super::frame::Opcode;
use super::wire::{
    put_i32, put_i64, put_long_string, put_short_bytes, put_string, put_string_list,
    put_string_map, put_u16, put_u8, put_value, BoundValue, Reader,
};

/// One bind value, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Set(Vec<u8>),
    Null,
    Unset,
}

impl Value {
    fn as_bound(&self) -> BoundValue<'_> {
        match self {
            Value::Set(b) => BoundValue::Set(b),
            Value::Null => BoundValue::Null,
            Value::Unset => BoundValue::Unset,
        }
    }

    fn from_bound(v: BoundValue<'_>) -> Value {
        match v {
            BoundValue::Set(b) => Value::Set(b.to_vec()),
            BoundValue::Null => Value::Null,
            BoundValue::Unset => Value::Unset,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Set(b) => Some(b),
            _ => None,
        }
    }
}

/// Query parameter flags (v4).
mod query_flags {
    pub const VALUES: u8 = 0x01;
    pub const SKIP_METADATA: u8 = 0x02;
    pub const PAGE_SIZE: u8 = 0x04;
    pub const PAGING_STATE: u8 = 0x08;
    pub const SERIAL_CONSISTENCY: u8 = 0x10;
    pub const DEFAULT_TIMESTAMP: u8 = 0x20;
    pub const VALUE_NAMES: u8 = 0x40;
}

/// The `<query_parameters>` shared by QUERY and EXECUTE.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryParameters {
    pub consistency: Consistency,
    pub values: Vec<Value>,
    /// Set when the values were sent by name (flag 0x40).
    pub value_names: Option<Vec<String>>,
    pub skip_metadata: bool,
    pub page_size: Option<i32>,
    pub paging_state: Option<Vec<u8>>,
    pub serial_consistency: Option<Consistency>,
    pub timestamp: Option<i64>,
}

/// `<query_parameters>` borrowed from wherever the values live, so a
/// request can be encoded without copying them first.
#[derive(Debug, Clone, Copy)]
pub struct ParamsRef<'a> {
    pub consistency: Consistency,
    pub values: &'a [Value],
    pub value_names: Option<&'a [String]>,
    pub skip_metadata: bool,
    pub page_size: Option<i32>,
    pub paging_state: Option<&'a [u8]>,
    pub serial_consistency: Option<Consistency>,
    pub timestamp: Option<i64>,
}

impl ParamsRef<'_> {
    fn write(&self, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        use query_flags::*;
        put_u16(out, self.consistency as u16);
        let mut flags = 0u8;
        if !self.values.is_empty() {
            flags |= VALUES;
        }
        if self.value_names.is_some() {
            flags |= VALUE_NAMES;
        }
        if self.skip_metadata {
            flags |= SKIP_METADATA;
        }
        if self.page_size.is_some() {
            flags |= PAGE_SIZE;
        }
        if self.paging_state.is_some() {
            flags |= PAGING_STATE;
        }
        if self.serial_consistency.is_some() {
            flags |= SERIAL_CONSISTENCY;
        }
        if self.timestamp.is_some() {
            flags |= DEFAULT_TIMESTAMP;
        }
        put_u8(out, flags);
        if !self.values.is_empty() {
            write_values(out, self.values, self.value_names)?;
        }
        if let Some(page_size) = self.page_size {
            put_i32(out, page_size);
        }
        if let Some(state) = self.paging_state {
            super::wire::put_bytes(out, Some(state))?;
        }
        if let Some(serial) = self.serial_consistency {
            put_u16(out, serial as u16);
        }
        if let Some(ts) = self.timestamp {
            put_i64(out, ts);
        }
        Ok(())
    }
}

/// Appends a QUERY body.
pub fn write_query_body(
    out: &mut Vec<u8>,
    query: &str,
    params: &ParamsRef<'_>,
) -> Result<(), ProtocolError> {
    put_long_string(out, query)?;
    params.write(out)
}

/// Appends an EXECUTE body.
pub fn write_execute_body(
    out: &mut Vec<u8>,
    id: &[u8],
    params: &ParamsRef<'_>,
) -> Result<(), ProtocolError> {
    put_short_bytes(out, id)?;
    params.write(out)
}

impl QueryParameters {
    pub fn borrowed(&self) -> ParamsRef<'_> {
        ParamsRef {
            consistency: self.consistency,
            values: &self.values,
            value_names: self.value_names.as_deref(),
            skip_metadata: self.skip_metadata,
            page_size: self.page_size,
            paging_state: self.paging_state.as_deref(),
            serial_consistency: self.serial_consistency,
            timestamp: self.timestamp,
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<QueryParameters, ProtocolError> {
        use query_flags::*;
        let consistency = Consistency::from_u16(r.u16()?)?;
        let flags = r.u8()?;
        if flags & 0x80 != 0 {
            return Err(invalid(format!("unknown query flags 0x{flags:02x}")));
        }
        let mut params = QueryParameters {
            consistency,
            skip_metadata: flags & SKIP_METADATA != 0,
            ..Default::default()
        };
        if flags & VALUES != 0 {
            let (values, names) = read_values(r, flags & VALUE_NAMES != 0)?;
            params.values = values;
            params.value_names = names;
        }
        if flags & PAGE_SIZE != 0 {
            params.page_size = Some(r.i32()?);
        }
        if flags & PAGING_STATE != 0 {
            params.paging_state = r.bytes()?.map(<[u8]>::to_vec);
        }
        if flags & SERIAL_CONSISTENCY != 0 {
            params.serial_consistency = Some(Consistency::from_u16(r.u16()?)?);
        }
        if flags & DEFAULT_TIMESTAMP != 0 {
            params.timestamp = Some(r.i64()?);
        }
        Ok(params)
    }
}

fn write_values(
    out: &mut Vec<u8>,
    values: &[Value],
    names: Option<&[String]>,
) -> Result<(), ProtocolError> {
    let n = u16::try_from(values.len()).map_err(|_| invalid("more than 65535 values"))?;
    if let Some(names) = names {
        if names.len() != values.len() {
            return Err(invalid("value names and values differ in count"));
        }
    }
    put_u16(out, n);
    for (i, value) in values.iter().enumerate() {
        if let Some(names) = names {
            put_string(out, &names[i])?;
        }
        put_value(out, value.as_bound())?;
    }
    Ok(())
}

type ValuesAndNames = (Vec<Value>, Option<Vec<String>>);

fn read_values(r: &mut Reader<'_>, named: bool) -> Result<ValuesAndNames, ProtocolError> {
    let n = r.u16()? as usize;
    let mut values = Vec::with_capacity(n.min(r.remaining() / 4));
    let mut names = named.then(|| Vec::with_capacity(n.min(r.remaining() / 6)));
    for _ in 0..n {
        if let Some(names) = names.as_mut() {
            names.push(r.string()?.to_owned());
        }
        values.push(Value::from_bound(r.value()?));
    }
    Ok((values, names))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum BatchKind {
    Logged = 0,
    Unlogged = 1,
    Counter = 2,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchStatementKind {
    Query(String),
    Prepared(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchStatement {
    pub statement: BatchStatementKind,
    pub values: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub kind: BatchKind,
    pub statements: Vec<BatchStatement>,
    pub consistency: Consistency,
    pub serial_consistency: Option<Consistency>,
    pub timestamp: Option<i64>,
}

/// A request message body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Startup {
        options: Vec<(String, String)>,
    },
    AuthResponse {
        token: Option<Vec<u8>>,
    },
    Options,
    Query {
        query: String,
        params: QueryParameters,
    },
    Prepare {
        query: String,
    },
    Execute {
        id: Vec<u8>,
        params: QueryParameters,
    },
    Register {
        events: Vec<String>,
    },
    Batch(Batch),
}

impl Request {
    pub fn opcode(&self) -> Opcode {
        match self {
            Request::Startup { .. } => Opcode::Startup,
            Request::AuthResponse { .. } => Opcode::AuthResponse,
            Request::Options => Opcode::Options,
            Request::Query { .. } => Opcode::Query,
            Request::Prepare { .. } => Opcode::Prepare,
            Request::Execute { .. } => Opcode::Execute,
            Request::Register { .. } => Opcode::Register,
            Request::Batch(_) => Opcode::Batch,
        }
    }

    /// Appends the message body.
    pub fn write_body(&self, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        match self {
            Request::Startup { options } => put_string_map(out, options)?,
            Request::AuthResponse { token } => super::wire::put_bytes(out, token.as_deref())?,
            Request::Options => {}
            Request::Query { query, params } => write_query_body(out, query, &params.borrowed())?,
            Request::Prepare { query } => put_long_string(out, query)?,
            Request::Execute { id, params } => write_execute_body(out, id, &params.borrowed())?,
            Request::Register { events } => put_string_list(out, events)?,
            Request::Batch(batch) => write_batch(out, batch)?,
        }
        Ok(())
    }

    /// Decodes a message body of the given opcode; the body must be consumed
    /// exactly.
    pub fn read_body(opcode: Opcode, body: &[u8]) -> Result<Request, ProtocolError> {
        let mut r = Reader::new(body);
        let request = match opcode {
            Opcode::Startup => Request::Startup {
                options: r.string_map()?,
            },
            Opcode::AuthResponse => Request::AuthResponse {
                token: r.bytes()?.map(<[u8]>::to_vec),
            },
            Opcode::Options => Request::Options,
            Opcode::Query => Request::Query {
                query: r.long_string()?.to_owned(),
                params: QueryParameters::read(&mut r)?,
            },
            Opcode::Prepare => Request::Prepare {
                query: r.long_string()?.to_owned(),
            },
            Opcode::Execute => Request::Execute {
                id: r.short_bytes()?.to_vec(),
                params: QueryParameters::read(&mut r)?,
            },
            Opcode::Register => Request::Register {
                events: r.string_list()?,
            },
            Opcode::Batch => Request::Batch(read_batch(&mut r)?),
            other => return Err(invalid(format!("{other:?} is not a request"))),
        };
        // Scylla tolerates trailing bytes after PREPARE (v5 flags); we only
        // reject them where they signal a misunderstanding of the layout.
        if !r.is_empty() && !matches!(opcode, Opcode::Prepare | Opcode::Execute) {
            return Err(invalid(format!(
                "{} trailing bytes after {opcode:?}",
                r.remaining()
            )));
        }
        Ok(request)
    }
}

mod batch_flags {
    pub const SERIAL_CONSISTENCY: u8 = 0x10;
    pub const DEFAULT_TIMESTAMP: u8 = 0x20;
    pub const VALUE_NAMES: u8 = 0x40;
}

fn write_batch(out: &mut Vec<u8>, batch: &Batch) -> Result<(), ProtocolError> {
    put_u8(out, batch.kind as u8);
    let n = u16::try_from(batch.statements.len())
        .map_err(|_| invalid("more than 65535 statements in a batch"))?;
    put_u16(out, n);
    for statement in &batch.statements {
        match &statement.statement {
            BatchStatementKind::Query(query) => {
                put_u8(out, 0);
                put_long_string(out, query)?;
            }
            BatchStatementKind::Prepared(id) => {
                put_u8(out, 1);
                put_short_bytes(out, id)?;
            }
        }
        write_values(out, &statement.values, None)?;
    }
    put_u16(out, batch.consistency as u16);
    let mut flags = 0;
    if batch.serial_consistency.is_some() {
        flags |= batch_flags::SERIAL_CONSISTENCY;
    }
    if batch.timestamp.is_some() {
        flags |= batch_flags::DEFAULT_TIMESTAMP;
    }
    put_u8(out, flags);
    if let Some(serial) = batch.serial_consistency {
        put_u16(out, serial as u16);
    }
    if let Some(ts) = batch.timestamp {
        put_i64(out, ts);
    }
    Ok(())
}

fn read_batch(r: &mut Reader<'_>) -> Result<Batch, ProtocolError> {
    let kind = match r.u8()? {
        0 => BatchKind::Logged,
        1 => BatchKind::Unlogged,
        2 => BatchKind::Counter,
        other => return Err(invalid(format!("unknown batch type {other}"))),
    };
    let n = r.u16()? as usize;
    let mut statements = Vec::with_capacity(n.min(r.remaining() / 3));
    for _ in 0..n {
        let statement = match r.u8()? {
            0 => BatchStatementKind::Query(r.long_string()?.to_owned()),
            1 => BatchStatementKind::Prepared(r.short_bytes()?.to_vec()),
            other => return Err(invalid(format!("unknown batch statement kind {other}"))),
        };
        let (values, _) = read_values(r, false)?;
        statements.push(BatchStatement { statement, values });
    }
    let consistency = Consistency::from_u16(r.u16()?)?;
    let flags = r.u8()?;
    if flags & batch_flags::VALUE_NAMES != 0 {
        // The flag comes after the values it describes; no driver sends it.
        return Err(invalid("named values in BATCH are not supported"));
    }
    let serial_consistency = if flags & batch_flags::SERIAL_CONSISTENCY != 0 {
        Some(Consistency::from_u16(r.u16()?)?)
    } else {
        None
    };
    let timestamp = if flags & batch_flags::DEFAULT_TIMESTAMP != 0 {
        Some(r.i64()?)
    } else {
        None
    };
    Ok(Batch {
        kind,
        statements,
        consistency,
        serial_consistency,
        timestamp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(request: Request) {
        let mut body = Vec::new();
        request.write_body(&mut body).unwrap();
        assert_eq!(
            Request::read_body(request.opcode(), &body).unwrap(),
            request
        );
        for cut in 0..body.len() {
            let _ = Request::read_body(request.opcode(), &body[..cut]);
        }
    }

    #[test]
    fn requests_round_trip() {
        round_trip(Request::Startup {
            options: vec![("CQL_VERSION".into(), "3.0.0".into())],
        });
        round_trip(Request::Options);
        round_trip(Request::AuthResponse {
            token: Some(b"\0user\0pass".to_vec()),
        });
        round_trip(Request::Register {
            events: vec!["SCHEMA_CHANGE".into()],
        });
        round_trip(Request::Prepare {
            query: "SELECT * FROM t WHERE k = ?".into(),
        });
        round_trip(Request::Query {
            query: "SELECT 1".into(),
            params: QueryParameters {
                consistency: Consistency::LocalQuorum,
                values: vec![Value::Set(vec![1]), Value::Null, Value::Unset],
                value_names: Some(vec!["a".into(), "b".into(), "c".into()]),
                skip_metadata: true,
                page_size: Some(100),
                paging_state: Some(vec![9, 9]),
                serial_consistency: Some(Consistency::LocalSerial),
                timestamp: Some(42),
            },
        });
        round_trip(Request::Execute {
            id: vec![1, 2, 3],
            params: QueryParameters::default(),
        });
        round_trip(Request::Batch(Batch {
            kind: BatchKind::Unlogged,
            statements: vec![
                BatchStatement {
                    statement: BatchStatementKind::Query("INSERT".into()),
                    values: vec![],
                },
                BatchStatement {
                    statement: BatchStatementKind::Prepared(vec![7; 16]),
                    values: vec![Value::Set(vec![0, 0, 0, 1]), Value::Null],
                },
            ],
            consistency: Consistency::Quorum,
            serial_consistency: None,
            timestamp: Some(5),
        }));
    }

    #[test]
    fn bad_consistency_and_opcode_are_errors() {
        let mut body = Vec::new();
        put_long_string(&mut body, "q").unwrap();
        put_u16(&mut body, 99);
        put_u8(&mut body, 0);
        assert!(Request::read_body(Opcode::Query, &body).is_err());
        assert!(Request::read_body(Opcode::Result, &[]).is_err());
    }
}
