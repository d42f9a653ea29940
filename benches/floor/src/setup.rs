//! Everything before the measured loop, on blocking sockets: the
//! handshake, the topology from `system.local`/`system.peers`, one
//! connection per shard of every node through the shard-aware port, the
//! prepared statements, and every request encoded once.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use bench_core::{insert_cql, payload, select_cql, Options, Res};
use scylla_shard::cluster::rows::NamedRows;
use scylla_shard::connection::ServerFeatures;
use scylla_shard::protocol::frame::{decode_response, encode_request, FrameHeader, HEADER_LEN};
use scylla_shard::protocol::response::ResultBody;
use scylla_shard::protocol::{Consistency, QueryParameters, Request, Response, Value};
use scylla_shard::routing::sharder::Sharder;
use scylla_shard::routing::token::murmur3_token;

/// Bound on every setup step.
const STEP: Duration = Duration::from_secs(10);
/// Local ports tried for shard-aware connections.
const PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;

/// One request and its answer, on a blocking socket (stream 0).
pub fn roundtrip(socket: &mut TcpStream, request: &Request) -> Res<Response> {
    socket.write_all(&encode_request(0, request, &Default::default(), None)?)?;
    let mut head = [0u8; HEADER_LEN];
    socket.read_exact(&mut head)?;
    let header = FrameHeader::parse(&head)?;
    let mut body = vec![0u8; header.body_len];
    socket.read_exact(&mut body)?;
    let (_, response) = decode_response(&header, &body, None)?;
    if let Response::Error(e) = &response {
        return Err(format!("server error 0x{:04x}: {}", e.code, e.message).into());
    }
    Ok(response)
}

/// OPTIONS then STARTUP; what the node said of itself.
fn handshake(socket: &mut TcpStream) -> Res<ServerFeatures> {
    socket.set_read_timeout(Some(STEP))?;
    socket.set_nodelay(true)?;
    let features = match roundtrip(socket, &Request::Options)? {
        Response::Supported { options } => ServerFeatures::parse(&options),
        other => return Err(format!("OPTIONS answered {:?}", other.opcode()).into()),
    };
    let startup = Request::Startup {
        options: vec![("CQL_VERSION".into(), "3.0.0".into())],
    };
    match roundtrip(socket, &startup)? {
        Response::Ready => Ok(features),
        other => Err(format!(
            "STARTUP answered {:?} (authentication is not supported)",
            other.opcode()
        )
        .into()),
    }
}

fn query(socket: &mut TcpStream, cql: &str) -> Res<Response> {
    roundtrip(
        socket,
        &Request::Query {
            query: cql.to_owned(),
            params: QueryParameters {
                consistency: Consistency::One,
                ..QueryParameters::default()
            },
        },
    )
}

/// A node: its address and vnode tokens.
struct Node {
    ip: IpAddr,
    tokens: Vec<i64>,
}

fn nodes(control: &mut TcpStream, contact: IpAddr) -> Res<Vec<Node>> {
    let mut out = Vec::new();
    for (cql, local) in [
        ("SELECT rpc_address, tokens FROM system.local", true),
        ("SELECT rpc_address, tokens FROM system.peers", false),
    ] {
        let Response::Result(ResultBody::Rows(rows)) = query(control, cql)? else {
            return Err(format!("{cql}: no rows").into());
        };
        let named = NamedRows::new(&rows);
        for row in 0..named.len() {
            let ip = if local {
                Some(contact)
            } else {
                named.inet(row, "rpc_address")
            };
            let tokens = named
                .text_list(row, "tokens")
                .iter()
                .filter_map(|t| t.parse().ok())
                .collect();
            out.extend(ip.map(|ip| Node { ip, tokens }));
        }
    }
    Ok(out)
}

/// A connection from a local port that the shard-aware port maps to
/// `shard`.
fn shard_connection(node: SocketAddr, shard: u16, nr_shards: u16, salt: u64) -> Res<TcpStream> {
    let n = u64::from(nr_shards);
    let span = u64::from(PORTS.end() - PORTS.start() + 1) / n;
    for attempt in 0..span {
        let slot = (salt + attempt) % span;
        let base = u64::from(*PORTS.start()) / n * n + slot * n + u64::from(shard);
        let Ok(port) = u16::try_from(base) else {
            continue;
        };
        if !PORTS.contains(&port) {
            continue;
        }
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(node),
            socket2::Type::STREAM,
            None,
        )?;
        let local = SocketAddr::new(
            if node.is_ipv4() {
                IpAddr::from([0, 0, 0, 0])
            } else {
                IpAddr::from([0u16; 8])
            },
            port,
        );
        if socket.bind(&local.into()).is_err() {
            continue;
        }
        match socket.connect_timeout(&node.into(), STEP) {
            Ok(()) => return Ok(socket.into()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::AddrInUse | std::io::ErrorKind::AddrNotAvailable
                ) =>
            {
                continue
            }
            Err(e) => return Err(format!("{node} from port {port}: {e}").into()),
        }
    }
    Err(format!("no free local port for shard {shard} of {node}").into())
}

/// The connections (node by node, shard by shard), ready for the loop.
pub struct Setup {
    pub sockets: Vec<TcpStream>,
    /// Per key: the index in `sockets` of the connection owning it, and
    /// its INSERT and SELECT frames (stream id 0, patched when sent).
    pub routes: Vec<Route>,
    pub nodes: usize,
    pub shards: u16,
}

pub struct Route {
    pub socket: usize,
    pub insert: Vec<u8>,
    pub select: Vec<u8>,
}

fn bigint(v: i64) -> Value {
    Value::Set(v.to_be_bytes().to_vec())
}

fn prepare(socket: &mut TcpStream, cql: &str) -> Res<Vec<u8>> {
    match roundtrip(
        socket,
        &Request::Prepare {
            query: cql.to_owned(),
        },
    )? {
        Response::Result(ResultBody::Prepared(p)) => Ok(p.id),
        other => Err(format!("PREPARE answered {:?}", other.opcode()).into()),
    }
}

fn execute_frame(id: &[u8], values: Vec<Value>, skip_metadata: bool) -> Res<Vec<u8>> {
    let request = Request::Execute {
        id: id.to_vec(),
        params: QueryParameters {
            consistency: Consistency::LocalOne,
            values,
            skip_metadata,
            ..QueryParameters::default()
        },
    };
    Ok(encode_request(0, &request, &Default::default(), None)?)
}

pub fn setup(opts: &Options) -> Res<Setup> {
    let contact: SocketAddr = opts
        .contact
        .parse()
        .map_err(|e| format!("--contact {}: {e} (an address:port)", opts.contact))?;
    let mut control = TcpStream::connect_timeout(&contact, STEP)?;
    let features = handshake(&mut control)?;
    let sharding = features.sharding.ok_or("the node reports no sharding")?;
    let sharder = Sharder::new(sharding.nr_shards, sharding.ignore_msb)?;
    let shard_port = features
        .shard_aware_port
        .ok_or("the node has no shard-aware port")?;
    let nodes = nodes(&mut control, contact.ip())?;
    drop(control);

    // The ring: the owner of a token is the node of the first ring token
    // at or after it (the bench keyspace has one replica).
    let mut ring: Vec<(i64, usize)> = nodes
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.tokens.iter().map(move |t| (*t, i)))
        .collect();
    ring.sort_unstable();
    if ring.is_empty() {
        return Err("the nodes report no tokens".into());
    }

    let shards = sharding.nr_shards;
    let mut sockets = Vec::with_capacity(nodes.len() * usize::from(shards));
    let salt = u64::from(std::process::id()) * 7919;
    for node in &nodes {
        for shard in 0..shards {
            let mut socket =
                shard_connection(SocketAddr::new(node.ip, shard_port), shard, shards, salt)?;
            let got = handshake(&mut socket)?.shard();
            if got != Some(shard) {
                return Err(
                    format!("{}: asked for shard {shard}, got {got:?} (NAT?)", node.ip).into(),
                );
            }
            sockets.push(socket);
        }
    }
    // Prepared ids are the same on every node; each node must know them.
    let (mut insert_id, mut select_id) = (Vec::new(), Vec::new());
    for n in 0..nodes.len() {
        let socket = &mut sockets[n * usize::from(shards)];
        insert_id = prepare(socket, &insert_cql(&opts.keyspace, &opts.table))?;
        select_id = prepare(socket, &select_cql(&opts.keyspace, &opts.table))?;
    }

    let routes = (0..opts.keys)
        .map(|k| {
            let key = (k as i64).to_be_bytes();
            let token = murmur3_token(&key);
            let at = ring.partition_point(|(t, _)| *t < token.value());
            let node = ring[at % ring.len()].1;
            let shard = sharder.shard_of(token);
            Ok(Route {
                socket: node * usize::from(shards) + usize::from(shard),
                insert: execute_frame(
                    &insert_id,
                    vec![
                        bigint(k as i64),
                        Value::Set(payload(k).into_bytes()),
                        bigint(opts.tag),
                    ],
                    false,
                )?,
                select: execute_frame(&select_id, vec![bigint(k as i64)], true)?,
            })
        })
        .collect::<Res<Vec<_>>>()?;
    for socket in &sockets {
        socket.set_read_timeout(None)?;
    }
    Ok(Setup {
        sockets,
        routes,
        nodes: nodes.len(),
        shards,
    })
}
