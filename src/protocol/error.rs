//! The one error type of the pure codec: what was wrong with the bytes.

use std::fmt;

/// A frame or value that does not follow the CQL v4 specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// The input ended before a field it announced.
    Truncated { needed: usize, available: usize },
    /// A length, count, tag or enum value that is out of range.
    Invalid(String),
    /// A `[string]` that is not UTF-8.
    BadUtf8,
    /// An opcode this protocol version does not define.
    UnknownOpcode(u8),
    /// The frame's version byte is not one we speak.
    UnsupportedVersion(u8),
    /// A compressed body that does not decompress.
    Compression(String),
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::Truncated { needed, available } => {
                write!(
                    f,
                    "truncated input: needed {needed} bytes, {available} available"
                )
            }
            ProtocolError::Invalid(what) => write!(f, "invalid frame: {what}"),
            ProtocolError::BadUtf8 => write!(f, "invalid UTF-8 in string"),
            ProtocolError::UnknownOpcode(op) => write!(f, "unknown opcode 0x{op:02x}"),
            ProtocolError::UnsupportedVersion(v) => {
                write!(f, "Invalid or unsupported protocol version: {v}")
            }
            ProtocolError::Compression(what) => write!(f, "compression error: {what}"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Shorthand for an [`ProtocolError::Invalid`] with a formatted message.
pub(crate) fn invalid(what: impl Into<String>) -> ProtocolError {
    ProtocolError::Invalid(what.into())
}
