//! Parse errors with a source position, so the server can report a useful
//! CQL `SyntaxError` (0x2000) like Cassandra's `line 1:17 ...` messages.

use std::fmt;

/// A lexing or parsing failure.
///
/// `Display` renders it the way Cassandra/Scylla do:
/// `line 1:17 mismatched input 'FORM' expecting FROM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Human-readable description without the position prefix.
    pub message: String,
    /// 1-based line of the offending input.
    pub line: usize,
    /// 0-based column (in characters) within `line`, as ANTLR reports it.
    pub column: usize,
    /// Byte offset of the offending input in the parsed text.
    pub offset: usize,
}

impl ParseError {
    /// Builds an error located at byte `offset` of `src`.
    pub(crate) fn at(src: &str, offset: usize, message: impl Into<String>) -> Self {
        let mut offset = offset.min(src.len());
        // Offsets always come from token boundaries, but stay defensive: slicing
        // off a char boundary would panic.
        while !src.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &src[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count();
        ParseError {
            message: message.into(),
            line,
            column,
            offset,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}:{} {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for ParseError {}
