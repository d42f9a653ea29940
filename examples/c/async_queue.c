/* async_queue: thousands of requests in flight through one completion
 * queue, driven by an epoll loop on the queue's eventfd (the pattern of an
 * event-loop program: libuv, asyncio, nginx...). Writes `total` rows with
 * a prepared statement keeping up to `window` in flight, then reads them
 * all back the same way and checks them.
 *
 *   async_queue [contact point, default 127.0.0.1] [total, default 20000] [window, default 4000]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "scylla_shard.h"

#define S(lit) (lit), (sizeof(lit) - 1)

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const sshard_future *wait_or_die(const sshard_future *f, const char *what) {
  sshard_status s = sshard_future_wait(f);
  if (s != SSHARD_STATUS_OK) {
    fprintf(stderr, "%s: %s\n", what, sshard_status_str(s));
    exit(1);
  }
  return f;
}

static const sshard_prepared *prepare(const sshard_session *session, const char *cql) {
  const sshard_future *f = NULL;
  const sshard_prepared *p = NULL;
  sshard_session_prepare(session, cql, strlen(cql), &f);
  sshard_future_get_prepared(wait_or_die(f, cql), &p);
  sshard_future_free(f);
  return p;
}

/* Runs `total` executions of `prepared` bound to key i, at most `window`
 * in flight; the token of a request is its key. Returns failures. */
static int pump(const sshard_session *session, const sshard_queue *queue, int epfd,
                const sshard_prepared *prepared, int total, int window, int reading,
                int *max_in_flight) {
  int submitted = 0, completed = 0, failed = 0, in_flight = 0;
  sshard_statement *st = NULL;
  sshard_prepared_bind(prepared, &st);
  sshard_event events[512];
  char value[32];
  while (completed < total) {
    while (submitted < total && in_flight < window) {
      const sshard_future *f = NULL;
      sshard_statement_bind_int32(st, 0, submitted);
      if (!reading) {
        int n = snprintf(value, sizeof value, "value-%d", submitted);
        sshard_statement_bind_text(st, 1, value, (size_t)n);
      }
      if (sshard_session_execute(session, st, &f) != SSHARD_STATUS_OK) exit(1);
      sshard_future_set_queue(f, queue, (uint64_t)submitted);
      sshard_future_free(f);
      submitted++;
      in_flight++;
    }
    if (in_flight > *max_in_flight) *max_in_flight = in_flight;
    struct epoll_event ev;
    if (epoll_wait(epfd, &ev, 1, 5000) <= 0) continue; /* eventfd readable: completions wait */
    size_t n = 0;
    do {
      sshard_queue_poll(queue, events, 512, &n);
      for (size_t i = 0; i < n; i++) {
        if (events[i].status != SSHARD_STATUS_OK) {
          failed++;
        } else if (reading) {
          const sshard_result *r = NULL;
          const sshard_value *v = NULL;
          const char *text = NULL;
          size_t len = 0;
          int expected_len = snprintf(value, sizeof value, "value-%d", (int)events[i].token);
          if (sshard_future_get_result(events[i].future, &r) != SSHARD_STATUS_OK ||
              sshard_result_value(r, 0, 0, &v) != SSHARD_STATUS_OK ||
              sshard_value_get_text(v, &text, &len) != SSHARD_STATUS_OK ||
              len != (size_t)expected_len || memcmp(text, value, len) != 0)
            failed++;
          sshard_result_free(r);
        }
        sshard_future_free(events[i].future);
      }
      completed += (int)n;
      in_flight -= (int)n;
    } while (n == 512);
  }
  sshard_statement_free(st);
  return failed;
}

int main(int argc, char **argv) {
  const char *host = argc > 1 ? argv[1] : "127.0.0.1";
  int total = argc > 2 ? atoi(argv[2]) : 20000;
  int window = argc > 3 ? atoi(argv[3]) : 4000;
  sshard_config *config = NULL;
  const sshard_future *f = NULL;
  const sshard_session *session = NULL;
  sshard_config_new(&config);
  sshard_config_add_contact_point(config, host, strlen(host));
  sshard_session_connect(config, &f);
  sshard_config_free(config);
  sshard_future_get_session(wait_or_die(f, "connect"), &session);
  sshard_future_free(f);

  const char *ddl[] = {
      "CREATE KEYSPACE IF NOT EXISTS example WITH replication = "
      "{'class': 'SimpleStrategy', 'replication_factor': 1}",
      "CREATE TABLE IF NOT EXISTS example.kv (k int PRIMARY KEY, v text)"};
  for (int i = 0; i < 2; i++) {
    sshard_statement *st = NULL;
    sshard_statement_new(ddl[i], strlen(ddl[i]), 0, &st);
    sshard_session_execute(session, st, &f);
    wait_or_die(f, ddl[i]);
    sshard_future_free(f);
    sshard_statement_free(st);
  }
  const sshard_prepared *insert = prepare(session, "INSERT INTO example.kv (k, v) VALUES (?, ?)");
  const sshard_prepared *select = prepare(session, "SELECT v FROM example.kv WHERE k = ?");

  const sshard_queue *queue = NULL;
  int fd = -1;
  sshard_queue_new(&queue);
  sshard_queue_fd(queue, &fd);
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);

  int max_in_flight = 0;
  double t0 = now();
  int failed = pump(session, queue, epfd, insert, total, window, 0, &max_in_flight);
  double t1 = now();
  failed += pump(session, queue, epfd, select, total, window, 1, &max_in_flight);
  double t2 = now();
  printf("writes: %d in %.2fs (%.0f/s), reads: %d in %.2fs (%.0f/s), max in flight: %d, failed: %d\n",
         total, t1 - t0, total / (t1 - t0), total, t2 - t1, total / (t2 - t1), max_in_flight, failed);

  close(epfd);
  sshard_queue_free(queue);
  sshard_prepared_free(insert);
  sshard_prepared_free(select);
  sshard_session_close(session, &f);
  wait_or_die(f, "close");
  sshard_future_free(f);
  sshard_session_free(session);
  return failed == 0 ? 0 : 1;
}
