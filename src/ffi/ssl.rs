//! `sshard_ssl`: TLS settings (caller-owned builder, not thread-safe), in
//! the DataStax driver's vocabulary. `sshard_config_set_ssl` checks them and
//! copies them into a config; the `sshard_ssl` may be freed right after.
//!
//! Certificates and keys are PEM text, given in memory (pointer + length)
//! or by file name. Verification defaults to `SSHARD_SSL_VERIFY_PEER_CERT`
//! (the chain up to a trusted certificate, and its dates), as in DataStax.

use std::ffi::c_char;

use super::config::sshard_config;
use super::handle::{box_free, box_into_raw, box_mut, bytes_arg, out_arg, str_arg, Generational};
use super::status::{sshard_status, tls_status, Fail, FfiResult};
use crate::connection::tls::{
    self, VERIFY_NONE, VERIFY_PEER_CERT, VERIFY_PEER_IDENTITY, VERIFY_PEER_IDENTITY_DNS,
};
use crate::connection::{TlsError, TlsSettings};
use crate::runtime;

/// Do not check the server's certificate at all (tests only).
pub const SSHARD_SSL_VERIFY_NONE: u32 = 0;
/// Check the server's chain up to a trusted certificate, and its dates.
pub const SSHARD_SSL_VERIFY_PEER_CERT: u32 = 1;
/// Also check that the certificate names the node: the server name set by
/// `sshard_ssl_set_server_name`, or else the node's IP address.
pub const SSHARD_SSL_VERIFY_PEER_IDENTITY: u32 = 2;
/// As `SSHARD_SSL_VERIFY_PEER_IDENTITY` (kept for DataStax programs; the
/// name checked is the one set by `sshard_ssl_set_server_name`).
pub const SSHARD_SSL_VERIFY_PEER_IDENTITY_DNS: u32 = 4;

// The C values are the library's flags (literals above so cbindgen can
// write them into the header).
const _: () = assert!(
    SSHARD_SSL_VERIFY_NONE == VERIFY_NONE
        && SSHARD_SSL_VERIFY_PEER_CERT == VERIFY_PEER_CERT
        && SSHARD_SSL_VERIFY_PEER_IDENTITY == VERIFY_PEER_IDENTITY
        && SSHARD_SSL_VERIFY_PEER_IDENTITY_DNS == VERIFY_PEER_IDENTITY_DNS
);

/// TLS settings. Caller-owned, not thread-safe; free with `sshard_ssl_free`.
pub struct sshard_ssl {
    generation: u64,
    settings: TlsSettings,
}

impl Generational for sshard_ssl {
    fn generation(&self) -> u64 {
        self.generation
    }
}

fn tls_fail(e: TlsError) -> Fail {
    Fail::new(tls_status(e.kind), e.message)
}

/// The bytes of a PEM file, with its name in any error.
fn read_pem_file(path: &str) -> FfiResult<Vec<u8>> {
    tls::read_pem_file(std::path::Path::new(path)).map_err(Fail::invalid)
}

/// Makes empty TLS settings: no trusted certificate, no client certificate,
/// verification `SSHARD_SSL_VERIFY_PEER_CERT`, no server name.
#[no_mangle]
pub unsafe extern "C" fn sshard_ssl_new(ssl: *mut *mut sshard_ssl) -> sshard_status {
    ffi_boundary! {
        let out = out_arg(ssl, "ssl")?;
        out.write(box_into_raw(sshard_ssl {
            generation: runtime::generation(),
            settings: TlsSettings::default(),
        }));
        Ok(())
    }
}

/// Frees TLS settings (NULL: no-op).
#[no_mangle]
pub unsafe extern "C" fn sshard_ssl_free(ssl: *mut sshard_ssl) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or settings the caller gives up (API contract).
        unsafe { box_free(ssl) }
    }
}

/// Trusts the CA certificate(s) in a PEM text (one or more `CERTIFICATE`
/// blocks). May be called several times.
#[no_mangle]
pub unsafe extern "C" fn sshard_ssl_add_trusted_cert(
    ssl: *mut sshard_ssl,
    pem: *const c_char,
    pem_len: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or live settings (API contract).
        let ssl = unsafe { box_mut(ssl, "ssl") }?;
        // SAFETY: `(pem, pem_len)` is readable memory (API contract).
        let pem = unsafe { bytes_arg(pem.cast(), pem_len, "pem") }?;
        ssl.settings.add_trusted_pem(pem).map_err(tls_fail)
    }
}

/// Trusts the CA certificate(s) in a PEM file.
#[no_mangle]
pub unsafe extern "C" fn sshard_ssl_add_trusted_cert_file(
    ssl: *mut sshard_ssl,
    path: *const c_char,
    path_len: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or live settings (API contract).
        let ssl = unsafe { box_mut(ssl, "ssl") }?;
        // SAFETY: `(path, path_len)` is readable memory (API contract).
        let path = unsafe { str_arg(path, path_len, "path") }?;
        let pem = read_pem_file(path)?;
        ssl.settings.add_trusted_pem(&pem).map_err(tls_fail)
    }
}

/// Also trusts the operating system's certificate store (default off), for
/// clusters with certificates from a public CA.
#[no_mangle]
pub unsafe extern "C" fn sshard_ssl_set_system_trust(
    ssl: *mut sshard_ssl,
    enabled: bool,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or live settings (API contract).
        let ssl = unsafe { box_mut(ssl, "ssl") }?;
        ssl.settings.set_system_roots(enabled);
        Ok(())
    }
}

/// `SSHARD_SSL_VERIFY_*` flags, or-ed (identity flags imply the chain check
/// unless the flags are `SSHARD_SSL_VERIFY_NONE`).
#[no_mangle]
pub unsafe extern "C" fn sshard_ssl_set_verify_flags(
    ssl: *mut sshard_ssl,
    flags: u32,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or live settings (API contract).
        let ssl = unsafe { box_mut(ssl, "ssl") }?;
        ssl.settings
            .set_verify_flags(flags)
            .map_err(|e| Fail::invalid(e.message))
    }
}

/// The client certificate chain for mutual TLS (PEM, leaf first).
#[no_mangle]
pub unsafe extern "C" fn sshard_ssl_set_cert(
    ssl: *mut sshard_ssl,
    pem: *const c_char,
    pem_len: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or live settings (API contract).
        let ssl = unsafe { box_mut(ssl, "ssl") }?;
        // SAFETY: `(pem, pem_len)` is readable memory (API contract).
        let pem = unsafe { bytes_arg(pem.cast(), pem_len, "pem") }?;
        ssl.settings.set_client_cert_pem(pem).map_err(tls_fail)
    }
}

/// The client certificate chain for mutual TLS, from a PEM file.
#[no_mangle]
pub unsafe extern "C" fn sshard_ssl_set_cert_file(
    ssl: *mut sshard_ssl,
    path: *const c_char,
    path_len: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or live settings (API contract).
        let ssl = unsafe { box_mut(ssl, "ssl") }?;
        // SAFETY: `(path, path_len)` is readable memory (API contract).
        let path = unsafe { str_arg(path, path_len, "path") }?;
        let pem = read_pem_file(path)?;
        ssl.settings.set_client_cert_pem(&pem).map_err(tls_fail)
    }
}

/// Refuses a key password: encrypted keys are not supported.
fn no_password(password_len: usize) -> FfiResult {
    if password_len != 0 {
        return Err(Fail::new(
            super::status::SSHARD_STATUS_SSL_INVALID_PRIVATE_KEY,
            "encrypted private keys are not supported: give the key unencrypted \
             (e.g. `openssl pkcs8 -nocrypt`)",
        ));
    }
    Ok(())
}

/// The client's private key for mutual TLS (PEM: PKCS#8, PKCS#1 or SEC1).
/// `password` must be empty (NULL, 0): encrypted keys are refused with
/// `SSHARD_STATUS_SSL_INVALID_PRIVATE_KEY`.
#[no_mangle]
pub unsafe extern "C" fn sshard_ssl_set_private_key(
    ssl: *mut sshard_ssl,
    pem: *const c_char,
    pem_len: usize,
    password: *const c_char,
    password_len: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or live settings (API contract).
        let ssl = unsafe { box_mut(ssl, "ssl") }?;
        // SAFETY: `(pem, pem_len)` is readable memory (API contract).
        let pem = unsafe { bytes_arg(pem.cast(), pem_len, "pem") }?;
        let _ = password;
        no_password(password_len)?;
        ssl.settings.set_client_key_pem(pem).map_err(tls_fail)
    }
}

/// The client's private key for mutual TLS, from a PEM file (unencrypted).
#[no_mangle]
pub unsafe extern "C" fn sshard_ssl_set_private_key_file(
    ssl: *mut sshard_ssl,
    path: *const c_char,
    path_len: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or live settings (API contract).
        let ssl = unsafe { box_mut(ssl, "ssl") }?;
        // SAFETY: `(path, path_len)` is readable memory (API contract).
        let path = unsafe { str_arg(path, path_len, "path") }?;
        let pem = read_pem_file(path)?;
        ssl.settings.set_client_key_pem(&pem).map_err(tls_fail)
    }
}

/// The server name sent as SNI and checked by the identity flags (a DNS
/// name, or an IP address). Without it no SNI is sent and the identity
/// checked is each node's IP address.
#[no_mangle]
pub unsafe extern "C" fn sshard_ssl_set_server_name(
    ssl: *mut sshard_ssl,
    name: *const c_char,
    name_len: usize,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or live settings (API contract).
        let ssl = unsafe { box_mut(ssl, "ssl") }?;
        // SAFETY: `(name, name_len)` is readable memory (API contract).
        let name = unsafe { str_arg(name, name_len, "name") }?;
        ssl.settings
            .set_server_name(name)
            .map_err(|e| Fail::invalid(e.message))
    }
}

/// Connects with TLS using these settings (checked now: a missing trusted
/// certificate or a key that does not match its certificate fails here).
/// Every connection, control and per shard, uses TLS; shard-aware
/// connections go to the node's `SCYLLA_SHARD_AWARE_PORT_SSL`. NULL `ssl`
/// turns TLS off again.
#[no_mangle]
pub unsafe extern "C" fn sshard_config_set_ssl(
    config: *mut sshard_config,
    ssl: *const sshard_ssl,
) -> sshard_status {
    ffi_boundary! {
        // SAFETY: NULL or a live config (API contract).
        let config = unsafe { box_mut(config, "config") }?;
        let connector = if ssl.is_null() {
            None
        } else {
            // SAFETY: a live sshard_ssl (API contract), only read here.
            let ssl = unsafe { super::handle::handle_ref(ssl, "ssl") }?;
            Some(ssl.settings.build().map_err(tls_fail)?)
        };
        config.session.connection.tls = connector;
        Ok(())
    }
}
