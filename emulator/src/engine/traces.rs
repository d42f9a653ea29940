//! Query tracing: a request sent with the tracing flag gets a session id (a
//! timeuuid) on its response, and its session and events are written to
//! `system_traces`, with Scylla's schema, before the response leaves, so a
//! client can read them as soon as it has the id. (Scylla writes them
//! asynchronously; drivers poll until `duration` is set.)

use std::net::IpAddr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use cql_parser::ast::QualifiedName;
use scylla_shard::protocol::request::QueryParameters;
use scylla_shard::protocol::value::CqlValue;
use scylla_shard::protocol::{ColumnType, Request};

use super::system_tables::write_values;
use super::values::{now_micros, sort_dedup_entries, timeuuid};
use super::Database;

pub const KEYSPACE: &str = "system_traces";

/// Scylla's `system_traces` tables (`tracing/trace_keyspace_helper.cc`).
pub const TABLES: &[&str] = &[
    "CREATE TABLE system_traces.sessions (session_id uuid PRIMARY KEY, client inet, command text, coordinator inet, duration int, parameters map<text, text>, request text, request_size int, response_size int, started_at timestamp, username text) WITH default_time_to_live = 86400",
    "CREATE TABLE system_traces.sessions_time_idx (minute timestamp, started_at timestamp, session_id uuid, PRIMARY KEY (minute, started_at, session_id)) WITH default_time_to_live = 86400",
    "CREATE TABLE system_traces.events (session_id uuid, event_id timeuuid, activity text, scylla_parent_id bigint, scylla_span_id bigint, source inet, source_elapsed int, thread text, PRIMARY KEY (session_id, event_id)) WITH default_time_to_live = 86400",
    "CREATE TABLE system_traces.node_slow_log (start_time timeuuid, node_ip inet, shard int, command text, date timestamp, duration int, parameters map<text, text>, session_id uuid, source_ip inet, table_names set<text>, username text, PRIMARY KEY (start_time, node_ip, shard)) WITH default_time_to_live = 86400",
    "CREATE TABLE system_traces.node_slow_log_time_idx (minute timestamp, started_at timestamp, session_id uuid, node_ip inet, shard int, start_time timeuuid, PRIMARY KEY (minute, started_at, session_id)) WITH default_time_to_live = 86400",
];

/// A traced request between its arrival and its response.
#[derive(Debug)]
pub struct PendingTrace {
    pub id: [u8; 16],
    started_at: SystemTime,
    started: Instant,
    request: String,
    parameters: Vec<(String, String)>,
    client: IpAddr,
    username: String,
    request_size: usize,
    shard: u16,
}

/// Starts the trace of a request that asked for one; `None` for messages
/// Scylla does not trace (OPTIONS, STARTUP, REGISTER, ...).
pub fn begin(
    request: &Request,
    client: IpAddr,
    username: Option<String>,
    request_size: usize,
    shard: u16,
) -> Option<PendingTrace> {
    let (request_text, params) = match request {
        Request::Query { query, params } => {
            ("Execute CQL3 query".to_owned(), Some((params, query)))
        }
        Request::Execute { id, params } => (
            format!("Execute CQL3 prepared query [{}]", hex(id)),
            Some((params, &String::new())),
        ),
        Request::Batch(_) => ("Execute batch of CQL3 queries".to_owned(), None),
        Request::Prepare { .. } => ("Preparing CQL3 query".to_owned(), None),
        _ => return None,
    };
    let mut parameters = Vec::new();
    match (request, params) {
        (_, Some((params, query))) => describe(params, query, &mut parameters),
        (Request::Batch(batch), None) => {
            parameters.push(("consistency_level".into(), batch.consistency.to_string()));
            if let Some(serial) = batch.serial_consistency {
                parameters.push(("serial_consistency_level".into(), serial.to_string()));
            }
        }
        (Request::Prepare { query }, None) => parameters.push(("query".into(), query.clone())),
        _ => {}
    }
    let now = now_micros();
    Some(PendingTrace {
        id: timeuuid(now),
        started_at: SystemTime::now(),
        started: Instant::now(),
        request: request_text,
        parameters,
        client,
        username: username.unwrap_or_else(|| "anonymous".into()),
        request_size,
        shard,
    })
}

fn describe(params: &QueryParameters, query: &str, out: &mut Vec<(String, String)>) {
    out.push(("consistency_level".into(), params.consistency.to_string()));
    if let Some(page_size) = params.page_size {
        out.push(("page_size".into(), page_size.to_string()));
    }
    if !query.is_empty() {
        out.push(("query".into(), query.to_owned()));
    }
    if let Some(serial) = params.serial_consistency {
        out.push(("serial_consistency_level".into(), serial.to_string()));
    }
    if let Some(ts) = params.timestamp {
        out.push(("user_timestamp".into(), ts.to_string()));
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Database {
    /// Writes a finished trace: its session, its time index entry and its
    /// events, as the coordinator `node_ip` saw them.
    pub fn record_trace(&self, node_ip: IpAddr, trace: PendingTrace, response_size: usize) {
        let duration_us = i32::try_from(trace.started.elapsed().as_micros()).unwrap_or(i32::MAX);
        let started_ms = trace
            .started_at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let session = Some(CqlValue::Uuid(trace.id));
        let text = |s: &str| Some(CqlValue::Text(s.to_owned()));
        let int = |v: i32| Some(CqlValue::Int(v));
        let size = |n: usize| int(i32::try_from(n).unwrap_or(i32::MAX));
        let mut parameters: Vec<(CqlValue, CqlValue)> = trace
            .parameters
            .iter()
            .map(|(k, v)| (CqlValue::Text(k.clone()), CqlValue::Text(v.clone())))
            .collect();
        sort_dedup_entries(&mut parameters, &ColumnType::Text);
        self.write_trace_row(
            "sessions",
            vec![
                ("session_id", session.clone()),
                ("client", Some(CqlValue::Inet(trace.client))),
                ("command", text("QUERY")),
                ("coordinator", Some(CqlValue::Inet(node_ip))),
                ("duration", int(duration_us)),
                ("parameters", Some(CqlValue::Map(parameters))),
                ("request", text(&trace.request)),
                ("request_size", size(trace.request_size)),
                ("response_size", size(response_size)),
                ("started_at", Some(CqlValue::Timestamp(started_ms))),
                ("username", text(&trace.username)),
            ],
        );
        self.write_trace_row(
            "sessions_time_idx",
            vec![
                (
                    "minute",
                    Some(CqlValue::Timestamp(
                        started_ms - started_ms.rem_euclid(60_000),
                    )),
                ),
                ("started_at", Some(CqlValue::Timestamp(started_ms))),
                ("session_id", session.clone()),
            ],
        );
        let started_us = started_ms * 1000;
        let events = [
            (0, "Parsing a statement"),
            (duration_us / 2, "Processing a statement"),
            (duration_us, "Done processing - preparing a result"),
        ];
        let thread = format!("shard {}", trace.shard);
        for (elapsed, activity) in events {
            self.write_trace_row(
                "events",
                vec![
                    ("session_id", session.clone()),
                    (
                        "event_id",
                        Some(CqlValue::Timeuuid(timeuuid(
                            started_us + i64::from(elapsed),
                        ))),
                    ),
                    ("activity", text(activity)),
                    ("scylla_parent_id", Some(CqlValue::BigInt(0))),
                    ("scylla_span_id", Some(CqlValue::BigInt(0))),
                    ("source", Some(CqlValue::Inet(node_ip))),
                    ("source_elapsed", int(elapsed)),
                    ("thread", text(&thread)),
                ],
            );
        }
    }

    fn write_trace_row(&self, table: &str, values: Vec<(&str, Option<CqlValue>)>) {
        let name = QualifiedName::qualified(KEYSPACE, table);
        let Ok((table, _)) = self.table(None, &name) else {
            return;
        };
        let ttl = table.schema.default_ttl;
        let mut data = table.data.lock().unwrap();
        write_values(&table.schema, &mut data, values, now_micros(), ttl);
    }
}
