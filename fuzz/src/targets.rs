//! What one input drives: its first byte picks the decoder, the rest is
//! that decoder's input. Every decoded result is walked further, as the
//! library walks it (cells decoded by their column types, compound cells
//! split, tablet payloads parsed), so the value decoders see real metadata.
//!
//! Each run returns a signature of what happened (which decoder, which
//! outcome, which error class), which the fuzzer uses to keep inputs that
//! reached something new.

use std::hash::{Hash, Hasher};

use scylla_shard::protocol::frame::{
    decode_request, decode_response, flags, FrameHeader, HEADER_LEN,
};
use scylla_shard::protocol::response::{ResultBody, Rows};
use scylla_shard::protocol::tablets_payload::TabletRoutingInfo;
use scylla_shard::protocol::types::ColumnType;
use scylla_shard::protocol::value::{split_cell, CqlValue};
use scylla_shard::protocol::wire::Reader;
use scylla_shard::protocol::{Compression, ProtocolError, Response};

/// Selector values (the input's first byte, modulo [`TARGETS`]).
pub const RESPONSE_FRAME: u8 = 0;
pub const REQUEST_FRAME: u8 = 1;
/// `[option]` type bytes, then one value of that type.
pub const TYPED_VALUE: u8 = 2;
pub const TABLETS_PAYLOAD: u8 = 3;
pub const TARGETS: u8 = 4;

/// Runs the decoder `input` selects; returns its outcome signature.
pub fn run(input: &[u8]) -> u64 {
    let mut signature = Signature::default();
    let Some((&selector, data)) = input.split_first() else {
        return 0;
    };
    let selector = selector % TARGETS;
    signature.add(selector);
    match selector {
        RESPONSE_FRAME => response_frame(data, &mut signature),
        REQUEST_FRAME => request_frame(data, &mut signature),
        TYPED_VALUE => typed_value(data, &mut signature),
        _ => signature.add_result(
            TabletRoutingInfo::decode(data)
                .map(|_| ())
                .map_err(|e| e.to_string()),
        ),
    }
    signature.finish()
}

/// The set of outcome classes an input reached, order and repetitions ignored, so that inputs are told
/// apart by what they reached rather than by how many cells they had.
#[derive(Default)]
struct Signature(Vec<u64>);

impl Signature {
    fn add(&mut self, v: impl Hash) {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        v.hash(&mut h);
        self.0.push(h.finish());
    }

    /// An error's class: its message up to the first number or quote.
    fn add_error(&mut self, message: &str) {
        let end = message
            .find(|c: char| c.is_ascii_digit() || c == '"' || c == '\'')
            .unwrap_or(message.len());
        self.add(&message[..end]);
    }

    fn add_result(&mut self, r: Result<(), String>) {
        match r {
            Ok(()) => self.add("ok"),
            Err(e) => self.add_error(&e),
        }
    }

    fn finish(mut self) -> u64 {
        self.0.sort_unstable();
        self.0.dedup();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.0.hash(&mut h);
        h.finish()
    }
}

/// Header from the first 9 bytes, body from what follows (cut at the
/// declared length, as the connection's reader does).
fn split_frame(data: &[u8]) -> Option<(FrameHeader, &[u8])> {
    let head: [u8; HEADER_LEN] = data.get(..HEADER_LEN)?.try_into().ok()?;
    let header = FrameHeader::parse(&head).ok()?;
    let body = &data[HEADER_LEN..];
    Some((header, &body[..header.body_len.min(body.len())]))
}

/// Every frame is decoded without compression; a compressed one also
/// with lz4 negotiated.
fn compressions(header: &FrameHeader) -> &'static [Option<Compression>] {
    if header.flags & flags::COMPRESSION != 0 {
        &[None, Some(Compression::Lz4)]
    } else {
        &[None]
    }
}

fn response_frame(data: &[u8], signature: &mut Signature) {
    let Some((header, body)) = split_frame(data) else {
        return signature.add("no header");
    };
    for &compression in compressions(&header) {
        match decode_response(&header, body, compression) {
            Ok((extensions, response)) => {
                signature.add(response.opcode() as u8);
                if let Some(payload) = &extensions.custom_payload {
                    for value in payload.values() {
                        signature.add_result(
                            TabletRoutingInfo::decode(value)
                                .map(|_| ())
                                .map_err(|e| e.to_string()),
                        );
                    }
                }
                if let Response::Result(ResultBody::Rows(rows)) = &response {
                    walk_rows(rows, signature);
                }
            }
            Err(e) => signature.add_error(&e.to_string()),
        }
    }
}

fn request_frame(data: &[u8], signature: &mut Signature) {
    let Some((header, body)) = split_frame(data) else {
        return signature.add("no header");
    };
    for &compression in compressions(&header) {
        match decode_request(&header, body, compression) {
            Ok((_, request)) => signature.add(request.opcode() as u8),
            Err(e) => signature.add_error(&e.to_string()),
        }
    }
}

fn typed_value(data: &[u8], signature: &mut Signature) {
    let mut reader = Reader::new(data);
    match ColumnType::read(&mut reader) {
        Ok(ty) => walk_value(&ty, Some(reader.rest()), signature),
        Err(e) => signature.add_error(&e.to_string()),
    }
}

/// Every cell by its column's type. (The one place that knows how rows
/// hold their cells.)
fn walk_rows(rows: &Rows, signature: &mut Signature) {
    for row in 0..rows.len() {
        for (cell, column) in rows.row(row).zip(&rows.metadata.columns) {
            walk_value(&column.ty, cell, signature);
        }
    }
}

/// Decodes a cell and splits it into its parts, down to the leaves.
fn walk_value(ty: &ColumnType, cell: Option<&[u8]>, signature: &mut Signature) {
    let Some(bytes) = cell else {
        return signature.add("null");
    };
    let decoded: Result<CqlValue, ProtocolError> = CqlValue::deserialize(ty, bytes);
    signature.add_result(decoded.map(|_| ()).map_err(|e| e.to_string()));
    match split_cell(ty, bytes) {
        Ok(parts) => {
            for (part_ty, part) in parts {
                walk_value(part_ty, part, signature);
            }
        }
        Err(e) => signature.add_error(&e.to_string()),
    }
}
