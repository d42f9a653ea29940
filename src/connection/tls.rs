//! TLS for CQL connections: rustls with the ring provider, no OpenSSL.
//!
//! [`TlsSettings`] is what a user configures (trusted CAs, the system store,
//! a client certificate for mutual TLS, verification flags, a server name
//! for SNI); [`TlsSettings::build`] checks it once and yields a
//! [`TlsConnector`] shared by every connection of a session.
//!
//! Verification follows the DataStax flags: the chain is checked against the
//! trusted roots (`PEER_CERT`), and the identity (`PEER_IDENTITY`,
//! `PEER_IDENTITY_DNS`) against the name the connection used: the
//! configured server name, or else the node's IP address. With no flag the
//! certificate is not checked at all (test setups only); the handshake
//! signatures still are.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore,
};
use rustls::{Error as RustlsError, SignatureScheme};
use tokio::net::TcpStream;

/// Check nothing about the server's certificate.
pub const VERIFY_NONE: u32 = 0;
/// Check the chain up to a trusted root, and the validity dates.
pub const VERIFY_PEER_CERT: u32 = 1;
/// Also check the certificate names the node's IP address (or the
/// configured server name).
pub const VERIFY_PEER_IDENTITY: u32 = 2;
/// Also check the certificate names the configured server name.
pub const VERIFY_PEER_IDENTITY_DNS: u32 = 4;
const VERIFY_ALL: u32 = VERIFY_PEER_CERT | VERIFY_PEER_IDENTITY | VERIFY_PEER_IDENTITY_DNS;

/// Why a TLS setting or handshake failed, in the terms a caller acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsErrorKind {
    /// A certificate given to the library does not parse.
    InvalidCert,
    /// A private key given to the library does not parse or does not match.
    InvalidPrivateKey,
    /// The server's certificate is not trusted (unknown CA, expired,
    /// revoked, bad signature...).
    InvalidPeerCert,
    /// The server's certificate is valid but for another name.
    IdentityMismatch,
    /// The handshake itself failed (not a TLS server, no common protocol,
    /// the server wants a client certificate...).
    Protocol,
}

/// A TLS failure with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError {
    pub kind: TlsErrorKind,
    pub message: String,
}

impl TlsError {
    fn new(kind: TlsErrorKind, message: impl Into<String>) -> TlsError {
        TlsError {
            kind,
            message: message.into(),
        }
    }

    /// Classifies a handshake failure.
    pub(crate) fn from_handshake(error: &std::io::Error) -> TlsError {
        let rustls_error = error
            .get_ref()
            .and_then(|e| e.downcast_ref::<RustlsError>());
        let kind = match rustls_error {
            Some(RustlsError::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => TlsErrorKind::IdentityMismatch,
            Some(RustlsError::InvalidCertificate(_)) => TlsErrorKind::InvalidPeerCert,
            _ => TlsErrorKind::Protocol,
        };
        let hint = match rustls_error {
            Some(RustlsError::AlertReceived(AlertDescription::CertificateRequired)) => {
                " (the server requires a client certificate: set one and its key)"
            }
            Some(RustlsError::AlertReceived(
                AlertDescription::BadCertificate
                | AlertDescription::UnknownCA
                | AlertDescription::CertificateExpired,
            )) => " (the server refused the client certificate)",
            _ => "",
        };
        TlsError::new(kind, format!("TLS handshake failed: {error}{hint}"))
    }

    /// The TLS failure behind an I/O error on a TLS stream, if it is one:
    /// with TLS 1.3 the server refuses a client certificate after the
    /// client finished its handshake, so the refusal arrives on the first
    /// read.
    pub(crate) fn from_io(error: &std::io::Error) -> Option<TlsError> {
        error
            .get_ref()
            .is_some_and(|e| e.is::<RustlsError>())
            .then(|| TlsError::from_handshake(error))
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TlsError {}

/// TLS as configured by the user; [`TlsSettings::build`] validates it.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    trusted: Vec<CertificateDer<'static>>,
    system_roots: bool,
    verify_flags: u32,
    client_chain: Vec<CertificateDer<'static>>,
    client_key: Option<Arc<PrivateKeyDer<'static>>>,
    server_name: Option<ServerName<'static>>,
}

impl Default for TlsSettings {
    /// Chain verification on (the DataStax default), no roots yet.
    fn default() -> Self {
        TlsSettings {
            trusted: Vec::new(),
            system_roots: false,
            verify_flags: VERIFY_PEER_CERT,
            client_chain: Vec::new(),
            client_key: None,
            server_name: None,
        }
    }
}

/// Largest certificate or key file read (1 MiB; a CA bundle is ~250 KiB).
pub const MAX_PEM_FILE: u64 = 1024 * 1024;

/// The bytes of a PEM file (at most [`MAX_PEM_FILE`]), with its name in
/// any error: for the `_file` setters of the C API and for the
/// communicator's certificate settings.
pub fn read_pem_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let failed = |e: std::io::Error| format!("cannot read {shown}: {e}");
    let size = std::fs::metadata(path).map_err(failed)?.len();
    if size > MAX_PEM_FILE {
        return Err(format!(
            "{shown} has {size} bytes: a PEM file is at most {MAX_PEM_FILE}"
        ));
    }
    std::fs::read(path).map_err(failed)
}

/// Every certificate of a PEM text (at least one).
fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::new(TlsErrorKind::InvalidCert, format!("bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError::new(
            TlsErrorKind::InvalidCert,
            "no CERTIFICATE in the PEM text",
        ));
    }
    Ok(certs)
}

impl TlsSettings {
    /// Trusts the CA certificate(s) of a PEM text.
    pub fn add_trusted_pem(&mut self, pem: &[u8]) -> Result<(), TlsError> {
        let certs = parse_certs(pem)?;
        self.trusted.extend(certs);
        Ok(())
    }

    /// Trusts the operating system's certificate store as well.
    pub fn set_system_roots(&mut self, enabled: bool) {
        self.system_roots = enabled;
    }

    /// `VERIFY_*` flags, or-ed; identity checks imply the chain check.
    pub fn set_verify_flags(&mut self, flags: u32) -> Result<(), TlsError> {
        if flags & !VERIFY_ALL != 0 {
            return Err(TlsError::new(
                TlsErrorKind::Protocol,
                format!("unknown verify flags 0x{flags:x}"),
            ));
        }
        self.verify_flags = flags;
        Ok(())
    }

    /// The client certificate chain (PEM, leaf first) for mutual TLS.
    pub fn set_client_cert_pem(&mut self, pem: &[u8]) -> Result<(), TlsError> {
        self.client_chain = parse_certs(pem)?;
        Ok(())
    }

    /// The client's private key (PEM: PKCS#8, PKCS#1 or SEC1), unencrypted.
    pub fn set_client_key_pem(&mut self, pem: &[u8]) -> Result<(), TlsError> {
        let key = PrivateKeyDer::from_pem_slice(pem).map_err(|e| {
            TlsError::new(
                TlsErrorKind::InvalidPrivateKey,
                format!("no usable unencrypted private key in the PEM text: {e}"),
            )
        })?;
        self.client_key = Some(Arc::new(key));
        Ok(())
    }

    /// The name sent as SNI and checked by the identity flags (default:
    /// none; the node's IP address is checked and no SNI sent).
    pub fn set_server_name(&mut self, name: &str) -> Result<(), TlsError> {
        let name = ServerName::try_from(name.to_owned())
            .map_err(|e| TlsError::new(TlsErrorKind::Protocol, format!("bad server name: {e}")))?;
        self.server_name = Some(name);
        Ok(())
    }

    /// Checks the settings and builds the connector.
    pub fn build(&self) -> Result<TlsConnector, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let check_chain = self.verify_flags != VERIFY_NONE;
        let mut roots = RootCertStore::empty();
        for cert in &self.trusted {
            roots.add(cert.clone()).map_err(|e| {
                TlsError::new(
                    TlsErrorKind::InvalidCert,
                    format!("trusted certificate: {e}"),
                )
            })?;
        }
        if self.system_roots {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            tracing::debug!(added, errors = found.errors.len(), "system trust store");
        }
        let chain = if check_chain {
            if roots.is_empty() {
                return Err(TlsError::new(
                    TlsErrorKind::InvalidCert,
                    "certificate verification is on but no trusted certificate is set \
                     (add one, use the system store, or set the verify flags to none)",
                ));
            }
            let verifier =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| TlsError::new(TlsErrorKind::InvalidCert, e.to_string()))?;
            Some(verifier)
        } else {
            None
        };
        let verifier = Arc::new(Verifier {
            chain,
            check_identity: self.verify_flags & (VERIFY_PEER_IDENTITY | VERIFY_PEER_IDENTITY_DNS)
                != 0,
            provider: provider.clone(),
        });
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::new(TlsErrorKind::Protocol, e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match (&self.client_key, self.client_chain.is_empty()) {
            (None, true) => builder.with_no_client_auth(),
            (Some(key), false) => builder
                .with_client_auth_cert(self.client_chain.clone(), key.clone_key())
                .map_err(|e| {
                    TlsError::new(
                        TlsErrorKind::InvalidPrivateKey,
                        format!("client certificate and key: {e}"),
                    )
                })?,
            (None, false) => {
                return Err(TlsError::new(
                    TlsErrorKind::InvalidPrivateKey,
                    "a client certificate is set without its private key",
                ))
            }
            (Some(_), true) => {
                return Err(TlsError::new(
                    TlsErrorKind::InvalidCert,
                    "a private key is set without its client certificate",
                ))
            }
        };
        Ok(TlsConnector {
            inner: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name: self.server_name.clone(),
        })
    }
}

/// Opens TLS sessions over connected sockets; cheap to clone.
#[derive(Clone)]
pub struct TlsConnector {
    inner: tokio_rustls::TlsConnector,
    server_name: Option<ServerName<'static>>,
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl PartialEq for TlsConnector {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(self.inner.config(), other.inner.config())
    }
}

impl Eq for TlsConnector {}

pub(crate) type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

impl TlsConnector {
    /// Runs the TLS handshake on `stream`, a connection to `peer`.
    pub(crate) async fn connect(
        &self,
        peer: IpAddr,
        stream: TcpStream,
    ) -> Result<TlsStream, TlsError> {
        let name = self
            .server_name
            .clone()
            .unwrap_or(ServerName::IpAddress(peer.into()));
        self.inner
            .connect(name, stream)
            .await
            .map_err(|e| TlsError::from_handshake(&e))
    }
}

/// The DataStax verification flags over webpki.
#[derive(Debug)]
struct Verifier {
    /// `None`: the certificate is not checked.
    chain: Option<Arc<WebPkiServerVerifier>>,
    check_identity: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, RustlsError> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(RustlsError::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_identity => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RustlsError> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RustlsError> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
