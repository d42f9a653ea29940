//! Where the emulator must behave as ScyllaDB does (issue 16): stored forms
//! of collections, empty collections, LWT results, request validation.
//! Each test talks to a real emulator process over a socket.

mod support;

use scylla_shard::protocol::request::BatchKind;
use scylla_shard::protocol::response::{error_code, ResultBody};
use scylla_shard::protocol::value::CqlValue;
use scylla_shard::protocol::{ColumnType, Value};

use support::{bound, int, text, Emulator};

fn set(items: Vec<CqlValue>) -> CqlValue {
    CqlValue::Set(items)
}

fn map(entries: Vec<(CqlValue, CqlValue)>) -> CqlValue {
    CqlValue::Map(entries)
}

#[test]
fn bound_sets_and_maps_are_stored_sorted_and_deduplicated() {
    let emulator = Emulator::start("127.0.92.1", &[]);
    let mut c = emulator.client();
    c.setup(&["CREATE TABLE ks.c (k int PRIMARY KEY, s set<int>, fs frozen<set<text>>, \
               m map<text, int>, nested map<int, frozen<set<int>>>, l list<frozen<map<int, text>>>, \
               t tuple<int, frozen<set<int>>>)"]);
    let unsorted_set = set(vec![int(3), int(1), int(2), int(3)]);
    let unsorted_text_set = set(vec![text("b"), text("a"), text("b")]);
    let unsorted_map = map(vec![(text("z"), int(1)), (text("a"), int(2))]);
    let nested = map(vec![
        (int(9), set(vec![int(5), int(4), int(5)])),
        (int(-1), set(vec![int(2), int(1)])),
    ]);
    let list_of_maps = CqlValue::List(vec![map(vec![
        (int(2), text("two")),
        (int(1), text("one")),
    ])]);
    let tuple = CqlValue::Tuple(vec![Some(int(1)), Some(set(vec![int(8), int(7)]))]);
    let sorted = |rows: &support::Table| rows.rows[0].clone();
    let expected = vec![
        Some(set(vec![int(1), int(2), int(3)])),
        Some(set(vec![text("a"), text("b")])),
        Some(map(vec![(text("a"), int(2)), (text("z"), int(1))])),
        Some(map(vec![
            (int(-1), set(vec![int(1), int(2)])),
            (int(9), set(vec![int(4), int(5)])),
        ])),
        Some(CqlValue::List(vec![map(vec![
            (int(1), text("one")),
            (int(2), text("two")),
        ])])),
        Some(CqlValue::Tuple(vec![
            Some(int(1)),
            Some(set(vec![int(7), int(8)])),
        ])),
    ];
    let values = || {
        vec![
            bound(unsorted_set.clone()),
            bound(unsorted_text_set.clone()),
            bound(unsorted_map.clone()),
            bound(nested.clone()),
            bound(list_of_maps.clone()),
            bound(tuple.clone()),
        ]
    };
    // INSERT through a prepared statement.
    let insert =
        c.prepare("INSERT INTO ks.c (k, s, fs, m, nested, l, t) VALUES (1, ?, ?, ?, ?, ?, ?)");
    c.execute(&insert.id, values());
    let read = c.query(
        "SELECT s, fs, m, nested, l, t FROM ks.c WHERE k = 1",
        vec![],
    );
    assert_eq!(sorted(&read), expected);
    // UPDATE ... SET with bound values, as a simple statement.
    c.query(
        "UPDATE ks.c SET s = ?, fs = ?, m = ?, nested = ?, l = ?, t = ? WHERE k = 2",
        values(),
    );
    let read = c.query(
        "SELECT s, fs, m, nested, l, t FROM ks.c WHERE k = 2",
        vec![],
    );
    assert_eq!(sorted(&read), expected);
    // A frozen set bound in a WHERE clause matches the stored form.
    c.query(
        "CREATE TABLE ks.f (k frozen<set<int>> PRIMARY KEY, v int)",
        vec![],
    );
    c.query(
        "INSERT INTO ks.f (k, v) VALUES (?, 7)",
        vec![bound(unsorted_set.clone())],
    );
    let read = c.query("SELECT v FROM ks.f WHERE k = {1, 2, 3}", vec![]);
    assert_eq!(read.single(), Some(int(7)));
    // Set union with a bound unsorted set stays sorted.
    c.query(
        "UPDATE ks.c SET s = s + ? WHERE k = 1",
        vec![bound(set(vec![int(0), int(9), int(0)]))],
    );
    let read = c.query("SELECT s FROM ks.c WHERE k = 1", vec![]);
    assert_eq!(
        read.single(),
        Some(set(vec![int(0), int(1), int(2), int(3), int(9)]))
    );
}

#[test]
fn empty_collections_follow_frozenness() {
    let emulator = Emulator::start("127.0.92.2", &[]);
    let mut c = emulator.client();
    c.setup(&[
        "CREATE TABLE ks.e (k int PRIMARY KEY, m map<text, int>, s set<int>, l list<int>, \
               fm frozen<map<text, int>>, fl frozen<list<int>>)",
    ]);
    // Non-frozen empty collections written by INSERT are no cell: null.
    c.query(
        "INSERT INTO ks.e (k, m, s, l) VALUES (1, {}, {}, [])",
        vec![],
    );
    let empty_map = bound(map(vec![]));
    let empty_set = bound(set(vec![]));
    let empty_list = bound(CqlValue::List(vec![]));
    c.query(
        "INSERT INTO ks.e (k, m, s, l) VALUES (2, ?, ?, ?)",
        vec![empty_map.clone(), empty_set, empty_list.clone()],
    );
    for k in [1, 2] {
        let read = c.query("SELECT m, s, l FROM ks.e WHERE k = ?", vec![bound(int(k))]);
        assert_eq!(read.rows, vec![vec![None, None, None]], "row {k}");
    }
    // An INSERT of an empty collection replaces what was there.
    c.query("INSERT INTO ks.e (k, m) VALUES (3, {'a': 1})", vec![]);
    c.query(
        "INSERT INTO ks.e (k, m) VALUES (3, ?)",
        vec![empty_map.clone()],
    );
    let read = c.query("SELECT m FROM ks.e WHERE k = 3", vec![]);
    assert_eq!(read.single(), None);
    // Frozen empty collections are values: UPDATE ... SET fm = {} stores one.
    c.query("INSERT INTO ks.e (k, fm) VALUES (4, {'x': 1})", vec![]);
    c.query("UPDATE ks.e SET fm = {} WHERE k = 4", vec![]);
    let read = c.query("SELECT fm FROM ks.e WHERE k = 4", vec![]);
    assert_eq!(read.single(), Some(map(vec![])));
    c.query("UPDATE ks.e SET fl = ? WHERE k = 5", vec![empty_list]);
    c.query("INSERT INTO ks.e (k, fm) VALUES (6, ?)", vec![empty_map]);
    let read = c.query("SELECT fl FROM ks.e WHERE k = 5", vec![]);
    assert_eq!(read.single(), Some(CqlValue::List(vec![])));
    let read = c.query("SELECT fm FROM ks.e WHERE k = 6", vec![]);
    assert_eq!(read.single(), Some(map(vec![])));
    // Frozen collections cannot be appended to.
    let e = c.query_error("UPDATE ks.e SET fm = fm + {'y': 2} WHERE k = 4", vec![]);
    assert_eq!(e.code, error_code::INVALID);
    assert!(
        e.message.contains("frozen collection column fm"),
        "{}",
        e.message
    );
}

#[test]
fn conditional_statements_return_applied_and_the_row_every_time() {
    let emulator = Emulator::start("127.0.92.3", &[]);
    let mut c = emulator.client();
    c.setup(&[
        "CREATE TABLE ks.l (k int, ck int, s int static, v text, w int, PRIMARY KEY (k, ck))",
    ]);
    let all_columns = ["[applied]", "k", "ck", "s", "v", "w"];
    // PREPARED announces the result columns of conditional statements.
    let insert = c.prepare("INSERT INTO ks.l (k, ck, v, w) VALUES (?, ?, ?, ?) IF NOT EXISTS");
    assert!(insert.metadata.is_lwt);
    let names: Vec<&str> = insert
        .result_metadata
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, all_columns);
    let update = c.prepare("UPDATE ks.l SET v = ? WHERE k = ? AND ck = ? IF w = ? AND v != ?");
    let names: Vec<&str> = update
        .result_metadata
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["[applied]", "v", "w"]);
    assert_eq!(update.result_metadata.columns[0].ty, ColumnType::Boolean);
    let plain = c.prepare("INSERT INTO ks.l (k, ck, v) VALUES (?, ?, ?)");
    assert!(plain.result_metadata.columns.is_empty());

    // Applied: [applied] = true and the (absent) old row as nulls.
    let values =
        |v: &str, w: i32| vec![bound(int(1)), bound(int(1)), bound(text(v)), bound(int(w))];
    let first = c.execute(&insert.id, values("first", 10));
    assert_eq!(first.columns, all_columns);
    assert_eq!(
        first.rows,
        vec![vec![
            Some(CqlValue::Boolean(true)),
            None,
            None,
            None,
            None,
            None
        ]]
    );
    // Not applied: the same columns, with the current row.
    let second = c.execute(&insert.id, values("second", 20));
    assert_eq!(second.columns, all_columns);
    assert_eq!(
        second.rows,
        vec![vec![
            Some(CqlValue::Boolean(false)),
            Some(int(1)),
            Some(int(1)),
            None,
            Some(text("first")),
            Some(int(10)),
        ]]
    );
    // Applied UPDATE: [applied] = true plus the tested columns before the write.
    let args = |new: &str, w: i32, not: &str| {
        vec![
            bound(text(new)),
            bound(int(1)),
            bound(int(1)),
            bound(int(w)),
            bound(text(not)),
        ]
    };
    let applied = c.execute(&update.id, args("updated", 10, "zzz"));
    assert_eq!(
        applied.rows,
        vec![vec![
            Some(CqlValue::Boolean(true)),
            Some(text("first")),
            Some(int(10))
        ]]
    );
    let refused = c.execute(&update.id, args("again", 99, "zzz"));
    assert_eq!(
        refused.rows,
        vec![vec![
            Some(CqlValue::Boolean(false)),
            Some(text("updated")),
            Some(int(10))
        ]]
    );
    // IF EXISTS on a missing row: not applied, all columns null.
    let missing = c.query("DELETE FROM ks.l WHERE k = 5 AND ck = 5 IF EXISTS", vec![]);
    assert_eq!(missing.columns, all_columns);
    assert_eq!(missing.rows[0][0], Some(CqlValue::Boolean(false)));
    assert!(missing.rows[0][1..].iter().all(Option::is_none));

    // A conditional batch: one row per statement, primary key first.
    let batch = c
        .try_batch(
            BatchKind::Logged,
            vec![
                (
                    "UPDATE ks.l SET w = 11 WHERE k = 1 AND ck = 1 IF w = 10",
                    vec![],
                ),
                ("INSERT INTO ks.l (k, ck, v) VALUES (1, 2, 'new')", vec![]),
            ],
        )
        .expect("conditional batch");
    let table = support::result_table(batch.1);
    assert_eq!(table.columns, ["[applied]", "k", "ck", "w"]);
    assert_eq!(
        table.rows,
        vec![
            vec![
                Some(CqlValue::Boolean(true)),
                Some(int(1)),
                Some(int(1)),
                Some(int(10))
            ],
            vec![Some(CqlValue::Boolean(true)), None, None, None],
        ]
    );
    let e = c.query_error(
        "INSERT INTO ks.l (k, ck, v) VALUES (1, 9, 'x') IF NOT EXISTS USING TIMESTAMP 5",
        vec![],
    );
    assert_eq!(
        e.message,
        "Cannot provide custom timestamp for conditional updates"
    );
}

#[test]
fn invalid_requests_are_refused_with_scyllas_messages() {
    let emulator = Emulator::start("127.0.92.4", &[]);
    let mut c = emulator.client();
    c.setup(&[
        "CREATE TABLE ks.v (k text, ck int, ck2 int, v int, PRIMARY KEY (k, ck, ck2))",
        "CREATE TABLE ks.two (a int, b int, v int, PRIMARY KEY ((a, b)))",
    ]);
    let invalid =
        |e: &scylla_shard::protocol::ErrorBody| assert_eq!(e.code, error_code::INVALID, "{e:?}");

    // Extra (and missing) bound values.
    let e = c.query_error(
        "INSERT INTO ks.v (k, ck, ck2, v) VALUES ('a', 1, 1, ?)",
        vec![bound(int(1)), bound(int(2))],
    );
    invalid(&e);
    assert_eq!(
        e.message,
        "Invalid amount of bind variables: expected 1 received 2"
    );
    let e = c.query_error("SELECT * FROM ks.v WHERE k = 'a'", vec![bound(int(1))]);
    assert_eq!(
        e.message,
        "Invalid amount of bind variables: expected 0 received 1"
    );
    let prepared = c.prepare("SELECT * FROM ks.v WHERE k = ?");
    let e = c
        .try_execute(&prepared.id, vec![bound(text("a")), bound(int(2))])
        .unwrap_err();
    assert_eq!(
        e.message,
        "Invalid amount of bind variables: expected 1 received 2"
    );
    let e = c.try_execute(&prepared.id, vec![]).unwrap_err();
    assert_eq!(
        e.message,
        "Invalid amount of bind variables: expected 1 received 0"
    );
    let e = c
        .try_batch(
            BatchKind::Logged,
            vec![(
                "INSERT INTO ks.v (k, ck, ck2, v) VALUES (?, 1, 1, 1)",
                vec![bound(text("x")), Value::Null],
            )],
        )
        .unwrap_err();
    assert_eq!(
        e.message,
        "There were 1 markers(?) in CQL but 2 bound variables"
    );

    // An empty partition key, bound or literal.
    for (text_value, values) in [
        (
            "INSERT INTO ks.v (k, ck, ck2, v) VALUES ('', 1, 1, 1)",
            vec![],
        ),
        (
            "INSERT INTO ks.v (k, ck, ck2, v) VALUES (?, 1, 1, 1)",
            vec![bound(text(""))],
        ),
        (
            "UPDATE ks.v SET v = 1 WHERE k = '' AND ck = 1 AND ck2 = 1",
            vec![],
        ),
        ("DELETE FROM ks.v WHERE k = ''", vec![]),
    ] {
        let e = c.query_error(text_value, values);
        invalid(&e);
        assert_eq!(e.message, "Key may not be empty", "{text_value}");
    }
    // Composite keys may have empty parts... of non-text types none exist,
    // but a composite key of two ints is fine.
    c.query("INSERT INTO ks.two (a, b, v) VALUES (1, 2, 3)", vec![]);

    // Clustering restrictions without the partition key need ALLOW FILTERING.
    c.query(
        "INSERT INTO ks.v (k, ck, ck2, v) VALUES ('a', 1, 2, 3)",
        vec![],
    );
    for query in [
        "SELECT * FROM ks.v WHERE ck = 1",
        "SELECT * FROM ks.v WHERE ck > 0",
        "SELECT * FROM ks.v WHERE token(k) > 0 AND ck = 1",
        "SELECT * FROM ks.two WHERE a = 1",
        "SELECT * FROM ks.v WHERE v = 3",
    ] {
        let e = c.query_error(query, vec![]);
        invalid(&e);
        assert!(
            e.message
                .starts_with("Cannot execute this query as it might involve data filtering"),
            "{query}: {}",
            e.message
        );
        let allowed = c.query(&format!("{query} ALLOW FILTERING"), vec![]);
        assert!(allowed.rows.len() <= 1, "{query}");
    }
    let allowed = c.query("SELECT v FROM ks.v WHERE ck = 1 ALLOW FILTERING", vec![]);
    assert_eq!(allowed.single(), Some(int(3)));
    let e = c.query_error("SELECT * FROM ks.v WHERE k = 'a' AND ck2 = 2", vec![]);
    assert_eq!(
        e.message,
        "PRIMARY KEY column \"ck2\" cannot be restricted as preceding column \"ck\" is not restricted"
    );
    let filtered = c.query(
        "SELECT v FROM ks.v WHERE k = 'a' AND ck2 = 2 ALLOW FILTERING",
        vec![],
    );
    assert_eq!(filtered.single(), Some(int(3)));
    // A partially restricted composite key filters with ALLOW FILTERING.
    let filtered = c.query("SELECT v FROM ks.two WHERE a = 1 ALLOW FILTERING", vec![]);
    assert_eq!(filtered.single(), Some(int(3)));
    let none = c.query("SELECT v FROM ks.two WHERE a = 2 ALLOW FILTERING", vec![]);
    assert!(none.rows.is_empty());
    // Restrictions the clause allows stay allowed.
    c.query(
        "SELECT * FROM ks.v WHERE k = 'a' AND ck = 1 AND ck2 > 0",
        vec![],
    );
    c.query("SELECT * FROM ks.v WHERE token(k) > 0", vec![]);
    assert!(matches!(
        c.try_query("SELECT * FROM ks.v", vec![]).map(|r| r.1),
        Ok(ResultBody::Rows(_))
    ));
}

#[test]
fn large_batches_get_scyllas_warning_and_huge_ones_are_refused() {
    let emulator = Emulator::start("127.0.92.5", &[]);
    let mut c = emulator.client();
    c.setup(&["CREATE TABLE ks.b (k int PRIMARY KEY, v blob)"]);
    let blob = |n: usize| bound(CqlValue::Blob(vec![7u8; n]));
    let insert = "INSERT INTO ks.b (k, v) VALUES (?, ?)";
    // Three partitions of 50,000 bytes each: 150,012 bytes with the keys.
    let statements = (0..3)
        .map(|k| (insert, vec![bound(int(k)), blob(50_000)]))
        .collect();
    let (extensions, _) = c
        .try_batch(BatchKind::Unlogged, statements)
        .expect("batch applies");
    assert_eq!(
        extensions.warnings,
        vec![format!(
            "Unlogged batch modifying 3 partitions in ks.b is of size 150012 bytes, exceeding specified WARN threshold of 131072 by {}.",
            150_012 - 131_072
        )]
    );
    let read = c.query("SELECT k FROM ks.b WHERE k = 2", vec![]);
    assert_eq!(read.single(), Some(int(2)));
    // The same bytes in one partition: no warning (Scylla checks only
    // batches that span partitions).
    let statements = (0..3)
        .map(|_| (insert, vec![bound(int(9)), blob(50_000)]))
        .collect();
    let (extensions, _) = c
        .try_batch(BatchKind::Logged, statements)
        .expect("batch applies");
    assert!(extensions.warnings.is_empty(), "{:?}", extensions.warnings);
    // Above 1 MiB: refused, nothing written.
    let statements = (10..13)
        .map(|k| (insert, vec![bound(int(k)), blob(400_000)]))
        .collect();
    let e = c.try_batch(BatchKind::Logged, statements).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (error_code::INVALID, "Batch too large")
    );
    let read = c.query("SELECT k FROM ks.b WHERE k = 10", vec![]);
    assert!(read.rows.is_empty());
    // Small batches carry no warning.
    let (extensions, _) = c
        .try_batch(
            BatchKind::Logged,
            vec![(insert, vec![bound(int(20)), blob(10)])],
        )
        .unwrap();
    assert!(extensions.warnings.is_empty());
}

#[test]
fn traced_requests_get_a_session_in_system_traces() {
    use scylla_shard::protocol::{Request, Response};
    let emulator = Emulator::start("127.0.92.6", &[]);
    let mut c = emulator.client();
    c.setup(&["CREATE TABLE ks.t (k int PRIMARY KEY, v text)"]);
    let query = "INSERT INTO ks.t (k, v) VALUES (1, 'traced')";
    let request = Request::Query {
        query: query.into(),
        params: support::params(vec![]),
    };
    let (extensions, response) = c.request(&request, true);
    assert!(
        matches!(response, Response::Result(ResultBody::Void)),
        "{response:?}"
    );
    let id = extensions.tracing_id.expect("a tracing session id");
    assert_eq!(id[6] >> 4, 1, "session ids are timeuuids");
    let session = c.query(
        "SELECT command, coordinator, duration, parameters, request, started_at, username \
         FROM system_traces.sessions WHERE session_id = ?",
        vec![bound(CqlValue::Uuid(id))],
    );
    assert_eq!(session.rows.len(), 1, "{session:?}");
    let row = &session.rows[0];
    assert_eq!(row[0], Some(text("QUERY")));
    assert_eq!(row[1], Some(CqlValue::Inet("127.0.92.6".parse().unwrap())));
    assert!(
        matches!(row[2], Some(CqlValue::Int(d)) if d >= 0),
        "{row:?}"
    );
    let Some(CqlValue::Map(parameters)) = &row[3] else {
        panic!("parameters: {row:?}");
    };
    assert!(
        parameters.contains(&(text("query"), text(query))),
        "{parameters:?}"
    );
    assert!(parameters.contains(&(text("consistency_level"), text("ONE"))));
    assert_eq!(row[4], Some(text("Execute CQL3 query")));
    assert!(row[5].is_some());
    assert_eq!(row[6], Some(text("anonymous")));
    let events = c.query(
        "SELECT activity, source, thread FROM system_traces.events WHERE session_id = ?",
        vec![bound(CqlValue::Uuid(id))],
    );
    assert!(events.rows.len() >= 2, "{events:?}");
    assert_eq!(events.rows[0][0], Some(text("Parsing a statement")));
    // Prepared statements are traced too, under their own session.
    let prepared = c.prepare("SELECT v FROM ks.t WHERE k = ?");
    let execute = Request::Execute {
        id: prepared.id.clone(),
        params: support::params(vec![bound(int(1))]),
    };
    let (extensions, _) = c.request(&execute, true);
    let second = extensions.tracing_id.expect("a tracing id for EXECUTE");
    assert_ne!(second, id);
    let request = c.query(
        "SELECT request FROM system_traces.sessions WHERE session_id = ?",
        vec![bound(CqlValue::Uuid(second))],
    );
    let Some(CqlValue::Text(request)) = request.single() else {
        panic!("no session for the EXECUTE");
    };
    assert!(
        request.starts_with("Execute CQL3 prepared query ["),
        "{request}"
    );
    // Untraced requests get no id; the keyspace is Scylla's and stays.
    let (extensions, _) = c.request(&execute, false);
    assert_eq!(extensions.tracing_id, None);
    let ks = c.query(
        "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = 'system_traces'",
        vec![],
    );
    assert_eq!(
        ks.single(),
        Some(map(vec![
            (
                text("class"),
                text("org.apache.cassandra.locator.SimpleStrategy")
            ),
            (text("replication_factor"), text("2")),
        ]))
    );
    let e = c.query_error("DROP KEYSPACE system_traces", vec![]);
    assert_eq!(e.code, error_code::INVALID);
}
