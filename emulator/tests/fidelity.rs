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
        .map(|c| &*c.name)
        .collect();
    assert_eq!(names, all_columns);
    let update = c.prepare("UPDATE ks.l SET v = ? WHERE k = ? AND ck = ? IF w = ? AND v != ?");
    let names: Vec<&str> = update
        .result_metadata
        .columns
        .iter()
        .map(|c| &*c.name)
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
                ("UPDATE ks.l SET v = 'u' WHERE k = 1 AND ck = 1", vec![]),
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
            // A statement without a condition adds no columns, but reports
            // the row it addresses.
            vec![
                Some(CqlValue::Boolean(true)),
                Some(int(1)),
                Some(int(1)),
                Some(int(10))
            ],
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

fn decimal(unscaled: i128, scale: i32) -> CqlValue {
    CqlValue::Decimal {
        unscaled: scylla_shard::protocol::value::varint_from_i128(unscaled),
        scale,
    }
}

#[test]
fn selector_functions_aggregates_and_casts() {
    let emulator = Emulator::start("127.0.92.7", &[]);
    let mut c = emulator.client();
    c.setup(&[
        "CREATE TABLE ks.m (k int, ck int, v int, d double, de decimal, t text, \
               ts timestamp, tu timeuuid, dt date, PRIMARY KEY (k, ck))",
    ]);
    for (ck, v) in [(1, 10), (2, 20), (3, 35)] {
        c.query(
            &format!(
                "INSERT INTO ks.m (k, ck, v, d, de, t, ts, tu, dt) VALUES (1, {ck}, {v}, {ck}.5, {v}.25, 't{ck}', \
                 '2011-02-03 04:05:0{ck}+0000', e4b2a250-8b2a-11ee-b9d1-0242ac12000{ck}, '2024-02-2{ck}')"
            ),
            vec![],
        );
    }
    c.query("INSERT INTO ks.m (k, ck, v) VALUES (2, 1, 100)", vec![]);

    // Aggregates, named as Scylla names them.
    let agg = c.query(
        "SELECT count(*), count(d), min(v), max(t), sum(v), avg(v), sum(d), avg(de), sum(de) FROM ks.m WHERE k = 1",
        vec![],
    );
    assert_eq!(
        agg.columns,
        [
            "count",
            "system.count(d)",
            "system.min(v)",
            "system.max(t)",
            "system.sum(v)",
            "system.avg(v)",
            "system.sum(d)",
            "system.avg(de)",
            "system.sum(de)"
        ]
    );
    assert_eq!(
        agg.rows,
        vec![vec![
            Some(CqlValue::BigInt(3)),
            Some(CqlValue::BigInt(3)),
            Some(int(10)),
            Some(text("t3")),
            Some(int(65)),
            Some(int(21)),
            Some(CqlValue::Double(7.5)),
            Some(decimal(2192, 2)),
            Some(decimal(6575, 2)),
        ]]
    );
    // Over no rows: counts and sums are 0, min/max null; one row always.
    let empty = c.query(
        "SELECT count(*), sum(v), max(v) FROM ks.m WHERE k = 99",
        vec![],
    );
    assert_eq!(
        empty.rows,
        vec![vec![Some(CqlValue::BigInt(0)), Some(int(0)), None]]
    );
    // Plain columns beside aggregates come from the first row; GROUP BY
    // gives one row per group.
    let mixed = c.query("SELECT k, max(v) FROM ks.m WHERE k = 1", vec![]);
    assert_eq!(mixed.rows, vec![vec![Some(int(1)), Some(int(35))]]);
    let grouped = c.query("SELECT k, count(*), sum(v) FROM ks.m GROUP BY k", vec![]);
    let mut groups = grouped.rows.clone();
    groups.sort_by_key(|r| format!("{:?}", r[0]));
    assert_eq!(
        groups,
        vec![
            vec![Some(int(1)), Some(CqlValue::BigInt(3)), Some(int(65))],
            vec![Some(int(2)), Some(CqlValue::BigInt(1)), Some(int(100))],
        ]
    );
    let e = c.query_error("SELECT k, count(*) FROM ks.m GROUP BY ck", vec![]);
    assert!(
        e.message.starts_with("Group by currently only support"),
        "{}",
        e.message
    );

    // Time conversions.
    let times = c.query(
        "SELECT toUnixTimestamp(ts), toDate(ts), toTimestamp(tu), toUnixTimestamp(tu), toTimestamp(dt), \
         toDate(tu), tounixtimestamp(dt) FROM ks.m WHERE k = 1 AND ck = 1",
        vec![],
    );
    assert_eq!(times.columns[0], "system.tounixtimestamp(ts)");
    let tu_ms = 1_700_872_683_686; // e4b2a250-8b2a-11ee: 2023-11-25 00:38:03.686 UTC
    let row = &times.rows[0];
    assert_eq!(row[0], Some(CqlValue::BigInt(1_296_705_901_000)));
    assert_eq!(row[1], Some(CqlValue::Date((1u32 << 31) + 15_008)));
    assert_eq!(row[2], Some(CqlValue::Timestamp(tu_ms)), "{row:?}");
    assert_eq!(row[3], Some(CqlValue::BigInt(tu_ms)));
    assert_eq!(row[4], Some(CqlValue::Timestamp(19_774 * 86_400_000)));
    assert_eq!(row[5], Some(CqlValue::Date((1u32 << 31) + 19_686)));
    assert_eq!(row[6], Some(CqlValue::BigInt(19_774 * 86_400_000)));

    // CAST, and functions of casts and aggregates.
    let casts = c.query(
        "SELECT CAST(v AS text), cast(v as double), cast(d AS int), cast(ts AS text), cast(de AS text), \
         cast(max(v) AS bigint) FROM ks.m WHERE k = 1 AND ck = 1",
        vec![],
    );
    assert_eq!(casts.columns[0], "cast(v as text)");
    assert_eq!(
        casts.rows[0],
        vec![
            Some(text("10")),
            Some(CqlValue::Double(10.0)),
            Some(int(1)),
            Some(text("2011-02-03T04:05:01.000Z")),
            Some(text("10.25")),
            Some(CqlValue::BigInt(10)),
        ]
    );
    let e = c.query_error("SELECT cast(ts AS int) FROM ks.m WHERE k = 1", vec![]);
    assert_eq!(e.message, "timestamp cannot be cast to int");
    // Blob conversions and aliases.
    let blobs = c.query(
        "SELECT intAsBlob(v) AS b, blobAsInt(intAsBlob(v)) FROM ks.m WHERE k = 2",
        vec![],
    );
    assert_eq!(
        blobs.columns,
        ["b", "system.blobasint(system.intasblob(v))"]
    );
    assert_eq!(
        blobs.rows[0],
        vec![Some(CqlValue::Blob(vec![0, 0, 0, 100])), Some(int(100))]
    );
    // Unknown functions and wrong arguments are refused in CQL terms.
    let e = c.query_error("SELECT nosuchfn(v) FROM ks.m", vec![]);
    assert_eq!(e.message, "Unknown function 'nosuchfn'");
    let e = c.query_error("SELECT sum(t) FROM ks.m", vec![]);
    assert!(
        e.message.contains("none of its type signatures match"),
        "{}",
        e.message
    );
}

#[test]
fn json_in_and_out() {
    let emulator = Emulator::start("127.0.92.8", &[]);
    let mut c = emulator.client();
    c.setup(&[
        "CREATE TYPE ks.addr (street text, zip int)",
        "CREATE TABLE ks.j (k int PRIMARY KEY, \"Mixed\" text, l list<int>, s set<text>, \
         m map<int, text>, ts timestamp, b blob, u uuid, a frozen<addr>, d double, n int)",
    ]);
    c.query(
        r#"INSERT INTO ks.j JSON '{"k": 1, "\"Mixed\"": "x\"y", "l": [3, 1], "s": ["b", "a", "b"], "m": {"2": "two", "1": "one"}, "ts": "2011-02-03 04:05:00.000Z", "b": "0xcafe", "u": "550e8400-e29b-41d4-a716-446655440000", "a": {"street": "Main", "zip": 7}, "d": 1.5}'"#,
        vec![],
    );
    let json = c.query("SELECT JSON * FROM ks.j WHERE k = 1", vec![]);
    assert_eq!(json.columns, ["[json]"]);
    assert_eq!(
        json.single(),
        Some(text(
            r#"{"k": 1, "\"Mixed\"": "x\"y", "a": {"street": "Main", "zip": 7}, "b": "0xcafe", "d": 1.5, "l": [3, 1], "m": {"1": "one", "2": "two"}, "n": null, "s": ["a", "b"], "ts": "2011-02-03 04:05:00.000Z", "u": "550e8400-e29b-41d4-a716-446655440000"}"#
        ))
    );
    let to_json = c.query(
        "SELECT toJson(m), toJson(a), toJson(k) FROM ks.j WHERE k = 1",
        vec![],
    );
    assert_eq!(to_json.columns[0], "system.tojson(m)");
    assert_eq!(
        to_json.rows[0],
        vec![
            Some(text(r#"{"1": "one", "2": "two"}"#)),
            Some(text(r#"{"street": "Main", "zip": 7}"#)),
            Some(text("1")),
        ]
    );
    let named = c.query("SELECT JSON k, max(n) AS top FROM ks.j WHERE k = 1", vec![]);
    assert_eq!(named.single(), Some(text(r#"{"k": 1, "top": null}"#)));
    // Omitted columns become null, unless DEFAULT UNSET; bound JSON works.
    c.query("UPDATE ks.j SET n = 5 WHERE k = 1", vec![]);
    c.query(
        r#"INSERT INTO ks.j JSON '{"k": 1, "d": 2.5}' DEFAULT UNSET"#,
        vec![],
    );
    let kept = c.query("SELECT n, d FROM ks.j WHERE k = 1", vec![]);
    assert_eq!(
        kept.rows[0],
        vec![Some(int(5)), Some(CqlValue::Double(2.5))]
    );
    let prepared = c.prepare("INSERT INTO ks.j JSON ?");
    c.execute(&prepared.id, vec![bound(text(r#"{"k": 1, "d": 3.5}"#))]);
    let replaced = c.query("SELECT n, d, l FROM ks.j WHERE k = 1", vec![]);
    assert_eq!(
        replaced.rows[0],
        vec![None, Some(CqlValue::Double(3.5)), None]
    );
    // fromJson in VALUES and SET.
    c.query(
        "INSERT INTO ks.j (k, s) VALUES (2, fromJson('[\"z\", \"y\"]'))",
        vec![],
    );
    c.query(
        "UPDATE ks.j SET m = fromJson('{\"9\": \"nine\"}') WHERE k = 2",
        vec![],
    );
    let from = c.query("SELECT s, m FROM ks.j WHERE k = 2", vec![]);
    assert_eq!(
        from.rows[0],
        vec![
            Some(set(vec![text("y"), text("z")])),
            Some(map(vec![(int(9), text("nine"))])),
        ]
    );
    // Errors name the problem.
    let e = c.query_error(r#"INSERT INTO ks.j JSON '{"k": 3, "nope": 1}'"#, vec![]);
    assert_eq!(
        e.message,
        "JSON values map contains unrecognized column: nope"
    );
    let e = c.query_error(r#"INSERT INTO ks.j JSON '{"d": 1}'"#, vec![]);
    assert_eq!(e.message, "Missing mandatory PRIMARY KEY part k");
    let e = c.query_error("INSERT INTO ks.j JSON '{\"k\": 1,'", vec![]);
    assert!(
        e.message.starts_with("Could not decode JSON string"),
        "{}",
        e.message
    );
}

#[test]
fn unsupported_syntax_is_reported_in_cql_terms() {
    let emulator = Emulator::start("127.0.92.9", &[]);
    let mut c = emulator.client();
    c.setup(&["CREATE TABLE ks.u (k int PRIMARY KEY, m map<text, int>, v int)"]);
    for (query, fragment) in [
        ("SELECT ks.myfn(v) FROM ks.u", "ks.myfn"),
        (
            "SELECT * FROM ks.u WHERE m['a'] = 1 ALLOW FILTERING",
            "m['a'] = 1",
        ),
        (
            "SELECT * FROM ks.u WHERE v IS NOT NULL ALLOW FILTERING",
            "v IS NOT NULL",
        ),
    ] {
        let e = c.query_error(query, vec![]);
        assert_eq!(e.code, error_code::INVALID, "{query}");
        assert!(e.message.contains(fragment), "{query}: {}", e.message);
        for debug in ["QualifiedName", "Selector", "Term::", "Literal(", "{ "] {
            assert!(
                !e.message.contains(debug),
                "{query}: Rust debug output: {}",
                e.message
            );
        }
    }
}
