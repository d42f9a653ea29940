//! Type expressions and their canonical text.

use cql_parser::{parse_type, CqlType, NativeType};

fn roundtrip(text: &str, canonical: &str) {
    let ty = parse_type(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(ty.to_string(), canonical, "display of {text}");
    assert_eq!(parse_type(canonical).unwrap(), ty, "reparse of {canonical}");
}

#[test]
fn native_types() {
    for t in NativeType::ALL {
        roundtrip(t.name(), t.name());
        roundtrip(&t.name().to_uppercase(), t.name());
    }
    roundtrip("varchar", "text");
    roundtrip("VARCHAR", "text");
}

#[test]
fn collections_and_tuples() {
    roundtrip(
        "frozen<map<text, list<int>>>",
        "frozen<map<text, list<int>>>",
    );
    roundtrip("map<text,int>", "map<text, int>");
    roundtrip("MAP < TEXT , INT >", "map<text, int>");
    roundtrip("frozen<list<int>>", "frozen<list<int>>");
    roundtrip("set<frozen<set<varchar>>>", "set<frozen<set<text>>>");
    roundtrip("tuple<int,text>", "tuple<int, text>");
    roundtrip(
        "frozen<tuple<int, frozen<tuple<text, blob>>>>",
        "frozen<tuple<int, frozen<tuple<text, blob>>>>",
    );
    roundtrip("vector<float, 3>", "vector<float, 3>");
}

#[test]
fn user_defined_and_custom() {
    roundtrip("address", "address");
    roundtrip("frozen<Address>", "frozen<address>");
    roundtrip("frozen<\"Address\">", "frozen<\"Address\">");
    roundtrip("ks.address", "ks.address");
    roundtrip("\"int\"", "\"int\"");
    roundtrip("\"list\"", "\"list\"");
    roundtrip("\"select\"", "\"select\"");
    roundtrip(
        "'org.apache.cassandra.db.marshal.DynamicCompositeType'",
        "'org.apache.cassandra.db.marshal.DynamicCompositeType'",
    );
    assert_eq!(
        parse_type("\"My\"\"Type\"").unwrap(),
        CqlType::UserDefined {
            keyspace: None,
            name: "My\"Type".into()
        }
    );
    roundtrip("\"My\"\"Type\"", "\"My\"\"Type\"");
}

#[test]
fn helpers() {
    let t = parse_type("frozen<frozen<list<int>>>").unwrap();
    assert_eq!(
        t.unfrozen(),
        &CqlType::List(Box::new(NativeType::Int.into()))
    );
    assert!(t.is_collection());
    assert!(!parse_type("tuple<int>").unwrap().is_collection());
}

#[test]
fn invalid_types() {
    for bad in [
        "",
        "map<int>",
        "list<int",
        "list<>",
        "tuple<>",
        "frozen<list<int>>>",
        "int int",
        "select",
        "map<int,,int>",
        "vector<float, 0>",
        "vector<float>",
        "list<int>,",
        "1",
        "ks.",
        "'unterminated",
    ] {
        assert!(parse_type(bad).is_err(), "{bad:?} should fail");
    }
    let err = parse_type("map<text, >").unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 1:10 mismatched input '>' expecting type"
    );
}
