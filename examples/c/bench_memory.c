/* bench_memory: the memory figures of libscylla_shard from C (driver
 * "sshard-c"), run by benches/memory.py beside the Rust scylla crate's
 * (`scylla-peer memory`), which takes the same options.
 *
 *   bench_memory --contact HOST:PORT --mode connections|inflight|paging
 *                [--connections-per-shard 1] [--concurrency 256]
 *                [--page-size 1000] [--expect-nodes N] [--pool-timeout 30]
 *
 * connections: connect with N connections per shard, wait until every
 *   shard of every node holds them; resident memory before connecting and
 *   after (the harness divides the difference between two N by the
 *   connections added).
 * inflight: after a warm-up, submit --concurrency SELECTs of bench.kv at
 *   once (the harness delays every answer, so all are in flight together)
 *   and collect them; the peak resident memory over the resident memory
 *   before, divided by the requests, is the cost of a request in flight.
 * paging: read SELECT c, v FROM bench.big WHERE p = 0 page by page
 *   (--page-size rows a page, each page freed before the next is asked
 *   for), touching every value; the peak over the start.
 *
 * Prints one JSON line; exits 2 when the run could not be done. Resident
 * memory is VmRSS / VmHWM of /proc/self/status (the peak reset through
 * /proc/self/clear_refs).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scylla_shard.h"

#define EVENT_BATCH 256

static const char *contact = "127.0.0.1:9042";
static const char *mode = NULL;
static uint32_t connections_per_shard = 1;
static uint64_t concurrency = 256;
static int32_t page_size = 1000;
static uint32_t expect_nodes = 0;
static double pool_timeout = 30.0;

static const sshard_session *session;

static void die(const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  printf("{\"event\": \"error\", \"message\": \"");
  for (const char *c = msg; *c; c++) putchar(*c == '"' || *c == '\\' ? '\'' : *c);
  printf("\"}\n");
  fflush(stdout);
  exit(2);
}

static uint64_t status_kib(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) die("cannot read /proc/self/status");
  char line[256];
  uint64_t value = 0;
  size_t n = strlen(field);
  while (fgets(line, sizeof line, f))
    if (strncmp(line, field, n) == 0) value = strtoull(line + n, NULL, 10);
  fclose(f);
  return value;
}

static uint64_t rss_kib(void) { return status_kib("VmRSS:"); }
static uint64_t hwm_kib(void) { return status_kib("VmHWM:"); }

/* Starts a peak measurement: VmHWM := VmRSS. */
static void reset_peak(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (!f || fputs("5", f) < 0 || fclose(f) != 0) die("cannot reset VmHWM through /proc/self/clear_refs");
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void check(sshard_status s, const char *what) {
  if (s != SSHARD_STATUS_OK) die("%s: %s", what, sshard_status_str(s));
}

static void wait_ok(const sshard_future *f, const char *what) {
  sshard_status s = sshard_future_wait_timed(f, 120 * 1000000ull);
  if (s != SSHARD_STATUS_OK) {
    const sshard_error *e = NULL;
    const char *m = "";
    size_t n = 0;
    if (sshard_future_get_error(f, &e) == SSHARD_STATUS_OK && e) sshard_error_message(e, &m, &n);
    die("%s: %s %.*s", what, sshard_status_str(s), (int)n, m);
  }
}

/* What the pools hold: nodes, shards, live connections and the fewest on
 * any shard (0 while a node's shards are unknown). 0 if no snapshot. */
typedef struct {
  size_t nodes;
  uint64_t shards, connections, fewest;
} pool_view;

static int view_pools(pool_view *v) {
  const sshard_metrics_snapshot *snap = NULL;
  if (sshard_session_get_metrics_snapshot(session, &snap) != SSHARD_STATUS_OK) return 0;
  *v = (pool_view){0, 0, 0, UINT64_MAX};
  int ok = sshard_metrics_snapshot_node_count(snap, &v->nodes) == SSHARD_STATUS_OK && v->nodes > 0;
  for (size_t i = 0; ok && i < v->nodes; i++) {
    sshard_node_metrics n;
    ok = sshard_metrics_snapshot_node(snap, i, &n, sizeof n) == SSHARD_STATUS_OK;
    if (!ok) break;
    if (n.nr_shards == 0) v->fewest = 0;
    v->shards += n.nr_shards;
    for (uint32_t s = 0; s < n.shard_count; s++) {
      v->connections += n.connections_per_shard[s];
      if (n.connections_per_shard[s] < v->fewest) v->fewest = n.connections_per_shard[s];
    }
  }
  sshard_metrics_snapshot_free(snap);
  return ok;
}

/* Live connections to the nodes' shards. */
static uint64_t shard_connections(uint32_t *nodes) {
  pool_view v;
  if (!view_pools(&v)) return 0;
  *nodes = (uint32_t)v.nodes;
  return v.connections;
}

/* Waits until every shard of every node holds `per_shard` connections;
 * returns how many shards there are. */
static uint64_t wait_pools(uint32_t per_shard) {
  double deadline = now_s() + pool_timeout;
  struct timespec pause = {0, 20 * 1000 * 1000};
  for (;;) {
    pool_view v;
    if (view_pools(&v) && (expect_nodes == 0 || v.nodes == expect_nodes) && v.fewest >= per_shard)
      return v.shards;
    if (now_s() >= deadline) die("the pools did not fill within %.0f s", pool_timeout);
    nanosleep(&pause, NULL);
  }
}

static void connect_session(uint32_t per_shard) {
  sshard_config *config = NULL;
  check(sshard_config_new(&config), "config");
  const char *colon = strrchr(contact, ':');
  if (!colon) die("--contact takes HOST:PORT");
  check(sshard_config_add_contact_point(config, contact, (size_t)(colon - contact)), "contact point");
  check(sshard_config_set_port(config, (uint16_t)atoi(colon + 1)), "port");
  check(sshard_config_set_connections_per_shard(config, per_shard), "connections per shard");
  const sshard_future *f = NULL;
  check(sshard_session_connect(config, &f), "connect");
  wait_ok(f, "connect");
  check(sshard_future_get_session(f, &session), "connect");
  sshard_future_free(f);
  sshard_config_free(config);
}

static const sshard_prepared *prepare(const char *cql) {
  const sshard_future *f = NULL;
  const sshard_prepared *p = NULL;
  check(sshard_session_prepare(session, cql, strlen(cql), &f), "prepare");
  wait_ok(f, cql);
  check(sshard_future_get_prepared(f, &p), "prepare");
  sshard_future_free(f);
  return p;
}

static void mode_connections(void) {
  uint64_t before = rss_kib();
  connect_session(connections_per_shard);
  uint64_t shards = wait_pools(connections_per_shard);
  uint32_t nodes = 0;
  uint64_t held = shard_connections(&nodes);
  uint64_t after = rss_kib();
  printf("{\"event\": \"result\", \"driver\": \"sshard-c\", \"mode\": \"connections\", "
         "\"connections_per_shard\": %u, \"shards\": %" PRIu64 ", \"connections\": %" PRIu64
         ", \"rss_before_kib\": %" PRIu64 ", \"rss_after_kib\": %" PRIu64 "}\n",
         connections_per_shard, shards, held, before, after);
}

/* Submits `n` SELECTs through one queue and waits for all of them. */
static uint64_t select_burst(const sshard_prepared *select, const sshard_queue *queue, uint64_t n) {
  uint64_t failures = 0;
  for (uint64_t i = 0; i < n; i++) {
    sshard_statement *st = NULL;
    const sshard_future *f = NULL;
    check(sshard_prepared_bind(select, &st), "bind");
    check(sshard_statement_bind_int64(st, 0, (int64_t)(i % 1000)), "bind");
    check(sshard_statement_set_idempotent(st, true), "idempotent");
    check(sshard_session_execute(session, st, &f), "execute");
    check(sshard_future_set_queue(f, queue, i), "queue");
    sshard_statement_free(st);
  }
  static sshard_event events[EVENT_BATCH];
  for (uint64_t done = 0; done < n;) {
    size_t got = 0;
    check(sshard_queue_wait(queue, events, EVENT_BATCH, 1000000, &got), "queue wait");
    for (size_t i = 0; i < got; i++) {
      if (events[i].status != SSHARD_STATUS_OK) failures++;
      sshard_future_free(events[i].future);
    }
    done += got;
  }
  return failures;
}

static void mode_inflight(void) {
  connect_session(1);
  wait_pools(1);
  const sshard_prepared *select = prepare("SELECT v, tag FROM bench.kv WHERE k = ?");
  const sshard_queue *queue = NULL;
  check(sshard_queue_new(&queue), "queue");
  /* Warm-up: connections, runtime and queue reach their working size. */
  for (int round = 0; round < 4; round++) select_burst(select, queue, 64);
  uint64_t before = rss_kib();
  reset_peak();
  double started = now_s();
  uint64_t failures = select_burst(select, queue, concurrency);
  double elapsed = now_s() - started;
  uint64_t peak = hwm_kib();
  printf("{\"event\": \"result\", \"driver\": \"sshard-c\", \"mode\": \"inflight\", \"requests\": %" PRIu64
         ", \"errors\": %" PRIu64 ", \"elapsed_s\": %.3f, \"rss_before_kib\": %" PRIu64
         ", \"hwm_kib\": %" PRIu64 "}\n",
         concurrency, failures, elapsed, before, peak);
}

static void mode_paging(void) {
  connect_session(1);
  wait_pools(1);
  const sshard_prepared *select = prepare("SELECT c, v FROM bench.big WHERE p = ?");
  sshard_statement *st = NULL;
  check(sshard_prepared_bind(select, &st), "bind");
  check(sshard_statement_bind_int32(st, 0, 0), "bind");
  check(sshard_statement_set_page_size(st, page_size), "page size");
  uint64_t before = rss_kib();
  reset_peak();
  uint64_t rows = 0, bytes = 0, pages = 0, touched = 0;
  const sshard_result *result = NULL;
  for (;;) {
    const sshard_future *f = NULL;
    if (!result) {
      check(sshard_session_execute(session, st, &f), "execute");
    } else {
      /* The request carries its own copy of the paging state: the page
       * read is freed before the next one arrives. */
      check(sshard_session_next_page(session, result, &f), "next page");
      sshard_result_free(result);
    }
    wait_ok(f, "page");
    check(sshard_future_get_result(f, &result), "page");
    sshard_future_free(f);
    size_t n = 0;
    check(sshard_result_row_count(result, &n), "row count");
    for (size_t r = 0; r < n; r++) {
      const sshard_value *v = NULL;
      const uint8_t *data = NULL;
      size_t len = 0;
      check(sshard_result_value(result, r, 1, &v), "value");
      check(sshard_value_get_blob(v, &data, &len), "blob");
      if (len) touched += data[len - 1];
      bytes += len;
    }
    rows += n;
    pages++;
    bool more = false;
    check(sshard_result_has_more_pages(result, &more), "has more pages");
    if (!more) break;
  }
  sshard_result_free(result);
  uint64_t peak = hwm_kib();
  printf("{\"event\": \"result\", \"driver\": \"sshard-c\", \"mode\": \"paging\", \"rows\": %" PRIu64
         ", \"bytes\": %" PRIu64 ", \"pages\": %" PRIu64 ", \"checksum\": %" PRIu64
         ", \"rss_before_kib\": %" PRIu64 ", \"hwm_kib\": %" PRIu64 "}\n",
         rows, bytes, pages, touched, before, peak);
  sshard_statement_free(st);
}

int main(int argc, char **argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *name = argv[i], *value = argv[i + 1];
    if (!strcmp(name, "--contact")) contact = value;
    else if (!strcmp(name, "--mode")) mode = value;
    else if (!strcmp(name, "--connections-per-shard")) connections_per_shard = (uint32_t)strtoul(value, NULL, 10);
    else if (!strcmp(name, "--concurrency")) concurrency = strtoull(value, NULL, 10);
    else if (!strcmp(name, "--page-size")) page_size = (int32_t)strtol(value, NULL, 10);
    else if (!strcmp(name, "--expect-nodes")) expect_nodes = (uint32_t)strtoul(value, NULL, 10);
    else if (!strcmp(name, "--pool-timeout")) pool_timeout = strtod(value, NULL);
    else die("unknown option %s", name);
  }
  if (!mode) die("--mode connections|inflight|paging is required");
  if (!strcmp(mode, "connections")) mode_connections();
  else if (!strcmp(mode, "inflight")) mode_inflight();
  else if (!strcmp(mode, "paging")) mode_paging();
  else die("unknown mode %s", mode);
  fflush(stdout);
  /* The process exits here; the session is left to the exit (its figures
   * are taken). */
  return 0;
}
