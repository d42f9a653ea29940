/* The library through the communicator (sshard_config_set_communicator),
 * against a 3-node x 4-shard emulator behind a scylla-communicator:
 *   - a session in communicator mode needs no contact point, opens exactly
 *     one socket (to the daemon) and runs one worker thread;
 *   - DDL, USE, prepared statements, batches, paging and server errors
 *     behave as they do directly; the daemon routes every prepared
 *     request to its replica and shard (the emulator counts no misroute);
 *   - several sessions (as many worker processes would) add no cluster
 *     connection: the emulator keeps nodes x shards + 1 open;
 *   - an unreachable daemon is a clean NO_HOSTS.
 * Usage: test_communicator <first node address> <daemon socket path>. */
#include <dirent.h>

#include "harness.h"

#define NODES 3
#define SHARDS 4

static const char *base;
static const char *socket_path;

static sshard_config *communicator_config(const char *path) {
  sshard_config *cfg = NULL;
  REQUIRE(sshard_config_new(&cfg) == SSHARD_STATUS_OK);
  OK(sshard_config_set_communicator(cfg, STR(path)));
  OK(sshard_config_set_request_timeout_ms(cfg, 20000));
  return cfg;
}

/* Distinct sockets (by inode) and threads of this process (from
 * /proc/self): a runtime's duplicate of tokio's signal pipe is the same
 * socket, not another connection. */
static int open_sockets(void) {
  DIR *dir = opendir("/proc/self/fd");
  if (!dir) return -1;
  char seen[512][300];
  int sockets = 0;
  struct dirent *entry;
  while ((entry = readdir(dir)) != NULL) {
    char path[300], target[300];
    snprintf(path, sizeof path, "/proc/self/fd/%s", entry->d_name);
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n <= 0) continue;
    target[n] = 0;
    if (strncmp(target, "socket:", 7) != 0) continue;
    bool known = false;
    for (int i = 0; i < sockets && !known; i++) known = strcmp(seen[i], target) == 0;
    if (!known && sockets < 512) snprintf(seen[sockets++], sizeof seen[0], "%s", target);
  }
  closedir(dir);
  return sockets;
}

static int threads(void) {
  FILE *status = fopen("/proc/self/status", "r");
  if (!status) return -1;
  char line[256];
  int n = -1;
  while (fgets(line, sizeof line, status))
    if (strncmp(line, "Threads:", 8) == 0) n = atoi(line + 8);
  fclose(status);
  return n;
}

static unsigned long long misroutes(void) {
  return h_emulator_counter(base, NODES, "emulator_misrouted_node_total") +
         h_emulator_counter(base, NODES, "emulator_misrouted_shard_total");
}

static int32_t int_cell(const sshard_result *r, size_t row) {
  const sshard_row *rw = NULL;
  const sshard_value *v = NULL;
  int32_t out = -1;
  if (sshard_result_row(r, row, &rw) == SSHARD_STATUS_OK && sshard_row_value(rw, 0, &v) == SSHARD_STATUS_OK)
    sshard_value_get_int32(v, &out);
  return out;
}

static void test_one_connection_and_thread(void) {
  /* A first session sets up what a process has once whatever its
   * sessions (tokio's signal pipe), so the second shows what one costs. */
  const sshard_session *first = h_connect_config(communicator_config(socket_path));
  int sockets_before = open_sockets(), threads_before = threads();
  const sshard_session *s = h_connect_config(communicator_config(socket_path));
  int sockets_after = open_sockets(), threads_after = threads();
  if (sockets_after - sockets_before != 1 || threads_after - threads_before != 1)
    fprintf(stderr, "one session: %d sockets, %d threads more\n", sockets_after - sockets_before,
            threads_after - threads_before);
  CHECK(sockets_after - sockets_before == 1);
  /* The runtime's one worker (tokio may add a blocking-pool thread only
   * for blocking work, which a session does not do). */
  CHECK(threads_after - threads_before == 1);
  OK(h_query(s, "CREATE KEYSPACE IF NOT EXISTS comm WITH replication = "
                "{'class': 'NetworkTopologyStrategy', 'replication_factor': 2} "
                "AND tablets = {'enabled': false}"));
  OK(h_query(s, "CREATE TABLE IF NOT EXISTS comm.kv (k int PRIMARY KEY, v int)"));
  h_close(s);
  h_close(first);
}

static void test_requests_route_through_the_daemon(void) {
  const int total = h_scale(300);
  const sshard_session *s = h_connect_config(communicator_config(socket_path));
  unsigned long long misroutes_before = misroutes();
  const sshard_prepared *insert = h_prepare(s, "INSERT INTO comm.kv (k, v) VALUES (?, ?)");
  for (int i = 0; i < total; i++) {
    sshard_statement *st = NULL;
    OK(sshard_prepared_bind(insert, &st));
    OK(sshard_statement_bind_int32(st, 0, i));
    OK(sshard_statement_bind_int32(st, 1, i * 2));
    const sshard_result *r = h_execute(s, st, NULL);
    CHECK(r != NULL);
    sshard_result_free(r);
    OK(sshard_statement_free(st));
  }
  const sshard_prepared *select = h_prepare(s, "SELECT v FROM comm.kv WHERE k = ?");
  int found = 0;
  for (int i = 0; i < total; i++) {
    sshard_statement *st = NULL;
    OK(sshard_prepared_bind(select, &st));
    OK(sshard_statement_bind_int32(st, 0, i));
    const sshard_result *r = h_execute(s, st, NULL);
    size_t rows = 0;
    if (r && sshard_result_row_count(r, &rows) == SSHARD_STATUS_OK && rows == 1 && int_cell(r, 0) == i * 2)
      found++;
    sshard_result_free(r);
    OK(sshard_statement_free(st));
  }
  CHECK(found == total);
  CHECK(misroutes() == misroutes_before);

  /* A batch of prepared inserts, then paging over the whole table. */
  sshard_batch *batch = NULL;
  OK(sshard_batch_new(SSHARD_BATCH_TYPE_UNLOGGED, &batch));
  for (int i = 0; i < 10; i++) {
    sshard_statement *st = NULL;
    OK(sshard_prepared_bind(insert, &st));
    OK(sshard_statement_bind_int32(st, 0, 100000 + i));
    OK(sshard_statement_bind_int32(st, 1, 7));
    OK(sshard_batch_add_statement(batch, st));
    OK(sshard_statement_free(st));
  }
  const sshard_future *f = NULL;
  OK(sshard_session_batch(s, batch, &f));
  OK(sshard_future_wait(f));
  OK(sshard_future_free(f));
  OK(sshard_batch_free(batch));

  sshard_statement *scan = NULL;
  OK(sshard_statement_new(S("SELECT k FROM comm.kv"), 0, &scan));
  OK(sshard_statement_set_page_size(scan, total / 6 + 1));
  size_t seen = 0;
  int pages = 0;
  for (;;) {
    const sshard_result *r = h_execute(s, scan, NULL);
    REQUIRE(r != NULL);
    size_t rows = 0;
    OK(sshard_result_row_count(r, &rows));
    seen += rows;
    pages++;
    bool more = false;
    OK(sshard_result_has_more_pages(r, &more));
    if (more) OK(sshard_statement_set_paging_state_from_result(scan, r));
    sshard_result_free(r);
    if (!more) break;
  }
  OK(sshard_statement_free(scan));
  CHECK(seen == (size_t)total + 10);
  CHECK(pages > 1);

  /* Server errors come back as they would directly. */
  CHECK_STATUS(h_query(s, "SELECT * FROM comm.no_such_table"), SSHARD_STATUS_SERVER_INVALID);
  CHECK_STATUS(h_query(s, "SELEC nonsense"), SSHARD_STATUS_SERVER_SYNTAX_ERROR);
  /* USE through the daemon: unqualified names in this session only. */
  OK(h_query(s, "USE comm"));
  sshard_statement *st = NULL;
  OK(sshard_statement_new(S("SELECT v FROM kv WHERE k = 1"), 0, &st));
  const sshard_result *r = h_execute(s, st, NULL);
  CHECK(r != NULL && int_cell(r, 0) == 2);
  sshard_result_free(r);
  OK(sshard_statement_free(st));
  OK(sshard_prepared_free(insert));
  OK(sshard_prepared_free(select));
  h_close(s);
}

static void test_sessions_add_no_cluster_connection(void) {
  const sshard_session *sessions[8];
  for (int i = 0; i < 8; i++) sessions[i] = h_connect_config(communicator_config(socket_path));
  for (int i = 0; i < 8; i++) OK(h_query(sessions[i], "SELECT k FROM comm.kv WHERE k = 3"));
  /* Before any USE: the daemon has opened no keyspace connection yet. */
  unsigned long long connections = h_emulator_counter(base, NODES, "emulator_connections_current");
  if (connections != NODES * SHARDS + 1) fprintf(stderr, "cluster connections with 8 sessions: %llu\n", connections);
  CHECK(connections == NODES * SHARDS + 1);
  for (int i = 0; i < 8; i++) h_close(sessions[i]);
}

static void test_unreachable_daemon(void) {
  sshard_config *cfg = communicator_config("/nonexistent/communicator.sock");
  OK(sshard_config_set_connect_timeout_ms(cfg, 2000));
  const sshard_future *f = NULL;
  REQUIRE(sshard_session_connect(cfg, &f) == SSHARD_STATUS_OK);
  OK(sshard_config_free(cfg));
  CHECK_STATUS(sshard_future_wait(f), SSHARD_STATUS_NO_HOSTS);
  OK(sshard_future_free(f));
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s <first node address> <communicator socket>\n", argv[0]);
    return 2;
  }
  base = argv[1];
  socket_path = argv[2];
  test_one_connection_and_thread();
  test_sessions_add_no_cluster_connection();
  test_requests_route_through_the_daemon();
  test_unreachable_daemon();
  return h_finish("test_communicator");
}
