//! Opening the socket and the CQL handshake: OPTIONS/SUPPORTED, STARTUP,
//! authentication.
//!
//! The handshake runs on the bare socket, one message at a time on stream
//! 0, before the reader and writer tasks exist: it is strictly sequential,
//! so multiplexing would only add states.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::config::ConnectionConfig;
use super::error::ConnectionError;
use super::features::{keys, ServerFeatures};
use crate::protocol::frame::{
    decode_response, encode_request, FrameHeader, HEADER_LEN, RESPONSE_BIT, VERSION,
};
use crate::protocol::{Compression, Request, Response};

/// `DRIVER_NAME` sent in STARTUP.
pub const DRIVER_NAME: &str = "libscylla_shard";
/// `DRIVER_VERSION` sent in STARTUP.
pub const DRIVER_VERSION: &str = env!("CARGO_PKG_VERSION");
/// `CQL_VERSION` when the server offers none.
const DEFAULT_CQL_VERSION: &str = "3.0.0";
/// Challenge rounds tolerated before giving up on a chatty authenticator.
const MAX_AUTH_ROUNDS: usize = 16;

/// Opens the TCP connection, from `source_port` if given (for the
/// shard-aware port, whose shard is `source_port % nr_shards`).
pub(crate) async fn connect(
    addr: SocketAddr,
    source_port: Option<u16>,
    nodelay: bool,
) -> Result<TcpStream, ConnectionError> {
    let stream = match source_port {
        None => TcpStream::connect(addr)
            .await
            .map_err(ConnectionError::Io)?,
        Some(port) => {
            let port_error = |e: io::Error| match e.kind() {
                io::ErrorKind::AddrInUse
                | io::ErrorKind::AddrNotAvailable
                | io::ErrorKind::PermissionDenied => {
                    ConnectionError::AddressUnavailable { port, source: e }
                }
                _ => ConnectionError::Io(e),
            };
            let (socket, local) = if addr.is_ipv4() {
                (
                    TcpSocket::new_v4(),
                    SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
                )
            } else {
                (
                    TcpSocket::new_v6(),
                    SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)),
                )
            };
            let socket = socket.map_err(ConnectionError::Io)?;
            // A port held by a connection to another node, or by one in
            // TIME_WAIT, still serves this destination: only the whole
            // 4-tuple must be unique, which `connect` checks. Without this,
            // every socket of the machine in the range competes for the
            // same few ports per shard.
            socket.set_reuseaddr(true).map_err(ConnectionError::Io)?;
            socket.bind(local).map_err(port_error)?;
            // A 4-tuple clash only shows up here, as EADDRNOTAVAIL.
            socket.connect(addr).await.map_err(port_error)?
        }
    };
    stream.set_nodelay(nodelay).map_err(ConnectionError::Io)?;
    Ok(stream)
}

/// What the handshake settled.
pub(crate) struct Negotiated {
    pub features: ServerFeatures,
    pub compression: Option<Compression>,
}

/// OPTIONS, STARTUP, and authentication if the server asks for it.
pub(crate) async fn handshake(
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
    config: &ConnectionConfig,
) -> Result<Negotiated, ConnectionError> {
    let features = match exchange(stream, &Request::Options, None, config.max_frame_len).await? {
        Response::Supported { options } => ServerFeatures::parse(&options),
        other => return Err(unexpected("SUPPORTED", &other)),
    };
    let (options, compression) = startup_options(&features, config);
    // Frames we send stay uncompressed until READY/AUTH_SUCCESS, but the
    // server may compress its side as soon as it has read STARTUP.
    match exchange(
        stream,
        &Request::Startup { options },
        compression,
        config.max_frame_len,
    )
    .await?
    {
        Response::Ready => {}
        Response::Authenticate { authenticator } => {
            authenticate(stream, config, authenticator, compression).await?
        }
        other => return Err(unexpected("READY or AUTHENTICATE", &other)),
    }
    Ok(Negotiated {
        features,
        compression,
    })
}

/// SASL PLAIN, which is what `PasswordAuthenticator` (and Scylla's other
/// password-based authenticators) expect.
async fn authenticate(
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
    config: &ConnectionConfig,
    authenticator: String,
    compression: Option<Compression>,
) -> Result<(), ConnectionError> {
    let Some((user, password)) = &config.credentials else {
        return Err(ConnectionError::AuthenticationRequired { authenticator });
    };
    let mut token = Vec::with_capacity(user.len() + password.len() + 2);
    token.push(0);
    token.extend_from_slice(user.as_bytes());
    token.push(0);
    token.extend_from_slice(password.as_bytes());
    let request = Request::AuthResponse { token: Some(token) };
    for _ in 0..MAX_AUTH_ROUNDS {
        match exchange(stream, &request, compression, config.max_frame_len).await? {
            Response::AuthSuccess { .. } => return Ok(()),
            Response::AuthChallenge { .. } => continue,
            other => return Err(unexpected("AUTH_SUCCESS or AUTH_CHALLENGE", &other)),
        }
    }
    Err(ConnectionError::Protocol(format!(
        "authentication did not finish after {MAX_AUTH_ROUNDS} challenges"
    )))
}

/// The STARTUP map: our identity, the compression both sides know, and
/// the Scylla extensions the server offered that we want.
pub(crate) fn startup_options(
    features: &ServerFeatures,
    config: &ConnectionConfig,
) -> (Vec<(String, String)>, Option<Compression>) {
    let mut options = Vec::with_capacity(10);
    let mut add = |k: &str, v: String| options.push((k.to_owned(), v));
    add(
        keys::CQL_VERSION,
        features
            .cql_version
            .clone()
            .unwrap_or_else(|| DEFAULT_CQL_VERSION.to_owned()),
    );
    add(keys::DRIVER_NAME, DRIVER_NAME.to_owned());
    add(keys::DRIVER_VERSION, DRIVER_VERSION.to_owned());
    let compression = config
        .compression
        .filter(|c| features.supports_compression(c.name()));
    if let Some(c) = compression {
        add(keys::COMPRESSION, c.name().to_owned());
    } else if let Some(c) = config.compression {
        tracing::warn!(
            "server does not offer {} compression; connection runs uncompressed",
            c.name()
        );
    }
    if let Some(name) = &config.application_name {
        add(keys::APPLICATION_NAME, name.clone());
    }
    if let Some(version) = &config.application_version {
        add(keys::APPLICATION_VERSION, version.clone());
    }
    if let Some(mask) = features.lwt_mask {
        add(
            keys::LWT_ADD_METADATA_MARK,
            format!("{}{mask}", keys::LWT_MASK_PREFIX),
        );
    }
    if features.tablets_routing_v1 && config.tablets_routing {
        add(keys::TABLETS_ROUTING_V1, String::new());
    }
    // Echoed only when we understood the code, so the errors it enables
    // can be recognised.
    if features.rate_limit_error_code.is_some() {
        add(keys::RATE_LIMIT_ERROR, String::new());
    }
    (options, compression)
}

/// Sends one request on stream 0 and reads its response.
async fn exchange(
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
    request: &Request,
    compression: Option<Compression>,
    max_frame_len: usize,
) -> Result<Response, ConnectionError> {
    let frame = encode_request(0, request, &Default::default(), None).map_err(|e| {
        ConnectionError::Protocol(format!("cannot encode {:?}: {e}", request.opcode()))
    })?;
    stream
        .write_all(&frame)
        .await
        .map_err(ConnectionError::Io)?;
    let mut head = [0u8; HEADER_LEN];
    stream
        .read_exact(&mut head)
        .await
        .map_err(ConnectionError::Io)?;
    let header = FrameHeader::parse(&head).map_err(|e| ConnectionError::Protocol(e.to_string()))?;
    if header.version != (VERSION | RESPONSE_BIT) {
        return Err(ConnectionError::Protocol(format!(
            "response with version byte 0x{:02x}",
            header.version
        )));
    }
    if header.body_len > max_frame_len {
        return Err(ConnectionError::Protocol(super::io::frame_too_large(
            header.body_len,
            max_frame_len,
        )));
    }
    if header.stream != 0 {
        return Err(ConnectionError::Protocol(format!(
            "handshake response on stream {} instead of 0",
            header.stream
        )));
    }
    let mut body = vec![0u8; header.body_len];
    stream
        .read_exact(&mut body)
        .await
        .map_err(ConnectionError::Io)?;
    let (_, response) = super::shared::inflated_within(&header, &body, max_frame_len)
        .and_then(|()| decode_response(&header, &body, compression))
        .map_err(|e| ConnectionError::Protocol(e.to_string()))?;
    match response {
        Response::Error(e) => Err(ConnectionError::Server(e)),
        other => Ok(other),
    }
}

fn unexpected(wanted: &str, got: &Response) -> ConnectionError {
    ConnectionError::Protocol(format!("expected {wanted}, got {:?}", got.opcode()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(pairs: &[(&str, &str)]) -> ServerFeatures {
        let options: Vec<(String, Vec<String>)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
            .collect();
        ServerFeatures::parse(&options)
    }

    fn get<'a>(options: &'a [(String, String)], key: &str) -> Option<&'a str> {
        options
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn startup_echoes_offered_extensions() {
        let f = features(&[
            ("CQL_VERSION", "3.3.1"),
            ("COMPRESSION", "lz4"),
            (
                "SCYLLA_LWT_ADD_METADATA_MARK",
                "LWT_OPTIMIZATION_META_BIT_MASK=2147483648",
            ),
            ("TABLETS_ROUTING_V1", ""),
            ("SCYLLA_RATE_LIMIT_ERROR", "ERROR_CODE=61440"),
        ]);
        let config = ConnectionConfig {
            compression: Some(Compression::Lz4),
            application_name: Some("app".into()),
            application_version: Some("1.2".into()),
            ..Default::default()
        };
        let (options, compression) = startup_options(&f, &config);
        assert_eq!(compression, Some(Compression::Lz4));
        assert_eq!(get(&options, "CQL_VERSION"), Some("3.3.1"));
        assert_eq!(get(&options, "DRIVER_NAME"), Some("libscylla_shard"));
        assert_eq!(get(&options, "DRIVER_VERSION"), Some(DRIVER_VERSION));
        assert_eq!(get(&options, "COMPRESSION"), Some("lz4"));
        assert_eq!(get(&options, "APPLICATION_NAME"), Some("app"));
        assert_eq!(get(&options, "APPLICATION_VERSION"), Some("1.2"));
        assert_eq!(
            get(&options, "SCYLLA_LWT_ADD_METADATA_MARK"),
            Some("LWT_OPTIMIZATION_META_BIT_MASK=2147483648")
        );
        assert_eq!(get(&options, "TABLETS_ROUTING_V1"), Some(""));
        assert_eq!(get(&options, "SCYLLA_RATE_LIMIT_ERROR"), Some(""));
        // Sharding keys are never echoed.
        assert_eq!(get(&options, "SCYLLA_SHARD"), None);
    }

    #[test]
    fn startup_omits_what_is_not_offered_or_not_wanted() {
        let f = features(&[("TABLETS_ROUTING_V1", "")]);
        let config = ConnectionConfig {
            compression: Some(Compression::Lz4),
            tablets_routing: false,
            ..Default::default()
        };
        let (options, compression) = startup_options(&f, &config);
        assert_eq!(compression, None);
        assert_eq!(get(&options, "CQL_VERSION"), Some("3.0.0"));
        assert_eq!(get(&options, "COMPRESSION"), None);
        assert_eq!(get(&options, "TABLETS_ROUTING_V1"), None);
        assert_eq!(get(&options, "SCYLLA_LWT_ADD_METADATA_MARK"), None);
        assert_eq!(get(&options, "SCYLLA_RATE_LIMIT_ERROR"), None);
        assert_eq!(get(&options, "APPLICATION_NAME"), None);
    }
}
