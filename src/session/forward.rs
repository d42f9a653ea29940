//! Passing an already encoded request through the session: the data path
//! of the communicator, which receives its clients' QUERY, EXECUTE and
//! BATCH frames and sends their bodies on unchanged.
//!
//! The request takes the same road as `execute` (replicas, plan, retries,
//! re-prepare after UNPREPARED, tablet learning) but its RESULT is not
//! decoded: only the frame's extensions are read, and the message body is
//! handed back as it came, for the caller to forward.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use super::execute::{Answer, Job};
use super::route::RoutingInfo;
use super::types::{DriverError, Statement};
use super::{Admission, Session};
use crate::connection::RawRequest;
use crate::protocol::frame::{read_response_extensions, FrameHeader, Opcode};
use crate::protocol::{Response, ResponseExtensions};

/// An encoded request and what routing and retries need to know about it.
#[derive(Debug, Clone, Copy)]
pub struct Forward<'a> {
    /// QUERY, EXECUTE or BATCH; the body without any custom payload.
    pub request: RawRequest<'a>,
    pub routing: Option<RoutingInfo<'a>>,
    /// Keep replica order (primary first).
    pub is_lwt: bool,
    pub idempotent: bool,
    /// End-to-end budget, all attempts included.
    pub timeout: Duration,
    /// The prepared statements the request executes (values not needed),
    /// for re-preparing after UNPREPARED.
    pub prepared: &'a [Statement],
}

/// A response to forward.
#[derive(Debug, Clone)]
pub struct Forwarded {
    pub header: FrameHeader,
    pub extensions: ResponseExtensions,
    /// The message after the extensions, uncompressed, as the server sent it.
    pub message: Bytes,
    pub coordinator: SocketAddr,
    pub shard: Option<u16>,
}

impl Forwarded {
    /// A RESULT of kind SCHEMA_CHANGE (DDL).
    pub fn is_schema_change(&self) -> bool {
        self.header.opcode == Opcode::Result as u8
            && self.message.get(..4) == Some(&SCHEMA_CHANGE_KIND.to_be_bytes()[..])
    }
}

/// The RESULT kind of a schema change.
const SCHEMA_CHANGE_KIND: i32 = 5;

impl Session {
    /// Sends `forward` along its plan and returns the raw answer: a RESULT
    /// (any kind), or the server ERROR that ended the retries. After a
    /// schema change it returns once the nodes agree and the metadata is
    /// refreshed, as `execute` does.
    pub async fn forward(&self, forward: &Forward<'_>) -> Result<Forwarded, DriverError> {
        self.admit()?.forward(forward).await
    }
}

impl Admission {
    pub async fn forward(&self, forward: &Forward<'_>) -> Result<Forwarded, DriverError> {
        let inner = &self.session().inner;
        let started = std::time::Instant::now();
        let job = Job {
            request: forward.request,
            routing: forward.routing,
            is_lwt: forward.is_lwt,
            idempotent: forward.idempotent,
            // The daemon's policy; a client's own frame is never rewritten.
            retry_policy: inner.config.default_retry_policy,
            consistency_at: None,
            timeout: forward.timeout,
            statements: forward.prepared,
            speculation: inner.config.default_speculative_execution,
            load_balancing: &inner.load_balancing,
        };
        let outcome = inner
            .run_with(
                &job,
                |_, _| None,
                |raw, conn, coordinator, learn| {
                    if raw.header.opcode == Opcode::Error as u8 {
                        let frame = conn.decode(&raw)?;
                        learn(&frame.extensions, false);
                        return Ok(match frame.response {
                            Response::Error(e) => Answer::Error(e),
                            other => Answer::Fail(DriverError::Protocol(format!(
                                "ERROR frame decoded as {:?}",
                                other.opcode()
                            ))),
                        });
                    }
                    let body = raw
                        .plain_body()
                        .map_err(crate::connection::RequestError::Protocol)?;
                    let (extensions, start) = read_response_extensions(raw.header.flags, &body)
                        .map_err(crate::connection::RequestError::Protocol)?;
                    learn(&extensions, true);
                    Ok(Answer::Done(Forwarded {
                        header: raw.header,
                        extensions,
                        message: body.slice(start..),
                        coordinator,
                        shard: conn.shard(),
                    }))
                },
            )
            .await;
        if let Ok(forwarded) = &outcome {
            if forwarded.is_schema_change() {
                // As `execute` does: the client's next statement (a `USE`
                // of the new keyspace, an INSERT into the new table) must
                // find it, whichever node coordinates it.
                let budget = forward.timeout.saturating_sub(started.elapsed());
                self.session().settle_schema(budget).await;
            }
        }
        inner.account(started, outcome)
    }
}
