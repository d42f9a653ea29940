//! CQL types as `system_schema` writes them (`frozen<map<text, list<int>>>`,
//! `tuple<int, text>`, a UDT's name, a custom type's quoted class), parsed
//! into the protocol's [`ColumnType`].

use crate::protocol::types::ColumnType;

/// Deepest nesting accepted (as for types on the wire).
const MAX_DEPTH: usize = 32;

/// Parses `text`; `udt` resolves a user type's name (unquoted, as stored)
/// to its type.
pub fn parse_type(
    text: &str,
    udt: &mut dyn FnMut(&str) -> Option<ColumnType>,
) -> Result<ColumnType, String> {
    let mut parser = Parser { text, at: 0, udt };
    let ty = parser.ty(0)?;
    parser.skip_space();
    if parser.at != text.len() {
        return Err(format!("unexpected text after the type in {text:?}"));
    }
    Ok(ty)
}

struct Parser<'a, 'u> {
    text: &'a str,
    at: usize,
    udt: &'u mut dyn FnMut(&str) -> Option<ColumnType>,
}

impl Parser<'_, '_> {
    fn skip_space(&mut self) {
        while self.text[self.at..].starts_with(' ') {
            self.at += 1;
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_space();
        if self.text[self.at..].starts_with(c) {
            self.at += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected {c:?} at {} in {:?}", self.at, self.text))
        }
    }

    /// A name, a `"quoted name"` (with `""` for `"`) or a `'quoted class'`.
    fn word(&mut self) -> Result<String, String> {
        self.skip_space();
        let rest = &self.text[self.at..];
        for quote in ['"', '\''] {
            if let Some(inner) = rest.strip_prefix(quote) {
                let mut out = String::new();
                let mut chars = inner.char_indices();
                while let Some((i, c)) = chars.next() {
                    if c == quote {
                        if inner[i + 1..].starts_with(quote) {
                            out.push(quote);
                            chars.next();
                            continue;
                        }
                        self.at += 1 + i + 1;
                        return Ok(out);
                    }
                    out.push(c);
                }
                return Err(format!("unterminated quote in {:?}", self.text));
            }
        }
        let len = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(rest.len());
        if len == 0 {
            return Err(format!("expected a type at {} in {:?}", self.at, self.text));
        }
        self.at += len;
        Ok(rest[..len].to_owned())
    }

    fn ty(&mut self, depth: usize) -> Result<ColumnType, String> {
        if depth > MAX_DEPTH {
            return Err(format!("type nested too deep: {:?}", self.text));
        }
        self.skip_space();
        let quoted_class = self.text[self.at..].starts_with('\'');
        let word = self.word()?;
        if quoted_class {
            return Ok(ColumnType::Custom(word));
        }
        let inner = |p: &mut Self| -> Result<ColumnType, String> { p.ty(depth + 1) };
        let ty = match word.to_ascii_lowercase().as_str() {
            "ascii" => ColumnType::Ascii,
            "bigint" => ColumnType::BigInt,
            "blob" => ColumnType::Blob,
            "boolean" => ColumnType::Boolean,
            "counter" => ColumnType::Counter,
            "date" => ColumnType::Date,
            "decimal" => ColumnType::Decimal,
            "double" => ColumnType::Double,
            "duration" => ColumnType::Duration,
            "float" => ColumnType::Float,
            "inet" => ColumnType::Inet,
            "int" => ColumnType::Int,
            "smallint" => ColumnType::SmallInt,
            "text" | "varchar" => ColumnType::Text,
            "time" => ColumnType::Time,
            "timestamp" => ColumnType::Timestamp,
            "timeuuid" => ColumnType::Timeuuid,
            "tinyint" => ColumnType::TinyInt,
            "uuid" => ColumnType::Uuid,
            "varint" => ColumnType::Varint,
            "frozen" => {
                self.expect('<')?;
                let t = inner(self)?;
                self.expect('>')?;
                t
            }
            "list" | "set" => {
                self.expect('<')?;
                let element = Box::new(inner(self)?);
                self.expect('>')?;
                if word.eq_ignore_ascii_case("list") {
                    ColumnType::List(element)
                } else {
                    ColumnType::Set(element)
                }
            }
            "map" => {
                self.expect('<')?;
                let key = Box::new(inner(self)?);
                self.expect(',')?;
                let value = Box::new(inner(self)?);
                self.expect('>')?;
                ColumnType::Map(key, value)
            }
            "tuple" => {
                self.expect('<')?;
                let mut elements = vec![inner(self)?];
                while self.eat(',') {
                    elements.push(inner(self)?);
                }
                self.expect('>')?;
                ColumnType::Tuple(elements)
            }
            _ => {
                // Anything else with parameters (a newer built-in such as
                // vector<float, 3>) is kept as its text, as a custom type.
                if self.text[self.at..].trim_start().starts_with('<') {
                    let start = self.at - word.len();
                    let end = self.closing_bracket()?;
                    return Ok(ColumnType::Custom(self.text[start..end].to_owned()));
                }
                (self.udt)(&word).ok_or_else(|| format!("unknown type {word:?}"))?
            }
        };
        Ok(ty)
    }

    /// Skips a `<...>` group (nested ones included); returns where it ends.
    fn closing_bracket(&mut self) -> Result<usize, String> {
        self.skip_space();
        let mut depth = 0usize;
        for (i, c) in self.text[self.at..].char_indices() {
            match c {
                '<' => depth += 1,
                '>' => {
                    depth -= 1;
                    if depth == 0 {
                        self.at += i + 1;
                        return Ok(self.at);
                    }
                }
                _ => {}
            }
        }
        Err(format!("unbalanced <> in {:?}", self.text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::types::UdtType;

    fn parse(text: &str) -> Result<ColumnType, String> {
        parse_type(text, &mut |name| {
            (name == "address").then(|| {
                ColumnType::Udt(Box::new(UdtType {
                    keyspace: "ks".into(),
                    name: "address".into(),
                    fields: vec![("street".into(), ColumnType::Text)],
                }))
            })
        })
    }

    #[test]
    fn schema_type_strings_parse() {
        assert_eq!(parse("int"), Ok(ColumnType::Int));
        assert_eq!(parse("varchar"), Ok(ColumnType::Text));
        assert_eq!(
            parse("frozen<map<text, list<int>>>"),
            Ok(ColumnType::Map(
                Box::new(ColumnType::Text),
                Box::new(ColumnType::List(Box::new(ColumnType::Int)))
            ))
        );
        assert_eq!(
            parse("tuple<int, frozen<set<uuid>>, boolean>"),
            Ok(ColumnType::Tuple(vec![
                ColumnType::Int,
                ColumnType::Set(Box::new(ColumnType::Uuid)),
                ColumnType::Boolean
            ]))
        );
        assert!(matches!(parse("frozen<address>"), Ok(ColumnType::Udt(u)) if u.name == "address"));
        assert!(matches!(parse("\"address\""), Ok(ColumnType::Udt(_))));
        assert_eq!(
            parse("'org.apache.cassandra.db.marshal.LexicalUUIDType'"),
            Ok(ColumnType::Custom(
                "org.apache.cassandra.db.marshal.LexicalUUIDType".into()
            ))
        );
        assert_eq!(
            parse("vector<float, 3>"),
            Ok(ColumnType::Custom("vector<float, 3>".into()))
        );
        assert!(parse("nosuch").is_err());
        assert!(parse("map<int>").is_err());
        assert!(parse("list<int").is_err());
        assert!(parse("int int").is_err());
        assert!(parse(&"frozen<".repeat(40)).is_err());
    }
}
