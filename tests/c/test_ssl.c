/* TLS through the C API (sshard_ssl_* and sshard_config_set_ssl), against
 * a 3-node emulator with TLS listeners that requires client certificates
 * from its test CA (mutual TLS); the certificates are generated for this
 * run by `scylla-emulator --tls-generate` (scripts/c_tests.sh):
 *   - every call with NULL or invalid arguments returns a status (and a
 *     last-error message naming the problem), a bad PEM included;
 *   - a verified mutual-TLS session runs queries, every connection on the
 *     TLS ports: one per shard, the shard-aware TLS port for all but the
 *     first, nothing on the plain ports;
 *   - handshake failures give their own statuses: unknown CA, wrong server
 *     name with identity checks, no client certificate; identity checks
 *     off (or verification off) connect.
 * Usage: test_ssl <first node address> <certificate directory>
 * (TLS ports 9142 and 19142, admin port 9180). */
#include "harness.h"

#define TLS_PORT 9142
#define TLS_SHARD_AWARE_PORT 19142
#define NODES 3

static const char *base;
static const char *cert_dir;

/* The connect timeout (seconds): a refused handshake must end well before
 * it. Longer under valgrind, where a handshake takes seconds. */
static int connect_timeout_s(void) {
  const char *v = getenv("SSHARD_TEST_VALGRIND");
  return (v && *v == '1') ? 60 : 5;
}

/* The path of a generated file. */
static const char *cert_path(const char *name) {
  static char paths[8][512];
  static int next;
  char *out = paths[next++ % 8];
  snprintf(out, 512, "%s/%s", cert_dir, name);
  return out;
}

/* The malloc'ed text of a generated file (length in *len). */
static char *read_file(const char *name, size_t *len) {
  FILE *f = fopen(cert_path(name), "rb");
  REQUIRE(f != NULL);
  static char buf[1 << 16];
  *len = fread(buf, 1, sizeof buf, f);
  fclose(f);
  REQUIRE(*len > 0 && *len < sizeof buf);
  char *copy = malloc(*len + 1);
  memcpy(copy, buf, *len);
  copy[*len] = 0;
  return copy;
}

/* The last error message contains `needle`. */
static int last_error_has(const char *needle) {
  const char *m = NULL;
  size_t n = 0;
  if (sshard_last_error_message(&m, &n) != SSHARD_STATUS_OK) return 0;
  char copy[1024];
  snprintf(copy, sizeof copy, "%.*s", (int)n, m);
  if (strstr(copy, needle)) return 1;
  fprintf(stderr, "    last error %s lacks %s\n", copy, needle);
  return 0;
}

/* Settings trusting the test CA (from memory), with `flags`, and the client
 * certificate and key (from files) when `client_cert`. */
static sshard_ssl *ssl_settings(uint32_t flags, int client_cert) {
  sshard_ssl *ssl = NULL;
  REQUIRE(sshard_ssl_new(&ssl) == SSHARD_STATUS_OK && ssl);
  size_t len = 0;
  char *ca = read_file("ca.pem", &len);
  OK(sshard_ssl_add_trusted_cert(ssl, ca, len));
  free(ca);
  OK(sshard_ssl_set_verify_flags(ssl, flags));
  if (client_cert) {
    OK(sshard_ssl_set_cert_file(ssl, STR(cert_path("client.pem"))));
    OK(sshard_ssl_set_private_key_file(ssl, STR(cert_path("client-key.pem"))));
  }
  return ssl;
}

/* A config for the TLS port with `ssl` (freed here). */
static sshard_config *tls_config(sshard_ssl *ssl) {
  sshard_config *cfg = h_config(base);
  OK(sshard_config_set_port(cfg, TLS_PORT));
  OK(sshard_config_set_connect_timeout_ms(cfg, (uint64_t)connect_timeout_s() * 1000));
  OK(sshard_config_set_ssl(cfg, ssl));
  OK(sshard_ssl_free(ssl));
  return cfg;
}

/* Connects with `cfg` (freed); returns the status, the error message, and
 * the session when it connected. */
static sshard_status try_connect(sshard_config *cfg, char *message, size_t cap,
                                 const sshard_session **session) {
  const sshard_future *f = NULL;
  REQUIRE(sshard_session_connect(cfg, &f) == SSHARD_STATUS_OK);
  OK(sshard_config_free(cfg));
  sshard_status s = sshard_future_wait(f);
  message[0] = 0;
  const sshard_error *e = NULL;
  if (s != SSHARD_STATUS_OK && sshard_future_get_error(f, &e) == SSHARD_STATUS_OK) {
    const char *m;
    size_t n;
    OK(sshard_error_message(e, &m, &n));
    snprintf(message, cap, "%.*s", (int)n, m);
    sshard_status es = SSHARD_STATUS_OK;
    OK(sshard_error_status(e, &es));
    CHECK(es == s);
  }
  if (s == SSHARD_STATUS_OK) {
    const sshard_session *connected = NULL;
    OK(sshard_future_get_session(f, &connected));
    if (session)
      *session = connected;
    else
      h_close(connected);
  }
  OK(sshard_future_free(f));
  return s;
}

/* The sum over every node of the lines of the emulator's /metrics that
 * start with `prefix` (a metric name and its first labels). */
static unsigned long long emulator_sum(const char *prefix) {
  unsigned long long total = 0;
  char ip[32];
  size_t len = strlen(prefix);
  for (int node = 0; node < NODES; node++) {
    h_node_ip(base, node, ip);
    char *body = NULL;
    REQUIRE(h_http("GET", ip, 9180, "/metrics", &body) == 200 && body);
    for (char *line = body; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
      if (strncmp(line, prefix, len) == 0) {
        const char *value = strchr(line + len, '}');
        if (value) total += strtoull(value + 1, NULL, 10);
      }
    }
    free(body);
  }
  return total;
}

static unsigned long long accepted_on(int port) {
  char prefix[128];
  snprintf(prefix, sizeof prefix, "emulator_connections_accepted_total{port=\"%d\",", port);
  return emulator_sum(prefix);
}

static void test_bad_arguments(void) {
  CHECK_STATUS(sshard_ssl_new(NULL), SSHARD_STATUS_NULL_ARGUMENT);
  OK(sshard_ssl_free(NULL));
  sshard_ssl *ssl = NULL;
  OK(sshard_ssl_new(&ssl));
  REQUIRE(ssl != NULL);

  /* NULL settings: every call returns a status. */
  CHECK_STATUS(sshard_ssl_add_trusted_cert(NULL, S("x")), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_ssl_add_trusted_cert_file(NULL, S("/x")), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_ssl_set_system_trust(NULL, true), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_ssl_set_verify_flags(NULL, SSHARD_SSL_VERIFY_NONE), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_ssl_set_cert(NULL, S("x")), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_ssl_set_cert_file(NULL, S("/x")), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_ssl_set_private_key(NULL, S("x"), NULL, 0), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_ssl_set_private_key_file(NULL, S("/x")), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_ssl_set_server_name(NULL, S("scylla.test")), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_config_set_ssl(NULL, ssl), SSHARD_STATUS_NULL_ARGUMENT);

  /* NULL text with a length. */
  CHECK_STATUS(sshard_ssl_add_trusted_cert(ssl, NULL, 10), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK(last_error_has("pem"));
  CHECK_STATUS(sshard_ssl_set_cert(ssl, NULL, 10), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_ssl_set_private_key(ssl, NULL, 10, NULL, 0), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_ssl_set_server_name(ssl, NULL, 3), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_ssl_add_trusted_cert_file(ssl, NULL, 3), SSHARD_STATUS_NULL_ARGUMENT);

  /* Bad PEM: no certificate in it, a broken certificate block, empty. */
  CHECK_STATUS(sshard_ssl_add_trusted_cert(ssl, S("not a certificate")), SSHARD_STATUS_SSL_INVALID_CERT);
  CHECK(last_error_has("no CERTIFICATE"));
  CHECK_STATUS(sshard_ssl_add_trusted_cert(ssl, S("-----BEGIN CERTIFICATE-----\n@@not base64@@\n"
                                                  "-----END CERTIFICATE-----\n")),
               SSHARD_STATUS_SSL_INVALID_CERT);
  CHECK(last_error_has("bad PEM"));
  CHECK_STATUS(sshard_ssl_add_trusted_cert(ssl, NULL, 0), SSHARD_STATUS_SSL_INVALID_CERT);
  CHECK_STATUS(sshard_ssl_set_cert(ssl, S("garbage")), SSHARD_STATUS_SSL_INVALID_CERT);
  CHECK_STATUS(sshard_ssl_set_private_key(ssl, S("-----BEGIN NOTHING-----\n"), NULL, 0),
               SSHARD_STATUS_SSL_INVALID_PRIVATE_KEY);
  CHECK(last_error_has("private key"));
  /* A password: encrypted keys are refused, with what to do instead. */
  size_t key_len = 0;
  char *key = read_file("client-key.pem", &key_len);
  CHECK_STATUS(sshard_ssl_set_private_key(ssl, key, key_len, S("secret")),
               SSHARD_STATUS_SSL_INVALID_PRIVATE_KEY);
  CHECK(last_error_has("encrypted"));
  OK(sshard_ssl_set_private_key(ssl, key, key_len, NULL, 0));
  free(key);

  /* Files: missing (named in the message), not a certificate, not UTF-8. */
  CHECK_STATUS(sshard_ssl_add_trusted_cert_file(ssl, S("/nonexistent/ca.pem")), SSHARD_STATUS_INVALID_ARGUMENT);
  CHECK(last_error_has("/nonexistent/ca.pem"));
  CHECK_STATUS(sshard_ssl_set_cert_file(ssl, S("/nonexistent/client.pem")), SSHARD_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(sshard_ssl_set_private_key_file(ssl, S("/nonexistent/key.pem")), SSHARD_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(sshard_ssl_add_trusted_cert_file(ssl, STR(cert_path("client-key.pem"))),
               SSHARD_STATUS_SSL_INVALID_CERT);
  CHECK_STATUS(sshard_ssl_set_private_key_file(ssl, STR(cert_path("ca.pem"))),
               SSHARD_STATUS_SSL_INVALID_PRIVATE_KEY);
  CHECK_STATUS(sshard_ssl_add_trusted_cert_file(ssl, S("\xff\xfe")), SSHARD_STATUS_INVALID_UTF8);

  /* Flags and names. */
  CHECK_STATUS(sshard_ssl_set_verify_flags(ssl, 0x80), SSHARD_STATUS_INVALID_ARGUMENT);
  CHECK(last_error_has("0x80"));
  CHECK_STATUS(sshard_ssl_set_server_name(ssl, S("not a name!")), SSHARD_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(sshard_ssl_set_server_name(ssl, S("\xff")), SSHARD_STATUS_INVALID_UTF8);
  OK(sshard_ssl_set_server_name(ssl, S("scylla.test")));
  OK(sshard_ssl_set_server_name(ssl, S("127.0.0.1")));
  OK(sshard_ssl_set_verify_flags(ssl, SSHARD_SSL_VERIFY_PEER_CERT | SSHARD_SSL_VERIFY_PEER_IDENTITY |
                                          SSHARD_SSL_VERIFY_PEER_IDENTITY_DNS));
  OK(sshard_ssl_set_system_trust(ssl, false));
  OK(sshard_ssl_free(ssl));

  /* Settings checked by sshard_config_set_ssl. */
  sshard_config *cfg = NULL;
  OK(sshard_config_new(&cfg));
  OK(sshard_config_set_ssl(cfg, NULL)); /* TLS off: fine */
  OK(sshard_ssl_new(&ssl));
  /* Verification on and nothing trusted. */
  CHECK_STATUS(sshard_config_set_ssl(cfg, ssl), SSHARD_STATUS_SSL_INVALID_CERT);
  CHECK(last_error_has("no trusted certificate"));
  /* A client certificate without its key, then with another's key. */
  OK(sshard_ssl_add_trusted_cert_file(ssl, STR(cert_path("ca.pem"))));
  OK(sshard_ssl_set_cert_file(ssl, STR(cert_path("client.pem"))));
  CHECK_STATUS(sshard_config_set_ssl(cfg, ssl), SSHARD_STATUS_SSL_INVALID_PRIVATE_KEY);
  CHECK(last_error_has("without its private key"));
  OK(sshard_ssl_set_private_key_file(ssl, STR(cert_path("server-key.pem"))));
  CHECK_STATUS(sshard_config_set_ssl(cfg, ssl), SSHARD_STATUS_SSL_INVALID_PRIVATE_KEY);
  OK(sshard_ssl_set_private_key_file(ssl, STR(cert_path("client-key.pem"))));
  OK(sshard_config_set_ssl(cfg, ssl));
  /* The system store as well as the test CA. */
  OK(sshard_ssl_set_system_trust(ssl, true));
  OK(sshard_config_set_ssl(cfg, ssl));
  OK(sshard_ssl_free(ssl));
  OK(sshard_config_free(cfg));
}

/* Waits (bounded) until every node has one connection per shard, then
 * checks they came through the shard-aware TLS port. */
static void check_shard_aware_pools(const sshard_session *session) {
  double deadline = h_now() + 20;
  int filled = 0;
  while (!filled && h_now() < deadline) {
    const sshard_metrics_snapshot *snap = NULL;
    OK(sshard_session_get_metrics_snapshot(session, &snap));
    size_t nodes = 0;
    OK(sshard_metrics_snapshot_node_count(snap, &nodes));
    filled = nodes == NODES;
    for (size_t i = 0; filled && i < nodes; i++) {
      sshard_node_metrics n;
      OK(sshard_metrics_snapshot_node(snap, i, &n, sizeof n));
      for (uint32_t sh = 0; sh < n.shard_count; sh++) filled &= n.connections_per_shard[sh] == 1;
      filled &= n.shard_count == 4;
    }
    OK(sshard_metrics_snapshot_free(snap));
    if (!filled) usleep(10000);
  }
  REQUIRE(filled);
  const sshard_metrics_snapshot *snap = NULL;
  OK(sshard_session_get_metrics_snapshot(session, &snap));
  for (size_t i = 0; i < NODES; i++) {
    sshard_node_metrics n;
    OK(sshard_metrics_snapshot_node(snap, i, &n, sizeof n));
    CHECK(n.up && n.shard_aware_port_in_use);
    /* One attempt per shard: the first on the TLS port, the others on the
     * shard-aware TLS port, each on the shard it asked for. */
    CHECK(n.opened_regular == 1);
    CHECK(n.opened_shard_aware == n.nr_shards - 1);
    CHECK(n.shard_aware_fallbacks == 0 && n.nat_detections == 0);
  }
  OK(sshard_metrics_snapshot_free(snap));
}

static void test_mutual_tls_session(void) {
  unsigned long long plain_before = accepted_on(9042) + accepted_on(19042);
  unsigned long long tls_sa_before = accepted_on(TLS_SHARD_AWARE_PORT);
  char message[512];
  const sshard_session *session = NULL;
  sshard_ssl *ssl = ssl_settings(SSHARD_SSL_VERIFY_PEER_CERT | SSHARD_SSL_VERIFY_PEER_IDENTITY, 1);
  CHECK_STATUS(try_connect(tls_config(ssl), message, sizeof message, &session), SSHARD_STATUS_OK);
  REQUIRE(session != NULL);
  bool shard_aware = false;
  OK(sshard_session_is_shard_aware(session, &shard_aware));
  CHECK(shard_aware);
  REQUIRE(h_query(session, "CREATE KEYSPACE IF NOT EXISTS tls WITH replication = "
                           "{'class': 'SimpleStrategy', 'replication_factor': 1}") == SSHARD_STATUS_OK);
  REQUIRE(h_query(session, "CREATE TABLE IF NOT EXISTS tls.kv (k int PRIMARY KEY, v text)") == SSHARD_STATUS_OK);
  sshard_statement *st = NULL;
  OK(sshard_statement_new(S("INSERT INTO tls.kv (k, v) VALUES (?, 'over tls')"), 1, &st));
  for (int k = 0; k < 50; k++) {
    OK(sshard_statement_bind_int32(st, 0, k));
    sshard_status s;
    sshard_result_free(h_execute(session, st, &s));
    CHECK(s == SSHARD_STATUS_OK);
  }
  OK(sshard_statement_free(st));
  OK(sshard_statement_new(S("SELECT v FROM tls.kv WHERE k = 7"), 0, &st));
  sshard_status s;
  const sshard_result *r = h_execute(session, st, &s);
  CHECK(s == SSHARD_STATUS_OK);
  size_t rows = 0;
  OK(sshard_result_row_count(r, &rows));
  CHECK(rows == 1);
  const sshard_value *v = NULL;
  OK(sshard_result_value(r, 0, 0, &v));
  const char *text = NULL;
  size_t text_len = 0;
  OK(sshard_value_get_text(v, &text, &text_len));
  CHECK(text_len == 8 && memcmp(text, "over tls", 8) == 0);
  sshard_result_free(r);
  OK(sshard_statement_free(st));
  check_shard_aware_pools(session);
  h_close(session);
  CHECK(accepted_on(9042) + accepted_on(19042) == plain_before);
  unsigned long long on_shard_aware = accepted_on(TLS_SHARD_AWARE_PORT) - tls_sa_before;
  if (on_shard_aware != NODES * 3) fprintf(stderr, "    shard-aware TLS port: %llu connections\n", on_shard_aware);
  CHECK(on_shard_aware == NODES * 3);
}

static void test_handshake_failures(void) {
  char message[512];
  /* A CA that signed none of the server certificates. */
  sshard_ssl *ssl = NULL;
  OK(sshard_ssl_new(&ssl));
  OK(sshard_ssl_add_trusted_cert_file(ssl, STR(cert_path("other-ca.pem"))));
  OK(sshard_ssl_set_cert_file(ssl, STR(cert_path("client.pem"))));
  OK(sshard_ssl_set_private_key_file(ssl, STR(cert_path("client-key.pem"))));
  double started = h_now();
  CHECK_STATUS(try_connect(tls_config(ssl), message, sizeof message, NULL), SSHARD_STATUS_SSL_INVALID_PEER_CERT);
  CHECK(strstr(message, "UnknownIssuer") != NULL);
  CHECK(strstr(message, base) != NULL);
  CHECK(h_now() - started < connect_timeout_s() - 1); /* at the handshake, not a timeout */

  /* A server name the certificate does not hold, identity checked. */
  ssl = ssl_settings(SSHARD_SSL_VERIFY_PEER_CERT | SSHARD_SSL_VERIFY_PEER_IDENTITY, 1);
  OK(sshard_ssl_set_server_name(ssl, S("wrong.test")));
  CHECK_STATUS(try_connect(tls_config(ssl), message, sizeof message, NULL), SSHARD_STATUS_SSL_IDENTITY_MISMATCH);
  CHECK(strstr(message, "not valid for name") != NULL);
  /* The same name, identity not checked: connects. */
  ssl = ssl_settings(SSHARD_SSL_VERIFY_PEER_CERT, 1);
  OK(sshard_ssl_set_server_name(ssl, S("wrong.test")));
  CHECK_STATUS(try_connect(tls_config(ssl), message, sizeof message, NULL), SSHARD_STATUS_OK);
  /* The name the certificate holds, checked (and sent as SNI). */
  ssl = ssl_settings(SSHARD_SSL_VERIFY_PEER_CERT | SSHARD_SSL_VERIFY_PEER_IDENTITY_DNS, 1);
  OK(sshard_ssl_set_server_name(ssl, S("scylla.test")));
  CHECK_STATUS(try_connect(tls_config(ssl), message, sizeof message, NULL), SSHARD_STATUS_OK);

  /* No client certificate for a server that requires one. */
  ssl = ssl_settings(SSHARD_SSL_VERIFY_PEER_CERT | SSHARD_SSL_VERIFY_PEER_IDENTITY, 0);
  started = h_now();
  CHECK_STATUS(try_connect(tls_config(ssl), message, sizeof message, NULL), SSHARD_STATUS_SSL_PROTOCOL_ERROR);
  CHECK(strstr(message, "requires a client certificate") != NULL);
  CHECK(h_now() - started < connect_timeout_s() - 1);

  /* Verification off, nothing trusted: connects (client certificate given). */
  OK(sshard_ssl_new(&ssl));
  OK(sshard_ssl_set_verify_flags(ssl, SSHARD_SSL_VERIFY_NONE));
  CHECK_STATUS(sshard_ssl_set_cert(ssl, NULL, 0), SSHARD_STATUS_SSL_INVALID_CERT);
  size_t len = 0;
  char *pem = read_file("client.pem", &len);
  OK(sshard_ssl_set_cert(ssl, pem, len));
  free(pem);
  pem = read_file("client-key.pem", &len);
  OK(sshard_ssl_set_private_key(ssl, pem, len, NULL, 0));
  free(pem);
  CHECK_STATUS(try_connect(tls_config(ssl), message, sizeof message, NULL), SSHARD_STATUS_OK);

  /* TLS to the plain port: the server does not speak TLS. */
  ssl = ssl_settings(SSHARD_SSL_VERIFY_PEER_CERT, 1);
  sshard_config *cfg = tls_config(ssl);
  OK(sshard_config_set_port(cfg, 9042));
  CHECK_STATUS(try_connect(cfg, message, sizeof message, NULL), SSHARD_STATUS_SSL_PROTOCOL_ERROR);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s <first node address> <certificate directory>\n", argv[0]);
    return 2;
  }
  base = argv[1];
  cert_dir = argv[2];
  test_bad_arguments();
  test_mutual_tls_session();
  test_handshake_failures();
  return h_finish("test_ssl");
}
