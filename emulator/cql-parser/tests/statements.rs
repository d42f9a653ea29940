//! Real-world statements as sent by drivers and applications.

use cql_parser::*;

fn parse(text: &str) -> Statement {
    match parse_statement(text) {
        Ok(s) => s,
        Err(e) => panic!("failed to parse {text:?}: {e}"),
    }
}

fn select(text: &str) -> Select {
    match parse(text) {
        Statement::Select(s) => s,
        other => panic!("not a select: {other:?}"),
    }
}

fn int(t: &str) -> Term {
    Term::Literal(Literal::Integer(t.to_string()))
}

fn string(t: &str) -> Term {
    Term::Literal(Literal::String(t.to_string()))
}

fn marker(index: usize) -> Term {
    Term::BindMarker(BindMarker { index, name: None })
}

fn col(name: &str) -> SelectItem {
    SelectItem {
        selector: Selector::Column(name.to_string()),
        alias: None,
    }
}

fn eq(column: &str, value: Term) -> Relation {
    Relation::Column {
        column: column.to_string(),
        predicate: Predicate::Compare {
            op: Operator::Eq,
            value,
        },
    }
}

fn ms(n: i64) -> Term {
    Term::Literal(Literal::Duration(Duration {
        months: 0,
        days: 0,
        nanoseconds: n * 1_000_000,
    }))
}

#[test]
fn driver_peers_query_with_timeout() {
    let s = select(
        "SELECT peer, data_center, host_id, rack, release_version, rpc_address, schema_version, tokens FROM system.peers USING TIMEOUT 2000ms",
    );
    assert_eq!(s.table, QualifiedName::qualified("system", "peers"));
    let Selection::Items(items) = &s.selection else {
        panic!()
    };
    assert_eq!(items.len(), 8);
    assert_eq!(items[0], col("peer"));
    assert_eq!(items[7], col("tokens"));
    assert!(s.where_clause.is_empty());
    assert_eq!(s.timeout, Some(ms(2000)));
}

#[test]
fn driver_local_query_with_where_and_timeout() {
    let s = select(
        "SELECT broadcast_address, cluster_name, data_center, host_id, listen_address, partitioner, rack, release_version, rpc_address, schema_version, tokens FROM system.local WHERE key='local' USING TIMEOUT 2000ms",
    );
    assert_eq!(s.table, QualifiedName::qualified("system", "local"));
    assert_eq!(s.where_clause, vec![eq("key", string("local"))]);
    assert_eq!(s.timeout, Some(ms(2000)));
    let s = select("SELECT * FROM system.local WHERE key='local' USING TIMEOUT 30000ms");
    assert_eq!(s.timeout, Some(ms(30000)));
}

#[test]
fn schema_queries() {
    let s = select(
        "SELECT * FROM system_schema.tables WHERE keyspace_name = 'ks' AND table_name = 't'",
    );
    assert_eq!(s.selection, Selection::Star);
    assert_eq!(
        s.where_clause,
        vec![
            eq("keyspace_name", string("ks")),
            eq("table_name", string("t"))
        ]
    );

    let stmt = parse(
        "SELECT keyspace_name, initial_tablets FROM system_schema.scylla_keyspaces where keyspace_name in ? USING TIMEOUT 30000ms",
    );
    let Statement::Select(s) = &stmt else {
        panic!()
    };
    assert_eq!(
        s.where_clause,
        vec![Relation::Column {
            column: "keyspace_name".into(),
            predicate: Predicate::In(InValues::Marker(BindMarker {
                index: 0,
                name: None
            })),
        }]
    );
    assert_eq!(s.timeout, Some(ms(30000)));
    let vars = stmt.bind_variables();
    assert_eq!(vars.len(), 1);
    assert_eq!(
        vars[0].receiver,
        BindReceiver::InList {
            column: "keyspace_name".into(),
            path: vec![]
        }
    );
    assert_eq!(vars[0].name(), "in(keyspace_name)");

    let s = select(
        "SELECT * FROM system_schema.keyspaces where keyspace_name in ? USING TIMEOUT 30000ms",
    );
    assert_eq!(s.table.name, "keyspaces");
}

#[test]
fn create_keyspace_with_tablets() {
    let Statement::CreateKeyspace(ks) = parse(
        "CREATE KEYSPACE IF NOT EXISTS ks WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 3} AND tablets = {'enabled': true, 'initial': 8}",
    ) else {
        panic!()
    };
    assert_eq!(ks.name, "ks");
    assert!(ks.if_not_exists);
    assert_eq!(
        ks.options
            .get("replication")
            .unwrap()
            .as_text_map()
            .unwrap(),
        vec![
            ("class".to_string(), "NetworkTopologyStrategy".to_string()),
            ("dc1".to_string(), "3".to_string())
        ]
    );
    assert_eq!(
        ks.options.get("tablets"),
        Some(&OptionValue::Map(vec![
            (Literal::String("enabled".into()), Literal::Boolean(true)),
            (
                Literal::String("initial".into()),
                Literal::Integer("8".into())
            ),
        ]))
    );

    let Statement::CreateKeyspace(ks) = parse(
        "create keyspace \"MyKs\" with REPLICATION = {'class' : 'SimpleStrategy', 'replication_factor' : '1'} and durable_writes = false;",
    ) else {
        panic!()
    };
    assert_eq!(ks.name, "MyKs");
    assert_eq!(
        ks.options.get("durable_writes"),
        Some(&OptionValue::Literal(Literal::Boolean(false)))
    );
    assert_eq!(ks.options.entries.len(), 2);

    // Duplicated options are rejected.
    assert!(parse_statement("CREATE KEYSPACE ks WITH a = 1 AND a = 2").is_err());
    // Replication is required syntax-wise (WITH is mandatory).
    assert!(parse_statement("CREATE KEYSPACE ks").is_err());
}

#[test]
fn alter_and_drop_keyspace() {
    let Statement::AlterKeyspace(a) = parse(
        "ALTER KEYSPACE ks WITH replication = {'class': 'NetworkTopologyStrategy', 'replication_factor': 1}",
    ) else {
        panic!()
    };
    assert_eq!(a.name, "ks");
    assert_eq!(
        parse("DROP KEYSPACE IF EXISTS ks"),
        Statement::DropKeyspace(DropKeyspace {
            name: "ks".into(),
            if_exists: true
        })
    );
    assert_eq!(
        parse("drop schema ks;"),
        Statement::DropKeyspace(DropKeyspace {
            name: "ks".into(),
            if_exists: false
        })
    );
}

#[test]
fn create_table_full() {
    let Statement::CreateTable(t) = parse(
        "CREATE TABLE ks.t (pk int, ck text, v map<text, frozen<list<int>>>, s int static, PRIMARY KEY ((pk), ck)) WITH CLUSTERING ORDER BY (ck DESC) AND compaction = {'class': 'SizeTieredCompactionStrategy'}",
    ) else {
        panic!()
    };
    assert_eq!(t.name, QualifiedName::qualified("ks", "t"));
    assert!(!t.if_not_exists);
    assert_eq!(
        t.columns,
        vec![
            ColumnDef {
                name: "pk".into(),
                ty: CqlType::Native(NativeType::Int),
                is_static: false
            },
            ColumnDef {
                name: "ck".into(),
                ty: CqlType::Native(NativeType::Text),
                is_static: false
            },
            ColumnDef {
                name: "v".into(),
                ty: CqlType::Map(
                    Box::new(CqlType::Native(NativeType::Text)),
                    Box::new(CqlType::Frozen(Box::new(CqlType::List(Box::new(
                        CqlType::Native(NativeType::Int)
                    )))))
                ),
                is_static: false
            },
            ColumnDef {
                name: "s".into(),
                ty: CqlType::Native(NativeType::Int),
                is_static: true
            },
        ]
    );
    assert_eq!(t.columns[2].ty.to_string(), "map<text, frozen<list<int>>>");
    assert_eq!(t.partition_key, vec!["pk"]);
    assert_eq!(t.clustering_key, vec!["ck"]);
    assert_eq!(t.clustering_order, vec![("ck".to_string(), Order::Desc)]);
    assert_eq!(
        t.options.get("compaction").unwrap().as_text_map().unwrap(),
        vec![(
            "class".to_string(),
            "SizeTieredCompactionStrategy".to_string()
        )]
    );
}

#[test]
fn create_table_keys() {
    let Statement::CreateTable(t) = parse(
        "CREATE TABLE IF NOT EXISTS t (a int, b int, c int, d int, e text, PRIMARY KEY ((a, b), c, d)) WITH comment = 'x' AND CLUSTERING ORDER BY (c ASC, d DESC) AND gc_grace_seconds = 0",
    ) else {
        panic!()
    };
    assert!(t.if_not_exists);
    assert_eq!(t.name, QualifiedName::unqualified("t"));
    assert_eq!(t.partition_key, vec!["a", "b"]);
    assert_eq!(t.clustering_key, vec!["c", "d"]);
    assert_eq!(
        t.clustering_order,
        vec![
            ("c".to_string(), Order::Asc),
            ("d".to_string(), Order::Desc)
        ]
    );
    assert_eq!(
        t.options.get("comment").unwrap().as_text().as_deref(),
        Some("x")
    );
    assert_eq!(t.options.entries.len(), 2);

    // Inline primary key.
    let Statement::CreateTable(t) = parse("CREATE TABLE t (k uuid PRIMARY KEY, v varchar)") else {
        panic!()
    };
    assert_eq!(t.partition_key, vec!["k"]);
    assert!(t.clustering_key.is_empty());
    assert_eq!(t.columns[1].ty, CqlType::Native(NativeType::Text));

    // Single-column partition key without inner parentheses.
    let Statement::CreateTable(t) =
        parse("CREATE TABLE t (k int, c int, v int, PRIMARY KEY (k, c))")
    else {
        panic!()
    };
    assert_eq!(t.partition_key, vec!["k"]);
    assert_eq!(t.clustering_key, vec!["c"]);

    // Quoted names keep their case; unquoted are lowercased.
    let Statement::CreateTable(t) = parse(
        "CREATE TABLE \"MyKs\".\"MyTable\" (\"Key\" int PRIMARY KEY, Value text) WITH COMPACT STORAGE",
    ) else {
        panic!()
    };
    assert_eq!(t.name, QualifiedName::qualified("MyKs", "MyTable"));
    assert_eq!(t.columns[0].name, "Key");
    assert_eq!(t.columns[1].name, "value");
    assert!(t.compact_storage);

    assert!(parse_statement("CREATE TABLE t (a int PRIMARY KEY, b int, PRIMARY KEY (b))").is_err());
    // No primary key is a semantic error left to the server.
    let Statement::CreateTable(t) = parse("CREATE TABLE t (a int)") else {
        panic!()
    };
    assert!(t.partition_key.is_empty());
}

#[test]
fn alter_table() {
    let alter = |text: &str| match parse(text) {
        Statement::AlterTable(a) => a.action,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        alter("ALTER TABLE ks.t ADD x int"),
        AlterTableAction::Add(vec![ColumnDef {
            name: "x".into(),
            ty: CqlType::Native(NativeType::Int),
            is_static: false
        }])
    );
    assert_eq!(
        alter("ALTER TABLE t ADD (x int, y set<text> static)"),
        AlterTableAction::Add(vec![
            ColumnDef {
                name: "x".into(),
                ty: CqlType::Native(NativeType::Int),
                is_static: false
            },
            ColumnDef {
                name: "y".into(),
                ty: CqlType::Set(Box::new(CqlType::Native(NativeType::Text))),
                is_static: true
            }
        ])
    );
    assert_eq!(
        alter("ALTER TABLE t DROP x"),
        AlterTableAction::Drop {
            columns: vec!["x".into()],
            timestamp: None
        }
    );
    assert_eq!(
        alter("ALTER TABLE t DROP (x, y) USING TIMESTAMP 5"),
        AlterTableAction::Drop {
            columns: vec!["x".into(), "y".into()],
            timestamp: Some(int("5"))
        }
    );
    assert_eq!(
        alter("ALTER TABLE t RENAME a TO b AND c TO d"),
        AlterTableAction::Rename(vec![("a".into(), "b".into()), ("c".into(), "d".into())])
    );
    assert_eq!(
        alter("ALTER TABLE t ALTER v TYPE blob"),
        AlterTableAction::AlterType {
            column: "v".into(),
            ty: CqlType::Native(NativeType::Blob)
        }
    );
    let AlterTableAction::Options(o) =
        alter("ALTER TABLE t WITH comment = 'c' AND default_time_to_live = 10")
    else {
        panic!()
    };
    assert_eq!(o.entries.len(), 2);
}

#[test]
fn types_and_drops() {
    let Statement::CreateType(t) = parse(
        "CREATE TYPE IF NOT EXISTS ks.address (street text, zip int, tags frozen<set<text>>)",
    ) else {
        panic!()
    };
    assert!(t.if_not_exists);
    assert_eq!(t.name, QualifiedName::qualified("ks", "address"));
    assert_eq!(t.fields.len(), 3);
    assert_eq!(t.fields[2].1.to_string(), "frozen<set<text>>");

    assert_eq!(
        parse("ALTER TYPE address ADD country text"),
        Statement::AlterType(AlterType {
            name: QualifiedName::unqualified("address"),
            action: AlterTypeAction::Add {
                field: "country".into(),
                ty: CqlType::Native(NativeType::Text)
            }
        })
    );
    assert_eq!(
        parse("DROP TYPE IF EXISTS ks.address"),
        Statement::DropType(DropObject {
            name: QualifiedName::qualified("ks", "address"),
            if_exists: true
        })
    );
    assert_eq!(
        parse("DROP TABLE ks.t"),
        Statement::DropTable(DropObject {
            name: QualifiedName::qualified("ks", "t"),
            if_exists: false
        })
    );
    assert_eq!(
        parse("DROP INDEX ks.idx"),
        Statement::DropIndex(DropObject {
            name: QualifiedName::qualified("ks", "idx"),
            if_exists: false
        })
    );
    assert_eq!(
        parse("DROP MATERIALIZED VIEW IF EXISTS mv"),
        Statement::DropMaterializedView(DropObject {
            name: QualifiedName::unqualified("mv"),
            if_exists: true
        })
    );
    assert_eq!(
        parse("TRUNCATE TABLE ks.t"),
        Statement::Truncate(Truncate {
            table: QualifiedName::qualified("ks", "t"),
            timeout: None
        })
    );
    assert_eq!(
        parse("truncate t using timeout 10s"),
        Statement::Truncate(Truncate {
            table: QualifiedName::unqualified("t"),
            timeout: Some(ms(10_000))
        })
    );
    assert_eq!(parse("USE \"MyKs\""), Statement::Use("MyKs".into()));
    assert_eq!(parse("use Ks;"), Statement::Use("ks".into()));
}

#[test]
fn indexes_and_views() {
    let Statement::CreateIndex(i) = parse("CREATE INDEX IF NOT EXISTS idx ON ks.t (v)") else {
        panic!()
    };
    assert_eq!(i.name.as_deref(), Some("idx"));
    assert!(i.if_not_exists);
    assert_eq!(i.targets, vec![IndexTarget::Column("v".into())]);

    let Statement::CreateIndex(i) = parse("CREATE INDEX ON t (keys(m))") else {
        panic!()
    };
    assert_eq!(i.name, None);
    assert_eq!(i.targets, vec![IndexTarget::Keys("m".into())]);

    let Statement::CreateIndex(i) = parse("CREATE INDEX local_idx ON t ((pk), v)") else {
        panic!()
    };
    assert_eq!(
        i.targets,
        vec![
            IndexTarget::PartitionKey(vec!["pk".into()]),
            IndexTarget::Column("v".into())
        ]
    );

    let Statement::CreateIndex(i) = parse(
        "CREATE CUSTOM INDEX ON t (v) USING 'org.apache.cassandra.index.sasi.SASIIndex' WITH OPTIONS = {'mode': 'CONTAINS'}",
    ) else {
        panic!()
    };
    assert_eq!(
        i.custom_class.as_deref(),
        Some("org.apache.cassandra.index.sasi.SASIIndex")
    );
    assert!(i.options.get("options").is_some());

    let Statement::CreateMaterializedView(v) = parse(
        "CREATE MATERIALIZED VIEW ks.mv AS SELECT * FROM ks.t WHERE v IS NOT NULL AND pk IS NOT NULL PRIMARY KEY (v, pk) WITH CLUSTERING ORDER BY (pk DESC) AND comment = 'mv'",
    ) else {
        panic!()
    };
    assert_eq!(v.base_table, QualifiedName::qualified("ks", "t"));
    assert_eq!(
        v.where_clause,
        vec![
            Relation::IsNotNull { column: "v".into() },
            Relation::IsNotNull {
                column: "pk".into()
            }
        ]
    );
    assert_eq!(v.partition_key, vec!["v"]);
    assert_eq!(v.clustering_key, vec!["pk"]);
    assert_eq!(v.clustering_order, vec![("pk".to_string(), Order::Desc)]);
}

#[test]
fn insert_if_not_exists_using_ttl() {
    let stmt = parse("INSERT INTO ks.t (pk, ck, v) VALUES (?, ?, ?) IF NOT EXISTS USING TTL 10");
    let Statement::Insert(i) = &stmt else {
        panic!()
    };
    assert_eq!(i.table, QualifiedName::qualified("ks", "t"));
    assert_eq!(i.columns, vec!["pk", "ck", "v"]);
    assert_eq!(i.values, vec![marker(0), marker(1), marker(2)]);
    assert!(i.if_not_exists);
    assert_eq!(i.using.ttl, Some(int("10")));
    assert_eq!(stmt.bind_marker_count(), 3);
    let names: Vec<String> = stmt.bind_variables().iter().map(|v| v.name()).collect();
    assert_eq!(names, ["pk", "ck", "v"]);

    // Cassandra's own order, and all USING options.
    let stmt =
        parse("INSERT INTO t (a, b) VALUES (1, 'x') USING TTL ? AND TIMESTAMP ? AND TIMEOUT 500ms");
    let Statement::Insert(i) = &stmt else {
        panic!()
    };
    assert_eq!(i.using.ttl, Some(marker(0)));
    assert_eq!(i.using.timestamp, Some(marker(1)));
    assert_eq!(i.using.timeout, Some(ms(500)));
    let names: Vec<String> = stmt.bind_variables().iter().map(|v| v.name()).collect();
    assert_eq!(names, ["[ttl]", "[timestamp]"]);

    assert!(parse_statement("INSERT INTO t (a, b) VALUES (1)").is_err());
    assert!(parse_statement("INSERT INTO t (a) VALUES (1) USING TTL 1 AND TTL 2").is_err());
}

#[test]
fn insert_json() {
    let Statement::InsertJson(i) =
        parse("INSERT INTO t JSON '{\"a\": 1}' DEFAULT UNSET IF NOT EXISTS")
    else {
        panic!()
    };
    assert_eq!(i.json, string("{\"a\": 1}"));
    assert!(i.default_unset);
    assert!(i.if_not_exists);
    let stmt = parse("INSERT INTO t JSON ?");
    assert_eq!(stmt.bind_variables()[0].receiver, BindReceiver::Json);
}

#[test]
fn update_with_collections_counters_and_condition() {
    let stmt = parse(
        "UPDATE t USING TIMESTAMP 5 SET v = v + {'a': [1]}, n = n + 1 WHERE pk = 1 AND ck = 'x' IF n = 3",
    );
    let Statement::Update(u) = &stmt else {
        panic!()
    };
    assert_eq!(u.table, QualifiedName::unqualified("t"));
    assert_eq!(u.using.timestamp, Some(int("5")));
    assert_eq!(
        u.assignments,
        vec![
            Assignment::Add {
                column: "v".into(),
                value: Term::Map(vec![(string("a"), Term::List(vec![int("1")]))])
            },
            Assignment::Add {
                column: "n".into(),
                value: int("1")
            },
        ]
    );
    assert_eq!(
        u.where_clause,
        vec![eq("pk", int("1")), eq("ck", string("x"))]
    );
    assert_eq!(
        u.condition,
        Some(Condition::Columns(vec![ColumnCondition {
            target: ConditionTarget::Column("n".into()),
            predicate: Predicate::Compare {
                op: Operator::Eq,
                value: int("3")
            }
        }]))
    );
}

#[test]
fn update_assignment_forms() {
    let assignments = |text: &str| match parse(text) {
        Statement::Update(u) => u.assignments,
        other => panic!("{other:?}"),
    };
    let a = assignments(
        "UPDATE t SET l = [0] + l, c = c - 1, d = d -2, m['k'] = 'v', u.f = 3, s += {1}, s2 -= {2}, x = null WHERE k = 0",
    );
    assert_eq!(
        a,
        vec![
            Assignment::Prepend {
                column: "l".into(),
                value: Term::List(vec![int("0")])
            },
            Assignment::Subtract {
                column: "c".into(),
                value: int("1")
            },
            Assignment::Subtract {
                column: "d".into(),
                value: int("2")
            },
            Assignment::SetElement {
                column: "m".into(),
                key: string("k"),
                value: string("v")
            },
            Assignment::SetField {
                column: "u".into(),
                field: "f".into(),
                value: int("3")
            },
            Assignment::Add {
                column: "s".into(),
                value: Term::Set(vec![int("1")])
            },
            Assignment::Subtract {
                column: "s2".into(),
                value: Term::Set(vec![int("2")])
            },
            Assignment::Set {
                column: "x".into(),
                value: Term::Literal(Literal::Null)
            },
        ]
    );
    // `c = d + 1` is not a valid CQL operation.
    let err = parse_statement("UPDATE t SET c = d + 1 WHERE k = 0").unwrap_err();
    assert!(err.message.contains("only expressions"), "{err}");
    // Negative constant assignment is not a subtraction.
    assert_eq!(
        assignments("UPDATE t SET c = -1 WHERE k = 0"),
        vec![Assignment::Set {
            column: "c".into(),
            value: int("-1")
        }]
    );
}

#[test]
fn delete_element_if_exists() {
    let stmt = parse("DELETE v['a'] FROM t WHERE pk = :p IF EXISTS");
    let Statement::Delete(d) = &stmt else {
        panic!()
    };
    assert_eq!(
        d.targets,
        vec![DeleteTarget::Element {
            column: "v".into(),
            key: string("a")
        }]
    );
    assert_eq!(
        d.where_clause,
        vec![eq(
            "pk",
            Term::BindMarker(BindMarker {
                index: 0,
                name: Some("p".into())
            })
        )]
    );
    assert_eq!(d.condition, Some(Condition::Exists));
    let vars = stmt.bind_variables();
    assert_eq!(vars[0].name(), "p");
    assert_eq!(vars[0].receiver.to_string(), "pk");

    let Statement::Delete(d) =
        parse("DELETE a, u.f FROM ks.t USING TIMESTAMP 10 WHERE pk = 1 IF a = 1 AND m['x'] != 2")
    else {
        panic!()
    };
    assert_eq!(
        d.targets,
        vec![
            DeleteTarget::Column("a".into()),
            DeleteTarget::Field {
                column: "u".into(),
                field: "f".into()
            }
        ]
    );
    assert_eq!(d.using.timestamp, Some(int("10")));
    let Some(Condition::Columns(conds)) = d.condition else {
        panic!()
    };
    assert_eq!(conds.len(), 2);
    assert_eq!(
        conds[1].target,
        ConditionTarget::Element {
            column: "m".into(),
            key: string("x")
        }
    );

    let Statement::Delete(d) = parse("DELETE FROM t WHERE pk = 1") else {
        panic!()
    };
    assert!(d.targets.is_empty());
}

#[test]
fn select_with_all_clauses() {
    let stmt = parse(
        "SELECT pk, ck, writetime(v) AS w FROM t WHERE pk IN (1,2) AND ck >= 'a' AND ck < 'z' ORDER BY ck DESC LIMIT ? ALLOW FILTERING",
    );
    let Statement::Select(s) = &stmt else {
        panic!()
    };
    assert_eq!(
        s.selection,
        Selection::Items(vec![
            col("pk"),
            col("ck"),
            SelectItem {
                selector: Selector::WriteTime("v".into()),
                alias: Some("w".into())
            }
        ])
    );
    assert_eq!(
        s.where_clause,
        vec![
            Relation::Column {
                column: "pk".into(),
                predicate: Predicate::In(InValues::List(vec![int("1"), int("2")]))
            },
            Relation::Column {
                column: "ck".into(),
                predicate: Predicate::Compare {
                    op: Operator::Gte,
                    value: string("a")
                }
            },
            Relation::Column {
                column: "ck".into(),
                predicate: Predicate::Compare {
                    op: Operator::Lt,
                    value: string("z")
                }
            },
        ]
    );
    assert_eq!(s.order_by, vec![("ck".to_string(), Order::Desc)]);
    assert_eq!(s.limit, Some(marker(0)));
    assert!(s.allow_filtering);
    assert_eq!(stmt.bind_variables()[0].receiver, BindReceiver::Limit);

    let s = select(
        "SELECT DISTINCT pk FROM t WHERE pk = 1 GROUP BY pk PER PARTITION LIMIT 2 LIMIT 10 ALLOW FILTERING BYPASS CACHE USING TIMEOUT 1s",
    );
    assert!(s.distinct);
    assert_eq!(s.group_by, vec!["pk"]);
    assert_eq!(s.per_partition_limit, Some(int("2")));
    assert_eq!(s.limit, Some(int("10")));
    assert!(s.bypass_cache);
    assert_eq!(s.timeout, Some(ms(1000)));
}

#[test]
fn select_token_ranges() {
    let stmt = parse("SELECT * FROM t WHERE token(pk) > ? AND token(pk) <= ?");
    let Statement::Select(s) = &stmt else {
        panic!()
    };
    assert_eq!(
        s.where_clause,
        vec![
            Relation::Token {
                columns: vec!["pk".into()],
                op: Operator::Gt,
                value: marker(0)
            },
            Relation::Token {
                columns: vec!["pk".into()],
                op: Operator::Lte,
                value: marker(1)
            },
        ]
    );
    let vars = stmt.bind_variables();
    assert_eq!(vars.len(), 2);
    assert_eq!(vars[1].name(), "partition key token");
    assert_eq!(
        vars[0].receiver,
        BindReceiver::Token {
            columns: vec!["pk".into()]
        }
    );

    let s = select("SELECT token(a, b), a FROM ks.t WHERE token(a, b) >= token(1, 2)");
    assert_eq!(
        s.where_clause[0],
        Relation::Token {
            columns: vec!["a".into(), "b".into()],
            op: Operator::Gte,
            value: Term::FunctionCall {
                name: QualifiedName::unqualified("token"),
                args: vec![int("1"), int("2")]
            }
        }
    );
}

#[test]
fn select_selectors() {
    assert_eq!(
        select("SELECT COUNT(*) FROM t").selection,
        Selection::Items(vec![SelectItem {
            selector: Selector::CountRows,
            alias: None
        }])
    );
    assert_eq!(
        select("SELECT count(1) AS n FROM t").selection,
        Selection::Items(vec![SelectItem {
            selector: Selector::CountRows,
            alias: Some("n".into())
        }])
    );
    let s = select(
        "SELECT ttl(v), toJson(m), CAST(x AS text), system.now(), max(ck), u.street, m['k'], count, \"Weird\" FROM t",
    );
    let Selection::Items(items) = s.selection else {
        panic!()
    };
    let sels: Vec<Selector> = items.into_iter().map(|i| i.selector).collect();
    assert_eq!(
        sels,
        vec![
            Selector::Ttl("v".into()),
            Selector::Function {
                name: QualifiedName::unqualified("tojson"),
                args: vec![Selector::Column("m".into())]
            },
            Selector::Cast {
                selector: Box::new(Selector::Column("x".into())),
                ty: CqlType::Native(NativeType::Text)
            },
            Selector::Function {
                name: QualifiedName::qualified("system", "now"),
                args: vec![]
            },
            Selector::Function {
                name: QualifiedName::unqualified("max"),
                args: vec![Selector::Column("ck".into())]
            },
            Selector::Field {
                selector: Box::new(Selector::Column("u".into())),
                field: "street".into()
            },
            Selector::Element {
                selector: Box::new(Selector::Column("m".into())),
                key: string("k")
            },
            Selector::Column("count".into()),
            Selector::Column("Weird".into()),
        ]
    );

    // JSON / DISTINCT as modifiers versus as column names.
    let s = select("SELECT JSON * FROM t");
    assert!(s.json && s.selection == Selection::Star);
    let s = select("SELECT json FROM t");
    assert!(!s.json);
    assert_eq!(s.selection, Selection::Items(vec![col("json")]));
    let s = select("SELECT distinct, json FROM t");
    assert!(!s.distinct && !s.json);
    let s = select("SELECT JSON DISTINCT pk FROM t");
    assert!(s.json && s.distinct);
    let s = select("SELECT blobAsText(0xcafe), count(v) FROM t");
    let Selection::Items(items) = s.selection else {
        panic!()
    };
    assert_eq!(
        items[0].selector,
        Selector::Function {
            name: QualifiedName::unqualified("blobastext"),
            args: vec![Selector::Term(Term::Literal(Literal::Blob(vec![
                0xca, 0xfe
            ])))]
        }
    );
}

#[test]
fn multi_column_relations() {
    let stmt = parse(
        "SELECT * FROM t WHERE pk = 0 AND (c1, c2) > (1, ?) AND (c1, c2) IN ((1, 2), (?, 4)) AND (c1, c2) <= ? AND (c1, c2) IN ?",
    );
    let Statement::Select(s) = &stmt else {
        panic!()
    };
    assert_eq!(
        s.where_clause[1],
        Relation::MultiColumn {
            columns: vec!["c1".into(), "c2".into()],
            predicate: Predicate::Compare {
                op: Operator::Gt,
                value: Term::Tuple(vec![int("1"), marker(0)])
            }
        }
    );
    assert_eq!(
        s.where_clause[2],
        Relation::MultiColumn {
            columns: vec!["c1".into(), "c2".into()],
            predicate: Predicate::In(InValues::List(vec![
                Term::Tuple(vec![int("1"), int("2")]),
                Term::Tuple(vec![marker(1), int("4")]),
            ]))
        }
    );
    let names: Vec<String> = stmt.bind_variables().iter().map(|v| v.name()).collect();
    assert_eq!(names, ["c2", "c1", "(c1,c2)", "in((c1,c2))"]);
}

#[test]
fn other_relations() {
    let s = select(
        "SELECT * FROM t WHERE tags CONTAINS 'x' AND m CONTAINS KEY 'k' AND m['k'] = 'v' AND name LIKE 'a%' AND a != 1 AND x IN () ALLOW FILTERING",
    );
    assert_eq!(s.where_clause.len(), 6);
    assert!(matches!(
        &s.where_clause[1],
        Relation::Column {
            predicate: Predicate::Compare {
                op: Operator::ContainsKey,
                ..
            },
            ..
        }
    ));
    assert!(matches!(&s.where_clause[2], Relation::Element { .. }));
    assert_eq!(
        s.where_clause[5],
        Relation::Column {
            column: "x".into(),
            predicate: Predicate::In(InValues::List(vec![]))
        }
    );
}

#[test]
fn batches() {
    let stmt = parse(
        "BEGIN UNLOGGED BATCH USING TIMESTAMP ? INSERT INTO t (a, b) VALUES (?, ?); UPDATE t SET b = ? WHERE a = ?; DELETE FROM t WHERE a = ? APPLY BATCH;",
    );
    let Statement::Batch(b) = &stmt else { panic!() };
    assert_eq!(b.kind, BatchKind::Unlogged);
    assert_eq!(b.using.timestamp, Some(marker(0)));
    assert_eq!(b.statements.len(), 3);
    assert!(matches!(b.statements[0], Statement::Insert(_)));
    assert!(matches!(b.statements[1], Statement::Update(_)));
    assert!(matches!(b.statements[2], Statement::Delete(_)));
    let names: Vec<String> = stmt.bind_variables().iter().map(|v| v.name()).collect();
    assert_eq!(names, ["[timestamp]", "a", "b", "b", "a", "a"]);
    let indices: Vec<usize> = stmt
        .bind_variables()
        .iter()
        .map(|v| v.marker.index)
        .collect();
    assert_eq!(indices, [0, 1, 2, 3, 4, 5]);

    let Statement::Batch(b) =
        parse("begin counter batch update c set n = n + 1 where k = 1 apply batch")
    else {
        panic!()
    };
    assert_eq!(b.kind, BatchKind::Counter);
    let Statement::Batch(b) = parse("BEGIN BATCH APPLY BATCH") else {
        panic!()
    };
    assert_eq!(b.kind, BatchKind::Logged);
    assert!(b.statements.is_empty());
    assert!(parse_statement("BEGIN BATCH SELECT * FROM t APPLY BATCH").is_err());
    assert!(parse_statement("BEGIN BATCH INSERT INTO t (a) VALUES (1)").is_err());
}

#[test]
fn quoted_identifiers() {
    let s = select("SELECT \"Col\", \"a\"\"b\" FROM \"MyKs\".\"MyTable\" WHERE \"Col\" = 1");
    assert_eq!(s.table, QualifiedName::qualified("MyKs", "MyTable"));
    assert_eq!(s.selection, Selection::Items(vec![col("Col"), col("a\"b")]));
    assert_eq!(s.where_clause, vec![eq("Col", int("1"))]);
    // Unquoted identifiers and keywords are case-insensitive.
    let s = select("sElEcT MyCol FrOm MyTable");
    assert_eq!(s.selection, Selection::Items(vec![col("mycol")]));
    assert_eq!(s.table.name, "mytable");
    // Reserved words need quoting, unreserved ones do not.
    let s = select("SELECT key, value, ttl, type, \"from\" FROM t");
    assert_eq!(
        s.selection,
        Selection::Items(vec![
            col("key"),
            col("value"),
            col("ttl"),
            col("type"),
            col("from")
        ])
    );
    assert!(parse_statement("SELECT from FROM t").is_err());
}

#[test]
fn literals() {
    let values = |text: &str| match parse(text) {
        Statement::Insert(i) => i.values,
        other => panic!("{other:?}"),
    };
    let v = values(
        "INSERT INTO t (a, b, c, d, e, f, g, h, i, j, k, l) VALUES (-5, 3.25, -1.5e-3, NaN, -Infinity, 0xCAFE, 550e8400-e29b-41d4-a716-446655440000, 1h30m, true, 'it''s', $$raw'$$, 123456789012345678901234567890)",
    );
    assert_eq!(
        v,
        vec![
            int("-5"),
            Term::Literal(Literal::Float("3.25".into())),
            Term::Literal(Literal::Float("-1.5e-3".into())),
            Term::Literal(Literal::Float("NaN".into())),
            Term::Literal(Literal::Float("-Infinity".into())),
            Term::Literal(Literal::Blob(vec![0xca, 0xfe])),
            Term::Literal(Literal::Uuid([
                0x55, 0x0e, 0x84, 0x00, 0xe2, 0x9b, 0x41, 0xd4, 0xa7, 0x16, 0x44, 0x66, 0x55, 0x44,
                0x00, 0x00
            ])),
            Term::Literal(Literal::Duration(Duration {
                months: 0,
                days: 0,
                nanoseconds: 90 * 60_000_000_000
            })),
            Term::Literal(Literal::Boolean(true)),
            string("it's"),
            string("raw'"),
            int("123456789012345678901234567890"),
        ]
    );
    assert_eq!(v[6].to_string(), "550e8400-e29b-41d4-a716-446655440000");

    let v = values("INSERT INTO t (a, b, c) VALUES (-12mo3d, P1W, Infinity)");
    assert_eq!(
        v,
        vec![
            Term::Literal(Literal::Duration(Duration {
                months: -12,
                days: -3,
                nanoseconds: 0
            })),
            Term::Literal(Literal::Duration(Duration {
                months: 0,
                days: 7,
                nanoseconds: 0
            })),
            Term::Literal(Literal::Float("Infinity".into())),
        ]
    );
}

#[test]
fn collection_tuple_udt_literals() {
    let values = |text: &str| match parse(text) {
        Statement::Insert(i) => i.values,
        other => panic!("{other:?}"),
    };
    let v = values(
        "INSERT INTO t (l, s, m, e, tup, addr, one, nested) VALUES ([1, 2], {'a', 'b'}, {1: 'x', 2: 'y'}, {}, (1, 'a', null), {street: 'Main', \"Zip\": 12345, tags: {'x'}}, (7), [{k: [(1, 2)]}])",
    );
    assert_eq!(v[0], Term::List(vec![int("1"), int("2")]));
    assert_eq!(v[1], Term::Set(vec![string("a"), string("b")]));
    assert_eq!(
        v[2],
        Term::Map(vec![(int("1"), string("x")), (int("2"), string("y"))])
    );
    assert_eq!(v[3], Term::EmptyBraces);
    assert_eq!(
        v[4],
        Term::Tuple(vec![int("1"), string("a"), Term::Literal(Literal::Null)])
    );
    assert_eq!(
        v[5],
        Term::Udt(vec![
            ("street".into(), string("Main")),
            ("Zip".into(), int("12345")),
            ("tags".into(), Term::Set(vec![string("x")])),
        ])
    );
    assert_eq!(v[6], Term::Tuple(vec![int("7")]));
    assert_eq!(
        v[7],
        Term::List(vec![Term::Udt(vec![(
            "k".into(),
            Term::List(vec![Term::Tuple(vec![int("1"), int("2")])])
        )])])
    );
    let v = values("INSERT INTO t (a, b) VALUES ([], {:k: ?})");
    assert_eq!(v[0], Term::List(vec![]));
    assert_eq!(
        v[1],
        Term::Map(vec![(
            Term::BindMarker(BindMarker {
                index: 0,
                name: Some("k".into())
            }),
            marker(1)
        )])
    );
}

#[test]
fn functions_and_casts() {
    let values = |text: &str| match parse(text) {
        Statement::Insert(i) => i.values,
        other => panic!("{other:?}"),
    };
    let v = values(
        "INSERT INTO t (a, b, c, d, e, f) VALUES (now(), uuid(), toTimestamp(now()), currentTimestamp(), (bigint) 3, (frozen<list<int>>)[1])",
    );
    assert_eq!(
        v[0],
        Term::FunctionCall {
            name: QualifiedName::unqualified("now"),
            args: vec![]
        }
    );
    assert_eq!(
        v[2],
        Term::FunctionCall {
            name: QualifiedName::unqualified("totimestamp"),
            args: vec![Term::FunctionCall {
                name: QualifiedName::unqualified("now"),
                args: vec![]
            }]
        }
    );
    assert_eq!(
        v[4],
        Term::TypeCast {
            ty: CqlType::Native(NativeType::Bigint),
            term: Box::new(int("3"))
        }
    );
    assert_eq!(v[5].to_string(), "(frozen<list<int>>) [1]");
}

#[test]
fn comments_and_whitespace() {
    let s = select("-- leading comment\nSELECT /* inline */ a, // trailing\n b FROM t -- done\n ;");
    assert_eq!(s.selection, Selection::Items(vec![col("a"), col("b")]));
    let s = select("SELECT\ta\r\n,\tb FROM\n\nt;");
    assert_eq!(s.table.name, "t");
}

#[test]
fn scripts() {
    let stmts = parse_statements(
        "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1};\n\
         USE ks;\n\
         CREATE TABLE t (k int PRIMARY KEY, v text);\n\
         BEGIN BATCH INSERT INTO t (k, v) VALUES (?, 'a'); INSERT INTO t (k, v) VALUES (?, 'b'); APPLY BATCH;\n\
         SELECT * FROM t WHERE k = ?",
    )
    .unwrap();
    assert_eq!(stmts.len(), 5);
    assert_eq!(stmts[3].bind_marker_count(), 2);
    assert_eq!(stmts[4].bind_variables()[0].marker.index, 0);
    assert_eq!(parse_statements("  ;; ").unwrap(), vec![]);
    assert!(parse_statements("USE ks USE ks").is_err());
}

#[test]
fn error_messages_have_positions() {
    let err = parse_statement("SELECT * FORM t").unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 1:9 mismatched input 'FORM' expecting FROM"
    );
    assert_eq!((err.line, err.column, err.offset), (1, 9, 9));

    let err = parse_statement("SELECT a\nFROM t WHERE").unwrap_err();
    assert_eq!(err.line, 2);
    assert!(err.to_string().contains("end of input"), "{err}");

    let err = parse_statement("SELEC * FROM t").unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 1:0 no viable alternative at input 'SELEC'"
    );

    let err = parse_statement("SELECT * FROM t WHERE a = 'x").unwrap_err();
    assert_eq!(err.to_string(), "line 1:26 unterminated string literal");

    let err = parse_statement("SELECT * FROM t LIMIT 1 garbage").unwrap_err();
    assert!(err.message.contains("extraneous input 'garbage'"), "{err}");

    let err = parse_statement("SELECT é FROM t").unwrap_err();
    assert_eq!(err.column, 7);

    let err = parse_statement("GRANT SELECT ON t TO bob").unwrap_err();
    assert!(err.message.contains("unsupported"), "{err}");

    let err = parse_statement("").unwrap_err();
    assert!(err.message.contains("end of input"), "{err}");
}

#[test]
fn driver_metadata_queries() {
    for text in [
        "SELECT keyspace_name, table_name, column_name, kind, position, type FROM system_schema.columns",
        "select keyspace_name, type_name, field_names, field_types from system_schema.types",
        "SELECT keyspace_name, view_name, base_table_name FROM system_schema.views WHERE keyspace_name IN ?",
        "SELECT * FROM system_schema.scylla_tables WHERE keyspace_name = 'ks' AND table_name = 't'",
        "SELECT schema_version FROM system.local WHERE key='local'",
        "SELECT host_id, rpc_address, data_center, rack, tokens FROM system.peers",
        "SELECT * FROM system.peers_v2",
        "SELECT rpc_address, host_id FROM system.peers WHERE peer = ? USING TIMEOUT 2000ms",
        "SELECT data_center, rack FROM system.local WHERE key = 'local' ALLOW FILTERING USING TIMEOUT 30000ms",
        "SELECT * FROM system_schema.keyspaces",
        "SELECT * FROM system_schema.functions",
        "SELECT * FROM system_schema.aggregates",
        "SELECT * FROM system_schema.indexes",
        "SELECT * FROM system_schema.triggers",
    ] {
        parse(text);
    }
}
