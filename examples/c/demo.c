/* demo: what `make demo` shows, through the C API. Connects to an emulated
 * cluster, then for a vnode keyspace and a tablet keyspace: creates a
 * table, runs thousands of prepared writes and reads (through a completion
 * queue), and prints how the emulator saw them routed, from its own
 * Prometheus counters (http://<node ip>:9180/metrics, fetched with a tiny
 * HTTP GET over a socket):
 *
 *   [demo_vnodes writes] requests: N, misrouted to wrong node: X, misrouted to wrong shard: Y, connections: C
 *
 *   demo [contact point, default 127.0.0.1] [rows, default 3000] [metrics port, default 9180]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "scylla_shard.h"

#define MAX_NODES 64

struct counters {
  unsigned long long routable, misrouted_node, misrouted_shard, connections;
};

static char node_ips[MAX_NODES][64];
static int node_count;
static int metrics_port = 9180;

static void fail(const char *what, sshard_status s) {
  fprintf(stderr, "demo: %s: %s\n", what, sshard_status_str(s));
  exit(1);
}

static const sshard_future *wait_ok(const sshard_future *f, const char *what) {
  sshard_status s = sshard_future_wait(f);
  if (s != SSHARD_STATUS_OK) {
    const sshard_error *e = NULL;
    const char *m = "";
    size_t n = 0;
    if (sshard_future_get_error(f, &e) == SSHARD_STATUS_OK) sshard_error_message(e, &m, &n);
    fprintf(stderr, "demo: %s: %s: %.*s\n", what, sshard_status_str(s), (int)n, m);
    exit(1);
  }
  return f;
}

static void run(const sshard_session *session, const char *cql) {
  sshard_statement *st = NULL;
  const sshard_future *f = NULL;
  sshard_statement_new(cql, strlen(cql), 0, &st);
  sshard_status s = sshard_session_execute(session, st, &f);
  if (s != SSHARD_STATUS_OK) fail(cql, s);
  wait_ok(f, cql);
  sshard_future_free(f);
  sshard_statement_free(st);
}

/* GET /metrics from one node; returns a malloc'ed body (NULL on error). */
static char *http_get_metrics(const char *ip) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return NULL;
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)metrics_port)};
  struct timeval tv = {.tv_sec = 5};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (inet_pton(AF_INET, ip, &addr.sin_addr) != 1 ||
      connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    close(fd);
    return NULL;
  }
  char request[256];
  int n = snprintf(request, sizeof request,
                   "GET /metrics HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n", ip);
  if (write(fd, request, (size_t)n) != n) {
    close(fd);
    return NULL;
  }
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (len + 4096 > cap) buf = realloc(buf, cap *= 2);
    ssize_t r = read(fd, buf + len, cap - len - 1);
    if (r <= 0) break;
    len += (size_t)r;
  }
  close(fd);
  buf[len] = 0;
  char *body = strstr(buf, "\r\n\r\n");
  if (!body) {
    free(buf);
    return NULL;
  }
  memmove(buf, body + 4, strlen(body + 4) + 1);
  return buf;
}

/* Sums one metric over its label sets in a Prometheus text body. */
static unsigned long long sum_metric(const char *body, const char *name) {
  unsigned long long total = 0;
  size_t name_len = strlen(name);
  for (const char *line = body; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
    if (strncmp(line, name, name_len) != 0 || (line[name_len] != '{' && line[name_len] != ' '))
      continue;
    const char *end = strchr(line, '\n');
    const char *space = line + name_len;
    if (*space == '{') space = strchr(space, '}');
    if (!space || (end && space > end)) continue;
    total += strtoull(space + 1 + (space[0] == '}'), NULL, 10);
  }
  return total;
}

static struct counters read_counters(void) {
  struct counters c = {0, 0, 0, 0};
  for (int i = 0; i < node_count; i++) {
    char *body = http_get_metrics(node_ips[i]);
    if (!body) {
      fprintf(stderr, "demo: cannot read http://%s:%d/metrics\n", node_ips[i], metrics_port);
      exit(1);
    }
    c.routable += sum_metric(body, "emulator_routable_requests_total");
    c.misrouted_node += sum_metric(body, "emulator_misrouted_node_total");
    c.misrouted_shard += sum_metric(body, "emulator_misrouted_shard_total");
    c.connections += sum_metric(body, "emulator_connections_current");
    free(body);
  }
  return c;
}

/* Node addresses and pool readiness from the session's own metrics. */
static int pools_full(const sshard_session *session, int record) {
  const sshard_metrics_snapshot *snap = NULL;
  if (sshard_session_get_metrics_snapshot(session, &snap) != SSHARD_STATUS_OK) return 0;
  size_t nodes = 0;
  int full = sshard_metrics_snapshot_node_count(snap, &nodes) == SSHARD_STATUS_OK && nodes > 0;
  if (record) node_count = 0;
  for (size_t i = 0; i < nodes && i < MAX_NODES; i++) {
    sshard_node_metrics n;
    if (sshard_metrics_snapshot_node(snap, i, &n, sizeof n) != SSHARD_STATUS_OK) {
      full = 0;
      continue;
    }
    if (n.nr_shards == 0 || n.connections < n.nr_shards) full = 0;
    if (record) {
      snprintf(node_ips[node_count], sizeof node_ips[0], "%s", n.address);
      char *colon = strrchr(node_ips[node_count], ':');
      if (colon) *colon = 0;
      node_count++;
    }
  }
  sshard_metrics_snapshot_free(snap);
  return full;
}

/* `total` executions of `prepared` for keys 0..total-1 through `queue`,
 * at most `window` in flight; reads check the value. */
static void pump(const sshard_session *session, const sshard_queue *queue,
                 const sshard_prepared *prepared, int total, int window, int reading) {
  sshard_statement *st = NULL;
  sshard_prepared_bind(prepared, &st);
  int submitted = 0, completed = 0, in_flight = 0;
  sshard_event events[256];
  char value[32];
  while (completed < total) {
    while (submitted < total && in_flight < window) {
      const sshard_future *f = NULL;
      sshard_statement_bind_int32(st, 0, submitted);
      if (!reading) {
        int n = snprintf(value, sizeof value, "value-%d", submitted);
        sshard_statement_bind_text(st, 1, value, (size_t)n);
      }
      sshard_status s = sshard_session_execute(session, st, &f);
      if (s != SSHARD_STATUS_OK) fail("execute", s);
      sshard_future_set_queue(f, queue, (uint64_t)submitted);
      sshard_future_free(f);
      submitted++;
      in_flight++;
    }
    size_t n = 0;
    sshard_queue_wait(queue, events, 256, 1000000, &n);
    for (size_t i = 0; i < n; i++) {
      if (events[i].status != SSHARD_STATUS_OK) fail(reading ? "read" : "write", events[i].status);
      if (reading) {
        const sshard_result *r = NULL;
        const sshard_value *v = NULL;
        const char *text = NULL;
        size_t len = 0;
        int expected = snprintf(value, sizeof value, "value-%d", (int)events[i].token);
        if (sshard_future_get_result(events[i].future, &r) != SSHARD_STATUS_OK ||
            sshard_result_value(r, 0, 0, &v) != SSHARD_STATUS_OK ||
            sshard_value_get_text(v, &text, &len) != SSHARD_STATUS_OK || len != (size_t)expected ||
            memcmp(text, value, len) != 0) {
          fprintf(stderr, "demo: wrong value for key %d\n", (int)events[i].token);
          exit(1);
        }
        sshard_result_free(r);
      }
      sshard_future_free(events[i].future);
    }
    completed += (int)n;
    in_flight -= (int)n;
  }
  sshard_statement_free(st);
}

static const sshard_prepared *prepare(const sshard_session *session, const char *cql) {
  const sshard_future *f = NULL;
  const sshard_prepared *p = NULL;
  sshard_status s = sshard_session_prepare(session, cql, strlen(cql), &f);
  if (s != SSHARD_STATUS_OK) fail("prepare", s);
  sshard_future_get_prepared(wait_ok(f, cql), &p);
  sshard_future_free(f);
  return p;
}

static void demo(const sshard_session *session, const sshard_queue *queue, const char *keyspace,
                 const char *replication, int rows) {
  char cql[512];
  snprintf(cql, sizeof cql, "CREATE KEYSPACE %s WITH replication = %s", keyspace, replication);
  run(session, cql);
  snprintf(cql, sizeof cql, "CREATE TABLE %s.kv (k int PRIMARY KEY, v text)", keyspace);
  run(session, cql);
  snprintf(cql, sizeof cql, "INSERT INTO %s.kv (k, v) VALUES (?, ?)", keyspace);
  const sshard_prepared *insert = prepare(session, cql);
  snprintf(cql, sizeof cql, "SELECT v FROM %s.kv WHERE k = ?", keyspace);
  const sshard_prepared *select = prepare(session, cql);
  /* Writes first (a tablet table is learned while they run), then reads of
   * every row back, each phase with its own counters line. */
  for (int reading = 0; reading <= 1; reading++) {
    struct counters before = read_counters();
    pump(session, queue, reading ? select : insert, rows, 64, reading);
    struct counters after = read_counters();
    printf("[%s %s] requests: %llu, misrouted to wrong node: %llu, misrouted to wrong shard: "
           "%llu, connections: %llu\n",
           keyspace, reading ? "reads" : "writes", after.routable - before.routable,
           after.misrouted_node - before.misrouted_node,
           after.misrouted_shard - before.misrouted_shard, after.connections);
  }
  sshard_prepared_free(insert);
  sshard_prepared_free(select);
}

int main(int argc, char **argv) {
  const char *host = argc > 1 ? argv[1] : "127.0.0.1";
  int rows = argc > 2 ? atoi(argv[2]) : 3000;
  if (argc > 3) metrics_port = atoi(argv[3]);
  sshard_config *config = NULL;
  const sshard_future *f = NULL;
  const sshard_session *session = NULL;
  sshard_config_new(&config);
  sshard_config_add_contact_point(config, host, strlen(host));
  sshard_config_set_application_name(config, "libscylla_shard demo", 20);
  sshard_session_connect(config, &f);
  sshard_config_free(config);
  sshard_future_get_session(wait_ok(f, "connect"), &session);
  sshard_future_free(f);

  struct timespec pause = {0, 50 * 1000 * 1000};
  for (int i = 0; i < 200 && !pools_full(session, 0); i++) nanosleep(&pause, NULL);
  pools_full(session, 1);
  bool aware = false;
  sshard_session_is_shard_aware(session, &aware);
  printf("client: libscylla_shard (C API), shard aware: %s, nodes: %d\n", aware ? "yes" : "no",
         node_count);

  const sshard_queue *queue = NULL;
  sshard_queue_new(&queue);
  demo(session, queue, "demo_vnodes",
       "{'class': 'NetworkTopologyStrategy', 'datacenter1': 1} AND tablets = {'enabled': false}",
       rows);
  demo(session, queue, "demo_tablets",
       "{'class': 'NetworkTopologyStrategy', 'datacenter1': 1} AND tablets = {'enabled': true, "
       "'initial': 8}",
       rows);
  sshard_queue_free(queue);
  sshard_session_close(session, &f);
  wait_ok(f, "close");
  sshard_future_free(f);
  sshard_session_free(session);
  return 0;
}
