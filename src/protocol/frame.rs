//! Frames: the 9-byte v4 header, body extensions (tracing id, warnings,
//! custom payload) and compression, around request and response bodies.

use std::borrow::Cow;
use std::collections::HashMap;

use bytes::Bytes;

use super::compression::Compression;
use super::error::{invalid, ProtocolError};
use super::request::Request;
use super::response::Response;
use super::wire::{put_bytes_map, put_string_list, Reader};

pub const HEADER_LEN: usize = 9;
/// The protocol version this crate speaks.
pub const VERSION: u8 = 4;
/// Direction bit of the version byte: set on responses.
pub const RESPONSE_BIT: u8 = 0x80;
/// Largest frame body accepted (the protocol's own limit is 256 MiB).
pub const MAX_BODY_LEN: usize = 256 * 1024 * 1024;
/// Stream id of server-pushed events.
pub const EVENT_STREAM: i16 = -1;

/// Header flags.
pub mod flags {
    pub const COMPRESSION: u8 = 0x01;
    pub const TRACING: u8 = 0x02;
    pub const CUSTOM_PAYLOAD: u8 = 0x04;
    pub const WARNING: u8 = 0x08;
    pub const BETA: u8 = 0x10;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Opcode {
    Error = 0x00,
    Startup = 0x01,
    Ready = 0x02,
    Authenticate = 0x03,
    Options = 0x05,
    Supported = 0x06,
    Query = 0x07,
    Result = 0x08,
    Prepare = 0x09,
    Execute = 0x0A,
    Register = 0x0B,
    Event = 0x0C,
    Batch = 0x0D,
    AuthChallenge = 0x0E,
    AuthResponse = 0x0F,
    AuthSuccess = 0x10,
}

impl Opcode {
    pub fn from_u8(v: u8) -> Result<Opcode, ProtocolError> {
        use Opcode::*;
        Ok(match v {
            0x00 => Error,
            0x01 => Startup,
            0x02 => Ready,
            0x03 => Authenticate,
            0x05 => Options,
            0x06 => Supported,
            0x07 => Query,
            0x08 => Result,
            0x09 => Prepare,
            0x0A => Execute,
            0x0B => Register,
            0x0C => Event,
            0x0D => Batch,
            0x0E => AuthChallenge,
            0x0F => AuthResponse,
            0x10 => AuthSuccess,
            other => return Err(ProtocolError::UnknownOpcode(other)),
        })
    }
}

/// A parsed header. The version and opcode are kept raw so that a server
/// can answer a wrong version or opcode on the stream it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub version: u8,
    pub flags: u8,
    pub stream: i16,
    pub opcode: u8,
    pub body_len: usize,
}

impl FrameHeader {
    /// Parses the header; checks only the body length, so callers decide how
    /// to answer a wrong version.
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Result<FrameHeader, ProtocolError> {
        let length = i32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]);
        let body_len = usize::try_from(length)
            .ok()
            .filter(|len| *len <= MAX_BODY_LEN)
            .ok_or_else(|| invalid(format!("frame body length {length}")))?;
        Ok(FrameHeader {
            version: bytes[0],
            flags: bytes[1],
            stream: i16::from_be_bytes([bytes[2], bytes[3]]),
            opcode: bytes[4],
            body_len,
        })
    }

    /// The protocol version without the direction bit.
    pub fn protocol_version(&self) -> u8 {
        self.version & !RESPONSE_BIT
    }

    pub fn is_response(&self) -> bool {
        self.version & RESPONSE_BIT != 0
    }

    fn write(&self, out: &mut [u8]) {
        out[0] = self.version;
        out[1] = self.flags;
        out[2..4].copy_from_slice(&self.stream.to_be_bytes());
        out[4] = self.opcode;
        out[5..9].copy_from_slice(&(self.body_len as u32).to_be_bytes());
    }
}

/// Extensions that precede a response body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResponseExtensions {
    pub tracing_id: Option<[u8; 16]>,
    pub warnings: Vec<String>,
    pub custom_payload: Option<HashMap<String, Vec<u8>>>,
}

/// Extensions that precede a request body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestExtensions {
    pub tracing: bool,
    pub custom_payload: Option<HashMap<String, Vec<u8>>>,
}

/// Assembles header + (maybe compressed) body. `body` holds the extensions
/// and message bytes.
fn assemble(
    version: u8,
    mut flags: u8,
    stream: i16,
    opcode: Opcode,
    body: &[u8],
    compression: Option<Compression>,
) -> Result<Vec<u8>, ProtocolError> {
    let mut frame = vec![0u8; HEADER_LEN];
    match compression {
        Some(c) => {
            flags |= flags::COMPRESSION;
            c.compress(body, &mut frame);
        }
        None => frame.extend_from_slice(body),
    }
    let body_len = frame.len() - HEADER_LEN;
    if body_len > MAX_BODY_LEN {
        return Err(invalid(format!(
            "frame body of {body_len} bytes is too large"
        )));
    }
    FrameHeader {
        version,
        flags,
        stream,
        opcode: opcode as u8,
        body_len,
    }
    .write(&mut frame[..HEADER_LEN]);
    Ok(frame)
}

/// Encodes a whole request frame. `compression` applies only after STARTUP.
pub fn encode_request(
    stream: i16,
    request: &Request,
    extensions: &RequestExtensions,
    compression: Option<Compression>,
) -> Result<Vec<u8>, ProtocolError> {
    let mut body = Vec::new();
    let mut flags = 0;
    if extensions.tracing {
        flags |= flags::TRACING;
    }
    if let Some(payload) = &extensions.custom_payload {
        flags |= flags::CUSTOM_PAYLOAD;
        put_bytes_map(&mut body, payload)?;
    }
    request.write_body(&mut body)?;
    assemble(VERSION, flags, stream, request.opcode(), &body, compression)
}

/// Encodes a whole response frame.
pub fn encode_response(
    stream: i16,
    response: &Response,
    extensions: &ResponseExtensions,
    compression: Option<Compression>,
) -> Result<Vec<u8>, ProtocolError> {
    let mut body = Vec::new();
    let flags = write_response_extensions(extensions, &mut body)?;
    response.write_body(&mut body)?;
    assemble(
        VERSION | RESPONSE_BIT,
        flags,
        stream,
        response.opcode(),
        &body,
        compression,
    )
}

/// Inflates the body if the header says it is compressed.
fn plain_body<'a>(
    header: &FrameHeader,
    body: &'a [u8],
    compression: Option<Compression>,
) -> Result<Cow<'a, [u8]>, ProtocolError> {
    if header.flags & flags::COMPRESSION == 0 {
        return Ok(Cow::Borrowed(body));
    }
    match compression {
        Some(c) => Ok(Cow::Owned(c.decompress(body)?)),
        None => Err(invalid("compressed frame without negotiated compression")),
    }
}

/// Decodes a request frame's body (after the header).
pub fn decode_request(
    header: &FrameHeader,
    body: &[u8],
    compression: Option<Compression>,
) -> Result<(RequestExtensions, Request), ProtocolError> {
    let opcode = Opcode::from_u8(header.opcode)?;
    let body = plain_body(header, body, compression)?;
    let mut r = Reader::new(&body);
    let mut extensions = RequestExtensions {
        tracing: header.flags & flags::TRACING != 0,
        custom_payload: None,
    };
    if header.flags & flags::CUSTOM_PAYLOAD != 0 {
        extensions.custom_payload = Some(r.bytes_map()?);
    }
    let request = Request::read_body(opcode, r.rest())?;
    Ok((extensions, request))
}

/// Decodes a response frame's body (after the header).
pub fn decode_response(
    header: &FrameHeader,
    body: &[u8],
    compression: Option<Compression>,
) -> Result<(ResponseExtensions, Response), ProtocolError> {
    let body = plain_body(header, body, compression)?;
    read_response(header, Reader::new(&body))
}

/// As `decode_response`, for a body that large results may keep parts of
/// instead of copying them.
pub fn decode_response_shared(
    header: &FrameHeader,
    body: &Bytes,
    compression: Option<Compression>,
) -> Result<(ResponseExtensions, Response), ProtocolError> {
    match plain_body(header, body, compression)? {
        Cow::Borrowed(_) => read_response(header, Reader::over(body)),
        Cow::Owned(inflated) => read_response(header, Reader::over(&Bytes::from(inflated))),
    }
}

fn read_response(
    header: &FrameHeader,
    mut r: Reader<'_>,
) -> Result<(ResponseExtensions, Response), ProtocolError> {
    let opcode = Opcode::from_u8(header.opcode)?;
    let extensions = read_extensions(header.flags, &mut r)?;
    let response = Response::read(opcode, r)?;
    Ok((extensions, response))
}

/// The extensions at the start of an uncompressed response body, and where
/// the message starts (for callers that pass the message on undecoded).
pub fn read_response_extensions(
    frame_flags: u8,
    body: &[u8],
) -> Result<(ResponseExtensions, usize), ProtocolError> {
    let mut r = Reader::new(body);
    let extensions = read_extensions(frame_flags, &mut r)?;
    Ok((extensions, body.len() - r.remaining()))
}

fn read_extensions(
    frame_flags: u8,
    r: &mut Reader<'_>,
) -> Result<ResponseExtensions, ProtocolError> {
    let mut extensions = ResponseExtensions::default();
    if frame_flags & flags::TRACING != 0 {
        extensions.tracing_id = Some(r.uuid()?);
    }
    if frame_flags & flags::WARNING != 0 {
        extensions.warnings = r.string_list()?;
    }
    if frame_flags & flags::CUSTOM_PAYLOAD != 0 {
        extensions.custom_payload = Some(r.bytes_map()?);
    }
    Ok(extensions)
}

/// Writes response extensions (the flags they need are returned), as
/// they precede a response body.
pub fn write_response_extensions(
    extensions: &ResponseExtensions,
    out: &mut Vec<u8>,
) -> Result<u8, ProtocolError> {
    let mut frame_flags = 0;
    if let Some(id) = &extensions.tracing_id {
        frame_flags |= flags::TRACING;
        out.extend_from_slice(id);
    }
    if !extensions.warnings.is_empty() {
        frame_flags |= flags::WARNING;
        put_string_list(out, &extensions.warnings)?;
    }
    if let Some(payload) = &extensions.custom_payload {
        frame_flags |= flags::CUSTOM_PAYLOAD;
        put_bytes_map(out, payload)?;
    }
    Ok(frame_flags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::request::QueryParameters;
    use crate::protocol::response::ResultBody;

    fn split(frame: &[u8]) -> (FrameHeader, &[u8]) {
        let header = FrameHeader::parse(frame[..HEADER_LEN].try_into().unwrap()).unwrap();
        assert_eq!(header.body_len, frame.len() - HEADER_LEN);
        (header, &frame[HEADER_LEN..])
    }

    #[test]
    fn request_frames_round_trip_with_and_without_lz4() {
        let request = Request::Query {
            query: "SELECT * FROM system.local WHERE key='local'".repeat(10),
            params: QueryParameters::default(),
        };
        for compression in [None, Some(Compression::Lz4)] {
            let frame = encode_request(7, &request, &Default::default(), compression).unwrap();
            let (header, body) = split(&frame);
            assert_eq!((header.version, header.stream), (4, 7));
            let (_, decoded) = decode_request(&header, body, compression).unwrap();
            assert_eq!(decoded, request);
        }
    }

    #[test]
    fn response_extensions_round_trip() {
        let mut payload = HashMap::new();
        payload.insert("tablets-routing-v1".to_owned(), vec![1, 2, 3]);
        let extensions = ResponseExtensions {
            tracing_id: Some([5; 16]),
            warnings: vec!["careful".into()],
            custom_payload: Some(payload),
        };
        let response = Response::Result(ResultBody::Void);
        let frame = encode_response(-1, &response, &extensions, Some(Compression::Lz4)).unwrap();
        let (header, body) = split(&frame);
        assert!(header.is_response());
        assert_eq!(header.stream, -1);
        let (ext, decoded) = decode_response(&header, body, Some(Compression::Lz4)).unwrap();
        assert_eq!((ext, decoded), (extensions, response));
    }

    #[test]
    fn bad_headers_and_bodies_are_errors() {
        let mut header = [4u8, 0, 0, 1, 0x07, 0xff, 0xff, 0xff, 0xff];
        assert!(FrameHeader::parse(&header).is_err());
        header[5..].copy_from_slice(&[0, 0, 0, 0]);
        header[4] = 0x04;
        let parsed = FrameHeader::parse(&header).unwrap();
        assert_eq!(
            decode_request(&parsed, &[], None),
            Err(ProtocolError::UnknownOpcode(4))
        );
        header[1] = flags::COMPRESSION;
        header[4] = Opcode::Options as u8;
        let parsed = FrameHeader::parse(&header).unwrap();
        assert!(decode_request(&parsed, &[], None).is_err());
    }
}
