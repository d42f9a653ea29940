/* Host policies through the C API, against a 3-node emulator behind
 * "NAT": node N listens on <base>+N but advertises 10.255.0.(N+1)
 * (--advertise-base-ip 10.255.0.1), and nodes 0 and 2 are in dc1, node 1
 * in dc2 (--datacenters dc1,dc2):
 *   - the new calls refuse NULL and bad arguments with a status;
 *   - without translation only the contact node is reachable: the peers
 *     are known at their advertised addresses, accept no connection;
 *   - with the static map (sshard_config_add_address_translation) every
 *     node gets a full shard-aware pool and writes route with zero
 *     misroutes;
 *   - with the C callback (sshard_config_set_address_translator) the same,
 *     and a denied host (its reachable address) gets no connection;
 *   - a datacenter allow list that excludes every node fails connect with
 *     SSHARD_STATUS_NO_HOSTS and a message naming the filter.
 * Usage: test_host_policies <first node address> (admin port 9180). */
#include <stdatomic.h>

#include "harness.h"

#define NODES 3
#define SHARDS 4

static const char *base;
static char ips[NODES][32];

/* One node's counter (every label set summed). */
static unsigned long long node_counter(int node, const char *metric) {
  return h_emulator_counter(ips[node], 1, metric);
}

/* Connects with `cfg` (freed here); returns the status, the session on
 * success and, on failure, the error message in `message`. */
static sshard_status try_connect(sshard_config *cfg, const sshard_session **session, char *message,
                                 size_t message_cap) {
  const sshard_future *f = NULL;
  REQUIRE(sshard_session_connect(cfg, &f) == SSHARD_STATUS_OK);
  OK(sshard_config_free(cfg));
  sshard_status s = sshard_future_wait(f);
  *session = NULL;
  message[0] = 0;
  if (s == SSHARD_STATUS_OK) {
    OK(sshard_future_get_session(f, session));
  } else {
    const sshard_error *e = NULL;
    const char *m = NULL;
    size_t n = 0;
    if (sshard_future_get_error(f, &e) == SSHARD_STATUS_OK && sshard_error_message(e, &m, &n) == SSHARD_STATUS_OK)
      snprintf(message, message_cap, "%.*s", (int)n, m);
  }
  sshard_future_free(f);
  return s;
}

static sshard_config *nat_config(void) {
  sshard_config *cfg = h_config(base);
  OK(sshard_config_set_connect_timeout_ms(cfg, 500));
  return cfg;
}

/* Nodes the session lists, and how many have every shard connected. */
static void pools(const sshard_session *session, size_t *nodes, size_t *full, size_t *with_connections) {
  const sshard_metrics_snapshot *snap = NULL;
  OK(sshard_session_get_metrics_snapshot(session, &snap));
  *nodes = 0;
  OK(sshard_metrics_snapshot_node_count(snap, nodes));
  *full = 0;
  *with_connections = 0;
  for (size_t i = 0; i < *nodes; i++) {
    sshard_node_metrics n;
    OK(sshard_metrics_snapshot_node(snap, i, &n, sizeof n));
    int all = n.shard_count == SHARDS && n.shard_aware_port_in_use;
    for (uint32_t sh = 0; sh < n.shard_count; sh++)
      if (n.connections_per_shard[sh] < 1) all = 0;
    if (all) (*full)++;
    if (n.connections > 0) (*with_connections)++;
  }
  sshard_metrics_snapshot_free(snap);
}

/* Waits (at most 20 s) until `want` nodes have full pools. */
static int wait_full(const sshard_session *session, size_t want) {
  double deadline = h_now() + 20;
  size_t nodes, full, live;
  do {
    pools(session, &nodes, &full, &live);
    if (full >= want) return 1;
    usleep(20000);
  } while (h_now() < deadline);
  fprintf(stderr, "pools: %zu of %zu nodes full, wanted %zu\n", full, nodes, want);
  return 0;
}

/* `count` writes of keys from `first` through the prepared insert. */
static void write_keys(const sshard_session *session, int first, int count) {
  const sshard_prepared *insert = h_prepare(session, "INSERT INTO hp.kv (k, v) VALUES (?, ?)");
  for (int k = first; k < first + count; k++) {
    sshard_statement *st = NULL;
    OK(sshard_prepared_bind(insert, &st));
    OK(sshard_statement_bind_int32(st, 0, k));
    OK(sshard_statement_bind_int32(st, 1, k));
    OK(sshard_statement_set_idempotent(st, true));
    sshard_status s;
    const sshard_result *r = h_execute(session, st, &s);
    CHECK(s == SSHARD_STATUS_OK);
    sshard_result_free(r);
    OK(sshard_statement_free(st));
  }
  OK(sshard_prepared_free(insert));
}

static unsigned long long misroutes(void) {
  return h_emulator_counter(base, NODES, "emulator_misrouted_node_total") +
         h_emulator_counter(base, NODES, "emulator_misrouted_shard_total");
}

static void test_bad_arguments(void) {
  CHECK_STATUS(sshard_config_set_host_allow_list(NULL, S("10.0.0.1")), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_config_set_host_deny_list(NULL, S("10.0.0.1")), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_config_set_dc_allow_list(NULL, S("dc1")), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_config_set_dc_deny_list(NULL, S("dc1")), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_config_add_address_translation(NULL, S("10.0.0.1"), S("127.0.0.1")),
               SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_config_set_address_translator(NULL, NULL, NULL), SSHARD_STATUS_NULL_ARGUMENT);
  sshard_config *cfg = NULL;
  OK(sshard_config_new(&cfg));
  CHECK_STATUS(sshard_config_set_host_deny_list(cfg, NULL, 3), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_config_set_host_deny_list(cfg, S("10.0.0.1,nohost")), SSHARD_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(sshard_config_set_host_allow_list(cfg, S("300.1.1.1")), SSHARD_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(sshard_config_set_dc_allow_list(cfg, "\xc3", 1), SSHARD_STATUS_INVALID_UTF8);
  CHECK_STATUS(sshard_config_add_address_translation(cfg, S("10.0.0.x"), S("127.0.0.1")),
               SSHARD_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(sshard_config_add_address_translation(cfg, S("10.0.0.1"), S("127.0.0.1:0")),
               SSHARD_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(sshard_config_add_address_translation(cfg, S("10.0.0.1"), NULL, 4), SSHARD_STATUS_NULL_ARGUMENT);
  OK(sshard_config_set_host_deny_list(cfg, S(" 10.0.0.1 , ::1")));
  OK(sshard_config_set_host_deny_list(cfg, S("")));
  OK(sshard_config_set_dc_deny_list(cfg, S("dc9")));
  OK(sshard_config_add_address_translation(cfg, S("10.0.0.1"), S("[::1]:9042")));
  OK(sshard_config_set_address_translator(cfg, NULL, NULL));
  OK(sshard_config_free(cfg));
}

static void test_without_translation(void) {
  sshard_config *cfg = nat_config();
  const sshard_session *session = NULL;
  char message[512];
  sshard_status s = try_connect(cfg, &session, message, sizeof message);
  if (s != SSHARD_STATUS_OK) fprintf(stderr, "connect: %s\n", message);
  REQUIRE(s == SSHARD_STATUS_OK);
  REQUIRE(h_query(session, "CREATE KEYSPACE hp WITH replication = {'class': 'SimpleStrategy', "
                           "'replication_factor': 1}") == SSHARD_STATUS_OK);
  REQUIRE(h_query(session, "CREATE TABLE hp.kv (k int PRIMARY KEY, v int)") == SSHARD_STATUS_OK);
  unsigned long long misrouted = misroutes();
  write_keys(session, 0, h_scale(300));
  /* Everything went to the contact node, which owns about a third. */
  CHECK(misroutes() > misrouted);
  CHECK(node_counter(1, "emulator_connections_accepted_total") == 0);
  CHECK(node_counter(2, "emulator_connections_accepted_total") == 0);
  size_t nodes, full, live;
  pools(session, &nodes, &full, &live);
  CHECK(nodes == NODES);
  CHECK(live == 1);
  /* The peers at the addresses they advertise. */
  const sshard_metrics_snapshot *snap = NULL;
  OK(sshard_session_get_metrics_snapshot(session, &snap));
  int advertised = 0;
  for (size_t i = 0; i < nodes; i++) {
    sshard_node_metrics n;
    OK(sshard_metrics_snapshot_node(snap, i, &n, sizeof n));
    if (strncmp(n.address, "10.255.0.", 9) == 0) advertised++;
  }
  CHECK(advertised == 2);
  sshard_metrics_snapshot_free(snap);
  h_close(session);
}

static void test_static_map(void) {
  sshard_config *cfg = nat_config();
  for (int n = 0; n < NODES; n++) {
    char advertised[32];
    snprintf(advertised, sizeof advertised, "10.255.0.%d", n + 1);
    OK(sshard_config_add_address_translation(cfg, STR(advertised), STR(ips[n])));
  }
  const sshard_session *session = h_connect_config(cfg);
  CHECK(wait_full(session, NODES));
  unsigned long long misrouted = misroutes();
  write_keys(session, 1000, h_scale(300));
  CHECK(misroutes() == misrouted);
  h_close(session);
}

/* The callback's user data: the first three bytes of the reachable
 * addresses, and how many calls it answered. */
struct translation {
  char prefix[32];
  atomic_int calls;
};

static bool translate(void *data, const char *advertised, size_t advertised_len, uint16_t port, char *reachable,
                      size_t capacity, size_t *reachable_len) {
  struct translation *t = data;
  atomic_fetch_add(&t->calls, 1);
  char text[64];
  if (advertised_len >= sizeof text || port == 0) return false;
  memcpy(text, advertised, advertised_len);
  text[advertised_len] = 0;
  unsigned last;
  if (sscanf(text, "10.255.0.%u", &last) != 1) return false;
  int n = snprintf(reachable, capacity, "%s.%u", t->prefix, last + (unsigned)atoi(strrchr(base, '.') + 1) - 1);
  if (n < 0 || (size_t)n >= capacity) return false;
  *reachable_len = (size_t)n;
  return true;
}

static void test_callback_and_deny_list(void) {
  static struct translation t;
  snprintf(t.prefix, sizeof t.prefix, "%s", base);
  *strrchr(t.prefix, '.') = 0;
  atomic_store(&t.calls, 0);
  sshard_config *cfg = nat_config();
  OK(sshard_config_set_address_translator(cfg, translate, &t));
  OK(sshard_config_set_host_deny_list(cfg, STR(ips[2])));
  unsigned long long node2_accepted = node_counter(2, "emulator_connections_accepted_total");
  const sshard_session *session = h_connect_config(cfg);
  CHECK(atomic_load(&t.calls) >= NODES - 1);
  CHECK(wait_full(session, NODES - 1));
  unsigned long long misrouted = misroutes();
  unsigned long long node2_requests = node_counter(2, "emulator_requests_total");
  write_keys(session, 2000, h_scale(300));
  size_t nodes, full, live;
  pools(session, &nodes, &full, &live);
  CHECK(nodes == NODES - 1 && live == NODES - 1);
  CHECK(node_counter(2, "emulator_connections_accepted_total") == node2_accepted);
  CHECK(node_counter(2, "emulator_requests_total") == node2_requests);
  /* Keys owned by node 2 reach another node: counted as misroutes. */
  CHECK(misroutes() > misrouted);
  h_close(session);
}

static void test_everything_filtered(void) {
  sshard_config *cfg = nat_config();
  OK(sshard_config_set_dc_allow_list(cfg, S("dc3")));
  const sshard_session *session = NULL;
  char message[1024];
  CHECK_STATUS(try_connect(cfg, &session, message, sizeof message), SSHARD_STATUS_NO_HOSTS);
  CHECK(session == NULL);
  CHECK(strstr(message, "host filter excludes every node") != NULL);
  if (!strstr(message, "host filter")) fprintf(stderr, "message: %s\n", message);
}

int main(int argc, char **argv) {
  base = argc > 1 ? argv[1] : "127.0.0.1";
  for (int n = 0; n < NODES; n++) h_node_ip(base, n, ips[n]);
  test_bad_arguments();
  test_without_translation();
  test_static_map();
  test_callback_and_deny_list();
  test_everything_filtered();
  return h_finish("test_host_policies");
}
