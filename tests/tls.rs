//! TLS against the emulator's TLS listeners, with certificates generated
//! per test (`--tls-generate`): verification on and off, untrusted and
//! expired certificates, the identity check by address and by name,
//! mutual TLS, and the shard-aware TLS port (one attempt per shard, every
//! connection on the shard it asked for, nothing on the plain ports).

mod common;
mod session_support;

use std::time::{Duration, Instant};

use common::{Emulator, EmulatorOptions, ServerCert};
use scylla_shard::connection::tls::{VERIFY_NONE, VERIFY_PEER_CERT, VERIFY_PEER_IDENTITY};
use scylla_shard::connection::{TlsErrorKind, TlsSettings};
use scylla_shard::protocol::CqlValue;
use scylla_shard::session::{DriverError, Session, SessionConfig};
use session_support::*;

const NODES: usize = 2;
const SHARDS: u16 = 4;

fn tls_emulator(cert: ServerCert, require_client_cert: bool) -> Emulator {
    EmulatorOptions::new(NODES, SHARDS)
        .tls(cert, require_client_cert)
        .start()
}

/// Settings trusting the emulator's test CA, with `flags`.
fn trusting_ca(emulator: &Emulator, flags: u32) -> TlsSettings {
    let mut settings = TlsSettings::default();
    settings
        .add_trusted_pem(&emulator.tls().pem("ca.pem"))
        .expect("ca.pem");
    settings.set_verify_flags(flags).expect("flags");
    settings
}

fn with_client_cert(emulator: &Emulator, mut settings: TlsSettings) -> TlsSettings {
    let tls = emulator.tls();
    settings
        .set_client_cert_pem(&tls.pem("client.pem"))
        .expect("client.pem");
    settings
        .set_client_key_pem(&tls.pem("client-key.pem"))
        .expect("client-key.pem");
    settings
}

/// A session config for the TLS port of node 0 with `settings`.
fn tls_config(emulator: &Emulator, settings: &TlsSettings) -> SessionConfig {
    let mut config = SessionConfig {
        contact_points: vec![emulator.tls_addr(0).to_string()],
        port: emulator.tls().port,
        ..SessionConfig::default()
    };
    config.connection.connect_timeout = Duration::from_secs(5);
    config.connection.tls = Some(settings.build().expect("settings build"));
    config
}

async fn try_connect(config: SessionConfig) -> Result<Session, DriverError> {
    tokio::time::timeout(STEP, Session::connect(config))
        .await
        .unwrap_or_else(|_| panic!("connect did not finish within {STEP:?}"))
}

/// The TLS failure a connect must end with.
async fn connect_fails(config: SessionConfig, kind: TlsErrorKind) -> String {
    match try_connect(config).await {
        Ok(_) => panic!("connected, expected a TLS failure {kind:?}"),
        Err(DriverError::Tls(e)) => {
            assert_eq!(e.kind, kind, "{e}");
            e.message
        }
        Err(other) => panic!("expected a TLS failure {kind:?}, got {other}"),
    }
}

/// A write and a read over the session.
async fn round_trip(session: &Session) {
    create_schema(session, "tls", SIMPLE_RF1).await;
    run(
        session,
        "INSERT INTO tls.t (a, b, c, v) VALUES (1, 'k', 2, 'over tls')",
    )
    .await;
    let result = run(session, "SELECT v FROM tls.t WHERE a = 1 AND b = 'k'").await;
    let rows = decode(result.rows.as_ref().expect("rows"));
    assert_eq!(rows, vec![vec![Some(CqlValue::Text("over tls".into()))]]);
}

/// Connections accepted by node `node` on `port`, per shard.
fn accepted(emulator: &Emulator, node: usize, port: u16) -> Vec<u64> {
    (0..SHARDS)
        .map(|shard| {
            let sample =
                format!("emulator_connections_accepted_total{{port=\"{port}\",shard=\"{shard}\"}}");
            emulator
                .metric(node, &sample)
                .unwrap_or_else(|| panic!("no sample {sample}")) as u64
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_session_uses_the_shard_aware_tls_port() {
    let emulator = tls_emulator(ServerCert::Valid, false);
    let settings = trusting_ca(&emulator, VERIFY_PEER_CERT | VERIFY_PEER_IDENTITY);
    let session = connect_with(&emulator, tls_config(&emulator, &settings)).await;
    wait_pools_filled(&session, SHARDS).await;
    round_trip(&session).await;

    let tls = emulator.tls();
    let metrics = session.metrics();
    assert_eq!(metrics.nodes.len(), NODES);
    for (i, node) in metrics.nodes.iter().enumerate() {
        assert!(node.shard_aware_port_in_use, "node {i}: {node:?}");
        assert_eq!(
            node.connections_per_shard,
            vec![1; SHARDS.into()],
            "node {i}"
        );
        // One attempt per shard: the first on the TLS port, the others on
        // the shard-aware TLS port, each landing where it asked.
        let pool = &node.pool;
        assert_eq!(pool.attempts, u64::from(SHARDS), "node {i}: {pool:?}");
        assert_eq!(
            pool.opened_shard_aware,
            u64::from(SHARDS) - 1,
            "node {i}: {pool:?}"
        );
        assert_eq!(pool.failed_attempts, 0, "node {i}: {pool:?}");
        assert_eq!(pool.nat_detections, 0, "node {i}: {pool:?}");
        assert_eq!(pool.shard_aware_failures, 0, "node {i}: {pool:?}");
    }
    for i in 0..NODES {
        let on_shard_aware = accepted(&emulator, i, tls.shard_aware_port);
        assert_eq!(
            on_shard_aware.iter().sum::<u64>(),
            u64::from(SHARDS) - 1,
            "node {i}: {on_shard_aware:?}"
        );
        assert!(
            on_shard_aware.iter().all(|&n| n <= 1),
            "node {i}: {on_shard_aware:?}"
        );
        assert!(accepted(&emulator, i, tls.port).iter().sum::<u64>() >= 1);
        for plain in [emulator.port, emulator.shard_aware_port] {
            let counts = accepted(&emulator, i, plain);
            assert_eq!(
                counts,
                vec![0; SHARDS.into()],
                "node {i}, plain port {plain}"
            );
        }
    }
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_off_accepts_any_certificate_on_only() {
    let emulator = tls_emulator(ServerCert::Expired, false);
    // Expired: refused with verification on.
    let verified = trusting_ca(&emulator, VERIFY_PEER_CERT);
    let message = connect_fails(
        tls_config(&emulator, &verified),
        TlsErrorKind::InvalidPeerCert,
    )
    .await;
    assert!(message.to_lowercase().contains("expired"), "{message}");
    assert!(
        message.contains(&emulator.node_ip(0).to_string()),
        "{message}"
    );

    // No trusted certificate at all, no verification: connects.
    let mut unverified = TlsSettings::default();
    unverified.set_verify_flags(VERIFY_NONE).expect("flags");
    let session = connect_with(&emulator, tls_config(&emulator, &unverified)).await;
    wait_pools_filled(&session, SHARDS).await;
    round_trip(&session).await;
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_ca_is_refused_with_a_clear_error() {
    let emulator = tls_emulator(ServerCert::Valid, false);
    let mut settings = TlsSettings::default();
    settings
        .add_trusted_pem(&emulator.tls().pem("other-ca.pem"))
        .expect("other-ca.pem");
    let started = Instant::now();
    let message = connect_fails(
        tls_config(&emulator, &settings),
        TlsErrorKind::InvalidPeerCert,
    )
    .await;
    assert!(message.contains("UnknownIssuer"), "{message}");
    assert!(
        message.contains(&emulator.node_ip(0).to_string()),
        "{message}"
    );
    // Refused at the handshake, not after the connect timeout.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_is_checked_by_address_or_by_server_name() {
    // Valid and signed by the CA, for scylla.test but not for these nodes'
    // addresses.
    let emulator = tls_emulator(ServerCert::OtherAddresses, false);

    let by_address = trusting_ca(&emulator, VERIFY_PEER_CERT | VERIFY_PEER_IDENTITY);
    let message = connect_fails(
        tls_config(&emulator, &by_address),
        TlsErrorKind::IdentityMismatch,
    )
    .await;
    assert!(message.contains("not valid for name"), "{message}");

    let mut wrong_name = by_address.clone();
    wrong_name.set_server_name("wrong.test").expect("name");
    connect_fails(
        tls_config(&emulator, &wrong_name),
        TlsErrorKind::IdentityMismatch,
    )
    .await;

    // The chain alone is fine.
    let chain_only = trusting_ca(&emulator, VERIFY_PEER_CERT);
    let session = connect_with(&emulator, tls_config(&emulator, &chain_only)).await;
    session.close().await;

    // The name the certificate holds (sent as SNI, checked).
    let mut right_name = by_address;
    right_name.set_server_name("scylla.test").expect("name");
    let session = connect_with(&emulator, tls_config(&emulator, &right_name)).await;
    wait_pools_filled(&session, SHARDS).await;
    round_trip(&session).await;
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_needs_the_client_certificate() {
    let emulator = tls_emulator(ServerCert::Valid, true);
    let settings = trusting_ca(&emulator, VERIFY_PEER_CERT | VERIFY_PEER_IDENTITY);

    let started = Instant::now();
    match try_connect(tls_config(&emulator, &settings)).await {
        Ok(_) => panic!("connected without the client certificate"),
        Err(DriverError::Tls(e)) => {
            assert_eq!(e.kind, TlsErrorKind::Protocol, "{e}");
            assert!(e.message.contains("CertificateRequired"), "{e}");
            assert!(e.message.contains("requires a client certificate"), "{e}");
        }
        Err(other) => panic!("expected a TLS failure, got {other}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    let session = connect_with(
        &emulator,
        tls_config(&emulator, &with_client_cert(&emulator, settings)),
    )
    .await;
    wait_pools_filled(&session, SHARDS).await;
    round_trip(&session).await;
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_plain_mismatches_fail_fast() {
    let emulator = tls_emulator(ServerCert::Valid, false);
    let settings = trusting_ca(&emulator, VERIFY_PEER_CERT);

    // TLS to the plain port: the server answers no TLS.
    let mut config = tls_config(&emulator, &settings);
    config.contact_points = vec![emulator.addr(0).to_string()];
    config.port = emulator.port;
    let started = Instant::now();
    connect_fails(config, TlsErrorKind::Protocol).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // Plain CQL to the TLS port: refused, not hung.
    let mut plain = tls_config(&emulator, &settings);
    plain.connection.tls = None;
    let started = Instant::now();
    match try_connect(plain).await {
        Ok(_) => panic!("a plain session connected to the TLS port"),
        Err(e) => assert!(
            matches!(e, DriverError::NoHostAvailable(_)),
            "plain CQL to the TLS port: {e}"
        ),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn settings_are_checked_before_any_connection() {
    let mut settings = TlsSettings::default();
    let bad = settings.add_trusted_pem(b"not a certificate").unwrap_err();
    assert_eq!(bad.kind, TlsErrorKind::InvalidCert, "{bad}");
    // Verification on and nothing trusted.
    let none = settings.build().unwrap_err();
    assert_eq!(none.kind, TlsErrorKind::InvalidCert, "{none}");
    assert!(none.message.contains("no trusted certificate"), "{none}");
    let unknown = settings.set_verify_flags(0x80).unwrap_err();
    assert!(unknown.message.contains("0x80"), "{unknown}");
    assert!(settings.set_server_name("not a name!").is_err());
    assert!(settings
        .set_client_key_pem(b"-----BEGIN NOTHING-----")
        .is_err());
}

#[test]
fn a_client_certificate_needs_its_own_key() {
    let emulator = tls_emulator(ServerCert::Valid, false);
    let tls = emulator.tls();
    let mut settings = trusting_ca(&emulator, VERIFY_PEER_CERT);
    settings
        .set_client_cert_pem(&tls.pem("client.pem"))
        .expect("client.pem");
    let alone = settings.build().unwrap_err();
    assert_eq!(alone.kind, TlsErrorKind::InvalidPrivateKey, "{alone}");
    // Another certificate's key.
    settings
        .set_client_key_pem(&tls.pem("server-key.pem"))
        .expect("a parsable key");
    let mismatch = settings.build().unwrap_err();
    assert_eq!(mismatch.kind, TlsErrorKind::InvalidPrivateKey, "{mismatch}");
    settings
        .set_client_key_pem(&tls.pem("client-key.pem"))
        .expect("client-key.pem");
    settings.build().expect("the matching key");
}
