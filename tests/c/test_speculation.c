/* Speculative execution and execution profiles through the C API, against
 * a 3-node emulator whose node 0 answers 500 ms late (POST /admin/delay):
 *   - every new call refuses NULL handles and bad values with a status
 *     (sshard_execution_profile_*, sshard_config_set_execution_profile,
 *     sshard_{config,execution_profile,statement,batch}_set_{constant,
 *     percentile,no}_speculative_execution, sshard_statement_set_execution_profile,
 *     sshard_batch_set_execution_profile);
 *   - idempotent reads with a speculating profile never wait for the slow
 *     node, and speculative executions (and wins) are counted in
 *     sshard_metrics and the Prometheus text; without speculation they do
 *     wait; a statement's own "no speculation" beats its profile's;
 *   - non-idempotent reads never speculate: one attempt each on the
 *     emulator's counters;
 *   - batches speculate through their profile and their own setter;
 *   - a profile's consistency, retry policy, timeout and load-balancing
 *     preferences reach the request; an unknown profile name fails the
 *     request with SSHARD_STATUS_NAME_NOT_FOUND.
 * Usage: test_speculation <first node address> (admin port 9180). */
#include "harness.h"

#define NODES 3
#define SLOW_MS 500
#define READS 30

static const char *base;

static void admin_all(const char *path) {
  char ip[32];
  for (int n = 0; n < NODES; n++) {
    h_node_ip(base, n, ip);
    REQUIRE(h_admin_post(ip, 9180, path) == 200);
  }
}

static void slow_node(int node, int ms) {
  char ip[32], path[64];
  h_node_ip(base, node, ip);
  snprintf(path, sizeof path, "/admin/delay?us=%d", ms * 1000);
  REQUIRE(h_admin_post(ip, 9180, path) == 200);
}

static sshard_metrics metrics(const sshard_session *session) {
  static sshard_metrics m;
  memset(&m, 0xff, sizeof m);
  OK(sshard_session_get_metrics(session, &m, sizeof m));
  CHECK(m.struct_size == sizeof m && m.version == SSHARD_METRICS_VERSION);
  return m;
}

static void test_bad_arguments(void) {
  sshard_execution_profile *p = NULL;
  CHECK_STATUS(sshard_execution_profile_new(NULL), SSHARD_STATUS_NULL_ARGUMENT);
  OK(sshard_execution_profile_new(&p));
  CHECK_STATUS(sshard_execution_profile_set_consistency(NULL, SSHARD_CONSISTENCY_ONE), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_execution_profile_set_consistency(p, 77), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_execution_profile_set_consistency(p, SSHARD_CONSISTENCY_ONE));
  CHECK_STATUS(sshard_execution_profile_set_serial_consistency(NULL, SSHARD_CONSISTENCY_SERIAL), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_execution_profile_set_serial_consistency(p, SSHARD_CONSISTENCY_ONE), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_execution_profile_set_serial_consistency(p, SSHARD_CONSISTENCY_LOCAL_SERIAL));
  CHECK_STATUS(sshard_execution_profile_set_request_timeout_ms(NULL, 10), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_execution_profile_set_request_timeout_ms(p, UINT64_MAX), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_execution_profile_set_request_timeout_ms(p, 1000));
  CHECK_STATUS(sshard_execution_profile_set_retry_policy(NULL, SSHARD_RETRY_POLICY_DEFAULT), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_execution_profile_set_retry_policy(p, 42), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_execution_profile_set_retry_policy(p, SSHARD_RETRY_POLICY_FALLTHROUGH));
  CHECK_STATUS(sshard_execution_profile_set_local_dc(NULL, S("dc")), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_execution_profile_set_local_dc(p, NULL, 2), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_execution_profile_set_local_dc(p, "\xff", 1), SSHARD_STATUS_INVALID_UTF8);
  OK(sshard_execution_profile_set_local_dc(p, S("dc")));
  CHECK_STATUS(sshard_execution_profile_set_local_rack(NULL, S("r")), SSHARD_STATUS_NULL_ARGUMENT);
  OK(sshard_execution_profile_set_local_rack(p, S("r")));
  CHECK_STATUS(sshard_execution_profile_set_dc_failover(NULL, true), SSHARD_STATUS_NULL_ARGUMENT);
  OK(sshard_execution_profile_set_dc_failover(p, false));
  CHECK_STATUS(sshard_execution_profile_set_constant_speculative_execution(NULL, 10, 2), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_execution_profile_set_constant_speculative_execution(p, 10, 0), SSHARD_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(sshard_execution_profile_set_constant_speculative_execution(p, 10, 17), SSHARD_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(sshard_execution_profile_set_constant_speculative_execution(p, UINT64_MAX, 2), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_execution_profile_set_constant_speculative_execution(p, 10, 2));
  CHECK_STATUS(sshard_execution_profile_set_percentile_speculative_execution(NULL, 99.0, 2), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_execution_profile_set_percentile_speculative_execution(p, 0.0, 2), SSHARD_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(sshard_execution_profile_set_percentile_speculative_execution(p, 100.0, 2), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_execution_profile_set_percentile_speculative_execution(p, 99.0, 2));
  CHECK_STATUS(sshard_execution_profile_set_no_speculative_execution(NULL), SSHARD_STATUS_NULL_ARGUMENT);
  OK(sshard_execution_profile_set_no_speculative_execution(p));

  sshard_config *cfg = NULL;
  OK(sshard_config_new(&cfg));
  CHECK_STATUS(sshard_config_set_execution_profile(NULL, S("x"), p), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_config_set_execution_profile(cfg, S("x"), NULL), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_config_set_execution_profile(cfg, S(""), p), SSHARD_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(sshard_config_set_execution_profile(cfg, NULL, 1, p), SSHARD_STATUS_NULL_ARGUMENT);
  OK(sshard_config_set_execution_profile(cfg, S("x"), p));
  CHECK_STATUS(sshard_config_set_constant_speculative_execution(NULL, 5, 2), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_config_set_constant_speculative_execution(cfg, 5, 0), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_config_set_constant_speculative_execution(cfg, 5, 2));
  CHECK_STATUS(sshard_config_set_percentile_speculative_execution(NULL, 95.0, 2), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_config_set_percentile_speculative_execution(cfg, -1.0, 2), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_config_set_percentile_speculative_execution(cfg, 95.0, 2));
  CHECK_STATUS(sshard_config_set_no_speculative_execution(NULL), SSHARD_STATUS_NULL_ARGUMENT);
  OK(sshard_config_set_no_speculative_execution(cfg));
  OK(sshard_config_free(cfg));
  OK(sshard_execution_profile_free(p));
  OK(sshard_execution_profile_free(NULL));

  sshard_statement *st = NULL;
  OK(sshard_statement_new(S("SELECT 1"), 0, &st));
  CHECK_STATUS(sshard_statement_set_execution_profile(NULL, S("x")), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_statement_set_execution_profile(st, NULL, 1), SSHARD_STATUS_NULL_ARGUMENT);
  OK(sshard_statement_set_execution_profile(st, S("x")));
  OK(sshard_statement_set_execution_profile(st, NULL, 0));
  CHECK_STATUS(sshard_statement_set_constant_speculative_execution(NULL, 1, 2), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_statement_set_constant_speculative_execution(st, 1, 0), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_statement_set_constant_speculative_execution(st, 1, 3));
  CHECK_STATUS(sshard_statement_set_percentile_speculative_execution(NULL, 50.0, 2), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_statement_set_percentile_speculative_execution(st, 150.0, 2), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_statement_set_percentile_speculative_execution(st, 50.0, 2));
  CHECK_STATUS(sshard_statement_set_no_speculative_execution(NULL), SSHARD_STATUS_NULL_ARGUMENT);
  OK(sshard_statement_set_no_speculative_execution(st));
  OK(sshard_statement_free(st));

  sshard_batch *b = NULL;
  OK(sshard_batch_new(SSHARD_BATCH_TYPE_UNLOGGED, &b));
  CHECK_STATUS(sshard_batch_set_execution_profile(NULL, S("x")), SSHARD_STATUS_NULL_ARGUMENT);
  OK(sshard_batch_set_execution_profile(b, S("x")));
  CHECK_STATUS(sshard_batch_set_constant_speculative_execution(NULL, 1, 2), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_batch_set_constant_speculative_execution(b, 1, 99), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_batch_set_constant_speculative_execution(b, 1, 2));
  CHECK_STATUS(sshard_batch_set_percentile_speculative_execution(NULL, 90.0, 2), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_batch_set_percentile_speculative_execution(b, 90.0, 0), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_batch_set_percentile_speculative_execution(b, 90.0, 2));
  CHECK_STATUS(sshard_batch_set_no_speculative_execution(NULL), SSHARD_STATUS_NULL_ARGUMENT);
  OK(sshard_batch_set_no_speculative_execution(b));
  OK(sshard_batch_free(b));
}

/* A read of the stored row with `profile` (NULL: none); `own` < 0: no
 * speculation of its own, 0: none set, > 0: its own constant delay (ms).
 * Returns its status; *ms is how long it took. */
static sshard_status read_row(const sshard_session *session, const char *profile, bool idempotent,
                              int own, double *ms) {
  sshard_statement *st = NULL;
  REQUIRE(sshard_statement_new(S("SELECT v FROM spec.kv WHERE k = 1"), 0, &st) == SSHARD_STATUS_OK);
  OK(sshard_statement_set_idempotent(st, idempotent));
  if (profile) OK(sshard_statement_set_execution_profile(st, STR(profile)));
  if (own < 0) OK(sshard_statement_set_no_speculative_execution(st));
  if (own > 0) OK(sshard_statement_set_constant_speculative_execution(st, (uint64_t)own, 2));
  double started = h_now();
  sshard_status s;
  const sshard_result *r = h_execute(session, st, &s);
  if (ms) *ms = (h_now() - started) * 1000.0;
  if (s == SSHARD_STATUS_OK) {
    size_t rows = 0;
    OK(sshard_result_row_count(r, &rows));
    CHECK(rows == 1);
  }
  sshard_result_free(r);
  OK(sshard_statement_free(st));
  return s;
}

/* The slowest of READS reads. */
static double slowest_read(const sshard_session *session, const char *profile, bool idempotent, int own) {
  double slowest = 0;
  for (int i = 0; i < READS; i++) {
    double ms = 0;
    OK(read_row(session, profile, idempotent, own, &ms));
    if (ms > slowest) slowest = ms;
  }
  return slowest;
}

static sshard_status run_batch(const sshard_session *session, const char *profile, int own) {
  sshard_batch *b = NULL;
  OK(sshard_batch_new(SSHARD_BATCH_TYPE_UNLOGGED, &b));
  sshard_statement *st = NULL;
  OK(sshard_statement_new(S("INSERT INTO spec.kv (k, v) VALUES (2, 'batched')"), 0, &st));
  OK(sshard_batch_add_statement(b, st));
  OK(sshard_statement_free(st));
  OK(sshard_batch_set_idempotent(b, true));
  if (profile) OK(sshard_batch_set_execution_profile(b, STR(profile)));
  if (own < 0) OK(sshard_batch_set_no_speculative_execution(b));
  if (own > 0) OK(sshard_batch_set_constant_speculative_execution(b, (uint64_t)own, 3));
  const sshard_future *f = NULL;
  OK(sshard_session_batch(session, b, &f));
  sshard_status s = sshard_future_wait(f);
  OK(sshard_future_free(f));
  OK(sshard_batch_free(b));
  return s;
}

static void test_speculation(const sshard_session *session) {
  sshard_metrics before = metrics(session);
  slow_node(0, SLOW_MS);

  /* No speculation (the config's): some reads wait for the slow node. */
  CHECK(slowest_read(session, NULL, true, 0) >= SLOW_MS);
  sshard_metrics m = metrics(session);
  CHECK(m.speculative_executions == before.speculative_executions);

  /* The "spec" profile speculates after 20 ms: none waits. */
  double slowest = slowest_read(session, "spec", true, 0);
  CHECK(slowest < SLOW_MS);
  m = metrics(session);
  CHECK(m.speculative_executions > before.speculative_executions);
  CHECK(m.speculative_wins > before.speculative_wins);
  CHECK(m.speculative_wins - before.speculative_wins <= m.speculative_executions - before.speculative_executions);
  /* At most one speculative execution per read (max 2 attempts). */
  CHECK(m.speculative_executions - before.speculative_executions <= READS);

  /* The statement's own setting beats its profile's. */
  sshard_metrics mid = metrics(session);
  CHECK(slowest_read(session, "spec", true, -1) >= SLOW_MS);
  m = metrics(session);
  CHECK(m.speculative_executions == mid.speculative_executions);
  /* ... both ways: its own constant policy without a profile. */
  CHECK(slowest_read(session, NULL, true, 20) < SLOW_MS);
  m = metrics(session);
  CHECK(m.speculative_executions > mid.speculative_executions);

  /* Non-idempotent reads never speculate: one attempt each. */
  mid = metrics(session);
  unsigned long long received = h_emulator_counter(base, NODES, "emulator_routable_requests_total");
  CHECK(slowest_read(session, "spec", false, 20) >= SLOW_MS);
  m = metrics(session);
  CHECK(m.speculative_executions == mid.speculative_executions);
  CHECK(h_emulator_counter(base, NODES, "emulator_routable_requests_total") - received == READS);

  /* Batches: through their profile, and through their own setter. */
  mid = metrics(session);
  for (int i = 0; i < READS; i++) OK(run_batch(session, "spec", 0));
  for (int i = 0; i < READS; i++) OK(run_batch(session, NULL, 20));
  m = metrics(session);
  CHECK(m.speculative_executions > mid.speculative_executions);
  mid = m;
  for (int i = 0; i < 6; i++) OK(run_batch(session, "spec", -1));
  m = metrics(session);
  CHECK(m.speculative_executions == mid.speculative_executions);

  /* The Prometheus text counts them too. */
  const sshard_metrics_snapshot *snap = NULL;
  OK(sshard_session_get_metrics_snapshot(session, &snap));
  const char *text = NULL;
  size_t len = 0;
  OK(sshard_metrics_snapshot_prometheus(snap, &text, &len));
  sshard_metrics totals;
  OK(sshard_metrics_snapshot_totals(snap, &totals, sizeof totals));
  char line[128];
  snprintf(line, sizeof line, "scylla_shard_speculative_executions_total %llu\n",
           (unsigned long long)totals.speculative_executions);
  CHECK(strstr(text, line) != NULL);
  snprintf(line, sizeof line, "scylla_shard_speculative_wins_total %llu\n",
           (unsigned long long)totals.speculative_wins);
  CHECK(strstr(text, line) != NULL);
  OK(sshard_metrics_snapshot_free(snap));
  slow_node(0, 0);
}

static sshard_status future_status(const sshard_session *session, const sshard_statement *st) {
  const sshard_future *f = NULL;
  OK(sshard_session_execute(session, st, &f));
  sshard_status s = sshard_future_wait(f);
  OK(sshard_future_free(f));
  return s;
}

static void test_profiles(const sshard_session *session) {
  /* An unknown name fails the request, statement and batch alike. */
  CHECK_STATUS(read_row(session, "no-such-profile", true, 0, NULL), SSHARD_STATUS_NAME_NOT_FOUND);
  CHECK_STATUS(run_batch(session, "no-such-profile", 0), SSHARD_STATUS_NAME_NOT_FOUND);

  /* "strict": THREE, fallthrough. The next request at THREE fails on every
   * node; fallthrough returns the first failure. */
  admin_all("/admin/fail?error=unavailable&required=3&alive=1&consistency=THREE&count=1");
  sshard_metrics before = metrics(session);
  CHECK_STATUS(read_row(session, "strict", false, 0, NULL), SSHARD_STATUS_SERVER_UNAVAILABLE);
  sshard_metrics m = metrics(session);
  CHECK(m.retry_rethrown == before.retry_rethrown + 1);
  /* The statement's own level beats the profile's. */
  sshard_statement *st = NULL;
  OK(sshard_statement_new(S("SELECT v FROM spec.kv WHERE k = 1"), 0, &st));
  OK(sshard_statement_set_execution_profile(st, S("strict")));
  OK(sshard_statement_set_consistency(st, SSHARD_CONSISTENCY_ONE));
  OK(future_status(session, st));
  /* "strict" times out after 100 ms when every node is slow; the
   * statement's own timeout beats it. */
  for (int n = 0; n < NODES; n++) slow_node(n, 300);
  CHECK_STATUS(future_status(session, st), SSHARD_STATUS_TIMEOUT);
  OK(sshard_statement_set_timeout_ms(st, 5000));
  OK(future_status(session, st));
  for (int n = 0; n < NODES; n++) slow_node(n, 0);
  OK(sshard_statement_free(st));

  /* Load balancing: "nowhere" keeps to a datacenter with no node; "home"
   * prefers the emulator's own. */
  CHECK_STATUS(read_row(session, "nowhere", true, 0, NULL), SSHARD_STATUS_NO_HOSTS);
  OK(read_row(session, "home", true, 0, NULL));
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s <first node address>\n", argv[0]);
    return 2;
  }
  base = argv[1];
  test_bad_arguments();

  sshard_config *cfg = h_config(base);
  OK(sshard_config_set_no_speculative_execution(cfg));
  sshard_execution_profile *p = NULL;
  OK(sshard_execution_profile_new(&p));
  OK(sshard_execution_profile_set_constant_speculative_execution(p, 20, 2));
  OK(sshard_config_set_execution_profile(cfg, S("spec"), p));
  OK(sshard_execution_profile_free(p));
  OK(sshard_execution_profile_new(&p));
  OK(sshard_execution_profile_set_consistency(p, SSHARD_CONSISTENCY_THREE));
  OK(sshard_execution_profile_set_retry_policy(p, SSHARD_RETRY_POLICY_FALLTHROUGH));
  OK(sshard_execution_profile_set_request_timeout_ms(p, 100));
  OK(sshard_config_set_execution_profile(cfg, S("strict"), p));
  OK(sshard_execution_profile_free(p));
  OK(sshard_execution_profile_new(&p));
  OK(sshard_execution_profile_set_local_dc(p, S("no-such-dc")));
  OK(sshard_execution_profile_set_dc_failover(p, false));
  OK(sshard_config_set_execution_profile(cfg, S("nowhere"), p));
  OK(sshard_execution_profile_free(p));
  OK(sshard_execution_profile_new(&p));
  OK(sshard_execution_profile_set_local_dc(p, S("datacenter1")));
  OK(sshard_execution_profile_set_local_rack(p, S("rack1")));
  OK(sshard_execution_profile_set_dc_failover(p, false));
  OK(sshard_config_set_execution_profile(cfg, S("home"), p));
  OK(sshard_execution_profile_free(p));
  const sshard_session *session = h_connect_config(cfg);

  REQUIRE(h_query(session, "CREATE KEYSPACE IF NOT EXISTS spec WITH replication = "
                           "{'class': 'SimpleStrategy', 'replication_factor': 3}") == SSHARD_STATUS_OK);
  REQUIRE(h_query(session, "CREATE TABLE IF NOT EXISTS spec.kv (k int PRIMARY KEY, v text)") == SSHARD_STATUS_OK);
  REQUIRE(h_query(session, "INSERT INTO spec.kv (k, v) VALUES (1, 'stored')") == SSHARD_STATUS_OK);
  test_speculation(session);
  test_profiles(session);
  h_close(session);
  return h_finish("test_speculation");
}
