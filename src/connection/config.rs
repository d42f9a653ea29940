//! Settings of one connection.

use std::time::Duration;

use super::tls::TlsConnector;
use crate::protocol::frame::MAX_BODY_LEN;
use crate::protocol::Compression;

/// How to open and keep one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionConfig {
    /// Compress frames after the handshake, if the server offers it.
    pub compression: Option<Compression>,
    /// `(user, password)` for `PasswordAuthenticator`.
    pub credentials: Option<(String, String)>,
    /// Bound on TCP connect plus the whole handshake (and `USE`).
    pub connect_timeout: Duration,
    /// Send OPTIONS after this long without reading anything, so a dead
    /// peer is noticed even when no request is waiting. `None` disables it.
    pub heartbeat_interval: Option<Duration>,
    /// How long a keepalive OPTIONS may wait before the connection is
    /// declared broken.
    pub heartbeat_timeout: Duration,
    /// Ask for `tablets-routing-v1` payloads if the server offers them.
    pub tablets_routing: bool,
    pub application_name: Option<String>,
    pub application_version: Option<String>,
    /// Keyspace to `USE` right after the handshake (the exact,
    /// case-sensitive name; it is quoted for you).
    pub keyspace: Option<String>,
    pub tcp_nodelay: bool,
    /// TLS on every connection (and the shard-aware TLS port), if set.
    pub tls: Option<TlsConnector>,
    /// Connect to this Unix stream socket (the communicator's) instead of
    /// the TCP address, which then only names the peer.
    pub unix_socket: Option<std::path::PathBuf>,
    /// Largest response frame body accepted, in bytes, and the most a
    /// compressed body may inflate to. A larger one is a protocol
    /// violation: the connection is closed and its requests follow the
    /// retry rules. At most (and by default) [`MAX_BODY_LEN`].
    pub max_frame_len: usize,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            compression: None,
            credentials: None,
            connect_timeout: Duration::from_secs(5),
            heartbeat_interval: Some(Duration::from_secs(30)),
            heartbeat_timeout: Duration::from_secs(30),
            tablets_routing: true,
            application_name: None,
            application_version: None,
            keyspace: None,
            tcp_nodelay: true,
            tls: None,
            unix_socket: None,
            max_frame_len: MAX_BODY_LEN,
        }
    }
}
