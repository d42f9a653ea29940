/* Session lifecycle through the C API, against a 3-node emulator that
 * requires PasswordAuthenticator (alice / s3cret):
 *   - a connect that fails the same way on every node reports the cause
 *     (bad credentials, missing credentials, unknown keyspace) with the
 *     server's message, not a generic NO_HOSTS;
 *   - close followed at once by free drains: requests submitted before
 *     complete normally; free without close does the same;
 *   - a statement prepared under keyspace A still runs after `USE B` and a
 *     restart of every node (re-prepared under A, never a lasting failure).
 * Usage: test_sessions <first node address> (admin port 9180). */
#include "harness.h"

static const char *base;

static sshard_config *auth_config(const char *user, const char *password) {
  sshard_config *cfg = h_config(base);
  if (user) OK(sshard_config_set_credentials(cfg, STR(user), STR(password)));
  return cfg;
}

/* Connects with `cfg` (freed); returns the status and the error message. */
static sshard_status try_connect(sshard_config *cfg, char *message, size_t cap) {
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
    const sshard_session *session = NULL;
    OK(sshard_future_get_session(f, &session));
    h_close(session);
  }
  OK(sshard_future_free(f));
  return s;
}

static void test_connect_errors(void) {
  char message[512];
  CHECK_STATUS(try_connect(auth_config("alice", "wrong"), message, sizeof message),
               SSHARD_STATUS_SERVER_BAD_CREDENTIALS);
  CHECK(strstr(message, "password") != NULL);
  CHECK_STATUS(try_connect(auth_config("mallory", "s3cret"), message, sizeof message),
               SSHARD_STATUS_SERVER_BAD_CREDENTIALS);
  /* No credentials at all for a server that requires them. */
  CHECK_STATUS(try_connect(auth_config(NULL, NULL), message, sizeof message),
               SSHARD_STATUS_SERVER_BAD_CREDENTIALS);
  CHECK(strstr(message, "PasswordAuthenticator") != NULL);
  sshard_config *cfg = auth_config("alice", "s3cret");
  OK(sshard_config_set_keyspace(cfg, S("no_such_keyspace")));
  CHECK_STATUS(try_connect(cfg, message, sizeof message), SSHARD_STATUS_SERVER_INVALID);
  CHECK(strstr(message, "no_such_keyspace") != NULL);
  /* Nothing listens on this port: that one is an outage. */
  cfg = auth_config("alice", "s3cret");
  OK(sshard_config_set_port(cfg, 1));
  OK(sshard_config_set_connect_timeout_ms(cfg, 2000));
  CHECK_STATUS(try_connect(cfg, message, sizeof message), SSHARD_STATUS_NO_HOSTS);
  CHECK_STATUS(try_connect(auth_config("alice", "s3cret"), message, sizeof message),
               SSHARD_STATUS_OK);
}

static const sshard_session *connect_alice(void) {
  return h_connect_config(auth_config("alice", "s3cret"));
}

/* Submits `total` inserts of keys first..first+total into sessions.kv. */
static const sshard_future **submit_inserts(const sshard_session *s, int first, int total) {
  const sshard_future **fs = calloc((size_t)total, sizeof *fs);
  sshard_statement *st = NULL;
  OK(sshard_statement_new(S("INSERT INTO sessions.kv (k, v) VALUES (?, 'drained')"), 1, &st));
  for (int i = 0; i < total; i++) {
    OK(sshard_statement_bind_int32(st, 0, first + i));
    OK(sshard_session_execute(s, st, &fs[i]));
  }
  OK(sshard_statement_free(st));
  return fs;
}

/* Waits for every future; returns how many succeeded (prints the others). */
static int wait_all(const sshard_future **fs, int total) {
  int ok = 0;
  for (int i = 0; i < total; i++) {
    sshard_status s = sshard_future_wait(fs[i]);
    if (s == SSHARD_STATUS_OK) ok++;
    else if (total - ok < 3) h_print_future_error(fs[i]);
    OK(sshard_future_free(fs[i]));
  }
  free(fs);
  return ok;
}

/* Counts the rows of sessions.kv with keys first..first+total. */
static int count_rows(int first, int total) {
  const sshard_session *s = connect_alice();
  const sshard_prepared *p = h_prepare(s, "SELECT v FROM sessions.kv WHERE k = ?");
  int found = 0;
  for (int i = 0; i < total; i++) {
    sshard_statement *st = NULL;
    OK(sshard_prepared_bind(p, &st));
    OK(sshard_statement_bind_int32(st, 0, first + i));
    const sshard_result *r = h_execute(s, st, NULL);
    size_t rows = 0;
    if (r && sshard_result_row_count(r, &rows) == SSHARD_STATUS_OK && rows == 1) found++;
    sshard_result_free(r);
    OK(sshard_statement_free(st));
  }
  OK(sshard_prepared_free(p));
  h_close(s);
  return found;
}

static void test_close_then_free_drains(void) {
  const int total = h_scale(200);
  const sshard_session *s = connect_alice();
  const sshard_future **fs = submit_inserts(s, 0, total);
  const sshard_future *close_f = NULL;
  OK(sshard_session_close(s, &close_f));
  OK(sshard_session_free(s)); /* what a finalizer does right after close */
  CHECK(wait_all(fs, total) == total);
  OK(sshard_future_wait(close_f));
  CHECK_STATUS(sshard_future_status(close_f), SSHARD_STATUS_OK);
  OK(sshard_future_free(close_f));
  CHECK(count_rows(0, total) == total);
}

static void test_free_without_close_drains(void) {
  const int total = h_scale(200);
  const sshard_session *s = connect_alice();
  const sshard_future **fs = submit_inserts(s, 10000, total);
  OK(sshard_session_free(s));
  CHECK(wait_all(fs, total) == total);
  CHECK(count_rows(10000, total) == total);
}

static void restart_every_node(void) {
  char ip[32];
  for (int n = 0; n < 3; n++) {
    h_node_ip(base, n, ip);
    CHECK(h_admin_post(ip, 9180, "/admin/restart?down_ms=200") == 200);
  }
}

/* Runs `st` until it succeeds (the session reconnects after the restart),
 * at most ~20 s; returns the last status. */
static sshard_status execute_until_ok(const sshard_session *s, const sshard_statement *st) {
  sshard_status status = SSHARD_STATUS_INTERNAL;
  for (int attempt = 0; attempt < 200; attempt++) {
    const sshard_result *r = h_execute(s, st, &status);
    sshard_result_free(r);
    if (status == SSHARD_STATUS_OK) break;
    /* Only a node still coming back may refuse (with RF 1 the key's only
     * replica is down: Unavailable); never a lasting error. */
    CHECK(status == SSHARD_STATUS_NO_HOSTS || status == SSHARD_STATUS_CONNECTION_LOST ||
          status == SSHARD_STATUS_SERVER_IS_BOOTSTRAPPING ||
          status == SSHARD_STATUS_SERVER_UNAVAILABLE);
    usleep(100000);
  }
  return status;
}

static void test_reprepare_keeps_the_keyspace(void) {
  const sshard_session *s = connect_alice();
  REQUIRE(h_query(s, "CREATE KEYSPACE IF NOT EXISTS ka WITH replication = "
                     "{'class': 'SimpleStrategy', 'replication_factor': 1}") == SSHARD_STATUS_OK);
  REQUIRE(h_query(s, "CREATE KEYSPACE IF NOT EXISTS kb WITH replication = "
                     "{'class': 'SimpleStrategy', 'replication_factor': 1}") == SSHARD_STATUS_OK);
  REQUIRE(h_query(s, "CREATE TABLE IF NOT EXISTS ka.t (k int PRIMARY KEY, v text)") == SSHARD_STATUS_OK);
  REQUIRE(h_query(s, "CREATE TABLE IF NOT EXISTS kb.t (k int PRIMARY KEY, v text)") == SSHARD_STATUS_OK);
  const sshard_future *f = NULL;
  OK(sshard_session_use_keyspace(s, S("ka"), &f));
  OK(sshard_future_wait(f));
  OK(sshard_future_free(f));
  const sshard_prepared *p = h_prepare(s, "INSERT INTO t (k, v) VALUES (?, 'from ka')");
  OK(sshard_session_use_keyspace(s, S("kb"), &f));
  OK(sshard_future_wait(f));
  OK(sshard_future_free(f));
  restart_every_node();
  sshard_statement *st = NULL;
  OK(sshard_prepared_bind(p, &st));
  OK(sshard_statement_bind_int32(st, 0, 7));
  CHECK_STATUS(execute_until_ok(s, st), SSHARD_STATUS_OK);
  /* Once more: the statement keeps working on every node. */
  for (int k = 8; k < 40; k++) {
    OK(sshard_statement_bind_int32(st, 0, k));
    sshard_status status;
    sshard_result_free(h_execute(s, st, &status));
    CHECK_STATUS(status, SSHARD_STATUS_OK);
  }
  OK(sshard_statement_free(st));
  OK(sshard_prepared_free(p));
  /* The rows went to ka.t (the statement's keyspace), none to kb.t. */
  sshard_statement *q = NULL;
  OK(sshard_statement_new(S("SELECT COUNT(*) FROM ka.t"), 0, &q));
  sshard_status status;
  const sshard_result *r = h_execute(s, q, &status);
  REQUIRE(r != NULL);
  const sshard_value *v = NULL;
  int64_t n = -1;
  OK(sshard_result_value(r, 0, 0, &v));
  OK(sshard_value_get_int64(v, &n));
  CHECK(n == 33);
  sshard_result_free(r);
  OK(sshard_statement_free(q));
  OK(sshard_statement_new(S("SELECT COUNT(*) FROM kb.t"), 0, &q));
  r = h_execute(s, q, &status);
  REQUIRE(r != NULL);
  OK(sshard_result_value(r, 0, 0, &v));
  OK(sshard_value_get_int64(v, &n));
  CHECK(n == 0);
  sshard_result_free(r);
  OK(sshard_statement_free(q));
  h_close(s);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s <contact point>\n", argv[0]);
    return 2;
  }
  base = argv[1];
  test_connect_errors();
  const sshard_session *s = connect_alice();
  REQUIRE(h_query(s, "CREATE KEYSPACE IF NOT EXISTS sessions WITH replication = "
                     "{'class': 'SimpleStrategy', 'replication_factor': 1}") == SSHARD_STATUS_OK);
  REQUIRE(h_query(s, "CREATE TABLE IF NOT EXISTS sessions.kv (k int PRIMARY KEY, v text)") ==
          SSHARD_STATUS_OK);
  h_close(s);
  test_close_then_free_drains();
  test_free_without_close_drains();
  test_reprepare_keeps_the_keyspace();
  return h_finish("test_sessions");
}
