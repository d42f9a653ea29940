/* Retry policies through the C API, against a 3-node emulator whose nodes
 * answer injected errors (POST /admin/fail on every node: the next N
 * requests at one consistency get UNAVAILABLE, READ_TIMEOUT or
 * WRITE_TIMEOUT with coordinator details):
 *   - sshard_config_set_retry_policy, sshard_statement_set_retry_policy,
 *     sshard_batch_set_retry_policy: NULL and unknown policies refused;
 *   - fallthrough returns the first error, not retried;
 *   - the default retries an idempotent read timeout once on the node;
 *   - downgrading consistency retries a statement and a batch at a lower
 *     level (two failures are injected per node: a retry at the original
 *     level would meet the second and fail);
 *   - every decision is counted in sshard_metrics (retry_*) and in the
 *     Prometheus text.
 * Usage: test_retry <first node address> (admin port 9180). */
#include "harness.h"

#define NODES 3

static const char *base;

/* The next `count` requests at QUORUM on every node fail as `fault` says
 * ("error=read_timeout&received=1&block_for=2"...). */
static void inject(const char *fault, int count) {
  char ip[32], path[256];
  snprintf(path, sizeof path, "/admin/fail?%s&consistency=QUORUM&count=%d", fault, count);
  for (int n = 0; n < NODES; n++) {
    h_node_ip(base, n, ip);
    REQUIRE(h_admin_post(ip, 9180, path) == 200);
  }
}

static sshard_metrics metrics(const sshard_session *session) {
  static sshard_metrics m;
  memset(&m, 0xff, sizeof m);
  OK(sshard_session_get_metrics(session, &m, sizeof m));
  CHECK(m.struct_size == sizeof m && m.version == SSHARD_METRICS_VERSION);
  return m;
}

/* An idempotent QUORUM read of the stored row, with `policy` unless it is
 * negative; returns its status (and checks the row when it succeeds). */
static sshard_status read_row(const sshard_session *session, int policy) {
  sshard_statement *st = NULL;
  REQUIRE(sshard_statement_new(S("SELECT v FROM retry.kv WHERE k = 1"), 0, &st) == SSHARD_STATUS_OK);
  OK(sshard_statement_set_consistency(st, SSHARD_CONSISTENCY_QUORUM));
  OK(sshard_statement_set_idempotent(st, true));
  if (policy >= 0) OK(sshard_statement_set_retry_policy(st, (sshard_retry_policy)policy));
  sshard_status s;
  const sshard_result *r = h_execute(session, st, &s);
  if (s == SSHARD_STATUS_OK) {
    size_t rows = 0;
    OK(sshard_result_row_count(r, &rows));
    CHECK(rows == 1);
  }
  sshard_result_free(r);
  OK(sshard_statement_free(st));
  return s;
}

static void test_bad_arguments(void) {
  sshard_config *cfg = NULL;
  OK(sshard_config_new(&cfg));
  CHECK_STATUS(sshard_config_set_retry_policy(NULL, SSHARD_RETRY_POLICY_DEFAULT), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_config_set_retry_policy(cfg, 3), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_config_set_retry_policy(cfg, SSHARD_RETRY_POLICY_DOWNGRADING_CONSISTENCY));
  OK(sshard_config_free(cfg));
  sshard_statement *st = NULL;
  OK(sshard_statement_new(S("SELECT 1"), 0, &st));
  CHECK_STATUS(sshard_statement_set_retry_policy(NULL, SSHARD_RETRY_POLICY_FALLTHROUGH), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_statement_set_retry_policy(st, 255), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_statement_set_retry_policy(st, SSHARD_RETRY_POLICY_FALLTHROUGH));
  OK(sshard_statement_free(st));
  sshard_batch *b = NULL;
  OK(sshard_batch_new(SSHARD_BATCH_TYPE_UNLOGGED, &b));
  CHECK_STATUS(sshard_batch_set_retry_policy(NULL, SSHARD_RETRY_POLICY_DEFAULT), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_batch_set_retry_policy(b, 9), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_batch_set_retry_policy(b, SSHARD_RETRY_POLICY_DEFAULT));
  OK(sshard_batch_free(b));
}

static void test_policies(const sshard_session *session) {
  sshard_metrics before = metrics(session);

  /* Fallthrough (the session's): the first error comes back. */
  inject("error=read_timeout&received=1&block_for=2", 1);
  CHECK_STATUS(read_row(session, -1), SSHARD_STATUS_SERVER_READ_TIMEOUT);
  sshard_metrics m = metrics(session);
  CHECK(m.retries == before.retries);
  CHECK(m.retry_rethrown == before.retry_rethrown + 1);
  CHECK(m.errors_server_timeout == before.errors_server_timeout + 1);

  /* The default, for this statement: once more on the node. */
  inject("error=read_timeout&received=1&block_for=2", 1);
  OK(read_row(session, SSHARD_RETRY_POLICY_DEFAULT));
  m = metrics(session);
  CHECK(m.retry_same_target == before.retry_same_target + 1);
  CHECK(m.retries == before.retries + 1);

  /* Downgrading: 1 of 2 replicas answered, retried at ONE. */
  inject("error=read_timeout&received=1&block_for=2", 2);
  OK(read_row(session, SSHARD_RETRY_POLICY_DOWNGRADING_CONSISTENCY));
  m = metrics(session);
  CHECK(m.retry_downgraded == before.retry_downgraded + 1);
  /* Unavailable with nobody alive: nothing to downgrade to. */
  inject("error=unavailable&required=2&alive=0", 1);
  CHECK_STATUS(read_row(session, SSHARD_RETRY_POLICY_DOWNGRADING_CONSISTENCY), SSHARD_STATUS_SERVER_UNAVAILABLE);
  m = metrics(session);
  CHECK(m.retry_rethrown == before.retry_rethrown + 2);

  /* A batch with its own policy: an unlogged batch downgraded. */
  sshard_batch *b = NULL;
  OK(sshard_batch_new(SSHARD_BATCH_TYPE_UNLOGGED, &b));
  sshard_statement *st = NULL;
  OK(sshard_statement_new(S("INSERT INTO retry.kv (k, v) VALUES (10, 'batched')"), 0, &st));
  OK(sshard_batch_add_statement(b, st));
  OK(sshard_statement_free(st));
  OK(sshard_statement_new(S("INSERT INTO retry.kv (k, v) VALUES (11, 'batched')"), 0, &st));
  OK(sshard_batch_add_statement(b, st));
  OK(sshard_statement_free(st));
  OK(sshard_batch_set_consistency(b, SSHARD_CONSISTENCY_QUORUM));
  OK(sshard_batch_set_idempotent(b, true));
  OK(sshard_batch_set_retry_policy(b, SSHARD_RETRY_POLICY_DOWNGRADING_CONSISTENCY));
  inject("error=write_timeout&received=1&block_for=2&write_type=UNLOGGED_BATCH", 2);
  const sshard_future *f = NULL;
  OK(sshard_session_batch(session, b, &f));
  sshard_status s = sshard_future_wait(f);
  if (s != SSHARD_STATUS_OK) h_print_future_error(f);
  CHECK(s == SSHARD_STATUS_OK);
  OK(sshard_future_free(f));
  OK(sshard_batch_free(b));
  m = metrics(session);
  CHECK(m.retry_downgraded == before.retry_downgraded + 2);
  CHECK(m.retry_ignored == before.retry_ignored);

  /* A simple write some replica took: success, not sent again. */
  inject("error=write_timeout&received=1&block_for=2&write_type=SIMPLE", 1);
  OK(sshard_statement_new(S("INSERT INTO retry.kv (k, v) VALUES (20, 'w')"), 0, &st));
  OK(sshard_statement_set_consistency(st, SSHARD_CONSISTENCY_QUORUM));
  OK(sshard_statement_set_idempotent(st, true));
  OK(sshard_statement_set_retry_policy(st, SSHARD_RETRY_POLICY_DOWNGRADING_CONSISTENCY));
  const sshard_result *r = h_execute(session, st, &s);
  CHECK(s == SSHARD_STATUS_OK);
  sshard_result_free(r);
  OK(sshard_statement_free(st));
  m = metrics(session);
  CHECK(m.retry_ignored == before.retry_ignored + 1);

  /* The Prometheus text says the same. */
  const sshard_metrics_snapshot *snap = NULL;
  OK(sshard_session_get_metrics_snapshot(session, &snap));
  const char *text = NULL;
  size_t len = 0;
  OK(sshard_metrics_snapshot_prometheus(snap, &text, &len));
  char line[128];
  snprintf(line, sizeof line, "scylla_shard_retry_decisions_total{decision=\"downgraded\"} %llu\n",
           (unsigned long long)m.retry_downgraded);
  CHECK(strstr(text, line) != NULL);
  snprintf(line, sizeof line, "scylla_shard_retry_decisions_total{decision=\"rethrown\"} %llu\n",
           (unsigned long long)m.retry_rethrown);
  CHECK(strstr(text, line) != NULL);
  OK(sshard_metrics_snapshot_free(snap));
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s <first node address>\n", argv[0]);
    return 2;
  }
  base = argv[1];
  test_bad_arguments();
  sshard_config *cfg = h_config(base);
  OK(sshard_config_set_retry_policy(cfg, SSHARD_RETRY_POLICY_FALLTHROUGH));
  const sshard_session *session = h_connect_config(cfg);
  REQUIRE(h_query(session, "CREATE KEYSPACE IF NOT EXISTS retry WITH replication = "
                           "{'class': 'SimpleStrategy', 'replication_factor': 1}") == SSHARD_STATUS_OK);
  REQUIRE(h_query(session, "CREATE TABLE IF NOT EXISTS retry.kv (k int PRIMARY KEY, v text)") == SSHARD_STATUS_OK);
  REQUIRE(h_query(session, "INSERT INTO retry.kv (k, v) VALUES (1, 'stored')") == SSHARD_STATUS_OK);
  test_policies(session);
  h_close(session);
  return h_finish("test_retry");
}
