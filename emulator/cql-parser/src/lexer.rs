//! Tokenizer.
//!
//! Works on `&str` with byte offsets that always sit on char boundaries, so
//! slicing can never panic; every malformed input becomes a [`ParseError`].
//! Signs are not part of numbers here: `-` is its own token and the parser
//! folds it into a following number, which keeps `c = c - 1` unambiguous.

use crate::ast::Duration;
use crate::error::ParseError;

/// Token kinds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// Unquoted identifier or keyword, lowercased.
    Word(String),
    /// `"Quoted"` identifier, case preserved, `""` unescaped.
    QuotedIdent(String),
    /// `'string'` or `$$string$$`, unescaped.
    Str(String),
    /// Unsigned integer digits.
    Integer(String),
    /// Unsigned floating-point text.
    Float(String),
    /// `0x...` blob.
    Hex(Vec<u8>),
    /// Unquoted UUID.
    Uuid([u8; 16]),
    /// Unsigned duration.
    Duration(Duration),
    QMark,
    Colon,
    Comma,
    Semicolon,
    Dot,
    Star,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    Plus,
    Minus,
    Eof,
}

/// A token with its byte span in the source.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub kind: Tok,
    pub start: usize,
    pub end: usize,
}

/// Splits `src` into tokens, ending with a `Tok::Eof` token.
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, ParseError> {
    Lexer { src, pos: 0 }.run()
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Duration units of the compact form, longest first so `mo`/`ms` win
/// over `m`. The rank enforces Cassandra's largest-to-smallest order.
const DURATION_UNITS: &[(&str, usize)] = &[
    ("mo", 1),
    ("ms", 7),
    ("us", 8),
    ("\u{b5}s", 8),
    ("\u{3bc}s", 8),
    ("ns", 9),
    ("y", 0),
    ("w", 2),
    ("d", 3),
    ("h", 4),
    ("m", 5),
    ("s", 6),
];

/// Accumulates duration components with overflow checks.
#[derive(Default)]
struct DurationBuilder {
    months: i64,
    days: i64,
    nanos: i64,
}

impl DurationBuilder {
    /// Adds `n` of the unit with the given rank (see `DURATION_UNITS`).
    fn add(&mut self, rank: usize, n: i64) -> Option<()> {
        const NANOS: [i64; 6] = [
            3_600_000_000_000,
            60_000_000_000,
            1_000_000_000,
            1_000_000,
            1_000,
            1,
        ];
        match rank {
            0 => self.months = self.months.checked_add(n.checked_mul(12)?)?,
            1 => self.months = self.months.checked_add(n)?,
            2 => self.days = self.days.checked_add(n.checked_mul(7)?)?,
            3 => self.days = self.days.checked_add(n)?,
            _ => {
                let unit = *NANOS.get(rank - 4)?;
                self.nanos = self.nanos.checked_add(n.checked_mul(unit)?)?;
            }
        }
        Some(())
    }

    fn finish(self) -> Option<Duration> {
        Some(Duration {
            months: i32::try_from(self.months).ok()?,
            days: i32::try_from(self.days).ok()?,
            nanoseconds: self.nanos,
        })
    }
}

impl<'a> Lexer<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.src.as_bytes()
    }

    fn byte_at(&self, i: usize) -> Option<u8> {
        self.bytes().get(i).copied()
    }

    fn peek_char(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn error(&self, offset: usize, msg: impl Into<String>) -> ParseError {
        ParseError::at(self.src, offset, msg)
    }

    fn eat_digits(&mut self) {
        while self.byte_at(self.pos).is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    /// Whether the next char would glue onto the previous token (a letter,
    /// digit, `_` or any non-ASCII char), making e.g. `12abc` malformed.
    fn at_word_char(&self) -> bool {
        self.peek_char()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii())
    }

    fn run(mut self) -> Result<Vec<Token>, ParseError> {
        let mut out = Vec::new();
        loop {
            self.skip_trivia()?;
            let start = self.pos;
            let Some(c) = self.peek_char() else {
                out.push(Token {
                    kind: Tok::Eof,
                    start,
                    end: start,
                });
                return Ok(out);
            };
            let kind = self.token(c)?;
            out.push(Token {
                kind,
                start,
                end: self.pos,
            });
        }
    }

    /// Skips whitespace and the three comment forms.
    fn skip_trivia(&mut self) -> Result<(), ParseError> {
        loop {
            let rest = &self.src[self.pos..];
            if let Some(c) = rest.chars().next().filter(|c| c.is_whitespace()) {
                self.pos += c.len_utf8();
            } else if rest.starts_with("--") || rest.starts_with("//") {
                self.pos += rest.find('\n').unwrap_or(rest.len());
            } else if let Some(body) = rest.strip_prefix("/*") {
                match body.find("*/") {
                    Some(i) => self.pos += i + 4,
                    None => return Err(self.error(self.pos, "unterminated comment")),
                }
            } else {
                return Ok(());
            }
        }
    }

    fn token(&mut self, c: char) -> Result<Tok, ParseError> {
        if c.is_ascii_hexdigit() {
            if let Some(uuid) = self.uuid() {
                return Ok(Tok::Uuid(uuid));
            }
        }
        if c.is_ascii_digit() {
            return self.number();
        }
        if c.is_ascii_alphabetic() {
            return self.word();
        }
        let start = self.pos;
        let next = self.byte_at(start + 1);
        let (tok, len) = match c {
            '"' => return self.quoted('"').map(Tok::QuotedIdent),
            '\'' => return self.quoted('\'').map(Tok::Str),
            '$' if next == Some(b'$') => return self.dollar_string(),
            '?' => (Tok::QMark, 1),
            ':' => (Tok::Colon, 1),
            ',' => (Tok::Comma, 1),
            ';' => (Tok::Semicolon, 1),
            '.' => (Tok::Dot, 1),
            '*' => (Tok::Star, 1),
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            '[' => (Tok::LBracket, 1),
            ']' => (Tok::RBracket, 1),
            '{' => (Tok::LBrace, 1),
            '}' => (Tok::RBrace, 1),
            '=' => (Tok::Eq, 1),
            '+' => (Tok::Plus, 1),
            '-' => (Tok::Minus, 1),
            '!' if next == Some(b'=') => (Tok::Neq, 2),
            '<' if next == Some(b'=') => (Tok::Lte, 2),
            '<' => (Tok::Lt, 1),
            '>' if next == Some(b'=') => (Tok::Gte, 2),
            '>' => (Tok::Gt, 1),
            _ => return Err(self.error(start, format!("invalid character '{}'", c.escape_debug()))),
        };
        self.pos += len;
        Ok(tok)
    }

    /// Recognises an unquoted `8-4-4-4-12` hex UUID at the current position.
    fn uuid(&mut self) -> Option<[u8; 16]> {
        let bytes = self.bytes().get(self.pos..self.pos + 36)?;
        if self.byte_at(self.pos + 36).is_some_and(is_ident_byte) {
            return None;
        }
        let mut out = [0u8; 16];
        let mut nibbles = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if b != b'-' {
                    return None;
                }
                continue;
            }
            let v = hex_value(b)?;
            out[nibbles / 2] |= if nibbles % 2 == 0 { v << 4 } else { v };
            nibbles += 1;
        }
        self.pos += 36;
        Some(out)
    }

    /// Integers, floats, `0x` blobs and compact durations (`1h30m`).
    fn number(&mut self) -> Result<Tok, ParseError> {
        let start = self.pos;
        if self.byte_at(start) == Some(b'0') && matches!(self.byte_at(start + 1), Some(b'x' | b'X'))
        {
            return self.hex_blob();
        }
        self.eat_digits();
        let mut is_float = false;
        if self.byte_at(self.pos) == Some(b'.') {
            is_float = true;
            self.pos += 1;
            self.eat_digits();
        }
        if matches!(self.byte_at(self.pos), Some(b'e' | b'E')) {
            let mut p = self.pos + 1;
            if matches!(self.byte_at(p), Some(b'+' | b'-')) {
                p += 1;
            }
            if self.byte_at(p).is_some_and(|b| b.is_ascii_digit()) {
                is_float = true;
                self.pos = p;
                self.eat_digits();
            }
        }
        let text = self.src[start..self.pos].to_string();
        if is_float {
            if self.at_word_char() {
                return Err(
                    self.error(start, format!("invalid number '{}'", self.word_text(start)))
                );
            }
            return Ok(Tok::Float(text));
        }
        if self.at_word_char() {
            self.pos = start;
            return self.compact_duration();
        }
        Ok(Tok::Integer(text))
    }

    /// The malformed word starting at `start`, for error messages.
    fn word_text(&self, start: usize) -> &'a str {
        let src = self.src;
        let rest = &src[start..];
        let len = rest
            .char_indices()
            .find(|&(_, c)| !(c.is_alphanumeric() || c == '_' || c == '.'))
            .map_or(rest.len(), |(i, _)| i);
        &rest[..len]
    }

    fn hex_blob(&mut self) -> Result<Tok, ParseError> {
        let start = self.pos;
        self.pos += 2;
        let digits_start = self.pos;
        while self.byte_at(self.pos).and_then(hex_value).is_some() {
            self.pos += 1;
        }
        if self.at_word_char() {
            return Err(self.error(
                start,
                format!("invalid blob literal '{}'", self.word_text(start)),
            ));
        }
        let digits = &self.bytes()[digits_start..self.pos];
        if digits.len() % 2 != 0 {
            return Err(self.error(start, "blob literal must have an even number of hex digits"));
        }
        let blob = digits
            .chunks(2)
            .map(|pair| {
                let hi = hex_value(pair[0]).unwrap_or(0);
                let lo = hex_value(pair[1]).unwrap_or(0);
                (hi << 4) | lo
            })
            .collect();
        Ok(Tok::Hex(blob))
    }

    /// `12mo3d`, `500ms`, `1y2mo3w4d5h6m7s8ms9us10ns`: number/unit pairs,
    /// largest unit first, each unit at most once.
    fn compact_duration(&mut self) -> Result<Tok, ParseError> {
        let start = self.pos;
        let mut builder = DurationBuilder::default();
        let mut next_rank = 0;
        loop {
            let num_start = self.pos;
            self.eat_digits();
            let n: i64 = self.src[num_start..self.pos]
                .parse()
                .map_err(|_| self.error(start, "duration component out of range"))?;
            let rest = &self.src[self.pos..];
            let Some(&(unit, rank)) = DURATION_UNITS.iter().find(|(u, _)| {
                rest.get(..u.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(u))
            }) else {
                return Err(self.error(
                    start,
                    format!("invalid number or duration '{}'", self.word_text(start)),
                ));
            };
            if rank < next_rank {
                return Err(self.error(
                    start,
                    format!(
                        "invalid duration '{}': units must be given once each, largest first",
                        self.word_text(start)
                    ),
                ));
            }
            next_rank = rank + 1;
            self.pos += unit.len();
            builder
                .add(rank, n)
                .ok_or_else(|| self.error(start, "duration out of range"))?;
            if !self.byte_at(self.pos).is_some_and(|b| b.is_ascii_digit()) {
                break;
            }
        }
        if self.at_word_char() {
            return Err(self.error(
                start,
                format!("invalid duration '{}'", self.word_text(start)),
            ));
        }
        builder
            .finish()
            .map(Tok::Duration)
            .ok_or_else(|| self.error(start, "duration out of range"))
    }

    /// Identifiers/keywords, plus ISO-8601 durations (`P1DT2H`, `P2W`,
    /// `P0001-02-03T04:05:06`) which also start with a letter.
    fn word(&mut self) -> Result<Tok, ParseError> {
        let start = self.pos;
        if let Some(result) = self.iso_alternative_duration() {
            return result;
        }
        while self.byte_at(self.pos).is_some_and(is_ident_byte) {
            self.pos += 1;
        }
        if self
            .peek_char()
            .is_some_and(|c| !c.is_ascii() && c.is_alphanumeric())
        {
            return Err(self.error(
                start,
                format!("invalid identifier '{}'", self.word_text(start)),
            ));
        }
        let text = &self.src[start..self.pos];
        match parse_iso_duration(text) {
            Some(Some(d)) => Ok(Tok::Duration(d)),
            Some(None) => Err(self.error(start, "duration out of range")),
            None => Ok(Tok::Word(text.to_ascii_lowercase())),
        }
    }

    /// `P0001-02-03T04:05:06` (ISO 8601 alternative format).
    fn iso_alternative_duration(&mut self) -> Option<Result<Tok, ParseError>> {
        const PATTERN: &[u8] = b"P0000-00-00T00:00:00";
        let bytes = self.bytes().get(self.pos..self.pos + PATTERN.len())?;
        let matches = bytes.iter().zip(PATTERN).all(|(&b, &p)| match p {
            b'0' => b.is_ascii_digit(),
            b'P' | b'T' => b.eq_ignore_ascii_case(&p),
            _ => b == p,
        });
        if !matches
            || self
                .byte_at(self.pos + PATTERN.len())
                .is_some_and(is_ident_byte)
        {
            return None;
        }
        let num = |range: std::ops::Range<usize>| -> i64 {
            bytes[range]
                .iter()
                .fold(0, |acc, &b| acc * 10 + i64::from(b - b'0'))
        };
        let mut builder = DurationBuilder::default();
        let parts = [
            (0, num(1..5)),
            (1, num(6..8)),
            (3, num(9..11)),
            (4, num(12..14)),
            (5, num(15..17)),
            (6, num(18..20)),
        ];
        let start = self.pos;
        self.pos += PATTERN.len();
        for (rank, n) in parts {
            // Four- and two-digit components cannot overflow.
            let _ = builder.add(rank, n);
        }
        Some(
            builder
                .finish()
                .map(Tok::Duration)
                .ok_or_else(|| self.error(start, "duration out of range")),
        )
    }

    /// Reads a `q`-delimited token where a doubled `q` escapes itself.
    fn quoted(&mut self, q: char) -> Result<String, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek_char() else {
                let what = if q == '"' {
                    "unterminated quoted identifier"
                } else {
                    "unterminated string literal"
                };
                return Err(self.error(start, what));
            };
            self.pos += c.len_utf8();
            if c == q {
                if self.peek_char() == Some(q) {
                    self.pos += 1;
                    out.push(q);
                } else {
                    break;
                }
            } else {
                out.push(c);
            }
        }
        if q == '"' && out.is_empty() {
            return Err(self.error(start, "empty quoted identifier"));
        }
        Ok(out)
    }

    /// `$$ raw text $$` (no escapes; ends at the first `$$`).
    fn dollar_string(&mut self) -> Result<Tok, ParseError> {
        let start = self.pos;
        let body = &self.src[start + 2..];
        match body.find("$$") {
            Some(end) => {
                self.pos = start + 2 + end + 2;
                Ok(Tok::Str(body[..end].to_string()))
            }
            None => Err(self.error(start, "unterminated $$ string literal")),
        }
    }
}

/// Parses `P[nY][nM][nD][T[nH][nM][nS]]` or `PnW` (case-insensitive).
/// Returns `None` if `word` is not of that shape (so it is an identifier),
/// `Some(None)` if it is but overflows.
fn parse_iso_duration(word: &str) -> Option<Option<Duration>> {
    let rest = word.strip_prefix(['P', 'p'])?;
    let mut builder = DurationBuilder::default();
    let mut overflow = false;
    if let Some(weeks) = rest.strip_suffix(['W', 'w']) {
        if weeks.is_empty() || !weeks.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        return Some(weeks.parse().ok().and_then(|n| {
            builder.add(2, n)?;
            builder.finish()
        }));
    }
    let (date, time) = match rest.find(['T', 't']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let mut any = iso_components(date, b"YMD", &[0, 1, 3], &mut builder, &mut overflow)?;
    if let Some(time) = time {
        if time.is_empty() {
            return None;
        }
        any |= iso_components(time, b"HMS", &[4, 5, 6], &mut builder, &mut overflow)?;
    }
    if !any {
        return None;
    }
    Some(if overflow { None } else { builder.finish() })
}

/// Reads `nX` pairs whose unit letters appear in `units` order; returns
/// whether any pair was read, or `None` if `s` does not have that shape.
fn iso_components(
    s: &str,
    units: &[u8],
    ranks: &[usize],
    builder: &mut DurationBuilder,
    overflow: &mut bool,
) -> Option<bool> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut next_unit = 0;
    while i < bytes.len() {
        let num_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let unit = bytes.get(i)?.to_ascii_uppercase();
        if i == num_start {
            return None;
        }
        let idx = units.iter().position(|&u| u == unit)?;
        if idx < next_unit {
            return None;
        }
        next_unit = idx + 1;
        let added = s[num_start..i]
            .parse::<i64>()
            .ok()
            .and_then(|n| builder.add(*ranks.get(idx)?, n));
        if added.is_none() {
            *overflow = true;
        }
        i += 1;
    }
    Some(!bytes.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Tok> {
        tokenize(src).unwrap().into_iter().map(|t| t.kind).collect()
    }

    fn dur(src: &str) -> Duration {
        match kinds(src).as_slice() {
            [Tok::Duration(d), Tok::Eof] => *d,
            other => panic!("{src}: {other:?}"),
        }
    }

    #[test]
    fn words_and_quoting() {
        assert_eq!(
            kinds("SeLeCt \"MyCol\" 'it''s' $$a'b$$"),
            vec![
                Tok::Word("select".into()),
                Tok::QuotedIdent("MyCol".into()),
                Tok::Str("it's".into()),
                Tok::Str("a'b".into()),
                Tok::Eof
            ]
        );
        assert_eq!(
            kinds("\"a\"\"b\""),
            vec![Tok::QuotedIdent("a\"b".into()), Tok::Eof]
        );
        assert!(tokenize("\"\"").is_err());
        assert!(tokenize("'abc").is_err());
        assert!(tokenize("$$abc").is_err());
        assert!(tokenize("/* abc").is_err());
    }

    #[test]
    fn numbers() {
        assert_eq!(kinds("123"), vec![Tok::Integer("123".into()), Tok::Eof]);
        assert_eq!(kinds("1.5e-3"), vec![Tok::Float("1.5e-3".into()), Tok::Eof]);
        assert_eq!(kinds("1E10"), vec![Tok::Float("1E10".into()), Tok::Eof]);
        assert_eq!(kinds("2."), vec![Tok::Float("2.".into()), Tok::Eof]);
        assert_eq!(
            kinds("-5"),
            vec![Tok::Minus, Tok::Integer("5".into()), Tok::Eof]
        );
        assert_eq!(kinds("0xCAFE"), vec![Tok::Hex(vec![0xca, 0xfe]), Tok::Eof]);
        assert_eq!(kinds("0x"), vec![Tok::Hex(vec![]), Tok::Eof]);
        assert!(tokenize("0xabc").is_err());
        assert!(tokenize("0xzz").is_err());
        assert!(tokenize("12abc").is_err());
        assert!(tokenize("1.5x").is_err());
    }

    #[test]
    fn uuids() {
        let toks =
            kinds("550e8400-e29b-41d4-a716-446655440000 deadbeef-0000-0000-0000-000000000000");
        assert_eq!(
            toks[0],
            Tok::Uuid([
                0x55, 0x0e, 0x84, 0x00, 0xe2, 0x9b, 0x41, 0xd4, 0xa7, 0x16, 0x44, 0x66, 0x55, 0x44,
                0x00, 0x00
            ])
        );
        assert!(matches!(toks[1], Tok::Uuid(_)));
    }

    #[test]
    fn durations() {
        assert_eq!(dur("1h30m").nanoseconds, 90 * 60_000_000_000);
        assert_eq!(
            dur("12mo3d"),
            Duration {
                months: 12,
                days: 3,
                nanoseconds: 0
            }
        );
        assert_eq!(dur("500ms").nanoseconds, 500_000_000);
        assert_eq!(dur("2000MS").nanoseconds, 2_000_000_000);
        let d = dur("1y2mo3w4d5h6m7s8ms9us10ns");
        assert_eq!(d.months, 14);
        assert_eq!(d.days, 25);
        assert_eq!(
            d.nanoseconds,
            5 * 3_600_000_000_000 + 6 * 60_000_000_000 + 7_000_000_000 + 8_000_000 + 9_000 + 10
        );
        assert_eq!(dur("3µs").nanoseconds, 3_000);
        assert_eq!(
            dur("P1Y2M3DT4H5M6S"),
            Duration {
                months: 14,
                days: 3,
                nanoseconds: 4 * 3_600_000_000_000 + 5 * 60_000_000_000 + 6_000_000_000
            }
        );
        assert_eq!(dur("P2W").days, 14);
        assert_eq!(dur("pt30m").nanoseconds, 30 * 60_000_000_000);
        assert_eq!(
            dur("P0001-02-03T04:05:06"),
            Duration {
                months: 14,
                days: 3,
                nanoseconds: 4 * 3_600_000_000_000 + 5 * 60_000_000_000 + 6_000_000_000
            }
        );
        // Not durations: identifiers.
        assert_eq!(kinds("p"), vec![Tok::Word("p".into()), Tok::Eof]);
        assert_eq!(kinds("pt"), vec![Tok::Word("pt".into()), Tok::Eof]);
        assert_eq!(kinds("pk"), vec![Tok::Word("pk".into()), Tok::Eof]);
        // Malformed.
        assert!(tokenize("1h30").is_err());
        assert!(tokenize("30m1h").is_err());
        assert!(tokenize("1h1h").is_err());
        assert!(tokenize("99999999999999999999h").is_err());
        assert!(tokenize("3000000000mo").is_err());
    }

    #[test]
    fn punctuation_and_comments() {
        assert_eq!(
            kinds("a<=b -- x\n!= // y\n >= /* z */ <>"),
            vec![
                Tok::Word("a".into()),
                Tok::Lte,
                Tok::Word("b".into()),
                Tok::Neq,
                Tok::Gte,
                Tok::Lt,
                Tok::Gt,
                Tok::Eof
            ]
        );
        assert!(tokenize("a # b").is_err());
        assert!(tokenize("!").is_err());
        assert!(tokenize("$").is_err());
    }
}
