//! The JSON-lines front end: for any program that can open a socket (shell,
//! PHP, awk) and has no CQL driver.
//!
//! One JSON object per line each way. A request:
//!   {"id": 7, "query": "SELECT * FROM ks.t WHERE k = ?", "params": [1],
//!    "consistency": "LOCAL_QUORUM",
//!    "options": {"page_size": 100, "paging_state": "0x...",
//!                "serial_consistency": "LOCAL_SERIAL", "timeout_ms": 2000,
//!                "idempotent": true}}
//! `params` is an array (markers in order) or an object (by marker name);
//! with params the statement is prepared (cached) and the values are typed
//! by its markers, see `json_values`. Everything but `query` is optional.
//! A response, in completion order (match them by `id`):
//!   {"id": 7, "columns": ["k", "v"], "rows": [{"k": 1, "v": "a"}],
//!    "paging_state": "0x..."}   (paging_state only when more pages follow)
//!   {"id": 7, "error": {"status": "INVALID", "code": 8704, "message": "..."}}
//! A line that is not a request gets an error with `"id": null` (or its
//! id) and the connection goes on; a line longer than
//! `limits.max_frame_bytes` closes it. `USE` is refused (the daemon's
//! session is shared): qualify table names.
//!
//! Bounds as on the CQL sockets: `limits.max_in_flight_per_client` requests
//! per connection (then it is not read from), `limits.max_in_flight` in all
//! (then OVERLOADED), and each request's deadline.

use std::sync::Arc;
use std::time::Duration;

use scylla_shard::protocol::response::error_code;
use scylla_shard::protocol::value::deserialize_cell;
use scylla_shard::protocol::{ErrorBody, Value};
use scylla_shard::session::{DriverError, QueryResult, Statement};
use serde_json::{json, Map, Value as Json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::client::Shared;
use crate::config::parse_consistency;
use crate::json_values::{from_json, hex, row_object};
use crate::local::{self, Local};
use crate::metrics::Front;

pub fn spawn<S>(shared: Arc<Shared>, stream: S, pid: Option<i32>)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let Ok(slot) = shared.clients.clone().try_acquire_owned() else {
        shared.metrics.refused_client();
        tracing::warn!(
            limit = shared.config.max_clients,
            "refusing a JSON client: limits.max_clients reached"
        );
        return;
    };
    tokio::spawn(async move {
        serve(shared, stream, pid).await;
        drop(slot);
    });
}

type Outgoing = (String, Option<OwnedSemaphorePermit>);

async fn serve<S>(shared: Arc<Shared>, stream: S, pid: Option<i32>)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (reader, mut writer) = tokio::io::split(stream);
    let per_client = shared.config.max_in_flight_per_client;
    let (out, mut to_write) = mpsc::channel::<Outgoing>(per_client + 16);
    let writing = tokio::spawn(async move {
        while let Some((mut line, permit)) = to_write.recv().await {
            line.push('\n');
            if writer.write_all(line.as_bytes()).await.is_err() {
                return;
            }
            drop(permit);
        }
        let _ = writer.shutdown().await;
    });
    let in_flight = Arc::new(Semaphore::new(per_client));
    let _listed = shared
        .metrics
        .client(Front::Json, pid, in_flight.clone(), per_client);
    let limit = shared.config.max_frame_bytes;
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    let mut draining = shared.draining.subscribe();
    loop {
        line.clear();
        let mut bounded = (&mut reader).take(limit as u64 + 1);
        let read = tokio::select! {
            read = bounded.read_until(b'\n', &mut line) => read,
            _ = draining.wait_for(|d| *d) => break,
        };
        match read {
            Ok(0) => break,
            Ok(_) if line.len() > limit && !line.ends_with(b"\n") => {
                let message = format!("a line longer than limits.max_frame_bytes ({limit})");
                let _ = out
                    .send((failure(&Json::Null, "BAD_REQUEST", 0, &message), None))
                    .await;
                break;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %e, "JSON client closed");
                break;
            }
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let request: Json = match serde_json::from_str(text) {
            Ok(request) => request,
            Err(e) => {
                let message = format!("not a JSON object: {e}");
                let _ = out
                    .send((failure(&Json::Null, "BAD_REQUEST", 0, &message), None))
                    .await;
                continue;
            }
        };
        // At the per-connection bound, stop reading until a response is written.
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let id = request.get("id").cloned().unwrap_or(Json::Null);
        let Ok(total) = shared.total.clone().try_acquire_owned() else {
            shared.metrics.overloaded(Front::Json);
            let message = "the communicator has limits.max_in_flight requests in flight";
            let code = error_code::OVERLOADED;
            let _ = out
                .send((failure(&id, "OVERLOADED", code, message), Some(permit)))
                .await;
            continue;
        };
        let shared = shared.clone();
        let out = out.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let outcome = run(&shared, &request).await;
            let failed = outcome.is_err();
            let response = match outcome {
                Ok(result) => success(&id, result),
                Err(Failure {
                    status,
                    code,
                    message,
                }) => failure(&id, status, code, &message),
            };
            shared
                .metrics
                .request(Front::Json, started.elapsed(), failed);
            drop(total);
            let _ = out.send((response, Some(permit))).await;
        });
    }
    drop(out);
    let _ = writing.await;
}

struct Failure {
    status: &'static str,
    code: i32,
    message: String,
}

fn bad_request(message: impl Into<String>) -> Failure {
    Failure {
        status: "BAD_REQUEST",
        code: 0,
        message: message.into(),
    }
}

impl From<DriverError> for Failure {
    fn from(e: DriverError) -> Failure {
        let (status, code) = match &e {
            DriverError::Server(body) => (server_status(body.code), body.code),
            DriverError::InvalidArgument(_) | DriverError::UnknownExecutionProfile(_) => {
                ("BAD_REQUEST", 0)
            }
            DriverError::NoHostAvailable(_) => ("NO_HOSTS", 0),
            DriverError::Timeout(_) => ("TIMEOUT", 0),
            DriverError::ConnectionBroken(_) => ("CONNECTION_BROKEN", 0),
            DriverError::Protocol(_) => ("PROTOCOL_ERROR", 0),
            DriverError::Closed => ("CLOSED", 0),
            DriverError::Tls(_) => ("TLS_ERROR", 0),
        };
        let message = match e {
            DriverError::Server(ErrorBody { message, .. }) => message,
            other => other.to_string(),
        };
        Failure {
            status,
            code,
            message,
        }
    }
}

/// The protocol's name of a server error code.
fn server_status(code: i32) -> &'static str {
    match code {
        error_code::SERVER_ERROR => "SERVER_ERROR",
        error_code::PROTOCOL_ERROR => "PROTOCOL_ERROR",
        error_code::BAD_CREDENTIALS => "BAD_CREDENTIALS",
        error_code::UNAVAILABLE => "UNAVAILABLE",
        error_code::OVERLOADED => "OVERLOADED",
        error_code::IS_BOOTSTRAPPING => "IS_BOOTSTRAPPING",
        error_code::TRUNCATE_ERROR => "TRUNCATE_ERROR",
        error_code::WRITE_TIMEOUT => "WRITE_TIMEOUT",
        error_code::READ_TIMEOUT => "READ_TIMEOUT",
        error_code::READ_FAILURE => "READ_FAILURE",
        error_code::FUNCTION_FAILURE => "FUNCTION_FAILURE",
        error_code::WRITE_FAILURE => "WRITE_FAILURE",
        error_code::SYNTAX_ERROR => "SYNTAX_ERROR",
        error_code::UNAUTHORIZED => "UNAUTHORIZED",
        error_code::INVALID => "INVALID",
        error_code::CONFIG_ERROR => "CONFIG_ERROR",
        error_code::ALREADY_EXISTS => "ALREADY_EXISTS",
        error_code::UNPREPARED => "UNPREPARED",
        error_code::RATE_LIMIT_REACHED => "RATE_LIMIT_REACHED",
        _ => "SERVER_ERROR",
    }
}

async fn run(shared: &Shared, request: &Json) -> Result<QueryResult, Failure> {
    let request = request
        .as_object()
        .ok_or_else(|| bad_request("a request is a JSON object"))?;
    if let Some(unknown) = request.keys().find(|k| {
        !matches!(
            k.as_str(),
            "id" | "query" | "params" | "consistency" | "options"
        )
    }) {
        return Err(bad_request(format!("unknown request field `{unknown}`")));
    }
    let query = request
        .get("query")
        .and_then(Json::as_str)
        .ok_or_else(|| bad_request("`query` (a string) is required"))?;
    if let Ok(Some(Local::Use(_))) = local::recognise(query) {
        return Err(bad_request(
            "USE is not available on the JSON socket (the session is shared): qualify table names",
        ));
    }
    let mut statement = match request.get("params") {
        None | Some(Json::Null) => Statement::simple(query),
        Some(params) => bound(shared, query, params).await?,
    };
    if let Some(c) = request.get("consistency") {
        statement.consistency = Some(consistency(c, "consistency")?);
    }
    let empty = Map::new();
    let options = match request.get("options") {
        None | Some(Json::Null) => &empty,
        Some(Json::Object(o)) => o,
        Some(_) => return Err(bad_request("`options` is an object")),
    };
    for (name, value) in options {
        match name.as_str() {
            "page_size" => {
                let size = value
                    .as_i64()
                    .and_then(|n| i32::try_from(n).ok())
                    .ok_or_else(|| bad_request("options.page_size is an integer"))?;
                statement.page_size = Some(size);
            }
            "paging_state" => {
                let state = value
                    .as_str()
                    .and_then(|s| s.strip_prefix("0x"))
                    .and_then(unhex)
                    .ok_or_else(|| bad_request("options.paging_state is \"0x\" and hex"))?;
                statement.paging_state = Some(state);
            }
            "serial_consistency" => {
                statement.serial_consistency = Some(consistency(value, "serial_consistency")?);
            }
            "timeout_ms" => {
                let ms = value
                    .as_u64()
                    .filter(|ms| (1..=3_600_000).contains(ms))
                    .ok_or_else(|| bad_request("options.timeout_ms is 1 to 3600000"))?;
                statement.timeout = Some(Duration::from_millis(ms));
            }
            "idempotent" => {
                statement.idempotent = value
                    .as_bool()
                    .ok_or_else(|| bad_request("options.idempotent is true or false"))?;
            }
            other => return Err(bad_request(format!("unknown option `{other}`"))),
        }
    }
    if statement.timeout.is_none() {
        statement.timeout = Some(shared.config.request_timeout);
    }
    if let Some(c) = shared.config.consistency {
        statement.consistency = Some(c);
    }
    Ok(shared.session.execute(&statement).await?)
}

fn consistency(value: &Json, what: &str) -> Result<scylla_shard::protocol::Consistency, Failure> {
    value
        .as_str()
        .and_then(parse_consistency)
        .ok_or_else(|| bad_request(format!("{what}: ONE, QUORUM, LOCAL_QUORUM... expected")))
}

/// The statement prepared, its values typed by its markers.
async fn bound(shared: &Shared, query: &str, params: &Json) -> Result<Statement, Failure> {
    let prepared = shared.session.prepare(query).await?;
    let markers = &prepared.metadata.bind_columns;
    let values: Vec<&Json> = match params {
        Json::Array(items) => {
            if items.len() != markers.len() {
                return Err(bad_request(format!(
                    "the statement has {} markers, params has {} values",
                    markers.len(),
                    items.len()
                )));
            }
            items.iter().collect()
        }
        Json::Object(by_name) => {
            if let Some(unknown) = by_name
                .keys()
                .find(|k| !markers.iter().any(|m| &*m.name == k.as_str()))
            {
                return Err(bad_request(format!(
                    "the statement has no marker `{unknown}`"
                )));
            }
            markers
                .iter()
                .map(|m| by_name.get(&*m.name).unwrap_or(&Json::Null))
                .collect()
        }
        _ => return Err(bad_request("params is an array or an object")),
    };
    let mut statement = Statement::prepared(prepared.clone());
    for (marker, json) in markers.iter().zip(values) {
        let value = from_json(&marker.ty, json)
            .map_err(|e| bad_request(format!("params `{}`: {e}", marker.name)))?;
        statement.values.push(match value {
            None => Value::Null,
            Some(v) => Value::Set(
                v.to_bytes()
                    .map_err(|e| bad_request(format!("params `{}`: {e}", marker.name)))?,
            ),
        });
    }
    Ok(statement)
}

fn success(id: &Json, result: QueryResult) -> String {
    let mut response = Map::new();
    response.insert("id".into(), id.clone());
    let mut rows_out = Vec::new();
    if let Some(rows) = &result.rows {
        let columns = &rows.metadata.columns;
        let names: Vec<String> = columns.iter().map(|c| c.name.to_string()).collect();
        for r in 0..rows.len() {
            let mut values = Vec::with_capacity(columns.len());
            for (c, spec) in columns.iter().enumerate() {
                match deserialize_cell(&spec.ty, rows.cell(r, c)) {
                    Ok(v) => values.push(v),
                    Err(e) => {
                        let message = format!("column {}: {e}", spec.name);
                        return failure(id, "PROTOCOL_ERROR", 0, &message);
                    }
                }
            }
            rows_out.push(row_object(&names, values));
        }
        response.insert("columns".into(), json!(names));
    }
    response.insert("rows".into(), Json::Array(rows_out));
    if let Some(state) = &result.paging_state {
        response.insert("paging_state".into(), Json::String(hex(state)));
    }
    if !result.warnings.is_empty() {
        response.insert("warnings".into(), json!(result.warnings));
    }
    Json::Object(response).to_string()
}

fn failure(id: &Json, status: &str, code: i32, message: &str) -> String {
    json!({"id": id, "error": {"status": status, "code": code, "message": message}}).to_string()
}

fn unhex(digits: &str) -> Option<Vec<u8>> {
    if digits.len() % 2 != 0 {
        return None;
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(digits.get(i..i + 2)?, 16).ok())
        .collect()
}
