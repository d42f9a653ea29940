//! TLS listeners (rustls, ring) and `--tls-generate`: a test CA and
//! certificates made at run time with rcgen, so no key material lives in
//! the repository.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rcgen::{
    date_time_ymd, BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::config::{Config, TlsConfig};

/// The DNS name in the generated server certificates.
pub const SERVER_NAME: &str = "scylla.test";

fn pem_error(path: &Path, e: impl std::fmt::Display) -> String {
    format!("{}: {e}", path.display())
}

/// The acceptor for `--tls-cert`/`--tls-key`, requiring client
/// certificates from `--tls-client-ca` if given.
pub fn acceptor(tls: &TlsConfig) -> Result<TlsAcceptor, String> {
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error(&tls.cert, e))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| pem_error(&tls.key, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| pem_error(path, e))? {
                roots
                    .add(cert.map_err(|e| pem_error(path, e))?)
                    .map_err(|e| pem_error(path, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| pem_error(path, e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("--tls-cert/--tls-key: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

struct Issued {
    cert: Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Result<Issued, rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key)?;
    Ok(Issued { cert, key })
}

fn leaf(
    names: Vec<String>,
    common_name: &str,
    issuer: &Issued,
    expired: bool,
) -> Result<Issued, rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    if expired {
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2021, 1, 1);
    }
    let cert = params.signed_by(&key, &issuer.cert, &issuer.key)?;
    Ok(Issued { cert, key })
}

/// Writes into `dir`: `ca.pem` (the test CA), `server.pem`/`server-key.pem`
/// (for `scylla.test`, `localhost` and every node address), `expired.pem`/
/// `expired-key.pem` (the same names, validity over in 2021),
/// `client.pem`/`client-key.pem` (a client certificate from the same CA),
/// `other-ca.pem` (a CA that signed none of them).
pub fn generate(dir: &Path, config: &Config) -> Result<(), String> {
    let run = || -> Result<Vec<(&'static str, String)>, rcgen::Error> {
        let authority = ca("scylla-emulator test CA")?;
        let other = ca("unrelated test CA")?;
        let mut names = vec![SERVER_NAME.to_owned(), "localhost".to_owned()];
        names.extend((0..config.nodes).map(|i| IpAddr::V4(config.node_ip(i)).to_string()));
        let server = leaf(names.clone(), SERVER_NAME, &authority, false)?;
        let expired = leaf(names, SERVER_NAME, &authority, true)?;
        let client = leaf(
            vec!["client.test".to_owned()],
            "client.test",
            &authority,
            false,
        )?;
        Ok(vec![
            ("ca.pem", authority.cert.pem()),
            ("other-ca.pem", other.cert.pem()),
            ("server.pem", server.cert.pem()),
            ("server-key.pem", server.key.serialize_pem()),
            ("expired.pem", expired.cert.pem()),
            ("expired-key.pem", expired.key.serialize_pem()),
            ("client.pem", client.cert.pem()),
            ("client-key.pem", client.key.serialize_pem()),
        ])
    };
    let files = run().map_err(|e| format!("--tls-generate: {e}"))?;
    std::fs::create_dir_all(dir).map_err(|e| pem_error(dir, e))?;
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| pem_error(&path, e))?;
    }
    Ok(())
}
