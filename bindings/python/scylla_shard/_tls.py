"""TLS settings from scylla-driver's two forms, `ssl_context` (an
`ssl.SSLContext`) and `ssl_options` (a dict), turned into the library's
`sshard_ssl` settings. The connections themselves are the library's
(rustls): Python's ssl module only describes what to trust.

From an `SSLContext` the CA certificates it loaded (`load_verify_locations`
with a file or PEM data), its `verify_mode` and `check_hostname` are used;
with no CA certificate loaded, the system's store is trusted. A context
cannot hand over a client certificate: give `certfile` and `keyfile` in
`ssl_options` (alone or beside the context) for mutual TLS."""

import ssl

from scylla_shard._native import OK, ffi, last_error_message, lib, status_name

_OPTIONS = {"ca_certs", "certfile", "keyfile", "cert_reqs", "check_hostname",
            "server_hostname", "ssl_version"}


def _check(status):
    """Bad TLS settings (a missing file, a PEM that does not parse, a key
    that does not match its certificate) are bad values: ValueError."""
    if status != OK:
        raise ValueError("TLS settings: %s: %s" % (status_name(status), last_error_message()))


def _text(value):
    data = value.encode() if isinstance(value, str) else bytes(value)
    return data, len(data)


def apply(config, ssl_context=None, ssl_options=None):
    """Sets TLS on `config` (an `sshard_config *`) from the two forms."""
    options = dict(ssl_options or {})
    unknown = set(options) - _OPTIONS
    if unknown:
        raise ValueError("unsupported ssl_options: %s" % ", ".join(sorted(unknown)))
    out = ffi.new("struct sshard_ssl **")
    _check(lib.sshard_ssl_new(out))
    settings = out[0]
    try:
        verify = lib.SSHARD_SSL_VERIFY_PEER_CERT
        trusted = 0
        if ssl_context is not None:
            if ssl_context.verify_mode == ssl.CERT_NONE:
                verify = lib.SSHARD_SSL_VERIFY_NONE
            elif ssl_context.check_hostname:
                verify |= lib.SSHARD_SSL_VERIFY_PEER_IDENTITY
            for der in ssl_context.get_ca_certs(binary_form=True):
                _check(lib.sshard_ssl_add_trusted_cert(
                    settings, *_text(ssl.DER_cert_to_PEM_cert(der))))
                trusted += 1
        if options.get("ca_certs"):
            _check(lib.sshard_ssl_add_trusted_cert_file(settings, *_text(options["ca_certs"])))
            trusted += 1
        if options.get("cert_reqs") == ssl.CERT_NONE:
            verify = lib.SSHARD_SSL_VERIFY_NONE
        if options.get("check_hostname") and verify != lib.SSHARD_SSL_VERIFY_NONE:
            verify |= lib.SSHARD_SSL_VERIFY_PEER_IDENTITY
        if options.get("server_hostname"):
            _check(lib.sshard_ssl_set_server_name(settings, *_text(options["server_hostname"])))
        if trusted == 0 and verify != lib.SSHARD_SSL_VERIFY_NONE:
            _check(lib.sshard_ssl_set_system_trust(settings, True))
        if options.get("certfile"):
            _check(lib.sshard_ssl_set_cert_file(settings, *_text(options["certfile"])))
        if options.get("keyfile"):
            _check(lib.sshard_ssl_set_private_key_file(settings, *_text(options["keyfile"])))
        _check(lib.sshard_ssl_set_verify_flags(settings, verify))
        _check(lib.sshard_config_set_ssl(config, settings))
    finally:
        lib.sshard_ssl_free(settings)
