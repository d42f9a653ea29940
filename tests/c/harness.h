/* Minimal test harness for the C tests of libscylla_shard: checks that
 * count failures and print the status name and last error message. */
#ifndef SSHARD_TEST_HARNESS_H
#define SSHARD_TEST_HARNESS_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "scylla_shard.h"

static int h_checks;
static int h_failures;

/* (pointer, length) of a string literal / of a C string. */
#define S(lit) (lit), (sizeof(lit) - 1)
#define STR(p) (p), strlen(p)

static inline void h_print_last_error(void) {
  const char *m = NULL;
  size_t n = 0;
  if (sshard_last_error_message(&m, &n) == SSHARD_STATUS_OK && n > 0)
    fprintf(stderr, "    last error: %.*s\n", (int)n, m);
}

#define CHECK(cond)                                                          \
  do {                                                                       \
    h_checks++;                                                              \
    if (!(cond)) {                                                           \
      h_failures++;                                                          \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                        \
  } while (0)

#define CHECK_STATUS(expr, expected)                                         \
  do {                                                                       \
    sshard_status s_ = (expr);                                               \
    sshard_status e_ = (expected);                                           \
    h_checks++;                                                              \
    if (s_ != e_) {                                                          \
      h_failures++;                                                          \
      fprintf(stderr, "%s:%d: %s -> %s (%d), expected %s\n", __FILE__,       \
              __LINE__, #expr, sshard_status_str(s_), s_,                     \
              sshard_status_str(e_));                                         \
      h_print_last_error();                                                  \
    }                                                                        \
  } while (0)

#define OK(expr) CHECK_STATUS(expr, SSHARD_STATUS_OK)

/* Stops the test: what follows depends on it. */
#define REQUIRE(cond)                                                        \
  do {                                                                       \
    h_checks++;                                                              \
    if (!(cond)) {                                                           \
      fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond); \
      h_print_last_error();                                                  \
      exit(2);                                                               \
    }                                                                        \
  } while (0)

static inline int h_finish(const char *name) {
  printf("%s: %d checks, %d failed\n", name, h_checks, h_failures);
  return h_failures == 0 ? 0 : 1;
}

/* Scale of the load-heavy parts: smaller under valgrind. */
static inline int h_scale(int normal) {
  const char *s = getenv("SSHARD_TEST_SMALL");
  return (s && *s == '1') ? (normal / 10 > 10 ? normal / 10 : 10) : normal;
}

static inline double h_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline sshard_config *h_config(const char *host) {
  sshard_config *cfg = NULL;
  REQUIRE(sshard_config_new(&cfg) == SSHARD_STATUS_OK);
  REQUIRE(sshard_config_add_contact_point(cfg, STR(host)) == SSHARD_STATUS_OK);
  REQUIRE(sshard_config_set_worker_threads(cfg, 2) == SSHARD_STATUS_OK);
  REQUIRE(sshard_config_set_request_timeout_ms(cfg, 20000) == SSHARD_STATUS_OK);
  /* scripts/c_tests.sh runs the suites once more with caller-driven I/O. */
  const char *driven = getenv("SSHARD_TEST_CALLER_DRIVEN");
  if (driven && *driven == '1') REQUIRE(sshard_config_set_caller_driven_io(cfg, true) == SSHARD_STATUS_OK);
  return cfg;
}

/* Connects with `cfg` (freed here); stops the test on failure. */
static inline const sshard_session *h_connect_config(sshard_config *cfg) {
  const sshard_future *f = NULL;
  REQUIRE(sshard_session_connect(cfg, &f) == SSHARD_STATUS_OK);
  sshard_config_free(cfg);
  sshard_status s = sshard_future_wait(f);
  if (s != SSHARD_STATUS_OK) fprintf(stderr, "connect: %s\n", sshard_status_str(s));
  REQUIRE(s == SSHARD_STATUS_OK);
  const sshard_session *session = NULL;
  REQUIRE(sshard_future_get_session(f, &session) == SSHARD_STATUS_OK);
  sshard_future_free(f);
  return session;
}

static inline const sshard_session *h_connect(const char *host) {
  return h_connect_config(h_config(host));
}

/* Prints a failed future's error. */
static inline void h_print_future_error(const sshard_future *f) {
  const sshard_error *e = NULL;
  if (sshard_future_get_error(f, &e) == SSHARD_STATUS_OK) {
    const char *m;
    size_t n;
    sshard_error_message(e, &m, &n);
    fprintf(stderr, "    error: %.*s\n", (int)n, m);
  }
}

/* Executes and waits; returns the result (NULL on failure, with *status). */
static inline const sshard_result *h_execute(const sshard_session *session, const sshard_statement *st,
                                      sshard_status *status) {
  const sshard_future *f = NULL;
  const sshard_result *r = NULL;
  sshard_status s = sshard_session_execute(session, st, &f);
  if (s == SSHARD_STATUS_OK) {
    s = sshard_future_wait(f);
    if (s == SSHARD_STATUS_OK)
      s = sshard_future_get_result(f, &r);
    else if (!status)
      h_print_future_error(f);
    sshard_future_free(f);
  }
  if (status) *status = s;
  return r;
}

/* Runs CQL text; returns its status (and frees the result). */
static inline sshard_status h_query(const sshard_session *session, const char *cql) {
  sshard_statement *st = NULL;
  REQUIRE(sshard_statement_new(STR(cql), 0, &st) == SSHARD_STATUS_OK);
  sshard_status s;
  const sshard_result *r = h_execute(session, st, &s);
  sshard_result_free(r);
  sshard_statement_free(st);
  return s;
}

static inline const sshard_prepared *h_prepare(const sshard_session *session, const char *cql) {
  const sshard_future *f = NULL;
  REQUIRE(sshard_session_prepare(session, STR(cql), &f) == SSHARD_STATUS_OK);
  sshard_status s = sshard_future_wait(f);
  if (s != SSHARD_STATUS_OK) {
    fprintf(stderr, "prepare %s: %s\n", cql, sshard_status_str(s));
    h_print_future_error(f);
  }
  REQUIRE(s == SSHARD_STATUS_OK);
  const sshard_prepared *p = NULL;
  REQUIRE(sshard_future_get_prepared(f, &p) == SSHARD_STATUS_OK);
  sshard_future_free(f);
  return p;
}

/* One HTTP/1.0 request to the emulator's metrics/admin endpoint; returns
 * the status (0 when it could not be made) and, with `body`, a malloc'ed
 * copy of the response body. */
static inline int h_http(const char *method, const char *ip, int port, const char *path, char **body) {
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  if (body) *body = NULL;
  if (inet_pton(AF_INET, ip, &addr.sin_addr) != 1) return 0;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int status = 0;
  size_t cap = 1 << 16, len = 0;
  char *resp = malloc(cap);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) {
    char req[512];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: %s\r\nContent-Length: 0\r\n\r\n", method, path, ip);
    if (write(fd, req, (size_t)n) == n) {
      ssize_t got;
      while ((got = read(fd, resp + len, cap - len - 1)) > 0) {
        len += (size_t)got;
        if (cap - len < 1024) resp = realloc(resp, cap *= 2);
      }
    }
  }
  close(fd);
  resp[len] = 0;
  if (len > 12) status = atoi(resp + 9); /* "HTTP/1.1 200 OK" */
  char *start = strstr(resp, "\r\n\r\n");
  if (body && start) *body = strdup(start + 4);
  free(resp);
  return status;
}

static inline int h_admin_post(const char *ip, int port, const char *path) {
  return h_http("POST", ip, port, path, NULL);
}

/* The address of node `index` (0-based) of an emulator whose first node is
 * `base` (a.b.c.d: the last byte moves). */
static inline void h_node_ip(const char *base, int index, char out[32]) {
  unsigned a, b, c, d;
  sscanf(base, "%u.%u.%u.%u", &a, &b, &c, &d);
  snprintf(out, 32, "%u.%u.%u.%u", a, b, c, d + (unsigned)index);
}

/* The sum of a Prometheus counter over every label set and every one of
 * `nodes` nodes (metrics port 9180). */
static inline unsigned long long h_emulator_counter(const char *base, int nodes, const char *metric) {
  unsigned long long total = 0;
  char ip[32];
  for (int n = 0; n < nodes; n++) {
    h_node_ip(base, n, ip);
    char *body = NULL;
    REQUIRE(h_http("GET", ip, 9180, "/metrics", &body) == 200 && body);
    size_t len = strlen(metric);
    for (char *line = body; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
      if (strncmp(line, metric, len) == 0 && (line[len] == '{' || line[len] == ' ')) {
        const char *value = strchr(line, ' ');
        if (value) total += strtoull(value + 1, NULL, 10);
      }
    }
    free(body);
  }
  return total;
}

static inline void h_close(const sshard_session *session) {
  const sshard_future *f = NULL;
  OK(sshard_session_close(session, &f));
  OK(sshard_future_wait(f));
  sshard_future_free(f);
  OK(sshard_session_free(session));
}

#endif
