//! CQL listeners and connections: shard placement, the handshake, framing,
//! events, and handing requests to the engine.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use scylla_shard::protocol::frame::{
    self, decode_request, encode_response, FrameHeader, HEADER_LEN, VERSION,
};
use scylla_shard::protocol::response::{error_code, ErrorBody, Event};
use scylla_shard::protocol::{Compression, Request, Response, ResponseExtensions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::cluster::{ClientInfo, Cluster, Node};
use crate::engine::{traces, Reply, SessionState};
use crate::metrics::PortKind;

/// Scylla's limit on the first frame of a connection.
const MAX_FIRST_FRAME: usize = 100_000;

const PASSWORD_AUTHENTICATOR: &str = "org.apache.cassandra.auth.PasswordAuthenticator";

/// Binds both listeners of every node, then serves them until the process
/// ends. Returns once every listener is bound.
pub async fn start(cluster: Arc<Cluster>) -> std::io::Result<()> {
    for node in &cluster.nodes {
        for kind in [PortKind::Regular, PortKind::ShardAware] {
            if kind == PortKind::ShardAware && cluster.config.shard_aware_port_unreachable {
                // Advertised in SUPPORTED but never listened on: attempts
                // are refused, which is what drivers must fall back from.
                continue;
            }
            let addr = node.address(port_of(&cluster, kind));
            let listener = TcpListener::bind(addr).await.map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"))
            })?;
            tokio::spawn(listen(cluster.clone(), node.clone(), kind, listener));
        }
    }
    Ok(())
}

fn port_of(cluster: &Cluster, kind: PortKind) -> u16 {
    match kind {
        PortKind::Regular => cluster.config.port,
        PortKind::ShardAware => cluster.config.shard_aware_port,
    }
}

/// Accepts connections while the node is up; while it is down the socket is
/// closed so connection attempts are refused, then bound again.
async fn listen(cluster: Arc<Cluster>, node: Arc<Node>, kind: PortKind, listener: TcpListener) {
    let mut lifecycle = node.lifecycle.subscribe();
    let mut listener = Some(listener);
    loop {
        let Some(current) = listener.as_ref() else {
            // Down: wait until the node is up again, then bind anew.
            if lifecycle.wait_for(|l| l.up).await.is_err() {
                return;
            }
            let addr = node.address(port_of(&cluster, kind));
            loop {
                match TcpListener::bind(addr).await {
                    Ok(l) => {
                        listener = Some(l);
                        break;
                    }
                    Err(e) => {
                        log(&cluster, format!("rebinding {addr}: {e}"));
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            continue;
        };
        tokio::select! {
            accepted = current.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve_connection(cluster.clone(), node.clone(), kind, stream, peer));
                }
                Err(e) => {
                    // Out of descriptors, typically: let connections close
                    // instead of spinning on the error.
                    log(&cluster, format!("accept on node {}: {e}", node.info.ip));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            changed = lifecycle.changed() => {
                if changed.is_err() {
                    return;
                }
                if !lifecycle.borrow().up {
                    listener = None;
                }
            }
        }
    }
}

pub fn log(cluster: &Cluster, message: String) {
    if cluster.config.verbose {
        eprintln!("emulator: {message}");
    }
}

/// The shard a new connection is served by.
fn place(cluster: &Cluster, node: &Node, kind: PortKind, peer: SocketAddr) -> u16 {
    let shards = cluster.config.shards;
    match kind {
        PortKind::Regular => node.metrics.least_loaded_shard(),
        PortKind::ShardAware if cluster.config.simulate_nat && shards > 1 => {
            // A NAT rewrote the source port: never the shard the client chose.
            (peer.port() % shards + 1) % shards
        }
        PortKind::ShardAware => peer.port() % shards,
    }
}

async fn serve_connection(
    cluster: Arc<Cluster>,
    node: Arc<Node>,
    kind: PortKind,
    stream: TcpStream,
    peer: SocketAddr,
) {
    let shard = place(&cluster, &node, kind, peer);
    let id = cluster.connection_id();
    node.metrics.connection_opened(shard, kind);
    node.clients.lock().unwrap().insert(
        id,
        ClientInfo {
            address: peer.ip(),
            port: peer.port(),
            shard,
            connection_stage: "ESTABLISHED".into(),
            driver_name: None,
            driver_version: None,
            username: None,
        },
    );
    log(
        &cluster,
        format!(
            "node {} shard {shard}: connection from {peer}",
            node.info.ip
        ),
    );
    let mut connection = Connection {
        cluster: cluster.clone(),
        node: node.clone(),
        id,
        session: SessionState::new(shard),
        stage: Stage::Initial,
        compression: None,
    };
    let result = connection.run(stream).await;
    if let Err(e) = result {
        log(&cluster, format!("connection {peer}: {e}"));
    }
    node.clients.lock().unwrap().remove(&id);
    node.metrics.connection_closed(shard, kind);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Before STARTUP: only OPTIONS and STARTUP are valid.
    Initial,
    /// STARTUP done, waiting for AUTH_RESPONSE.
    Authenticating,
    Ready,
}

struct Connection {
    cluster: Arc<Cluster>,
    node: Arc<Node>,
    id: u64,
    session: SessionState,
    stage: Stage,
    compression: Option<Compression>,
}

/// A frame ready to go out, possibly after a delay.
struct Outgoing {
    bytes: Vec<u8>,
    delay_us: u64,
}

impl Connection {
    async fn run(&mut self, stream: TcpStream) -> Result<(), String> {
        let (reader, mut writer) = stream.into_split();
        // Buffered: one read syscall serves many pipelined frames.
        let mut reader = tokio::io::BufReader::with_capacity(64 * 1024, reader);
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
        // The writer drains whatever the reader and delayed replies queue
        // up, coalescing ready frames into one write as a real server does.
        let writer_task = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(64 * 1024);
            while let Some(first) = rx.recv().await {
                batch.clear();
                batch.extend_from_slice(&first);
                while batch.len() < 256 * 1024 {
                    match rx.try_recv() {
                        Ok(more) => batch.extend_from_slice(&more),
                        Err(_) => break,
                    }
                }
                if writer.write_all(&batch).await.is_err() {
                    break;
                }
            }
            let _ = writer.shutdown().await;
        });
        let mut lifecycle = self.node.lifecycle.subscribe();
        if !lifecycle.borrow_and_update().up {
            // Accepted just as the node went down: it must not survive.
            writer_task.abort();
            return Ok(());
        }
        let mut events = None::<tokio::sync::broadcast::Receiver<Event>>;
        let mut first = true;
        let outcome = loop {
            let mut header = [0u8; HEADER_LEN];
            tokio::select! {
                read = reader.read_exact(&mut header) => {
                    if read.is_err() {
                        break Ok(());
                    }
                }
                _ = lifecycle.changed() => {
                    // The node is going down: nothing queued or delayed may
                    // still reach the client, as on a real crash.
                    writer_task.abort();
                    break Ok(());
                }
                event = recv_event(&mut events) => {
                    if let Some(event) = event {
                        let frame = encode_response(frame::EVENT_STREAM, &Response::Event(event), &Default::default(), self.compression);
                        if let Ok(bytes) = frame {
                            let _ = tx.send(bytes);
                        }
                    }
                    continue;
                }
            }
            let parsed = FrameHeader::parse(&header);
            let stream_id = i16::from_be_bytes([header[2], header[3]]);
            if header[0] & frame::RESPONSE_BIT != 0 || header[0] != VERSION {
                let version = header[0] & !frame::RESPONSE_BIT;
                let message = if first {
                    format!("Invalid or unsupported protocol version: {version}")
                } else {
                    format!("Invalid message version. Got {version} but previous messages on this connection had version {VERSION}")
                };
                let stream_id = if first { 0 } else { stream_id };
                send_error(&tx, stream_id, error_code::PROTOCOL_ERROR, message, None);
                break Err(format!("protocol version {version}"));
            }
            let header = match parsed {
                Ok(h) if !(first && h.body_len > MAX_FIRST_FRAME) => h,
                _ => {
                    send_error(
                        &tx,
                        stream_id,
                        error_code::PROTOCOL_ERROR,
                        "Invalid frame length".into(),
                        None,
                    );
                    break Err("bad frame length".into());
                }
            };
            first = false;
            let mut body = vec![0u8; header.body_len];
            if reader.read_exact(&mut body).await.is_err() {
                break Ok(());
            }
            let (extensions, request) = match decode_request(&header, &body, self.compression) {
                Ok(decoded) => decoded,
                Err(e) => {
                    send_error(
                        &tx,
                        header.stream,
                        error_code::PROTOCOL_ERROR,
                        e.to_string(),
                        self.compression,
                    );
                    break Err(format!("malformed frame: {e}"));
                }
            };
            let trace = if extensions.tracing && self.stage == Stage::Ready {
                self.begin_trace(&request, header.body_len)
            } else {
                None
            };
            let registered = matches!(request, Request::Register { .. });
            match self.handle(request).await {
                Ok((reply, compress)) => {
                    let compression = if compress { self.compression } else { None };
                    let tracing_id = trace.as_ref().map(|t| t.id);
                    match encode_reply(header.stream, &reply, tracing_id, compression) {
                        Ok(out) => {
                            if let Some(trace) = trace {
                                // Stored before the response leaves: the
                                // client may look its trace up at once.
                                let ip = std::net::IpAddr::V4(self.node.info.ip);
                                self.cluster.db.record_trace(ip, trace, out.bytes.len());
                            }
                            if out.delay_us == 0 {
                                let _ = tx.send(out.bytes);
                            } else {
                                let tx = tx.clone();
                                tokio::spawn(async move {
                                    tokio::time::sleep(Duration::from_micros(out.delay_us)).await;
                                    let _ = tx.send(out.bytes);
                                });
                            }
                        }
                        Err(e) => {
                            send_error(
                                &tx,
                                header.stream,
                                error_code::SERVER_ERROR,
                                format!("cannot encode response: {e}"),
                                self.compression,
                            );
                        }
                    }
                    if registered && events.is_none() && self.session.registered {
                        events = Some(self.node.events.subscribe());
                    }
                }
                Err(fatal) => {
                    send_error(
                        &tx,
                        header.stream,
                        error_code::PROTOCOL_ERROR,
                        fatal.clone(),
                        self.compression,
                    );
                    break Err(fatal);
                }
            }
        };
        drop(tx);
        // Let queued replies drain (a restart aborted the writer already).
        let _ = tokio::time::timeout(Duration::from_secs(1), writer_task).await;
        outcome
    }

    /// Starts the trace of a request sent with the tracing flag.
    fn begin_trace(&self, request: &Request, request_size: usize) -> Option<traces::PendingTrace> {
        let (client, username) = {
            let clients = self.node.clients.lock().unwrap();
            let info = clients.get(&self.id)?;
            (info.address, info.username.clone())
        };
        traces::begin(request, client, username, request_size, self.session.shard)
    }

    /// Handles one request. `Err` closes the connection after a protocol
    /// error. The flag says whether the reply may be compressed.
    async fn handle(&mut self, request: Request) -> Result<(Reply, bool), String> {
        match (&self.stage, request) {
            (_, Request::Options) => Ok((Reply::new(self.supported()), false)),
            (Stage::Initial, Request::Startup { options }) => {
                let options: HashMap<String, String> = options.into_iter().collect();
                if let Some(name) = options.get("COMPRESSION") {
                    match Compression::from_name(name) {
                        Some(c) => self.compression = Some(c),
                        None => return Err(format!("Unknown compression algorithm: {name}")),
                    }
                }
                self.session.tablets_routing_v1 = options.contains_key("TABLETS_ROUTING_V1");
                self.session.lwt_mark = options.contains_key("SCYLLA_LWT_ADD_METADATA_MARK");
                if let Some(info) = self.node.clients.lock().unwrap().get_mut(&self.id) {
                    info.driver_name = options.get("DRIVER_NAME").cloned();
                    info.driver_version = options.get("DRIVER_VERSION").cloned();
                    info.connection_stage = "READY".into();
                }
                if self.cluster.config.auth.is_some() {
                    self.stage = Stage::Authenticating;
                    Ok((
                        Reply::new(Response::Authenticate {
                            authenticator: PASSWORD_AUTHENTICATOR.into(),
                        }),
                        false,
                    ))
                } else {
                    self.stage = Stage::Ready;
                    Ok((Reply::new(Response::Ready), false))
                }
            }
            (Stage::Authenticating, Request::AuthResponse { token }) => {
                let (user, password) = self.cluster.config.auth.clone().unwrap_or_default();
                let mut expected = vec![0u8];
                expected.extend_from_slice(user.as_bytes());
                expected.push(0);
                expected.extend_from_slice(password.as_bytes());
                if token.as_deref() == Some(&expected[..]) {
                    self.stage = Stage::Ready;
                    if let Some(info) = self.node.clients.lock().unwrap().get_mut(&self.id) {
                        info.username = Some(user);
                    }
                    Ok((Reply::new(Response::AuthSuccess { token: None }), false))
                } else {
                    Ok((
                        Reply::error(
                            error_code::BAD_CREDENTIALS,
                            "Username and/or password are incorrect",
                        ),
                        false,
                    ))
                }
            }
            (Stage::Ready, request) => {
                self.node.metrics.request(self.session.shard);
                let reply = match request {
                    Request::Register { .. } => {
                        if !self.session.registered {
                            self.node.metrics.registered(self.session.shard);
                        }
                        self.session.registered = true;
                        Reply::new(Response::Ready)
                    }
                    Request::Query { query, params } => self.cluster.db.query(
                        &self.cluster,
                        &self.node,
                        &mut self.session,
                        &query,
                        &params,
                    ),
                    Request::Prepare { query } => {
                        self.cluster.db.prepare(&self.node, &self.session, &query)
                    }
                    Request::Execute { id, params } => self.cluster.db.execute(
                        &self.cluster,
                        &self.node,
                        &mut self.session,
                        &id,
                        &params,
                    ),
                    Request::Batch(batch) => {
                        self.cluster.db.batch(&self.node, &mut self.session, &batch)
                    }
                    Request::Startup { .. } => {
                        return Err("STARTUP on an established connection".into())
                    }
                    Request::AuthResponse { .. } => return Err("unexpected AUTH_RESPONSE".into()),
                    Request::Options => unreachable!("handled above"),
                };
                Ok((self.account(reply), true))
            }
            (stage, request) => Err(format!(
                "Unexpected message {}, expecting {}",
                opcode_name(request.opcode()),
                match stage {
                    Stage::Initial => "STARTUP or OPTIONS",
                    _ => "AUTH_RESPONSE",
                }
            )),
        }
    }

    /// Applies the routing verdict of a reply to the counters and latency.
    fn account(&self, mut reply: Reply) -> Reply {
        let metrics = &self.node.metrics;
        let shard = self.session.shard;
        let config = &self.cluster.config;
        if let Some(verdict) = &reply.routing {
            metrics.routable(shard);
            if verdict.misrouted_node {
                metrics.misrouted_node(shard);
                reply.delay_us += config.misroute_node_delay_us;
            } else if verdict.misrouted_shard {
                metrics.misrouted_shard(shard);
                reply.delay_us += config.misroute_shard_delay_us;
            }
        }
        if reply.tablet_payload.is_some() {
            metrics.tablet_payload(shard);
        }
        reply.delay_us += self.node.delay_us();
        reply
    }

    fn supported(&self) -> Response {
        let config = &self.cluster.config;
        let one = |v: String| vec![v];
        let mut options = vec![
            ("CQL_VERSION".to_owned(), one("3.3.1".into())),
            ("COMPRESSION".to_owned(), one("lz4".into())),
            (
                "SCYLLA_SHARD".to_owned(),
                one(self.session.shard.to_string()),
            ),
            (
                "SCYLLA_NR_SHARDS".to_owned(),
                one(config.shards.to_string()),
            ),
            (
                "SCYLLA_SHARDING_ALGORITHM".to_owned(),
                one("biased-token-round-robin".into()),
            ),
            (
                "SCYLLA_SHARDING_IGNORE_MSB".to_owned(),
                one(config.ignore_msb.to_string()),
            ),
            (
                "SCYLLA_PARTITIONER".to_owned(),
                one("org.apache.cassandra.dht.Murmur3Partitioner".into()),
            ),
            (
                "SCYLLA_SHARD_AWARE_PORT".to_owned(),
                one(config.shard_aware_port.to_string()),
            ),
            (
                "SCYLLA_LWT_ADD_METADATA_MARK".to_owned(),
                one("LWT_OPTIMIZATION_META_BIT_MASK=2147483648".into()),
            ),
            (
                "SCYLLA_HOST_ID".to_owned(),
                one(crate::topology::format_uuid(&self.node.info.host_id)),
            ),
        ];
        if config.tablets {
            options.push(("TABLETS_ROUTING_V1".to_owned(), one(String::new())));
        }
        Response::Supported { options }
    }
}

async fn recv_event(events: &mut Option<tokio::sync::broadcast::Receiver<Event>>) -> Option<Event> {
    match events {
        None => std::future::pending().await,
        Some(rx) => loop {
            match rx.recv().await {
                Ok(event) => return Some(event),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    return std::future::pending().await
                }
            }
        },
    }
}

fn encode_reply(
    stream: i16,
    reply: &Reply,
    tracing_id: Option<[u8; 16]>,
    compression: Option<Compression>,
) -> Result<Outgoing, scylla_shard::protocol::ProtocolError> {
    let extensions = ResponseExtensions {
        tracing_id,
        warnings: reply.warnings.clone(),
        custom_payload: reply.tablet_payload.as_ref().map(|p| {
            let mut map = HashMap::new();
            map.insert(
                scylla_shard::protocol::tablets_payload::TABLETS_ROUTING_V1_KEY.to_owned(),
                p.clone(),
            );
            map
        }),
    };
    Ok(Outgoing {
        bytes: encode_response(stream, &reply.response, &extensions, compression)?,
        delay_us: reply.delay_us,
    })
}

fn send_error(
    tx: &mpsc::UnboundedSender<Vec<u8>>,
    stream: i16,
    code: i32,
    message: String,
    compression: Option<Compression>,
) {
    let response = Response::Error(ErrorBody::new(code, message));
    if let Ok(bytes) = encode_response(stream, &response, &Default::default(), compression) {
        let _ = tx.send(bytes);
    }
}

/// The protocol specification's name of a request opcode.
fn opcode_name(opcode: scylla_shard::protocol::Opcode) -> &'static str {
    use scylla_shard::protocol::Opcode::*;
    match opcode {
        Error => "ERROR",
        Startup => "STARTUP",
        Ready => "READY",
        Authenticate => "AUTHENTICATE",
        Options => "OPTIONS",
        Supported => "SUPPORTED",
        Query => "QUERY",
        Result => "RESULT",
        Prepare => "PREPARE",
        Execute => "EXECUTE",
        Register => "REGISTER",
        Event => "EVENT",
        Batch => "BATCH",
        AuthChallenge => "AUTH_CHALLENGE",
        AuthResponse => "AUTH_RESPONSE",
        AuthSuccess => "AUTH_SUCCESS",
    }
}
