//! Bind marker numbering and receivers.

use cql_parser::*;

fn vars(text: &str) -> Vec<(usize, String, BindReceiver)> {
    let stmt = parse_statement(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    let vars = stmt.bind_variables();
    assert_eq!(vars.len(), stmt.bind_marker_count());
    vars.into_iter()
        .map(|v| (v.marker.index, v.name(), v.receiver))
        .collect()
}

fn names(text: &str) -> Vec<String> {
    let v = vars(text);
    for (i, (index, _, _)) in v.iter().enumerate() {
        assert_eq!(i, *index, "markers must be numbered in order in {text}");
    }
    v.into_iter().map(|(_, n, _)| n).collect()
}

fn column(name: &str, path: Vec<PathStep>) -> BindReceiver {
    BindReceiver::Column {
        name: name.into(),
        path,
    }
}

#[test]
fn order_of_appearance() {
    assert_eq!(
        names("UPDATE t USING TTL ? AND TIMESTAMP ? SET a = ?, b = b + ? WHERE k = ? AND c IN ? IF d = ?"),
        ["[ttl]", "[timestamp]", "a", "b", "k", "in(c)", "d"]
    );
    assert_eq!(
        names(
            "SELECT * FROM t WHERE k = ? AND c > ? PER PARTITION LIMIT ? LIMIT ? USING TIMEOUT ?"
        ),
        ["k", "c", "[per_partition_limit]", "[limit]", "[timeout]"]
    );
    assert_eq!(
        names("INSERT INTO t (a, b) VALUES (?, ?) IF NOT EXISTS USING TTL ? AND TIMEOUT ?"),
        ["a", "b", "[ttl]", "[timeout]"]
    );
    assert_eq!(
        names("DELETE m[?] FROM t USING TIMESTAMP ? WHERE k = ? IF m[?] = ? AND u.f IN (?, ?)"),
        [
            "key(m)",
            "[timestamp]",
            "k",
            "key(m)",
            "value(m)",
            "u.f",
            "u.f"
        ]
    );
    assert_eq!(names("SELECT * FROM t"), Vec::<String>::new());
}

#[test]
fn collection_components() {
    assert_eq!(
        vars("UPDATE t SET m[?] = ?, l = l + [?], s = s - {?}, mm = mm + {?: ?}, u.f = ?, tup = (1, ?), ud = {x: ?} WHERE k = 0")
            .into_iter()
            .map(|(_, _, r)| r)
            .collect::<Vec<_>>(),
        vec![
            column("m", vec![PathStep::Key]),
            column("m", vec![PathStep::Value]),
            column("l", vec![PathStep::Value]),
            column("s", vec![PathStep::Value]),
            column("mm", vec![PathStep::Key]),
            column("mm", vec![PathStep::Value]),
            column("u", vec![PathStep::Field("f".into())]),
            column("tup", vec![PathStep::TupleField(1)]),
            column("ud", vec![PathStep::Field("x".into())]),
        ]
    );
    assert_eq!(
        names("INSERT INTO t (a, b) VALUES ({'k': [?]}, ((1, ?), 2))"),
        ["value(value(a))", "b[0][1]"]
    );
    assert_eq!(
        names(
            "SELECT * FROM t WHERE s CONTAINS ? AND m CONTAINS KEY ? AND m[?] = ? ALLOW FILTERING"
        ),
        ["value(s)", "key(m)", "key(m)", "value(m)"]
    );
}

#[test]
fn functions_casts_and_named_markers() {
    let v = vars("INSERT INTO t (a, b, c) VALUES (blobAsInt(?), (list<int>)[?, ?], :Named)");
    assert_eq!(
        v[0].2,
        BindReceiver::FunctionArgument {
            function: QualifiedName::unqualified("blobasint"),
            index: 0
        }
    );
    assert_eq!(v[0].1, "arg0(blobasint)");
    assert_eq!(v[1].2, BindReceiver::Cast(CqlType::Native(NativeType::Int)));
    assert_eq!(v[2].2, BindReceiver::Cast(CqlType::Native(NativeType::Int)));
    assert_eq!(v[3].1, "named");
    assert_eq!(v[3].2, column("c", vec![]));

    let v = vars("INSERT INTO t (a) VALUES (:\"Quoted\")");
    assert_eq!(v[0].1, "Quoted");

    assert_eq!(
        names("SELECT * FROM t WHERE token(a, b) > token(?, ?) AND token(a, b) < ?"),
        ["arg0(token)", "arg1(token)", "partition key token"]
    );
    assert_eq!(names("SELECT f(?), g(1, ?) FROM t"), ["arg0(f)", "arg1(g)"]);
}

#[test]
fn batch_numbering_spans_statements() {
    let stmt = parse_statement(
        "BEGIN BATCH USING TIMEOUT ? INSERT INTO t (a) VALUES (?) UPDATE t USING TTL ? SET b = ? WHERE a = ? DELETE FROM t WHERE a IN (?, ?) APPLY BATCH",
    )
    .unwrap();
    let names: Vec<String> = stmt.bind_variables().iter().map(|v| v.name()).collect();
    assert_eq!(names, ["[timeout]", "a", "[ttl]", "b", "a", "a", "a"]);
    let Statement::Batch(b) = &stmt else { panic!() };
    let Statement::Delete(d) = &b.statements[2] else {
        panic!()
    };
    let Relation::Column {
        predicate: Predicate::In(InValues::List(items)),
        ..
    } = &d.where_clause[0]
    else {
        panic!()
    };
    assert_eq!(items[1].as_bind_marker().map(|m| m.index), Some(6));
}

/// Every marker the lexer sees must be reported exactly once, in order.
#[test]
fn receivers_cover_every_marker() {
    let statements = [
        "SELECT a, f(?, [?]) FROM t WHERE a = ? AND (b, c) IN ((?, ?), ?) AND d IN ? AND m[?] IN (?) AND token(a) >= ? LIMIT ?",
        "UPDATE t SET a = ? + a, b = (int)?, c = {1: {?}}, d = [(?, {f: ?})] WHERE k = ? IF a IN ? AND m[?] IN (?, ?) AND u.f > ?",
        "INSERT INTO t (a, b, c) VALUES (?, ?, ?) USING TTL ? AND TIMESTAMP ? AND TIMEOUT ?",
        "DELETE a[?], b FROM t WHERE k IN (?, ?, ?) IF EXISTS",
        "SELECT m[?], cast(?  AS int) FROM t",
        "CREATE MATERIALIZED VIEW mv AS SELECT * FROM t WHERE a = ? PRIMARY KEY (a)",
        "ALTER TABLE t DROP a USING TIMESTAMP ?",
        "TRUNCATE t USING TIMEOUT ?",
    ];
    for text in statements {
        let expected = text.matches('?').count();
        let got = names(text).len();
        assert_eq!(got, expected, "{text}");
    }
}
