//! Response frames built byte by byte, so a case can say exactly what is
//! wrong with them (and so big ones cost one buffer, made before the case
//! is measured). Only the notations the cases need.

use scylla_shard::protocol::frame::{flags, Opcode, HEADER_LEN, RESPONSE_BIT, VERSION};

/// The version byte of a well-formed v4 response.
pub const RESPONSE_VERSION: u8 = VERSION | RESPONSE_BIT;

/// Type ids of the `[option]` notation.
pub mod ty {
    pub const INT: u16 = 0x0009;
    pub const UUID: u16 = 0x000C;
    pub const TEXT: u16 = 0x000D;
    pub const INET: u16 = 0x0010;
    pub const LIST: u16 = 0x0020;
    pub const MAP: u16 = 0x0021;
    pub const SET: u16 = 0x0022;
}

/// Result kinds and Rows metadata flags.
pub const RESULT_ROWS: i32 = 2;
pub const RESULT_PREPARED: i32 = 4;
pub const GLOBAL_TABLES_SPEC: i32 = 0x0001;

/// A message body under construction.
#[derive(Debug, Default, Clone)]
pub struct Body(pub Vec<u8>);

impl Body {
    pub fn new() -> Body {
        Body(Vec::new())
    }

    pub fn with_capacity(n: usize) -> Body {
        Body(Vec::with_capacity(n))
    }

    pub fn int(mut self, v: i32) -> Body {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn short(mut self, v: u16) -> Body {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// `[string]` of arbitrary bytes (they need not be UTF-8).
    pub fn string(mut self, s: &[u8]) -> Body {
        let len = u16::try_from(s.len()).expect("[string] of at most 65535 bytes");
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(s);
        self
    }

    /// `[bytes]`; `None` is NULL.
    pub fn bytes(mut self, b: Option<&[u8]>) -> Body {
        match b {
            None => self.0.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(b) => {
                self.0.extend_from_slice(&(b.len() as i32).to_be_bytes());
                self.0.extend_from_slice(b);
            }
        }
        self
    }

    pub fn raw(mut self, b: &[u8]) -> Body {
        self.0.extend_from_slice(b);
        self
    }

    /// Rows metadata: flags, column count, then the columns (`(name,
    /// type bytes)`), all in one global table spec.
    pub fn rows_metadata(
        self,
        keyspace: &[u8],
        table: &[u8],
        columns: &[(&[u8], Vec<u8>)],
    ) -> Body {
        let mut body = self
            .int(GLOBAL_TABLES_SPEC)
            .int(columns.len() as i32)
            .string(keyspace)
            .string(table);
        for (name, ty) in columns {
            body = body.string(name).raw(ty);
        }
        body
    }
}

/// `[option]` bytes of a simple type.
pub fn simple(id: u16) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

/// `[option]` bytes of `collection<element>` (list or set).
pub fn collection(id: u16, element: Vec<u8>) -> Vec<u8> {
    let mut out = simple(id);
    out.extend_from_slice(&element);
    out
}

/// The 9-byte header with a declared body length that may lie.
pub fn header(
    version: u8,
    frame_flags: u8,
    stream: i16,
    opcode: u8,
    length: i32,
) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0] = version;
    h[1] = frame_flags;
    h[2..4].copy_from_slice(&stream.to_be_bytes());
    h[4] = opcode;
    h[5..9].copy_from_slice(&length.to_be_bytes());
    h
}

/// A well-formed response frame around `body`.
pub fn frame(stream: i16, opcode: Opcode, body: &[u8]) -> Vec<u8> {
    let mut out = header(RESPONSE_VERSION, 0, stream, opcode as u8, body.len() as i32).to_vec();
    out.extend_from_slice(body);
    out
}

/// A RESULT Rows body with one `int` column `v` of `ks.t`, and `rows`
/// cells given by `cell`.
pub fn int_rows(rows: usize, cell: impl Fn(usize) -> Option<i32>) -> Body {
    let mut body = Body::with_capacity(64 + rows * 8)
        .int(RESULT_ROWS)
        .rows_metadata(b"ks", b"t", &[(b"v", simple(ty::INT))])
        .int(rows as i32);
    for i in 0..rows {
        body = match cell(i) {
            Some(v) => body.bytes(Some(&v.to_be_bytes())),
            None => body.bytes(None),
        };
    }
    body
}

/// The flag a frame header sets for a custom payload.
pub const CUSTOM_PAYLOAD: u8 = flags::CUSTOM_PAYLOAD;
/// The flag a frame header sets for a compressed body.
pub const COMPRESSION: u8 = flags::COMPRESSION;
