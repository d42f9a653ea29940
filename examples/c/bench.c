/* bench: the C benchmark client of libscylla_shard (driver "sshard-c").
 *
 * Follows the client contract of benches/README.md ("The client contract
 * (adding a driver)") with the same semantics as benches/clients/common.py
 * and benches/bench-core: request number i (shared by the warm-up and the
 * measured phase) uses key i % keys, value printf("%016llx", k) four times
 * and the run's tag; for `mixed` it is an INSERT when i is even. The
 * deadline is checked before a number is taken, so every number taken is
 * executed.
 *
 * Single-threaded: a window of --concurrency requests in flight through one
 * completion queue (token = slot of the request), latency from issue to the
 * completion's arrival, every SELECT row checked, the newest distinct
 * inserted keys read back afterwards. Prints one JSON line. The session
 * uses caller-driven I/O (the thread that waits on the queue runs the
 * connections), as suits a submit-and-wait loop; --io threads uses the
 * library's worker threads instead. The requests that fit in the window
 * start together (sshard_session_execute_many, one statement per slot);
 * --submit one starts each with sshard_session_execute + set_queue.
 *
 * `hold` is one process's share of the restart storm (benches/storm.py):
 * --sessions sessions with full pools; after each "restart" line on stdin,
 * the time until every pool is full again ("refilled" event, as
 * bench-core's hold.rs); "exit" or the end of stdin ends it. Its sessions
 * run on their own worker threads (nobody drives them while it waits).
 *
 * --communicator PATH runs every workload through the communicator daemon
 * at PATH (sshard_config_set_communicator): the daemon holds the pools, so
 * the client's are full once it is connected.
 *
 *   bench --contact HOST:PORT --workload insert|select|mixed|connect|schema|hold
 *         [--concurrency 1] [--duration 5] [--warmup 2]
 *         [--requests N --warmup-requests N] [--keys 10000] [--keyspace bench]
 *         [--table kv] [--tag 1] [--verify-max 1000] [--expect-nodes N]
 *         [--pool-timeout 30] [--replication CLAUSE] [--sync] [--io caller|threads]
 *         [--sessions 1] [--no-shard-aware-port] [--communicator PATH]
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "scylla_shard.h"

#define DRIVER_NAME "sshard-c"
#define READBACK_CONCURRENCY 32
#define SYNC_TIMEOUT_S 300.0
#define PHASE_SLACK_S 60.0
#define POOL_POLL_NS (20 * 1000 * 1000)
#define EVENT_BATCH 256
#define WAIT_SLICE_US 100000

/* ---------------------------------------------------------------- options */

enum workload { W_INSERT, W_SELECT, W_MIXED, W_CONNECT, W_SCHEMA, W_HOLD };
static const char *const workload_names[] = {"insert", "select", "mixed", "connect", "schema", "hold"};

struct options {
  const char *contact;
  enum workload workload;
  uint64_t concurrency;
  double duration;
  double warmup;
  int has_requests;
  uint64_t requests;
  uint64_t warmup_requests;
  uint64_t keys;
  const char *keyspace;
  const char *table;
  int64_t tag;
  uint64_t verify_max;
  int has_expect_nodes;
  uint64_t expect_nodes;
  double pool_timeout;
  const char *replication;
  int sync;
  int threaded_io;
  int submit_one; /* --submit one: execute + set_queue per request */
  uint64_t sessions;
  int no_shard_aware_port;
  const char *communicator;
};

static struct options opts = {
    .contact = "127.0.0.1:9042",
    .workload = W_MIXED,
    .concurrency = 1,
    .duration = 5.0,
    .warmup = 2.0,
    .keys = 10000,
    .keyspace = "bench",
    .table = "kv",
    .tag = 1,
    .verify_max = 1000,
    .pool_timeout = 30.0,
    .replication = "{'class': 'SimpleStrategy', 'replication_factor': 1}",
    .sessions = 1,
};

/* ------------------------------------------------------------ JSON output */

/* A growable string. */
struct buf {
  char *p;
  size_t len, cap;
};

static void buf_reserve(struct buf *b, size_t extra) {
  if (b->len + extra + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra + 1) cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) {
    fputs("bench: out of memory\n", stderr);
    exit(2);
  }
  b->p = p;
  b->cap = cap;
}

static void buf_printf(struct buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  buf_reserve(b, (size_t)n);
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

/* A JSON string literal (or null when s is NULL). */
static void buf_json_str(struct buf *b, const char *s) {
  if (!s) {
    buf_printf(b, "null");
    return;
  }
  buf_reserve(b, strlen(s) * 6 + 2);
  b->p[b->len++] = '"';
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    switch (*c) {
      case '"': b->p[b->len++] = '\\'; b->p[b->len++] = '"'; break;
      case '\\': b->p[b->len++] = '\\'; b->p[b->len++] = '\\'; break;
      case '\n': b->p[b->len++] = '\\'; b->p[b->len++] = 'n'; break;
      case '\r': b->p[b->len++] = '\\'; b->p[b->len++] = 'r'; break;
      case '\t': b->p[b->len++] = '\\'; b->p[b->len++] = 't'; break;
      default:
        if (*c < 0x20 || *c == 0x7f) {
          b->len += (size_t)snprintf(b->p + b->len, 7, "\\u%04x", *c);
        } else {
          b->p[b->len++] = (char)*c;
        }
    }
  }
  b->p[b->len++] = '"';
  b->p[b->len] = 0;
}

/* A finite JSON number. */
static void buf_json_num(struct buf *b, double v) {
  if (!(v == v) || v > 1e300 || v < -1e300) v = 0.0;
  char num[64];
  snprintf(num, sizeof num, "%.9g", v);
  /* Keep it a float in the JSON (like the reference clients' output). */
  buf_printf(b, strpbrk(num, ".eE") ? "%s" : "%s.0", num);
}

static void emit(const struct buf *b) {
  fwrite(b->p, 1, b->len, stdout);
  fputc('\n', stdout);
  fflush(stdout);
}

static void die(const char *fmt, ...) {
  char message[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  struct buf b = {0};
  buf_printf(&b, "{\"event\": \"error\", \"driver\": \"" DRIVER_NAME "\", \"message\": ");
  buf_json_str(&b, message);
  buf_printf(&b, "}");
  emit(&b);
  fprintf(stderr, DRIVER_NAME ": %s\n", message);
  exit(1);
}

/* ------------------------------------------------------------------ time */

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct cpu {
  double user, sys;
};

static struct cpu rusage_now(void) {
  struct rusage ru;
  struct cpu c = {0.0, 0.0};
  if (getrusage(RUSAGE_SELF, &ru) == 0) {
    c.user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
    c.sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
  }
  return c;
}

/* -------------------------------------------------------- driver helpers */

static const sshard_session *session;
static const sshard_prepared *insert_prepared, *select_prepared;
static const sshard_queue *queue;

/* "STATUS: message" of a failed future (or of a failed call). */
static void describe_failure(const sshard_future *f, sshard_status s, char *out, size_t cap) {
  const char *m = NULL;
  size_t n = 0;
  const sshard_error *e = NULL;
  if (f && sshard_future_get_error(f, &e) == SSHARD_STATUS_OK && e)
    sshard_error_message(e, &m, &n);
  else if (!f)
    sshard_last_error_message(&m, &n);
  if (m && n)
    snprintf(out, cap, "%s: %.*s", sshard_status_str(s), (int)n, m);
  else
    snprintf(out, cap, "%s", sshard_status_str(s));
}

/* Waits for a future (at most timeout_s) and dies on failure. */
static void wait_or_die(const sshard_future *f, double timeout_s, const char *what) {
  sshard_status s = sshard_future_wait_timed(f, (uint64_t)(timeout_s * 1e6));
  if (s == SSHARD_STATUS_PENDING) die("%s did not finish within %.0f s", what, timeout_s);
  if (s != SSHARD_STATUS_OK) {
    char why[512];
    describe_failure(f, s, why, sizeof why);
    die("%s failed: %s", what, why);
  }
}

static void query(const char *cql) {
  sshard_statement *st = NULL;
  const sshard_future *f = NULL;
  sshard_status s = sshard_statement_new(cql, strlen(cql), 0, &st);
  if (s == SSHARD_STATUS_OK) s = sshard_session_execute(session, st, &f);
  if (s != SSHARD_STATUS_OK) {
    char why[512];
    describe_failure(NULL, s, why, sizeof why);
    die("%s failed: %s", cql, why);
  }
  wait_or_die(f, 120.0, cql);
  sshard_future_free(f);
  sshard_statement_free(st);
}

static const sshard_prepared *prepare(const char *cql) {
  const sshard_future *f = NULL;
  const sshard_prepared *p = NULL;
  sshard_status s = sshard_session_prepare(session, cql, strlen(cql), &f);
  if (s != SSHARD_STATUS_OK) die("prepare failed: %s: %s", cql, sshard_status_str(s));
  wait_or_die(f, 120.0, "prepare");
  s = sshard_future_get_prepared(f, &p);
  if (s != SSHARD_STATUS_OK) die("prepare failed: %s: %s", cql, sshard_status_str(s));
  sshard_future_free(f);
  return p;
}

/* A connection on every shard of every node (and --expect-nodes nodes). */
static int pools_full_of(const sshard_session *of) {
  if (opts.communicator) return 1;
  const sshard_metrics_snapshot *snap = NULL;
  if (sshard_session_get_metrics_snapshot(of, &snap) != SSHARD_STATUS_OK) return 0;
  size_t nodes = 0;
  int full = sshard_metrics_snapshot_node_count(snap, &nodes) == SSHARD_STATUS_OK && nodes > 0;
  if (opts.has_expect_nodes && nodes != opts.expect_nodes) full = 0;
  for (size_t i = 0; full && i < nodes; i++) {
    sshard_node_metrics n;
    if (sshard_metrics_snapshot_node(snap, i, &n, sizeof n) != SSHARD_STATUS_OK || !n.up || n.nr_shards == 0) {
      full = 0;
      break;
    }
    for (uint32_t s = 0; s < n.shard_count; s++)
      if (n.connections_per_shard[s] < 1) full = 0;
  }
  sshard_metrics_snapshot_free(snap);
  return full;
}

static int pools_full(void) { return pools_full_of(session); }

/* Connections the driver holds to the nodes' shards (as sshard-rust counts). */
static uint64_t connections_of(const sshard_session *of) {
  static sshard_metrics metrics;
  if (sshard_session_get_metrics(of, &metrics, sizeof metrics) != SSHARD_STATUS_OK) return 0;
  return metrics.connections;
}

static uint64_t driver_connections(void) { return connections_of(session); }

static int wait_pools(void) {
  uint64_t deadline = now_ns() + (uint64_t)(opts.pool_timeout * 1e9);
  struct timespec pause = {0, POOL_POLL_NS};
  for (;;) {
    if (pools_full()) return 1;
    if (now_ns() >= deadline) return 0;
    nanosleep(&pause, NULL);
  }
}

/* With --sync: say so on stdout and wait (bounded) for a line on stdin. */
static void checkpoint(const char *at) {
  if (!opts.sync) return;
  printf("{\"event\": \"ready\", \"at\": \"%s\"}\n", at);
  fflush(stdout);
  uint64_t deadline = now_ns() + (uint64_t)(SYNC_TIMEOUT_S * 1e9);
  for (;;) {
    uint64_t now = now_ns();
    if (now >= deadline) die("no go-ahead on stdin within %.0f s", SYNC_TIMEOUT_S);
    struct pollfd p = {.fd = 0, .events = POLLIN};
    int r = poll(&p, 1, (int)((deadline - now) / 1000000 + 1));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) die("waiting for the go-ahead: %s", strerror(errno));
    if (r == 0) continue;
    /* Read one line byte by byte (stdin stays unbuffered for us). */
    char c;
    ssize_t got = read(0, &c, 1);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) die("reading the go-ahead: %s", strerror(errno));
    if (got == 0 || c == '\n') return; /* EOF counts as the go-ahead, as in the reference */
  }
}

/* ----------------------------------------------------------------- phases */

struct stats {
  uint64_t *lat; /* latencies, ns */
  size_t lat_len, lat_cap;
  uint64_t requests, errors, checked, mismatches;
  char *first_error, *first_mismatch;
};

static void stats_latency(struct stats *s, uint64_t ns) {
  if (s->lat_len == s->lat_cap) {
    size_t cap = s->lat_cap ? s->lat_cap * 2 : 1 << 16;
    uint64_t *p = realloc(s->lat, cap * sizeof *p);
    if (!p) die("out of memory for latencies");
    s->lat = p;
    s->lat_cap = cap;
  }
  s->lat[s->lat_len++] = ns;
}

static void stats_error(struct stats *s, const char *what) {
  s->errors++;
  if (!s->first_error) s->first_error = strdup(what);
}

static void stats_free(struct stats *s) {
  free(s->lat);
  free(s->first_error);
  free(s->first_mismatch);
  memset(s, 0, sizeof *s);
}

/* Row values read (NULL got_value: no row). want_tag < 0 flag: value only. */
static void stats_check(struct stats *s, uint64_t key, const char *got_v, size_t got_len,
                        int64_t got_tag, int has_row, const char *want, int check_tag,
                        int64_t want_tag) {
  s->checked++;
  int ok = has_row && got_len == strlen(want) && memcmp(got_v, want, got_len) == 0 &&
           (!check_tag || got_tag == want_tag);
  if (ok) return;
  s->mismatches++;
  if (s->first_mismatch) return;
  char msg[512], wtag[32];
  if (check_tag)
    snprintf(wtag, sizeof wtag, "%" PRId64, want_tag);
  else
    snprintf(wtag, sizeof wtag, "None");
  if (has_row)
    snprintf(msg, sizeof msg, "key %" PRIu64 ": read ('%.*s', %" PRId64 "), expected ('%s', %s)", key,
             (int)(got_len > 200 ? 200 : got_len), got_v, got_tag, want, wtag);
  else
    snprintf(msg, sizeof msg, "key %" PRIu64 ": read None, expected ('%s', %s)", key, want, wtag);
  s->first_mismatch = strdup(msg);
}

/* Sorts latencies ascending: an LSD radix sort, 16 bits a pass, passes
 * stopping at the largest value's top bit (qsort's comparison calls cost
 * more per request than the Rust clients' sort, and callgrind counts it). */
static void sort_u64(uint64_t *v, size_t n) {
  uint64_t max = 0;
  for (size_t i = 0; i < n; i++) max = v[i] > max ? v[i] : max;
  uint64_t *tmp = malloc(n * sizeof *tmp);
  size_t *count = malloc(65536 * sizeof *count);
  if (!tmp || !count) {
    fprintf(stderr, "out of memory sorting %zu latencies\n", n);
    exit(2);
  }
  uint64_t *from = v, *to = tmp;
  for (unsigned shift = 0; shift < 64 && (max >> shift) != 0; shift += 16) {
    memset(count, 0, 65536 * sizeof *count);
    for (size_t i = 0; i < n; i++) count[(from[i] >> shift) & 0xffff]++;
    size_t at = 0;
    for (size_t d = 0; d < 65536; d++) {
      size_t c = count[d];
      count[d] = at;
      at += c;
    }
    for (size_t i = 0; i < n; i++) to[count[(from[i] >> shift) & 0xffff]++] = from[i];
    uint64_t *t = from;
    from = to;
    to = t;
  }
  if (from != v) memcpy(v, from, n * sizeof *v);
  free(count);
  free(tmp);
}

static uint64_t nearest_rank(const uint64_t *v, size_t n, double p) {
  if (n == 0) return 0;
  double r = p * (double)n;
  size_t rank = (size_t)r;
  if ((double)rank < r) rank++; /* ceil */
  if (rank < 1) rank = 1;
  if (rank > n) rank = n;
  return v[rank - 1];
}

static char (*payloads)[65];

static int is_insert(uint64_t i) {
  return opts.workload == W_INSERT || (opts.workload == W_MIXED && i % 2 == 0);
}

/* What a phase hands out: numbered requests (stop at an instant or before a
 * number) or the read-back's list of keys. */
struct source {
  uint64_t *next;      /* shared request counter (numbered) */
  int stop_at_time;    /* 1: deadline_ns, 0: stop_before */
  uint64_t deadline_ns;
  uint64_t stop_before;
  const uint64_t *keys; /* read-back keys (NULL: numbered) */
  size_t keys_len, keys_pos;
};

struct job {
  int insert;
  uint64_t key;
  int check_tag;
};

static int take(struct source *src, struct job *job) {
  if (src->keys) {
    if (src->keys_pos >= src->keys_len) return 0;
    job->insert = 0;
    job->key = src->keys[src->keys_pos++];
    job->check_tag = 1;
    return 1;
  }
  if (src->stop_at_time) {
    if (now_ns() >= src->deadline_ns) return 0;
  } else if (*src->next >= src->stop_before) {
    return 0;
  }
  uint64_t i = (*src->next)++;
  job->insert = is_insert(i);
  job->key = i % opts.keys;
  job->check_tag = 0;
  return 1;
}

struct slot {
  uint64_t started;
  struct job job;
  /* The slot's own statements (--submit many), bound when it is reused. */
  sshard_statement *insert_st, *select_st;
};

static sshard_statement *insert_st, *select_st;

/* Reads the completion of a SELECT and checks it. */
static void check_select(struct stats *s, const sshard_future *f, const struct job *job) {
  const sshard_result *r = NULL;
  size_t rows = 0;
  if (sshard_future_get_result(f, &r) != SSHARD_STATUS_OK || !r) {
    stats_error(s, "SELECT returned no result");
    return;
  }
  if (sshard_result_row_count(r, &rows) != SSHARD_STATUS_OK) {
    stats_error(s, "SELECT returned no rows result");
  } else if (rows == 0) {
    stats_check(s, job->key, NULL, 0, 0, 0, payloads[job->key], job->check_tag, opts.tag);
  } else {
    const sshard_value *v = NULL, *t = NULL;
    const char *text = NULL;
    size_t len = 0;
    int64_t tag = 0;
    if (sshard_result_value(r, 0, 0, &v) != SSHARD_STATUS_OK ||
        sshard_result_value(r, 0, 1, &t) != SSHARD_STATUS_OK ||
        sshard_value_get_text(v, &text, &len) != SSHARD_STATUS_OK ||
        sshard_value_get_int64(t, &tag) != SSHARD_STATUS_OK) {
      stats_error(s, "unexpected row (NULL or mistyped v/tag)");
    } else {
      stats_check(s, job->key, text, len, tag, 1, payloads[job->key], job->check_tag, opts.tag);
    }
  }
  sshard_result_free(r);
}

/* Keeps `concurrency` requests in flight until the source runs dry, then
 * drains. Dies if it has not finished within timeout_s. */
static struct stats run_phase(struct source *src, uint64_t concurrency, double timeout_s) {
  struct stats s;
  memset(&s, 0, sizeof s);
  struct slot *slots = calloc(concurrency, sizeof *slots);
  uint64_t *free_slots = malloc(concurrency * sizeof *free_slots);
  if (!slots || !free_slots) die("out of memory for %" PRIu64 " slots", concurrency);
  size_t nfree = 0;
  for (uint64_t i = concurrency; i > 0; i--) free_slots[nfree++] = i - 1;
  uint64_t in_flight = 0;
  int exhausted = 0;
  uint64_t deadline = now_ns() + (uint64_t)(timeout_s * 1e9);
  sshard_event events[EVENT_BATCH];
  char why[512];

  const sshard_statement **batch = malloc(concurrency * sizeof *batch);
  uint64_t *batch_tokens = malloc(concurrency * sizeof *batch_tokens);
  if (!batch || !batch_tokens) die("out of memory for %" PRIu64 " slots", concurrency);

  for (;;) {
    size_t nbatch = 0;
    while (!exhausted && in_flight < concurrency) {
      struct job job;
      if (!take(src, &job)) {
        exhausted = 1;
        break;
      }
      uint64_t slot = free_slots[--nfree];
      struct slot *sl = &slots[slot];
      sshard_statement *st = job.insert ? insert_st : select_st;
      if (!opts.submit_one) {
        sshard_statement **own = job.insert ? &sl->insert_st : &sl->select_st;
        if (!*own && sshard_prepared_bind(job.insert ? insert_prepared : select_prepared, own) !=
                         SSHARD_STATUS_OK)
          die("binding a slot's statement failed");
        st = *own;
      }
      sshard_status bs = sshard_statement_bind_int64(st, 0, (int64_t)job.key);
      if (job.insert && bs == SSHARD_STATUS_OK)
        bs = sshard_statement_bind_text(st, 1, payloads[job.key], 64);
      if (job.insert && bs == SSHARD_STATUS_OK) bs = sshard_statement_bind_int64(st, 2, opts.tag);
      uint64_t started = now_ns();
      sshard_status es = bs;
      if (es == SSHARD_STATUS_OK && opts.submit_one) {
        const sshard_future *f = NULL;
        es = sshard_session_execute(session, st, &f);
        if (es == SSHARD_STATUS_OK) es = sshard_future_set_queue(f, queue, slot);
        sshard_future_free(f);
      }
      if (es != SSHARD_STATUS_OK) {
        /* A synchronous failure counts as a failed request. */
        describe_failure(NULL, es, why, sizeof why);
        stats_latency(&s, now_ns() - started);
        s.requests++;
        stats_error(&s, why);
        free_slots[nfree++] = slot;
        continue;
      }
      if (!opts.submit_one) {
        batch[nbatch] = st;
        batch_tokens[nbatch++] = slot;
      }
      sl->started = started;
      sl->job = job;
      in_flight++;
    }
    if (nbatch > 0) {
      sshard_status es = sshard_session_execute_many(session, batch, nbatch, queue, batch_tokens);
      if (es != SSHARD_STATUS_OK) {
        /* None started: each counts as a failed request. */
        describe_failure(NULL, es, why, sizeof why);
        for (size_t i = 0; i < nbatch; i++) {
          stats_latency(&s, now_ns() - slots[batch_tokens[i]].started);
          s.requests++;
          stats_error(&s, why);
          free_slots[nfree++] = batch_tokens[i];
        }
        in_flight -= nbatch;
      }
    }
    if (in_flight == 0 && exhausted) break;
    if (in_flight == 0) continue;
    uint64_t now = now_ns();
    if (now >= deadline) die("phase did not finish within %.0f s", timeout_s);
    size_t n = 0;
    sshard_status ws = sshard_queue_wait(queue, events, EVENT_BATCH, WAIT_SLICE_US, &n);
    if (ws != SSHARD_STATUS_OK && ws != SSHARD_STATUS_PENDING && ws != SSHARD_STATUS_TIMEOUT)
      die("waiting on the completion queue: %s", sshard_status_str(ws));
    for (size_t e = 0; e < n; e++) {
      uint64_t done = now_ns();
      uint64_t slot = events[e].token;
      if (slot >= concurrency) die("completion with unknown token %" PRIu64, slot);
      struct slot *sl = &slots[slot];
      stats_latency(&s, done - sl->started);
      s.requests++;
      if (events[e].status != SSHARD_STATUS_OK) {
        describe_failure(events[e].future, events[e].status, why, sizeof why);
        stats_error(&s, why);
      } else if (!sl->job.insert) {
        check_select(&s, events[e].future, &sl->job);
      }
      sshard_future_free(events[e].future);
      free_slots[nfree++] = slot;
      in_flight--;
    }
  }
  for (uint64_t i = 0; i < concurrency; i++) {
    sshard_statement_free(slots[i].insert_st);
    sshard_statement_free(slots[i].select_st);
  }
  free(batch);
  free(batch_tokens);
  free(slots);
  free(free_slots);
  return s;
}

/* The newest distinct inserted keys among request numbers [start, end). */
static uint64_t *inserted_keys(uint64_t start, uint64_t end, size_t *len) {
  size_t cap = opts.verify_max < opts.keys ? opts.verify_max : opts.keys;
  uint64_t *out = malloc((cap ? cap : 1) * sizeof *out);
  unsigned char *seen = calloc(opts.keys, 1);
  if (!out || !seen) die("out of memory for the read-back");
  size_t n = 0, nseen = 0;
  for (uint64_t i = end; i > start; i--) {
    uint64_t r = i - 1;
    if (n >= opts.verify_max || nseen >= opts.keys) break;
    uint64_t k = r % opts.keys;
    if (is_insert(r) && !seen[k]) {
      seen[k] = 1;
      nseen++;
      out[n++] = k;
    }
  }
  free(seen);
  *len = n;
  return out;
}

/* ------------------------------------------------------------------ main */

static void latency_json(struct buf *b, struct stats *s) {
  sort_u64(s->lat, s->lat_len);
  double sum = 0.0;
  for (size_t i = 0; i < s->lat_len; i++) sum += (double)s->lat[i];
  double mean = s->lat_len ? sum / (double)s->lat_len / 1000.0 : 0.0;
  buf_printf(b, "\"latency_us\": {\"p50\": ");
  buf_json_num(b, (double)nearest_rank(s->lat, s->lat_len, 0.50) / 1000.0);
  buf_printf(b, ", \"p90\": ");
  buf_json_num(b, (double)nearest_rank(s->lat, s->lat_len, 0.90) / 1000.0);
  buf_printf(b, ", \"p99\": ");
  buf_json_num(b, (double)nearest_rank(s->lat, s->lat_len, 0.99) / 1000.0);
  buf_printf(b, ", \"p999\": ");
  buf_json_num(b, (double)nearest_rank(s->lat, s->lat_len, 0.999) / 1000.0);
  buf_printf(b, ", \"max\": ");
  buf_json_num(b, (double)(s->lat_len ? s->lat[s->lat_len - 1] : 0) / 1000.0);
  buf_printf(b, ", \"mean\": ");
  buf_json_num(b, mean);
  buf_printf(b, "}, ");
}

static void measure(struct buf *line) {
  uint64_t next = 0;
  struct source src;
  struct stats warm;
  memset(&warm, 0, sizeof warm);
  uint64_t c = opts.concurrency;
  if (opts.has_requests) {
    memset(&src, 0, sizeof src);
    src.next = &next;
    src.stop_before = opts.warmup_requests;
    warm = run_phase(&src, c, PHASE_SLACK_S + 3600);
  } else if (opts.warmup > 0) {
    memset(&src, 0, sizeof src);
    src.next = &next;
    src.stop_at_time = 1;
    src.deadline_ns = now_ns() + (uint64_t)(opts.warmup * 1e9);
    warm = run_phase(&src, c, opts.warmup + PHASE_SLACK_S);
  }
  checkpoint("measure");

  uint64_t start = next;
  struct cpu cpu0 = rusage_now();
  uint64_t t0 = now_ns();
  memset(&src, 0, sizeof src);
  src.next = &next;
  struct stats stats;
  if (opts.has_requests) {
    src.stop_before = start + opts.requests;
    stats = run_phase(&src, c, PHASE_SLACK_S + 3600);
  } else {
    src.stop_at_time = 1;
    src.deadline_ns = t0 + (uint64_t)(opts.duration * 1e9);
    stats = run_phase(&src, c, opts.duration + PHASE_SLACK_S);
  }
  double elapsed = (double)(now_ns() - t0) / 1e9;
  struct cpu cpu1 = rusage_now();

  size_t nkeys = 0;
  uint64_t *keys = inserted_keys(start, next, &nkeys);
  memset(&src, 0, sizeof src);
  src.keys = keys;
  src.keys_len = nkeys;
  uint64_t back_c = nkeys < READBACK_CONCURRENCY ? (nkeys ? nkeys : 1) : READBACK_CONCURRENCY;
  struct stats back = run_phase(&src, back_c, PHASE_SLACK_S);
  free(keys);

  buf_printf(line, "\"requests\": %" PRIu64 ", \"errors\": %" PRIu64 ", \"first_error\": ",
             stats.requests, stats.errors);
  buf_json_str(line, stats.first_error);
  buf_printf(line, ", \"elapsed_s\": ");
  buf_json_num(line, elapsed);
  buf_printf(line, ", \"rps\": ");
  buf_json_num(line, elapsed > 0 ? (double)stats.requests / elapsed : 0.0);
  buf_printf(line, ", \"cpu_s\": {\"user\": ");
  buf_json_num(line, cpu1.user - cpu0.user);
  buf_printf(line, ", \"sys\": ");
  buf_json_num(line, cpu1.sys - cpu0.sys);
  buf_printf(line, "}, \"checked\": %" PRIu64 ", \"mismatches\": %" PRIu64 ", \"first_mismatch\": ",
             stats.checked, stats.mismatches);
  buf_json_str(line, stats.first_mismatch);
  buf_printf(line,
             ", \"readback\": {\"checked\": %" PRIu64 ", \"mismatches\": %" PRIu64
             ", \"errors\": %" PRIu64 ", \"first_failure\": ",
             back.checked, back.mismatches, back.errors);
  buf_json_str(line, back.first_mismatch ? back.first_mismatch : back.first_error);
  buf_printf(line, "}, \"warmup\": {\"requests\": %" PRIu64 ", \"errors\": %" PRIu64 "}, ",
             warm.requests, warm.errors);
  latency_json(line, &stats);
  stats_free(&warm);
  stats_free(&stats);
  stats_free(&back);
}

static void usage(const char *why) {
  fprintf(stderr,
          "usage: bench --contact HOST:PORT --workload insert|select|mixed|connect|schema|hold\n"
          "             [--concurrency 1] [--duration 5] [--warmup 2]\n"
          "             [--requests N --warmup-requests N] [--keys 10000] [--keyspace bench]\n"
          "             [--table kv] [--tag 1] [--verify-max 1000] [--expect-nodes N]\n"
          "             [--pool-timeout 30] [--replication CLAUSE] [--sync] [--io caller|threads]\n"
          "             [--sessions 1] [--no-shard-aware-port] [--communicator PATH]\n"
          "             [--submit many|one]\n"
          "bench: error: %s\n",
          why);
  exit(2);
}

static uint64_t parse_u64(const char *name, const char *v) {
  char *end = NULL;
  errno = 0;
  if (!v || *v == '-') usage(name);
  unsigned long long x = strtoull(v, &end, 10);
  if (errno || !end || *end || end == v) usage(name);
  return (uint64_t)x;
}

static double parse_f64(const char *name, const char *v) {
  char *end = NULL;
  errno = 0;
  if (!v) usage(name);
  double x = strtod(v, &end);
  if (errno || !end || *end || end == v || !(x == x)) usage(name);
  return x;
}

static void parse_args(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    char *arg = argv[i];
    char *val = NULL;
    char name[64];
    char *eq = strchr(arg, '=');
    if (strncmp(arg, "--", 2) != 0) usage(arg);
    if (eq) {
      snprintf(name, sizeof name, "%.*s", (int)(eq - arg), arg);
      val = eq + 1;
    } else {
      snprintf(name, sizeof name, "%s", arg);
    }
    if (strcmp(name, "--sync") == 0) {
      opts.sync = 1;
      continue;
    }
    if (strcmp(name, "--no-shard-aware-port") == 0) {
      opts.no_shard_aware_port = 1;
      continue;
    }
    if (strcmp(name, "--help") == 0) usage("help");
    if (!val) {
      if (i + 1 >= argc) usage(name);
      val = argv[++i];
    }
    if (strcmp(name, "--contact") == 0) {
      opts.contact = val;
    } else if (strcmp(name, "--workload") == 0) {
      int found = 0;
      for (int w = 0; w <= W_HOLD; w++)
        if (strcmp(val, workload_names[w]) == 0) {
          opts.workload = (enum workload)w;
          found = 1;
        }
      if (!found) usage("--workload: insert|select|mixed|connect|schema|hold");
    } else if (strcmp(name, "--concurrency") == 0) {
      opts.concurrency = parse_u64(name, val);
    } else if (strcmp(name, "--duration") == 0) {
      opts.duration = parse_f64(name, val);
    } else if (strcmp(name, "--warmup") == 0) {
      opts.warmup = parse_f64(name, val);
    } else if (strcmp(name, "--requests") == 0) {
      opts.has_requests = 1;
      opts.requests = parse_u64(name, val);
    } else if (strcmp(name, "--warmup-requests") == 0) {
      opts.warmup_requests = parse_u64(name, val);
    } else if (strcmp(name, "--keys") == 0) {
      opts.keys = parse_u64(name, val);
    } else if (strcmp(name, "--keyspace") == 0) {
      opts.keyspace = val;
    } else if (strcmp(name, "--table") == 0) {
      opts.table = val;
    } else if (strcmp(name, "--tag") == 0) {
      char *end = NULL;
      errno = 0;
      long long t = strtoll(val, &end, 10);
      if (errno || !end || *end || end == val) usage(name);
      opts.tag = (int64_t)t;
    } else if (strcmp(name, "--verify-max") == 0) {
      opts.verify_max = parse_u64(name, val);
    } else if (strcmp(name, "--expect-nodes") == 0) {
      opts.has_expect_nodes = 1;
      opts.expect_nodes = parse_u64(name, val);
    } else if (strcmp(name, "--pool-timeout") == 0) {
      opts.pool_timeout = parse_f64(name, val);
    } else if (strcmp(name, "--replication") == 0) {
      opts.replication = val;
    } else if (strcmp(name, "--communicator") == 0) {
      opts.communicator = val;
    } else if (strcmp(name, "--sessions") == 0) {
      opts.sessions = parse_u64(name, val);
    } else if (strcmp(name, "--io") == 0) {
      if (strcmp(val, "caller") != 0 && strcmp(val, "threads") != 0) usage("--io: caller|threads");
      opts.threaded_io = strcmp(val, "threads") == 0;
    } else if (strcmp(name, "--submit") == 0) {
      if (strcmp(val, "many") != 0 && strcmp(val, "one") != 0) usage("--submit: many|one");
      opts.submit_one = strcmp(val, "one") == 0;
    } else {
      usage(name);
    }
  }
  if (opts.concurrency == 0 || opts.keys == 0 || opts.sessions == 0)
    usage("--concurrency, --keys and --sessions must be positive");
  if (!opts.has_requests && opts.duration <= 0)
    usage("--duration must be positive (or give --requests)");
  if (opts.warmup < 0) opts.warmup = 0;
  if (opts.pool_timeout < 0) opts.pool_timeout = 0;
}

/* A connected session to HOST:PORT of --contact (dies on failure). */
static const sshard_session *connect_session(void) {
  /* HOST:PORT (the port every node listens on). */
  char host[256];
  uint16_t port = 9042;
  const char *colon = strrchr(opts.contact, ':');
  if (colon) {
    snprintf(host, sizeof host, "%.*s", (int)(colon - opts.contact), opts.contact);
    uint64_t p = parse_u64("--contact port", colon + 1);
    if (p == 0 || p > 65535) usage("--contact port");
    port = (uint16_t)p;
  } else {
    snprintf(host, sizeof host, "%s", opts.contact);
  }

  /* Defaults otherwise: shard-aware port, one connection per shard, tablet
   * awareness; LOCAL_ONE and no compression, set explicitly. */
  sshard_config *config = NULL;
  const sshard_future *f = NULL;
  int threaded = opts.threaded_io || opts.workload == W_HOLD;
  if (sshard_config_new(&config) != SSHARD_STATUS_OK ||
      sshard_config_add_contact_point(config, host, strlen(host)) != SSHARD_STATUS_OK ||
      sshard_config_set_port(config, port) != SSHARD_STATUS_OK ||
      sshard_config_set_compression(config, SSHARD_COMPRESSION_NONE) != SSHARD_STATUS_OK ||
      sshard_config_set_consistency(config, SSHARD_CONSISTENCY_LOCAL_ONE) != SSHARD_STATUS_OK ||
      sshard_config_set_application_name(config, DRIVER_NAME, strlen(DRIVER_NAME)) != SSHARD_STATUS_OK ||
      sshard_config_set_shard_aware_port(config, !opts.no_shard_aware_port) != SSHARD_STATUS_OK ||
      /* Many sessions of one process each take one thread, not one per CPU. */
      (opts.workload == W_HOLD && sshard_config_set_worker_threads(config, 1) != SSHARD_STATUS_OK)) {
    const char *m = "";
    size_t n = 0;
    sshard_last_error_message(&m, &n);
    die("configuring the session: %.*s", (int)n, m);
  }
  if (sshard_config_set_caller_driven_io(config, !threaded) != SSHARD_STATUS_OK)
    die("configuring the I/O mode");
  if (opts.communicator &&
      sshard_config_set_communicator(config, opts.communicator, strlen(opts.communicator)) != SSHARD_STATUS_OK)
    die("configuring the communicator %s", opts.communicator);
  const sshard_session *connected = NULL;
  sshard_status s = sshard_session_connect(config, &f);
  sshard_config_free(config);
  if (s != SSHARD_STATUS_OK) die("connect failed: %s", sshard_status_str(s));
  wait_or_die(f, opts.pool_timeout > 0 ? opts.pool_timeout : 1.0, "connect");
  if (sshard_future_get_session(f, &connected) != SSHARD_STATUS_OK || !connected)
    die("connect yielded no session");
  sshard_future_free(f);
  return connected;
}

static void close_session(const sshard_session *closing) {
  const sshard_future *f = NULL;
  if (sshard_session_close(closing, &f) == SSHARD_STATUS_OK) {
    sshard_future_wait_timed(f, 30 * 1000000ull);
    sshard_future_free(f);
  }
  sshard_session_free(closing);
}

/* ------------------------------------------------------------------- hold */

/* How long a session may take to notice that the restarted node dropped
 * its connections, and how long the orchestrator may stay silent. */
#define DROP_BOUND_S 3.0
#define COMMAND_TIMEOUT_S 600.0

static int all_full(const sshard_session *const *held, uint64_t n) {
  for (uint64_t i = 0; i < n; i++)
    if (!pools_full_of(held[i])) return 0;
  return 1;
}

static uint64_t all_connections(const sshard_session *const *held, uint64_t n) {
  uint64_t sum = 0;
  for (uint64_t i = 0; i < n; i++) sum += connections_of(held[i]);
  return sum;
}

/* Polls until all_full(held) == want or bound_s passed; whether it did. */
static int poll_full(const sshard_session *const *held, uint64_t n, int want, double bound_s) {
  uint64_t deadline = now_ns() + (uint64_t)(bound_s * 1e9);
  struct timespec pause = {0, POOL_POLL_NS};
  for (;;) {
    if (all_full(held, n) == want) return 1;
    if (now_ns() >= deadline) return 0;
    nanosleep(&pause, NULL);
  }
}

/* One line of stdin into line (without its newline); 0 at the end of input. */
static int read_command(char *line, size_t cap) {
  size_t len = 0;
  uint64_t deadline = now_ns() + (uint64_t)(COMMAND_TIMEOUT_S * 1e9);
  for (;;) {
    uint64_t now = now_ns();
    if (now >= deadline) die("no command on stdin within %.0f s", COMMAND_TIMEOUT_S);
    struct pollfd p = {.fd = 0, .events = POLLIN};
    int r = poll(&p, 1, (int)((deadline - now) / 1000000 + 1));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) die("waiting for a command: %s", strerror(errno));
    if (r == 0) continue;
    char c;
    ssize_t got = read(0, &c, 1);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) die("reading a command: %s", strerror(errno));
    if (got == 0) {
      line[len] = 0;
      return len > 0;
    }
    if (c == '\n') {
      line[len] = 0;
      return 1;
    }
    if (len + 1 < cap) line[len++] = c;
  }
}

static void hold(uint64_t started) {
  const sshard_session **held = calloc(opts.sessions, sizeof *held);
  if (!held) die("out of memory for %" PRIu64 " sessions", opts.sessions);
  for (uint64_t i = 0; i < opts.sessions; i++) held[i] = connect_session();
  int full = poll_full(held, opts.sessions, 1, opts.pool_timeout);
  double connect_s = (double)(now_ns() - started) / 1e9;
  struct buf b = {0};
  buf_printf(&b, "{\"event\": \"ready\", \"at\": \"pools\", \"pools_full\": %s, \"connect_s\": ",
             full ? "true" : "false");
  buf_json_num(&b, connect_s);
  buf_printf(&b, ", \"connections\": %" PRIu64 "}", all_connections(held, opts.sessions));
  emit(&b);

  uint64_t restarts = 0;
  char command[64];
  while (read_command(command, sizeof command)) {
    if (strcmp(command, "exit") == 0) break;
    if (strcmp(command, "restart") != 0) die("unknown command \"%s\"", command);
    uint64_t t0 = now_ns();
    int saw_drop = poll_full(held, opts.sessions, 0, DROP_BOUND_S);
    int refilled = poll_full(held, opts.sessions, 1, opts.pool_timeout);
    b.len = 0;
    buf_printf(&b, "{\"event\": \"refilled\", \"full_s\": ");
    buf_json_num(&b, (double)(now_ns() - t0) / 1e9);
    buf_printf(&b, ", \"pools_full\": %s, \"saw_drop\": %s, \"connections\": %" PRIu64
                   ", \"diagnostics\": {}}",
               refilled ? "true" : "false", saw_drop ? "true" : "false",
               all_connections(held, opts.sessions));
    emit(&b);
    restarts++;
  }
  uint64_t connections = all_connections(held, opts.sessions);
  for (uint64_t i = 0; i < opts.sessions; i++) close_session(held[i]);
  free(held);
  struct cpu proc = rusage_now();
  b.len = 0;
  buf_printf(&b, "{\"event\": \"result\", \"driver\": \"" DRIVER_NAME "\", \"workload\": \"hold\", "
                 "\"sessions\": %" PRIu64 ", \"restarts\": %" PRIu64 ", \"connect_s\": ",
             opts.sessions, restarts);
  buf_json_num(&b, connect_s);
  buf_printf(&b, ", \"pools_full\": %s, \"driver_connections\": %" PRIu64
                 ", \"process_cpu_s\": {\"user\": ",
             full ? "true" : "false", connections);
  buf_json_num(&b, proc.user);
  buf_printf(&b, ", \"sys\": ");
  buf_json_num(&b, proc.sys);
  buf_printf(&b, "}}");
  emit(&b);
  free(b.p);
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  uint64_t started = now_ns();
  if (opts.workload == W_HOLD) {
    hold(started);
    return 0;
  }
  session = connect_session();
  int full = wait_pools();
  double connect_s = (double)(now_ns() - started) / 1e9;

  struct buf line = {0};
  buf_printf(&line, "{");
  if (opts.workload == W_SCHEMA) {
    char cql[2048];
    snprintf(cql, sizeof cql, "CREATE KEYSPACE IF NOT EXISTS %s WITH replication = %s",
             opts.keyspace, opts.replication);
    query(cql);
    snprintf(cql, sizeof cql,
             "CREATE TABLE IF NOT EXISTS %s.%s (k bigint PRIMARY KEY, v text, tag bigint)",
             opts.keyspace, opts.table);
    query(cql);
  } else if (opts.workload == W_CONNECT) {
    checkpoint("pools");
  } else {
    char cql[1024];
    snprintf(cql, sizeof cql, "INSERT INTO %s.%s (k, v, tag) VALUES (?, ?, ?)", opts.keyspace,
             opts.table);
    insert_prepared = prepare(cql);
    snprintf(cql, sizeof cql, "SELECT v, tag FROM %s.%s WHERE k = ?", opts.keyspace, opts.table);
    select_prepared = prepare(cql);
    if (sshard_prepared_bind(insert_prepared, &insert_st) != SSHARD_STATUS_OK ||
        sshard_prepared_bind(select_prepared, &select_st) != SSHARD_STATUS_OK)
      die("binding the prepared statements failed");
    if (sshard_queue_new(&queue) != SSHARD_STATUS_OK) die("making the completion queue failed");
    payloads = malloc(opts.keys * sizeof *payloads);
    if (!payloads) die("out of memory for %" PRIu64 " payloads", opts.keys);
    for (uint64_t k = 0; k < opts.keys; k++) {
      char one[17];
      snprintf(one, sizeof one, "%016llx", (unsigned long long)k);
      for (int r = 0; r < 4; r++) memcpy(payloads[k] + 16 * r, one, 16);
      payloads[k][64] = 0;
    }
    measure(&line);
  }
  uint64_t connections = driver_connections();

  sshard_statement_free(insert_st);
  sshard_statement_free(select_st);
  sshard_prepared_free(insert_prepared);
  sshard_prepared_free(select_prepared);
  close_session(session);
  sshard_queue_free(queue);
  free(payloads);

  struct cpu proc = rusage_now();
  buf_printf(&line, "\"event\": \"result\", \"driver\": \"" DRIVER_NAME "\", \"workload\": \"%s\", "
                    "\"concurrency\": %" PRIu64 ", \"keyspace\": ",
             workload_names[opts.workload], opts.concurrency);
  buf_json_str(&line, opts.keyspace);
  buf_printf(&line, ", \"connect_s\": ");
  buf_json_num(&line, connect_s);
  buf_printf(&line, ", \"pools_full\": %s, \"driver_connections\": %" PRIu64
                    ", \"process_cpu_s\": {\"user\": ",
             full ? "true" : "false", connections);
  buf_json_num(&line, proc.user);
  buf_printf(&line, ", \"sys\": ");
  buf_json_num(&line, proc.sys);
  buf_printf(&line, "}}");
  emit(&line);
  free(line.p);
  return 0;
}
