//! Errors of opening a connection and of sending requests on it.
//!
//! They are split so the pool and the session can tell apart what to do:
//! try another source port, back off, retry elsewhere, or report.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::tls::TlsError;
use crate::protocol::response::{error_code, ErrorBody};
use crate::protocol::ProtocolError;

/// Why a connection stopped serving requests. Shared (behind an `Arc`) by
/// every request that was in flight when it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokenReason {
    /// The server closed the socket.
    Eof,
    /// Reading or writing the socket failed.
    Io {
        kind: io::ErrorKind,
        message: String,
    },
    /// The server sent bytes that are not a valid CQL v4 response frame.
    Protocol(String),
    /// No answer to the keepalive OPTIONS within the bound.
    HeartbeatTimeout(Duration),
    /// [`Connection::close`](super::Connection::close) was called.
    Closed,
    /// Every handle to the connection was dropped.
    Dropped,
}

impl BrokenReason {
    pub(crate) fn io(e: &io::Error) -> BrokenReason {
        BrokenReason::Io {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

impl fmt::Display for BrokenReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokenReason::Eof => f.write_str("the server closed the connection"),
            BrokenReason::Io { message, .. } => write!(f, "I/O error: {message}"),
            BrokenReason::Protocol(what) => write!(f, "protocol violation by the server: {what}"),
            BrokenReason::HeartbeatTimeout(after) => {
                write!(f, "no answer to the keepalive OPTIONS within {after:?}")
            }
            BrokenReason::Closed => f.write_str("the connection was closed by the client"),
            BrokenReason::Dropped => f.write_str("the connection was dropped by the client"),
        }
    }
}

/// A request could not be answered on this connection.
#[derive(Debug, Clone)]
pub enum RequestError {
    /// The connection died; if the request had been written the server may
    /// still have executed it.
    ConnectionBroken(Arc<BrokenReason>),
    /// The connection was already broken when the request was submitted:
    /// it was not sent, so any statement may be retried elsewhere.
    NotSent(Arc<BrokenReason>),
    /// [`Connection::close`](super::Connection::close) was called: the
    /// request was not sent.
    Closing,
    /// All 32768 stream ids are in use (in flight or awaiting a late
    /// response); the request was not sent.
    StreamIdsExhausted,
    /// No response within the caller's bound. The stream id stays reserved
    /// until the late response arrives; the connection stays usable.
    Timeout(Duration),
    /// The request could not be encoded (e.g. too large); it was not sent.
    Encode(ProtocolError),
    /// The server's response could not be decoded; the connection has been
    /// closed because the stream can no longer be trusted.
    Protocol(ProtocolError),
}

impl RequestError {
    /// True when the request certainly never reached the server, so any
    /// request may be retried on another connection without duplication.
    pub fn is_not_sent(&self) -> bool {
        matches!(
            self,
            RequestError::NotSent(_)
                | RequestError::Closing
                | RequestError::StreamIdsExhausted
                | RequestError::Encode(_)
        )
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::ConnectionBroken(reason) => write!(f, "connection broken: {reason}"),
            RequestError::NotSent(reason) => {
                write!(f, "connection broken before the request was sent: {reason}")
            }
            RequestError::Closing => f.write_str("connection is closing"),
            RequestError::StreamIdsExhausted => {
                f.write_str("all 32768 stream ids of the connection are in use")
            }
            RequestError::Timeout(after) => write!(f, "no response within {after:?}"),
            RequestError::Encode(e) => write!(f, "cannot encode request: {e}"),
            RequestError::Protocol(e) => write!(f, "malformed response: {e}"),
        }
    }
}

impl std::error::Error for RequestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RequestError::Encode(e) | RequestError::Protocol(e) => Some(e),
            _ => None,
        }
    }
}

/// Opening a connection (TCP connect, handshake, `USE`) failed, or a
/// connection-level request (`USE`, `REGISTER`) was refused.
#[derive(Debug)]
pub enum ConnectionError {
    /// The chosen source port cannot be used (EADDRINUSE, EADDRNOTAVAIL,
    /// EACCES): the pool should try the next candidate port.
    AddressUnavailable { port: u16, source: io::Error },
    /// TCP connect or handshake I/O failed (refused, reset, unreachable...).
    Io(io::Error),
    /// Connect plus handshake took longer than `connect_timeout`.
    Timeout(Duration),
    /// The server answered with an ERROR (bad credentials, unknown
    /// keyspace, ...); see [`ConnectionError::is_bad_credentials`].
    Server(ErrorBody),
    /// The server asked for authentication and no credentials are set.
    AuthenticationRequired { authenticator: String },
    /// The server answered something the handshake does not allow.
    Protocol(String),
    /// A request after the handshake (`USE`, `REGISTER`) failed.
    Request(RequestError),
    /// The TLS handshake failed.
    Tls(TlsError),
}

impl ConnectionError {
    /// True for a source-port clash: move on to another port.
    pub fn is_address_unavailable(&self) -> bool {
        matches!(self, ConnectionError::AddressUnavailable { .. })
    }

    /// True when the server rejected the credentials.
    pub fn is_bad_credentials(&self) -> bool {
        matches!(self, ConnectionError::Server(e) if e.code == error_code::BAD_CREDENTIALS)
    }

    /// The TLS failure, when the TLS handshake failed.
    pub fn tls_error(&self) -> Option<TlsError> {
        match self {
            ConnectionError::Tls(e) => Some(e.clone()),
            _ => None,
        }
    }

    /// The server's refusal, when the server refused (bad credentials,
    /// unknown keyspace, protocol version...): a cause every node would
    /// give alike, unlike an outage. Missing credentials count as bad ones.
    pub fn server_error(&self) -> Option<ErrorBody> {
        match self {
            ConnectionError::Server(e) => Some(e.clone()),
            ConnectionError::AuthenticationRequired { .. } => Some(ErrorBody::new(
                error_code::BAD_CREDENTIALS,
                self.to_string(),
            )),
            _ => None,
        }
    }
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionError::AddressUnavailable { port, source } => {
                write!(f, "local port {port} is unavailable: {source}")
            }
            ConnectionError::Io(e) => write!(f, "connection failed: {e}"),
            ConnectionError::Timeout(after) => {
                write!(f, "connection not established within {after:?}")
            }
            ConnectionError::Server(e) => {
                write!(f, "server error 0x{:04x}: {}", e.code, e.message)
            }
            ConnectionError::AuthenticationRequired { authenticator } => write!(
                f,
                "the server requires authentication ({authenticator}) but no credentials are configured"
            ),
            ConnectionError::Protocol(what) => write!(f, "handshake protocol error: {what}"),
            ConnectionError::Request(e) => e.fmt(f),
            ConnectionError::Tls(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ConnectionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectionError::AddressUnavailable { source, .. } => Some(source),
            ConnectionError::Io(e) => Some(e),
            ConnectionError::Request(e) => Some(e),
            _ => None,
        }
    }
}

impl From<RequestError> for ConnectionError {
    fn from(e: RequestError) -> Self {
        ConnectionError::Request(e)
    }
}
