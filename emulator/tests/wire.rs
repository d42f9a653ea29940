//! The emulator on the wire: version negotiation, shard placement, and
//! malformed input, checked over real sockets with the shared codec.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use scylla_shard::protocol::frame::{decode_response, encode_request, FrameHeader, HEADER_LEN};
use scylla_shard::protocol::response::error_code;
use scylla_shard::protocol::{Request, Response};

mod support;

use support::Emulator;

/// Reads one response frame, or None at end of stream.
fn read_response(stream: &mut TcpStream) -> Option<(FrameHeader, Response)> {
    let mut header = [0u8; HEADER_LEN];
    stream.read_exact(&mut header).ok()?;
    let header = FrameHeader::parse(&header).expect("valid header from the emulator");
    let mut body = vec![0u8; header.body_len];
    stream.read_exact(&mut body).expect("whole body");
    let (_, response) = decode_response(&header, &body, None).expect("decodable response");
    Some((header, response))
}

fn options_frame() -> Vec<u8> {
    encode_request(0, &Request::Options, &Default::default(), None).unwrap()
}

fn supported_shard(stream: &mut TcpStream) -> u16 {
    stream.write_all(&options_frame()).unwrap();
    match read_response(stream) {
        Some((_, Response::Supported { options })) => options
            .iter()
            .find(|(k, _)| k == "SCYLLA_SHARD")
            .and_then(|(_, v)| v.first())
            .and_then(|v| v.parse().ok())
            .expect("SCYLLA_SHARD in SUPPORTED"),
        other => panic!("expected SUPPORTED, got {other:?}"),
    }
}

fn assert_closed(stream: &mut TcpStream) {
    let mut rest = Vec::new();
    let n = stream.read_to_end(&mut rest).expect("clean close");
    assert_eq!(n, 0, "connection closed after the error");
}

#[test]
fn protocol_v5_gets_the_downgrade_error_in_a_v4_frame() {
    let emulator = Emulator::start("127.0.91.1", &[]);
    let mut stream = emulator.connect();
    let mut frame = options_frame();
    frame[0] = 5;
    stream.write_all(&frame).unwrap();
    let (header, response) = read_response(&mut stream).expect("an error frame");
    assert_eq!(header.version, 0x84);
    match response {
        Response::Error(e) => {
            assert_eq!(e.code, error_code::PROTOCOL_ERROR);
            assert!(
                e.message
                    .to_lowercase()
                    .contains("unsupported protocol version"),
                "{}",
                e.message
            );
        }
        other => panic!("expected ERROR, got {other:?}"),
    }
    assert_closed(&mut stream);
}

#[test]
fn regular_port_balances_and_shard_aware_port_follows_the_source_port() {
    let emulator = Emulator::start("127.0.91.2", &[]);
    // Regular port: least-loaded shard, ties to the lowest id.
    let mut held = Vec::new();
    for expected in 0..4u16 {
        let mut s = emulator.connect();
        assert_eq!(supported_shard(&mut s), expected);
        held.push(s);
    }
    // Shard-aware port: source port modulo the shard count.
    let mut checked = 0;
    for port in 50001u16..50100 {
        let Some(mut stream) = bind_and_connect(port, emulator.addr(19042)) else {
            continue;
        };
        assert_eq!(supported_shard(&mut stream), port % 4);
        checked += 1;
        if checked == 8 {
            break;
        }
    }
    assert_eq!(checked, 8, "found free source ports to test with");
}

/// Connects from a fixed source port (skips the case if the port is busy).
fn bind_and_connect(port: u16, to: SocketAddr) -> Option<TcpStream> {
    // std has no bind-before-connect; tokio's TcpSocket does.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().ok()?;
        socket.bind(SocketAddr::from(([0, 0, 0, 0], port))).ok()?;
        let stream = socket.connect(to).await.ok()?;
        let std = stream.into_std().ok()?;
        std.set_nonblocking(false).ok()?;
        std.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        Some(std)
    })
}

#[test]
fn malformed_frames_close_only_their_connection() {
    let emulator = Emulator::start("127.0.91.3", &[]);
    let mut healthy = emulator.connect();
    supported_shard(&mut healthy);

    // A QUERY whose long string claims more bytes than the body holds.
    let mut bad = emulator.connect();
    let body = [0x7f, 0xff, 0xff, 0xff, b'x'];
    let mut frame = vec![4, 0, 0, 1, 0x07];
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    bad.write_all(&frame).unwrap();
    match read_response(&mut bad) {
        Some((_, Response::Error(e))) => assert_eq!(e.code, error_code::PROTOCOL_ERROR),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    assert_closed(&mut bad);

    // A negative body length.
    let mut bad = emulator.connect();
    bad.write_all(&[4, 0, 0, 2, 0x05, 0xff, 0xff, 0xff, 0xfe])
        .unwrap();
    assert!(matches!(
        read_response(&mut bad),
        Some((_, Response::Error(_)))
    ));
    assert_closed(&mut bad);

    // An unknown opcode.
    let mut bad = emulator.connect();
    bad.write_all(&[4, 0, 0, 3, 0x42, 0, 0, 0, 0]).unwrap();
    assert!(matches!(
        read_response(&mut bad),
        Some((_, Response::Error(_)))
    ));
    assert_closed(&mut bad);

    // Pseudo-random garbage on many connections never takes the server down.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..200 {
        let mut garbage = vec![4u8];
        for _ in 0..64 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            garbage.push(seed as u8);
        }
        // Keep the claimed length small so the server answers at once.
        garbage[5..9].copy_from_slice(&55u32.to_be_bytes());
        let mut s = emulator.connect();
        let _ = s.write_all(&garbage);
        let _ = read_response(&mut s);
    }
    assert!(
        supported_shard(&mut healthy) < 4,
        "the first connection still works"
    );
}

fn post(emulator: &Emulator, path: &str) {
    let mut http = TcpStream::connect(emulator.addr(9180)).expect("metrics port");
    write!(
        http,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    http.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
}

#[test]
fn a_restart_drops_delayed_replies_instead_of_sending_them() {
    let emulator = Emulator::start("127.0.91.4", &[]);
    let mut stream = emulator.connect();
    let startup = Request::Startup {
        options: vec![("CQL_VERSION".into(), "3.0.0".into())],
    };
    stream
        .write_all(&encode_request(1, &startup, &Default::default(), None).unwrap())
        .unwrap();
    assert!(matches!(
        read_response(&mut stream),
        Some((_, Response::Ready))
    ));
    post(&emulator, "/admin/delay?us=3000000");
    let query = Request::Query {
        query: "SELECT key FROM system.local".into(),
        params: Default::default(),
    };
    stream
        .write_all(&encode_request(2, &query, &Default::default(), None).unwrap())
        .unwrap();
    let started = Instant::now();
    post(&emulator, "/admin/restart?down_ms=200");
    assert!(
        read_response(&mut stream).is_none(),
        "no reply after the node went down"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the connection dropped at once"
    );
}
