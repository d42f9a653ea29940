//! Keyword tables and identifier quoting.
//!
//! CQL keywords are case-insensitive and most of them are *unreserved*: `key`,
//! `ttl`, `type`, `value`, `json`, ... are legal column names. Only the words
//! listed here can never be unquoted identifiers; the parser relies on that to
//! tell e.g. `SELECT json FROM t` (a column) from `SELECT JSON * FROM t`.

use std::borrow::Cow;

/// Reserved words (lowercase), following Cassandra's "reserved" keyword list
/// plus the literal keywords that can never name a column.
const RESERVED: &[&str] = &[
    "add",
    "allow",
    "alter",
    "and",
    "apply",
    "asc",
    "authorize",
    "batch",
    "begin",
    "by",
    "columnfamily",
    "create",
    "delete",
    "desc",
    "describe",
    "drop",
    "entries",
    "execute",
    "false",
    "from",
    "full",
    "grant",
    "if",
    "in",
    "index",
    "infinity",
    "insert",
    "into",
    "keyspace",
    "limit",
    "materialized",
    "modify",
    "nan",
    "norecursive",
    "not",
    "null",
    "of",
    "on",
    "or",
    "order",
    "primary",
    "rename",
    "replace",
    "revoke",
    "schema",
    "select",
    "set",
    "table",
    "to",
    "token",
    "true",
    "truncate",
    "unlogged",
    "update",
    "use",
    "using",
    "view",
    "where",
    "with",
];

/// Words that start a type constructor (`list<...>`) and therefore must be
/// quoted when they name a user-defined type.
const TYPE_CONSTRUCTORS: &[&str] = &["frozen", "list", "map", "set", "tuple", "vector"];

/// Whether `word` (already lowercase) is reserved and so cannot be used as
/// an unquoted identifier.
pub(crate) fn is_reserved(word: &str) -> bool {
    RESERVED.binary_search(&word).is_ok()
}

/// Returns `name` in CQL source form: unchanged when it lexes back to the
/// same identifier unquoted, double-quoted (with `""` escaping) otherwise.
///
/// Needed wherever names are rendered back into CQL text, e.g. type strings
/// stored in `system_schema` or `DESCRIBE` output.
pub fn quote_identifier(name: &str) -> Cow<'_, str> {
    if needs_quoting(name) {
        Cow::Owned(format!("\"{}\"", name.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(name)
    }
}

fn needs_quoting(name: &str) -> bool {
    let mut chars = name.chars();
    let plain = match chars.next() {
        Some(c) if c.is_ascii_lowercase() => {
            chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        }
        _ => false,
    };
    !plain || is_reserved(name)
}

/// Like [`quote_identifier`], but also quotes names that would otherwise be
/// read as a built-in type (a UDT called `int` must be written `"int"`).
pub(crate) fn quote_type_name(name: &str) -> Cow<'_, str> {
    if crate::types::NativeType::from_name(name).is_some() || TYPE_CONSTRUCTORS.contains(&name) {
        Cow::Owned(format!("\"{}\"", name.replace('"', "\"\"")))
    } else {
        quote_identifier(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_table_is_sorted() {
        // binary_search requires it.
        let mut sorted = RESERVED.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, RESERVED);
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_identifier("abc_1"), "abc_1");
        assert_eq!(quote_identifier("MyTable"), "\"MyTable\"");
        assert_eq!(quote_identifier("select"), "\"select\"");
        assert_eq!(quote_identifier("1a"), "\"1a\"");
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_identifier(""), "\"\"");
        assert_eq!(quote_type_name("int"), "\"int\"");
        assert_eq!(quote_type_name("list"), "\"list\"");
        assert_eq!(quote_type_name("address"), "address");
    }
}
