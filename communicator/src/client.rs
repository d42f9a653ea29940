//! One client connection: CQL v4 frames in, requests forwarded through the
//! shared session with their stream ids kept per client, responses out.
//!
//! Bounds: a client has at most `max_in_flight_per_client` requests whose
//! responses are not yet written to its socket. At the bound the daemon
//! stops reading that client (its own writes then block in the kernel), so
//! a client that stops reading costs at most that many responses, never a
//! growing queue. All clients together have `max_in_flight` requests; past
//! it a request is answered OVERLOADED at once. Every request has a
//! deadline (the client's hint or `policy.request_timeout_ms`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use scylla_shard::connection::{RawRequest, RawResponse};
use scylla_shard::protocol::frame::{flags, write_response_extensions, HEADER_LEN};
use scylla_shard::protocol::response::{error_code, ErrorDetails, Event, ResultBody};
use scylla_shard::protocol::wire::BoundValue;
use scylla_shard::protocol::{
    ErrorBody, FrameHeader, Opcode, Request, RequestExtensions, Response, ResponseExtensions,
};
use scylla_shard::routing::token::{murmur3_token, token_of_partition_key, Token};
use scylla_shard::session::hints::Hints;
use scylla_shard::session::{
    DriverError, Forward, Forwarded, Prepared, RoutingInfo, Session, Statement,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::config::Config;
use crate::keyspaces::{needs_keyspace, KeyspaceConnections};
use crate::local::{self, Local, LocalNode};
use crate::metrics::{Front, Metrics};
use crate::prepared::Registry;
use crate::requests;

/// The one protocol version served (Scylla's highest).
const VERSION: u8 = 4;
const RESPONSE_VERSION: u8 = 0x80 | VERSION;
const PASSWORD_AUTHENTICATOR: &str = "org.apache.cassandra.auth.PasswordAuthenticator";

/// What every client shares.
pub struct Shared {
    pub session: Session,
    pub registry: Registry,
    pub keyspaces: KeyspaceConnections,
    /// Requests of all clients in flight.
    pub total: Arc<Semaphore>,
    /// Client connections open.
    pub clients: Arc<Semaphore>,
    pub node: LocalNode,
    pub config: Config,
    pub metrics: Arc<Metrics>,
    /// Set when the daemon stops or hands over: clients are no longer
    /// read from, and close once their requests are answered.
    pub draining: tokio::sync::watch::Sender<bool>,
}

/// A frame to write and what it releases once written: its request's
/// in-flight permit and the bytes it holds of the client's pending budget.
type Outgoing = (
    Vec<u8>,
    Option<OwnedSemaphorePermit>,
    Option<OwnedSemaphorePermit>,
);

/// One client's state.
struct Client {
    shared: Arc<Shared>,
    /// The keyspace of the client's `USE`.
    keyspace: Mutex<Option<String>>,
    out: mpsc::Sender<Outgoing>,
    /// Bytes of responses not yet written (`limits.max_pending_bytes_per_client`).
    pending_bytes: Arc<Semaphore>,
}

/// Serves a client connection (`pid`: its process, known on a Unix socket).
pub fn spawn<S>(shared: Arc<Shared>, stream: S, pid: Option<i32>)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let Ok(slot) = shared.clients.clone().try_acquire_owned() else {
        shared.metrics.refused_client();
        tracing::warn!(
            limit = shared.config.max_clients,
            "refusing a client: limits.max_clients reached"
        );
        return;
    };
    tokio::spawn(async move {
        serve(shared, stream, pid).await;
        drop(slot);
    });
}

async fn serve<S>(shared: Arc<Shared>, stream: S, pid: Option<i32>)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let per_client = shared.config.max_in_flight_per_client;
    // One slot more than the requests: the replies the reader writes itself.
    let (out, mut to_write) = mpsc::channel::<Outgoing>(per_client + 16);
    let writing = tokio::spawn(async move {
        // The responses ready together go out in one write: one system call
        // (and one wake-up of the client) for many requests in flight.
        let mut batch = Vec::new();
        let mut written = Vec::new();
        while let Some((first, permit, bytes)) = to_write.recv().await {
            written.push((permit, bytes));
            let mut next = to_write.try_recv().ok();
            let out = if next.is_none() {
                first
            } else {
                batch.extend_from_slice(&first);
                while let Some((frame, permit, bytes)) = next.take() {
                    batch.extend_from_slice(&frame);
                    written.push((permit, bytes));
                    if batch.len() < WRITE_BATCH_BYTES {
                        next = to_write.try_recv().ok();
                    }
                }
                std::mem::take(&mut batch)
            };
            if writer.write_all(&out).await.is_err() {
                return;
            }
            // Written: their in-flight slots and pending bytes are free.
            written.clear();
            // The buffer is kept for the next batch, up to a size an idle
            // client may hold.
            batch = out;
            batch.clear();
            batch.shrink_to(KEPT_BATCH_BYTES);
        }
        let _ = writer.shutdown().await;
    });
    let shared_config_limit = shared.config.max_pending_bytes_per_client;
    let client = Arc::new(Client {
        shared,
        keyspace: Mutex::new(None),
        out,
        pending_bytes: Arc::new(Semaphore::new(pending_budget(shared_config_limit))),
    });
    let in_flight = Arc::new(Semaphore::new(per_client));
    let _listed = client
        .shared
        .metrics
        .client(Front::Cql, pid, in_flight.clone(), per_client);
    if let Err(why) = read_requests(&client, &mut reader, &in_flight).await {
        tracing::debug!(%why, "client closed");
    }
    drop(client);
    let _ = writing.await;
}

/// Responses gathered into one write at most (a larger one goes alone),
/// and the part of that buffer a client keeps between writes.
const WRITE_BATCH_BYTES: usize = 256 << 10;
const KEPT_BATCH_BYTES: usize = 16 << 10;

/// The pending-bytes budget as semaphore permits (a response larger than
/// the whole budget takes all of it).
fn pending_budget(limit: usize) -> usize {
    limit.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize))
}

/// Why a client is closed.
type Close = String;

async fn read_requests<R: AsyncRead + Unpin>(
    client: &Arc<Client>,
    reader: &mut R,
    in_flight: &Arc<Semaphore>,
) -> Result<(), Close> {
    let config = &client.shared.config;
    let mut authenticated = config.users.is_empty();
    let mut events: Option<tokio::task::JoinHandle<()>> = None;
    let mut draining = client.shared.draining.subscribe();
    let result = loop {
        let mut head = [0u8; HEADER_LEN];
        let read = tokio::select! {
            read = reader.read_exact(&mut head) => read,
            _ = draining.wait_for(|d| *d) => break Ok(()),
        };
        if let Err(e) = read {
            break if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Ok(())
            } else {
                Err(e.to_string())
            };
        }
        let header = match FrameHeader::parse(&head) {
            Ok(h) if h.body_len <= config.max_frame_bytes => h,
            Ok(h) => {
                let stream = h.stream;
                let message = format!(
                    "frame of {} bytes exceeds limits.max_frame_bytes ({})",
                    h.body_len, config.max_frame_bytes
                );
                client.fatal(stream, &message).await;
                break Err(message);
            }
            Err(e) => {
                client.fatal(0, &e.to_string()).await;
                break Err(e.to_string());
            }
        };
        let mut body = vec![0u8; header.body_len];
        if let Err(e) = reader.read_exact(&mut body).await {
            break Err(e.to_string());
        }
        if header.is_response() {
            client
                .fatal(header.stream, "a response frame sent to the server")
                .await;
            break Err("response frame from a client".into());
        }
        if header.protocol_version() != VERSION {
            // Drivers offer a higher version first and step down on this.
            let message = format!(
                "Invalid or unsupported protocol version ({}); supported versions are (4/v4)",
                header.protocol_version()
            );
            client
                .reply_error(
                    header.stream,
                    ErrorBody::new(error_code::PROTOCOL_ERROR, message),
                    None,
                )
                .await;
            continue;
        }
        if header.flags & flags::COMPRESSION != 0 {
            client
                .fatal(header.stream, "compression was not negotiated")
                .await;
            break Err("compressed frame".into());
        }
        let opcode = match Opcode::from_u8(header.opcode) {
            Ok(op) => op,
            Err(e) => {
                client.fatal(header.stream, &e.to_string()).await;
                break Err(e.to_string());
            }
        };
        match opcode {
            Opcode::Options => {
                client.reply(header.stream, &supported(), None).await;
            }
            Opcode::Startup => {
                let response = if authenticated {
                    Response::Ready
                } else {
                    Response::Authenticate {
                        authenticator: PASSWORD_AUTHENTICATOR.into(),
                    }
                };
                client.reply(header.stream, &response, None).await;
            }
            Opcode::AuthResponse => {
                let token = match Request::read_body(opcode, &body) {
                    Ok(Request::AuthResponse { token }) => token.unwrap_or_default(),
                    _ => {
                        client.fatal(header.stream, "malformed AUTH_RESPONSE").await;
                        break Err("malformed AUTH_RESPONSE".into());
                    }
                };
                if check_password(&config.users, &token) {
                    authenticated = true;
                    client
                        .reply(header.stream, &Response::AuthSuccess { token: None }, None)
                        .await;
                } else {
                    let e = ErrorBody::new(
                        error_code::BAD_CREDENTIALS,
                        "Provided username and/or password are incorrect",
                    );
                    client.reply_error(header.stream, e, None).await;
                }
            }
            _ if !authenticated => {
                client
                    .fatal(header.stream, "authentication is required first")
                    .await;
                break Err("request before authentication".into());
            }
            Opcode::Register => {
                let wanted = match Request::read_body(opcode, &body) {
                    Ok(Request::Register { events }) => events,
                    _ => {
                        client.fatal(header.stream, "malformed REGISTER").await;
                        break Err("malformed REGISTER".into());
                    }
                };
                if events.is_none() && wanted.iter().any(|e| e == "SCHEMA_CHANGE") {
                    events = Some(tokio::spawn(forward_events(
                        client.shared.session.subscribe_events(),
                        client.out.clone(),
                    )));
                }
                client.reply(header.stream, &Response::Ready, None).await;
            }
            Opcode::Query | Opcode::Prepare | Opcode::Execute | Opcode::Batch => {
                // At the per-client bound, stop reading until a response is written.
                let Ok(permit) = in_flight.clone().acquire_owned().await else {
                    break Ok(());
                };
                let Ok(total) = client.shared.total.clone().try_acquire_owned() else {
                    client.shared.metrics.overloaded(Front::Cql);
                    let e = ErrorBody::new(
                        error_code::OVERLOADED,
                        "the communicator has limits.max_in_flight requests in flight",
                    );
                    client.reply_error(header.stream, e, Some(permit)).await;
                    continue;
                };
                let client = client.clone();
                tokio::spawn(async move {
                    let stream = header.stream;
                    let started = std::time::Instant::now();
                    let frame = match client.handle(opcode, header.flags, &body).await {
                        Ok(frame) => frame,
                        Err(e) => error_frame(stream, e),
                    };
                    let failed = frame.get(4) == Some(&(Opcode::Error as u8));
                    client
                        .shared
                        .metrics
                        .request(Front::Cql, started.elapsed(), failed);
                    drop(total);
                    // A slow reader's responses wait here, holding their
                    // in-flight permits, so the reader stops reading it.
                    let budget = pending_budget(client.shared.config.max_pending_bytes_per_client);
                    let wanted = u32::try_from(frame.len().min(budget)).unwrap_or(u32::MAX);
                    let bytes = client
                        .pending_bytes
                        .clone()
                        .acquire_many_owned(wanted)
                        .await
                        .ok();
                    let _ = client
                        .out
                        .send((with_stream(frame, stream), Some(permit), bytes))
                        .await;
                });
            }
            other => {
                let message = format!("{other:?} is not a request");
                client.fatal(header.stream, &message).await;
                break Err(message);
            }
        }
    };
    if let Some(events) = events {
        events.abort();
    }
    result
}

/// The SUPPORTED a plain Cassandra node gives: no Scylla sharding keys, so
/// shard-aware drivers open one connection and let the daemon route.
fn supported() -> Response {
    Response::Supported {
        options: vec![
            ("CQL_VERSION".into(), vec!["3.3.1".into()]),
            ("COMPRESSION".into(), Vec::new()),
            ("PROTOCOL_VERSIONS".into(), vec!["4/v4".into()]),
        ],
    }
}

/// SASL PLAIN: `[authzid] NUL user NUL password`.
fn check_password(users: &std::collections::HashMap<String, String>, token: &[u8]) -> bool {
    let mut parts = token.split(|b| *b == 0);
    let (Some(_), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Ok(user), Ok(password)) = (std::str::from_utf8(user), std::str::from_utf8(password))
    else {
        return false;
    };
    users
        .get(user)
        .is_some_and(|p| constant_time_eq(p.as_bytes(), password.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Schema changes for a client that registered for them. The topology and
/// status of the real nodes are not the client's business: it sees one node.
async fn forward_events(
    mut events: tokio::sync::broadcast::Receiver<Event>,
    out: mpsc::Sender<Outgoing>,
) {
    loop {
        let event = match events.recv().await {
            Ok(event @ Event::SchemaChange(_)) => event,
            Ok(_) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "a client missed schema events");
                continue;
            }
            Err(_) => return,
        };
        let frame = response_frame(-1, &Response::Event(event), &ResponseExtensions::default());
        // A client that does not read loses events rather than growing memory.
        if out.try_send((frame, None, None)).is_err() && out.is_closed() {
            return;
        }
    }
}

fn response_frame(stream: i16, response: &Response, extensions: &ResponseExtensions) -> Vec<u8> {
    scylla_shard::protocol::frame::encode_response(stream, response, extensions, None)
        .unwrap_or_else(|e| {
            let body = Response::Error(ErrorBody::new(error_code::SERVER_ERROR, e.to_string()));
            scylla_shard::protocol::frame::encode_response(
                stream,
                &body,
                &ResponseExtensions::default(),
                None,
            )
            .unwrap_or_default()
        })
}

fn error_frame(stream: i16, error: ErrorBody) -> Vec<u8> {
    response_frame(
        stream,
        &Response::Error(error),
        &ResponseExtensions::default(),
    )
}

/// Writes the client's stream id into a frame made for another.
fn with_stream(mut frame: Vec<u8>, stream: i16) -> Vec<u8> {
    if frame.len() >= HEADER_LEN {
        frame[2..4].copy_from_slice(&stream.to_be_bytes());
    }
    frame
}

/// A server's answer for the client: its message unchanged, its tracing id
/// and warnings kept, its custom payload (tablet routing, for the daemon)
/// dropped.
fn forwarded_frame(opcode: u8, extensions: &ResponseExtensions, message: &[u8]) -> Vec<u8> {
    let kept = ResponseExtensions {
        tracing_id: extensions.tracing_id,
        warnings: extensions.warnings.clone(),
        custom_payload: None,
    };
    let mut frame = vec![0u8; HEADER_LEN];
    let frame_flags = write_response_extensions(&kept, &mut frame).unwrap_or(0);
    frame.extend_from_slice(message);
    let len = (frame.len() - HEADER_LEN) as u32;
    frame[0] = RESPONSE_VERSION;
    frame[1] = frame_flags;
    frame[4] = opcode;
    frame[5..9].copy_from_slice(&len.to_be_bytes());
    frame
}

/// A driver failure as the CQL error a client understands.
fn as_error(error: DriverError) -> ErrorBody {
    match error {
        DriverError::Server(e) => e,
        DriverError::Timeout(after) => ErrorBody::new(
            error_code::SERVER_ERROR,
            format!("communicator: no answer from the cluster within {after:?}"),
        ),
        DriverError::Closed => ErrorBody::new(
            error_code::SERVER_ERROR,
            "communicator: stopping, reconnect",
        ),
        other => ErrorBody::new(error_code::SERVER_ERROR, format!("communicator: {other}")),
    }
}

/// The server's answer to an unqualified statement outside a keyspace.
fn is_no_keyspace(e: &ErrorBody) -> bool {
    e.code == error_code::INVALID && e.message.contains("No keyspace has been specified")
}

fn unprepared(id: &[u8]) -> ErrorBody {
    ErrorBody {
        code: error_code::UNPREPARED,
        message: "Prepared statement unknown to the communicator; prepare it again".into(),
        details: ErrorDetails::Unprepared { id: id.to_vec() },
    }
}

fn malformed(e: impl std::fmt::Display) -> ErrorBody {
    ErrorBody::new(
        error_code::PROTOCOL_ERROR,
        format!("malformed request: {e}"),
    )
}

/// The token of a prepared statement's bound partition key.
fn prepared_token(
    prepared: &Prepared,
    values: &[BoundValue<'_>],
    names: Option<&[&str]>,
) -> Option<Token> {
    let pk = &prepared.metadata.pk_indexes;
    if pk.is_empty() {
        return None;
    }
    let mut components = Vec::with_capacity(pk.len());
    for &marker in pk {
        let at = match names {
            None => usize::from(marker),
            Some(names) => {
                let column = &prepared
                    .metadata
                    .bind_columns
                    .get(usize::from(marker))?
                    .name;
                names.iter().position(|n| **n == **column)?
            }
        };
        components.push(match values.get(at)? {
            BoundValue::Set(bytes) => Some(*bytes),
            BoundValue::Null | BoundValue::Unset => None,
        });
    }
    if components.iter().all(Option::is_none) {
        return None;
    }
    token_of_partition_key(&components).ok()
}

impl Client {
    async fn reply(&self, stream: i16, response: &Response, permit: Option<OwnedSemaphorePermit>) {
        let frame = response_frame(stream, response, &ResponseExtensions::default());
        let _ = self.out.send((frame, permit, None)).await;
    }

    async fn reply_error(
        &self,
        stream: i16,
        error: ErrorBody,
        permit: Option<OwnedSemaphorePermit>,
    ) {
        let _ = self
            .out
            .send((error_frame(stream, error), permit, None))
            .await;
    }

    /// A PROTOCOL_ERROR before the connection is closed.
    async fn fatal(&self, stream: i16, message: &str) {
        let e = ErrorBody::new(error_code::PROTOCOL_ERROR, message);
        self.reply_error(stream, e, None).await;
    }

    fn keyspace(&self) -> Option<String> {
        self.keyspace
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn timeout(&self, hints: &Hints) -> Duration {
        hints.timeout.unwrap_or(self.shared.config.request_timeout)
    }

    /// A request's response frame (stream id to be set), or the error to send.
    async fn handle(
        &self,
        opcode: Opcode,
        frame_flags: u8,
        body: &[u8],
    ) -> Result<Vec<u8>, ErrorBody> {
        let (hints, start) = requests::take_payload(frame_flags, body).map_err(malformed)?;
        let message = &body[start..];
        // The custom payload was the daemon's; tracing goes on.
        let frame_flags = frame_flags & flags::TRACING;
        match opcode {
            Opcode::Query => self.query(frame_flags, message, &hints).await,
            Opcode::Prepare => self.prepare(message).await,
            Opcode::Execute => self.execute(frame_flags, message, &hints).await,
            _ => self.batch(frame_flags, message, &hints).await,
        }
    }

    async fn query(
        &self,
        frame_flags: u8,
        message: &[u8],
        hints: &Hints,
    ) -> Result<Vec<u8>, ErrorBody> {
        let (text, consistency_at) = requests::query_text(message).map_err(malformed)?;
        match local::recognise(text)? {
            Some(Local::Use(keyspace)) => return self.use_keyspace(keyspace).await,
            Some(Local::SystemSelect { table, columns }) => {
                let rows = local::system_rows(&self.shared.node, table, columns.as_deref())?;
                let response = Response::Result(ResultBody::Rows(rows));
                return Ok(response_frame(0, &response, &ResponseExtensions::default()));
            }
            None => {}
        }
        let message = self.with_policy(message, consistency_at)?;
        let keyspace = hints.keyspace.clone().or_else(|| self.keyspace());
        let routing = match (&hints.routing_key, &keyspace) {
            (Some(key), Some(keyspace)) => Some((
                keyspace.as_str(),
                hints.table.as_deref().unwrap_or(""),
                murmur3_token(key),
            )),
            _ => None,
        };
        let request = RawRequest {
            opcode: Opcode::Query,
            flags: frame_flags,
            body: &message,
        };
        let idempotent = hints.idempotent || requests::is_read(text);
        self.forward(request, routing, false, idempotent, &[], hints)
            .await
    }

    /// `USE`: the client's own keyspace, checked against the schema (read
    /// again once if the keyspace is new to the daemon: another client may
    /// have created it moments ago, not through the daemon).
    async fn use_keyspace(&self, keyspace: String) -> Result<Vec<u8>, ErrorBody> {
        let session = &self.shared.session;
        let known = |session: &Session| session.cluster_state().keyspace(&keyspace).is_some();
        let mut exists = known(session);
        if !exists {
            let timeout = self.shared.config.request_timeout;
            exists = session.refresh_metadata(timeout).await && known(session);
        }
        if !exists {
            return Err(ErrorBody::new(
                error_code::INVALID,
                format!("Keyspace '{keyspace}' does not exist"),
            ));
        }
        *self.keyspace.lock().unwrap_or_else(|p| p.into_inner()) = Some(keyspace.clone());
        let response = Response::Result(ResultBody::SetKeyspace(keyspace));
        Ok(response_frame(0, &response, &ResponseExtensions::default()))
    }

    /// The message with the daemon's forced consistency, if it has one.
    fn with_policy<'m>(
        &self,
        message: &'m [u8],
        at: usize,
    ) -> Result<std::borrow::Cow<'m, [u8]>, ErrorBody> {
        match self.shared.config.consistency {
            None => Ok(std::borrow::Cow::Borrowed(message)),
            Some(c) => requests::with_consistency(message, at, c)
                .map(std::borrow::Cow::Owned)
                .map_err(malformed),
        }
    }

    async fn prepare(&self, message: &[u8]) -> Result<Vec<u8>, ErrorBody> {
        let text = requests::prepare_text(message).map_err(malformed)?;
        let prepared = match self.shared.session.prepare(text).await {
            Ok(prepared) => prepared,
            Err(e) if needs_keyspace(&e) && self.keyspace().is_some() => {
                let keyspace = self.keyspace().unwrap_or_default();
                self.prepare_in(&keyspace, text).await?
            }
            Err(e) => return Err(as_error(e)),
        };
        self.shared.registry.insert(prepared.clone());
        let mut metadata = prepared.metadata.clone();
        // Scylla's LWT mark is an extension the client did not negotiate.
        metadata.is_lwt = false;
        let response = Response::Result(ResultBody::Prepared(
            scylla_shard::protocol::response::Prepared {
                id: prepared.id.clone(),
                metadata,
                result_metadata: prepared.result_metadata.clone(),
            },
        ));
        Ok(response_frame(0, &response, &ResponseExtensions::default()))
    }

    /// Prepares an unqualified statement in the client's `USE` keyspace,
    /// on every node (see `KeyspaceConnections::on_every_node`).
    async fn prepare_in(&self, keyspace: &str, text: &str) -> Result<Arc<Prepared>, ErrorBody> {
        let conns = self
            .shared
            .keyspaces
            .on_every_node(&self.shared.session, keyspace)
            .await
            .map_err(as_error)?;
        let request = Request::Prepare {
            query: text.to_owned(),
        };
        let timeout = self.shared.config.request_timeout;
        let extensions = RequestExtensions::default();
        let mut first = None;
        for conn in &conns {
            let frame = conn
                .send_with_timeout(&request, &extensions, timeout)
                .await
                .map_err(|e| as_error(DriverError::ConnectionBroken(e.to_string())))?;
            first.get_or_insert(frame);
        }
        let Some(frame) = first else {
            return Err(ErrorBody::new(
                error_code::SERVER_ERROR,
                "no node to prepare on",
            ));
        };
        match frame.response {
            Response::Result(ResultBody::Prepared(p)) => Ok(Arc::new(Prepared {
                id: p.id,
                query: text.to_owned(),
                keyspace: Some(keyspace.to_owned()),
                metadata: p.metadata,
                result_metadata: p.result_metadata,
            })),
            Response::Error(e) => Err(e),
            other => Err(ErrorBody::new(
                error_code::SERVER_ERROR,
                format!("PREPARE answered with {:?}", other.opcode()),
            )),
        }
    }

    async fn execute(
        &self,
        frame_flags: u8,
        message: &[u8],
        hints: &Hints,
    ) -> Result<Vec<u8>, ErrorBody> {
        let parts = requests::execute(message).map_err(malformed)?;
        let Some(prepared) = self.shared.registry.get(parts.id) else {
            return Err(unprepared(parts.id));
        };
        let token = prepared_token(&prepared, &parts.values, parts.names.as_deref());
        let message = self.with_policy(message, parts.consistency_at)?;
        let request = RawRequest {
            opcode: Opcode::Execute,
            flags: frame_flags,
            body: &message,
        };
        let routing = token.and_then(|t| prepared.table().map(|(k, tb)| (k, tb, t)));
        let idempotent = hints.idempotent || requests::is_read(&prepared.query);
        let statements = [Statement::prepared(prepared.clone())];
        let answer = self
            .forward(
                request,
                routing,
                prepared.is_lwt(),
                idempotent,
                &statements,
                hints,
            )
            .await;
        match (&answer, &prepared.keyspace) {
            // A node that lost an unqualified statement (restarted) cannot
            // re-prepare it without its keyspace: prepare it again in the
            // keyspace on every node, then once more.
            (Err(e), Some(keyspace)) if is_no_keyspace(e) => {
                self.prepare_in(keyspace, &prepared.query).await?;
                self.forward(
                    request,
                    routing,
                    prepared.is_lwt(),
                    idempotent,
                    &statements,
                    hints,
                )
                .await
            }
            _ => answer,
        }
    }

    async fn batch(
        &self,
        frame_flags: u8,
        message: &[u8],
        hints: &Hints,
    ) -> Result<Vec<u8>, ErrorBody> {
        let batch = requests::batch(message).map_err(malformed)?;
        let mut statements = Vec::new();
        let mut token = None;
        for entry in &batch.entries {
            if let requests::BatchEntry::Prepared { id, values } = entry {
                let Some(prepared) = self.shared.registry.get(id) else {
                    return Err(unprepared(id));
                };
                if token.is_none() {
                    token = prepared_token(&prepared, values, None).and_then(|t| {
                        prepared
                            .table()
                            .map(|(k, tb)| (k.to_owned(), tb.to_owned(), t))
                    });
                }
                statements.push(Statement::prepared(prepared));
            }
        }
        let keyspace = hints.keyspace.clone().or_else(|| self.keyspace());
        if token.is_none() {
            if let (Some(key), Some(keyspace)) = (&hints.routing_key, keyspace) {
                token = Some((
                    keyspace,
                    hints.table.clone().unwrap_or_default(),
                    murmur3_token(key),
                ));
            }
        }
        let message = self.with_policy(message, batch.consistency_at)?;
        let request = RawRequest {
            opcode: Opcode::Batch,
            flags: frame_flags,
            body: &message,
        };
        let routing = token
            .as_ref()
            .map(|(k, t, tok)| (k.as_str(), t.as_str(), *tok));
        self.forward(
            request,
            routing,
            false,
            hints.idempotent,
            &statements,
            hints,
        )
        .await
    }

    /// Through the session's plan; a statement that needed the client's
    /// `USE` keyspace runs again on a connection in that keyspace.
    async fn forward(
        &self,
        request: RawRequest<'_>,
        routing: Option<(&str, &str, Token)>,
        is_lwt: bool,
        idempotent: bool,
        prepared: &[Statement],
        hints: &Hints,
    ) -> Result<Vec<u8>, ErrorBody> {
        let timeout = self.timeout(hints);
        // Only an EXECUTE binds its key with markers, so only its misroute
        // brings a tablet payload (the library's rule for `learns`).
        let learns = request.opcode == Opcode::Execute;
        let forward = Forward {
            request,
            routing: routing.map(|(keyspace, table, token)| RoutingInfo {
                keyspace,
                table,
                token,
                learns,
            }),
            is_lwt,
            idempotent,
            timeout,
            prepared,
        };
        match self.shared.session.forward(&forward).await {
            Ok(Forwarded {
                header,
                extensions,
                message,
                ..
            }) => Ok(forwarded_frame(header.opcode, &extensions, &message)),
            Err(e) if needs_keyspace(&e) && request.opcode != Opcode::Execute => {
                let Some(keyspace) = self.keyspace() else {
                    return Err(as_error(e));
                };
                let conn = self
                    .shared
                    .keyspaces
                    .get(&self.shared.session, &keyspace)
                    .await
                    .map_err(as_error)?;
                let raw = conn
                    .send_raw_with_timeout(request, timeout)
                    .await
                    .map_err(|e| as_error(DriverError::ConnectionBroken(e.to_string())))?;
                raw_frame(&raw)
            }
            Err(e) => Err(as_error(e)),
        }
    }
}

/// A keyspace connection's answer for the client.
fn raw_frame(raw: &RawResponse) -> Result<Vec<u8>, ErrorBody> {
    let body = raw.plain_body().map_err(malformed)?;
    let (extensions, start) =
        scylla_shard::protocol::frame::read_response_extensions(raw.header.flags, &body)
            .map_err(malformed)?;
    Ok(forwarded_frame(
        raw.header.opcode,
        &extensions,
        &body[start..],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sasl_plain_tokens_are_checked() {
        let users = [("alice".to_owned(), "pw".to_owned())]
            .into_iter()
            .collect();
        assert!(check_password(&users, b"\0alice\0pw"));
        assert!(!check_password(&users, b"\0alice\0pW"));
        assert!(!check_password(&users, b"\0bob\0pw"));
        assert!(!check_password(&users, b"alice\0pw"));
        assert!(!check_password(&users, b"\0alice\0pw\0x"));
    }

    #[test]
    fn forwarded_frames_drop_the_servers_payload_and_keep_warnings() {
        let extensions = ResponseExtensions {
            tracing_id: None,
            warnings: vec!["w".into()],
            custom_payload: Some(
                [("tablets-routing-v1".to_owned(), vec![1])]
                    .into_iter()
                    .collect(),
            ),
        };
        let frame = with_stream(
            forwarded_frame(Opcode::Result as u8, &extensions, &[0, 0, 0, 1]),
            77,
        );
        let head: [u8; HEADER_LEN] = frame[..HEADER_LEN].try_into().unwrap();
        let header = FrameHeader::parse(&head).unwrap();
        assert_eq!(
            (header.version, header.stream, header.flags),
            (RESPONSE_VERSION, 77, flags::WARNING)
        );
        let (back, start) = scylla_shard::protocol::frame::read_response_extensions(
            header.flags,
            &frame[HEADER_LEN..],
        )
        .unwrap();
        assert_eq!(back.warnings, vec!["w".to_owned()]);
        assert_eq!(&frame[HEADER_LEN + start..], &[0, 0, 0, 1]);
    }
}
