//! One CQL v4 connection to one node (and, on Scylla, one shard).
//!
//! [`open`] connects (optionally from a chosen source port, for the
//! shard-aware port), runs the handshake and starts three tasks: a writer
//! that batches queued frames into few `write` calls, a reader that splits
//! responses out of a large buffer and wakes their waiters, and a heartbeat.
//! A [`Connection`] is a cheap, cloneable handle; up to 32768 requests may
//! be in flight on it at once.
//!
//! When the connection dies every in-flight request fails with
//! [`RequestError::ConnectionBroken`], later sends fail at once, and
//! [`Connection::closed`] resolves, which is what the pool waits on to refill.

mod config;
mod error;
mod features;
mod handshake;
mod io;
mod shared;
pub mod stream_ids;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::UnixStream;
use tokio::sync::mpsc;

pub use config::ConnectionConfig;
pub use error::{BrokenReason, ConnectionError, RequestError};
pub use features::{keys, parse_uuid, ServerFeatures, ShardingInfo};
pub use handshake::{DRIVER_NAME, DRIVER_VERSION};
pub use shared::{RawRequest, RawResponse, ResponseFrame};
pub use stream_ids::MAX_STREAMS;
pub use tls::{TlsConnector, TlsError, TlsErrorKind, TlsSettings};

use crate::protocol::response::{Event, ResultBody};
use crate::protocol::{Compression, QueryParameters, Request, RequestExtensions, Response};
use shared::{Outgoing, Shared};

/// How long [`Connection::close`] waits for in-flight requests.
pub const DEFAULT_CLOSE_GRACE: Duration = Duration::from_secs(5);
/// Events buffered for a slow [`Connection::register_for_events`] receiver
/// before newer ones are dropped (the reader never blocks on it).
pub const EVENT_QUEUE: usize = 1024;

/// Server event kinds for REGISTER.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    TopologyChange,
    StatusChange,
    SchemaChange,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::TopologyChange => "TOPOLOGY_CHANGE",
            EventType::StatusChange => "STATUS_CHANGE",
            EventType::SchemaChange => "SCHEMA_CHANGE",
        }
    }
}

/// Connects to `addr` and runs the handshake, all within
/// `config.connect_timeout`.
///
/// With `source_port`, the socket is bound to that local port first (for
/// the shard-aware port); a port that cannot be used yields
/// [`ConnectionError::AddressUnavailable`] so the caller can try another.
pub async fn open(
    addr: SocketAddr,
    source_port: Option<u16>,
    config: &ConnectionConfig,
) -> Result<(Connection, ServerFeatures), ConnectionError> {
    let limit = config.connect_timeout;
    tokio::time::timeout(limit, open_unbounded(addr, source_port, config))
        .await
        .unwrap_or(Err(ConnectionError::Timeout(limit)))
}

async fn open_unbounded(
    addr: SocketAddr,
    source_port: Option<u16>,
    config: &ConnectionConfig,
) -> Result<(Connection, ServerFeatures), ConnectionError> {
    let connection = match &config.unix_socket {
        Some(path) => open_unix(path, addr, config).await?,
        None => open_tcp(addr, source_port, config).await?,
    };
    let features = connection.features().clone();
    if let Some(keyspace) = &config.keyspace {
        connection.use_keyspace(keyspace).await?;
    }
    Ok((connection, features))
}

/// A connection over the communicator's Unix stream socket.
async fn open_unix(
    path: &std::path::Path,
    addr: SocketAddr,
    config: &ConnectionConfig,
) -> Result<Connection, ConnectionError> {
    let mut stream = UnixStream::connect(path)
        .await
        .map_err(ConnectionError::Io)?;
    let negotiated = handshake::handshake(&mut stream, config).await?;
    let (read_half, write_half) = stream.into_split();
    // A Unix peer has no IP address: both ends are named `addr`.
    Ok(Connection::start(
        read_half,
        write_half,
        (addr, addr),
        negotiated,
        config,
    ))
}

/// A TCP connection (from `source_port` if given), over TLS if configured.
async fn open_tcp(
    addr: SocketAddr,
    source_port: Option<u16>,
    config: &ConnectionConfig,
) -> Result<Connection, ConnectionError> {
    let mut stream = handshake::connect(addr, source_port, config.tcp_nodelay).await?;
    let local_addr = stream.local_addr().map_err(ConnectionError::Io)?;
    let peer_addr = stream.peer_addr().map_err(ConnectionError::Io)?;
    let addrs = (local_addr, peer_addr);
    Ok(match &config.tls {
        None => {
            let negotiated = handshake::handshake(&mut stream, config).await?;
            let (read_half, write_half) = stream.into_split();
            Connection::start(read_half, write_half, addrs, negotiated, config)
        }
        Some(tls) => {
            let mut stream = tls
                .connect(addr.ip(), stream)
                .await
                .map_err(ConnectionError::Tls)?;
            let negotiated =
                handshake::handshake(&mut stream, config)
                    .await
                    .map_err(|e| match &e {
                        ConnectionError::Io(io) => {
                            TlsError::from_io(io).map_or(e, ConnectionError::Tls)
                        }
                        _ => e,
                    })?;
            let (read_half, write_half) = tokio::io::split(stream);
            Connection::start(read_half, write_half, addrs, negotiated, config)
        }
    })
}

/// Breaks the connection when the last handle goes away, so its tasks and
/// socket do not outlive every user.
struct Owner(Arc<Shared>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.fail(BrokenReason::Dropped);
    }
}

/// A handle to an open connection. Clones share the connection.
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
    _owner: Arc<Owner>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.shared.peer_addr)
            .field("local", &self.shared.local_addr)
            .field("shard", &self.shard())
            .field("in_flight", &self.in_flight())
            .field("broken", &self.shared.broken_reason())
            .finish()
    }
}

impl Connection {
    /// Starts the tasks over the two halves of a connected, handshaken
    /// stream (plain TCP or TLS).
    fn start(
        read_half: impl AsyncRead + Unpin + Send + 'static,
        write_half: impl AsyncWrite + Unpin + Send + 'static,
        (local_addr, peer_addr): (SocketAddr, SocketAddr),
        negotiated: handshake::Negotiated,
        config: &ConnectionConfig,
    ) -> Connection {
        let shared = Arc::new(Shared::new(
            negotiated.features,
            negotiated.compression,
            local_addr,
            peer_addr,
            config.max_frame_len,
        ));
        tokio::spawn(io::reader_task(shared.clone(), read_half));
        tokio::spawn(io::writer_task(shared.clone(), write_half));
        if let Some(interval) = config.heartbeat_interval.filter(|i| !i.is_zero()) {
            tokio::spawn(io::heartbeat_task(
                shared.clone(),
                interval,
                config.heartbeat_timeout,
            ));
        }
        Connection {
            _owner: Arc::new(Owner(shared.clone())),
            shared,
        }
    }

    /// Sends `request` and waits for its response. A server ERROR is a
    /// successful round trip: it comes back as `Response::Error`.
    pub async fn send(
        &self,
        request: &Request,
        extensions: &RequestExtensions,
    ) -> Result<ResponseFrame, RequestError> {
        let raw = self
            .shared
            .roundtrip(Outgoing::Request(request, extensions))
            .await?;
        self.decode(&raw)
    }

    /// [`send`](Self::send) bounded by `timeout`. On timeout the stream id
    /// stays reserved until the late response arrives; the connection
    /// stays usable.
    pub async fn send_with_timeout(
        &self,
        request: &Request,
        extensions: &RequestExtensions,
        timeout: Duration,
    ) -> Result<ResponseFrame, RequestError> {
        tokio::time::timeout(timeout, self.send(request, extensions))
            .await
            .unwrap_or(Err(RequestError::Timeout(timeout)))
    }

    /// Sends a pre-encoded body and returns the undecoded response, for
    /// retries and proxies that already hold the bytes.
    pub async fn send_raw(&self, request: RawRequest<'_>) -> Result<RawResponse, RequestError> {
        self.shared.roundtrip(Outgoing::Raw(request)).await
    }

    /// [`send_raw`](Self::send_raw) bounded by `timeout` (the stream id
    /// stays reserved until a late response, as with
    /// [`send_with_timeout`](Self::send_with_timeout)).
    pub async fn send_raw_with_timeout(
        &self,
        request: RawRequest<'_>,
        timeout: Duration,
    ) -> Result<RawResponse, RequestError> {
        tokio::time::timeout(timeout, self.send_raw(request))
            .await
            .unwrap_or(Err(RequestError::Timeout(timeout)))
    }

    /// A pre-encoded request bounded by `timeout`, its response decoded
    /// (as [`send_with_timeout`](Self::send_with_timeout)).
    pub async fn send_encoded_with_timeout(
        &self,
        request: RawRequest<'_>,
        timeout: Duration,
    ) -> Result<ResponseFrame, RequestError> {
        let raw = self.send_raw_with_timeout(request, timeout).await?;
        self.decode(&raw)
    }

    /// Decodes a raw response of this connection. A frame that does not
    /// decode means the server cannot be trusted: the connection is broken.
    pub fn decode(&self, raw: &RawResponse) -> Result<ResponseFrame, RequestError> {
        raw.decode().map_err(|e| {
            self.shared
                .fail(BrokenReason::Protocol(format!("undecodable response: {e}")));
            RequestError::Protocol(e)
        })
    }

    /// `USE <keyspace>`: the exact (case-sensitive) name, quoted for CQL.
    pub async fn use_keyspace(&self, keyspace: &str) -> Result<(), ConnectionError> {
        let request = Request::Query {
            query: format!("USE {}", quote_identifier(keyspace)),
            params: QueryParameters::default(),
        };
        match self.send(&request, &Default::default()).await?.response {
            Response::Result(ResultBody::SetKeyspace(_)) => Ok(()),
            Response::Error(e) => Err(ConnectionError::Server(e)),
            other => Err(ConnectionError::Protocol(format!(
                "USE answered with {:?}",
                other.opcode()
            ))),
        }
    }

    /// Sends REGISTER and returns the receiver of the pushed events.
    /// Registering again replaces the previous receiver.
    pub async fn register_for_events(
        &self,
        events: &[EventType],
    ) -> Result<mpsc::Receiver<Event>, ConnectionError> {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        // Installed first so no event between READY and our return is lost.
        self.shared.set_event_sender(Some(tx));
        let request = Request::Register {
            events: events.iter().map(|e| e.as_str().to_owned()).collect(),
        };
        let result = match self.send(&request, &Default::default()).await {
            Ok(frame) => match frame.response {
                Response::Ready => return Ok(rx),
                Response::Error(e) => ConnectionError::Server(e),
                other => ConnectionError::Protocol(format!(
                    "REGISTER answered with {:?}",
                    other.opcode()
                )),
            },
            Err(e) => ConnectionError::Request(e),
        };
        self.shared.set_event_sender(None);
        Err(result)
    }

    /// Requests waiting for a response, including abandoned ones whose
    /// stream id is held until their late response.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight()
    }

    /// Abandoned requests (timed out or cancelled) still holding an id.
    pub fn orphaned(&self) -> usize {
        self.shared.orphaned()
    }

    pub fn is_broken(&self) -> bool {
        self.shared.broken_reason().is_some()
    }

    /// True once [`close`](Self::close) started: no new requests accepted.
    pub fn is_closing(&self) -> bool {
        self.shared.is_closing()
    }

    /// Why the connection broke, once it has.
    pub fn broken_reason(&self) -> Option<Arc<BrokenReason>> {
        self.shared.broken_reason()
    }

    /// Resolves once the connection is broken (or closed), returning why.
    pub async fn closed(&self) -> Arc<BrokenReason> {
        let mut stop = self.shared.stopped();
        let _ = stop.wait_for(|s| *s).await;
        self.shared
            .broken_reason()
            .unwrap_or_else(|| Arc::new(BrokenReason::Dropped))
    }

    /// Shard serving this connection, if the node is sharded.
    pub fn shard(&self) -> Option<u16> {
        self.shared.features.shard()
    }

    pub fn features(&self) -> &ServerFeatures {
        &self.shared.features
    }

    /// Compression in use after the handshake.
    pub fn compression(&self) -> Option<Compression> {
        self.shared.compression
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    pub fn peer_addr(&self) -> SocketAddr {
        self.shared.peer_addr
    }

    /// Graceful close with [`DEFAULT_CLOSE_GRACE`].
    pub async fn close(&self) {
        self.close_within(DEFAULT_CLOSE_GRACE).await
    }

    /// Stops accepting requests, waits up to `grace` for the in-flight ones,
    /// then shuts the connection down (any still waiting fail).
    pub async fn close_within(&self, grace: Duration) {
        self.shared.start_closing();
        let _ = tokio::time::timeout(grace, self.shared.wait_drained()).await;
        self.shared.fail(BrokenReason::Closed);
    }
}

/// Quotes a CQL identifier (`"` doubled), unless it is already quoted.
fn quote_identifier(name: &str) -> String {
    if name.len() >= 2 && name.starts_with('"') && name.ends_with('"') {
        return name.to_owned();
    }
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_identifier("ks"), "\"ks\"");
        assert_eq!(quote_identifier("My\"Ks"), "\"My\"\"Ks\"");
        assert_eq!(quote_identifier("\"Already\""), "\"Already\"");
    }

    #[test]
    fn connection_is_send_sync_and_cheap_to_clone() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<Connection>();
    }
}
