/* Several threads waiting at once on one session, in both I/O modes
 * (threaded, and caller-driven: sshard_config_set_caller_driven_io), as a
 * binding with a completion thread uses it (bindings/python: one thread
 * drains a completion queue while others wait on futures or only submit):
 *
 *   1. the queue-draining thread waits in sshard_queue_wait (200 ms at a
 *      time) while the main thread waits on the same futures itself, then
 *      while the main thread only submits and sleeps (nobody else waits);
 *   2. a queue-draining thread, a thread doing synchronous waits and a
 *      thread that only submits, all at once;
 *   3. two threads waiting, with no time limit, on one future, and on one
 *      queue (responses delayed so that both are waiting when they come).
 *
 * Every completion must reach the queue (each token once) within a
 * generous deadline, however the driving is handed between the threads. */
#include <pthread.h>
#include <stdatomic.h>

#include "harness.h"

/* Completions one queue-draining thread has seen, by token. */
struct drainer {
  const sshard_queue *queue;
  int expected;          /* tokens 0 .. expected-1 */
  unsigned char *seen;
  atomic_int received;
  atomic_int failed;
  atomic_int duplicates;
  atomic_int bad_status; /* a queue wait that did not return OK */
  atomic_int stop;
  pthread_t thread;
};

static void *drain(void *arg) {
  struct drainer *d = arg;
  sshard_event events[64];
  while (!atomic_load(&d->stop)) {
    size_t n = 0;
    sshard_status s = sshard_queue_wait(d->queue, events, 64, 200000, &n);
    if (s != SSHARD_STATUS_OK) {
      atomic_fetch_add(&d->bad_status, 1);
      break;
    }
    for (size_t i = 0; i < n; i++) {
      uint64_t t = events[i].token;
      if (t < (uint64_t)d->expected && !d->seen[t])
        d->seen[t] = 1;
      else
        atomic_fetch_add(&d->duplicates, 1);
      const sshard_result *r = NULL;
      if (events[i].status != SSHARD_STATUS_OK || sshard_future_get_result(events[i].future, &r) != SSHARD_STATUS_OK)
        atomic_fetch_add(&d->failed, 1);
      sshard_result_free(r);
      sshard_future_free(events[i].future);
      atomic_fetch_add(&d->received, 1);
    }
  }
  return NULL;
}

static void drainer_start(struct drainer *d, int expected) {
  memset(d, 0, sizeof *d);
  OK(sshard_queue_new(&d->queue));
  d->expected = expected;
  d->seen = calloc((size_t)expected, 1);
  REQUIRE(pthread_create(&d->thread, NULL, drain, d) == 0);
}

/* Waits (sleeping, never driving) until `count` completions arrived or
 * `seconds` pass; true if they all did. */
static int drainer_await(struct drainer *d, int count, double seconds) {
  double deadline = h_now() + seconds;
  while (atomic_load(&d->received) < count && h_now() < deadline) usleep(1000);
  return atomic_load(&d->received) >= count;
}

static void drainer_stop(struct drainer *d) {
  atomic_store(&d->stop, 1);
  REQUIRE(pthread_join(d->thread, NULL) == 0);
  CHECK(atomic_load(&d->bad_status) == 0);
  CHECK(atomic_load(&d->failed) == 0);
  CHECK(atomic_load(&d->duplicates) == 0);
  OK(sshard_queue_free(d->queue));
  free(d->seen);
}

/* Submits a read of key `k` and hands its completion to `q` as `token`;
 * returns the caller's reference to the future (NULL if not kept). */
static const sshard_future *submit(const sshard_session *s, const sshard_prepared *select, int k,
                                   const sshard_queue *q, uint64_t token, int keep) {
  sshard_statement *st = NULL;
  OK(sshard_prepared_bind(select, &st));
  OK(sshard_statement_bind_int32(st, 0, k));
  const sshard_future *f = NULL;
  OK(sshard_session_execute(s, st, &f));
  OK(sshard_statement_free(st));
  OK(sshard_future_set_queue(f, q, token));
  if (keep) return f;
  OK(sshard_future_free(f));
  return NULL;
}

static void test_completion_thread_with_waits_then_alone(const sshard_session *s, const sshard_prepared *select,
                                                        const char *mode) {
  const int waited = h_scale(100), queued = h_scale(50);
  struct drainer d;
  drainer_start(&d, waited + queued);
  /* The main thread waits on each future while the drainer waits on the
   * queue they all go to. */
  for (int i = 0; i < waited; i++) {
    const sshard_future *f = submit(s, select, i % 10, d.queue, (uint64_t)i, 1);
    CHECK_STATUS(sshard_future_wait(f), SSHARD_STATUS_OK);
    OK(sshard_future_free(f));
  }
  CHECK(drainer_await(&d, waited, 60));
  /* Now only the drainer waits: the main thread submits and sleeps. */
  for (int i = 0; i < queued; i++) submit(s, select, i % 10, d.queue, (uint64_t)(waited + i), 0);
  int all = drainer_await(&d, waited + queued, 60);
  if (!all)
    fprintf(stderr, "    %s: %d of %d completions reached the queue\n", mode, atomic_load(&d.received),
            waited + queued);
  CHECK(all);
  drainer_stop(&d);
}

struct syncer {
  const sshard_session *session;
  const sshard_prepared *select;
  int rounds;
  atomic_int ok;
};

static void *sync_waits(void *arg) {
  struct syncer *w = arg;
  for (int i = 0; i < w->rounds; i++) {
    sshard_statement *st = NULL;
    OK(sshard_prepared_bind(w->select, &st));
    OK(sshard_statement_bind_int32(st, 0, i % 10));
    sshard_status status;
    const sshard_result *r = h_execute(w->session, st, &status);
    if (status == SSHARD_STATUS_OK) atomic_fetch_add(&w->ok, 1);
    sshard_result_free(r);
    OK(sshard_statement_free(st));
  }
  return NULL;
}

struct submitter {
  const sshard_session *session;
  const sshard_prepared *select;
  const sshard_queue *queue;
  int count;
};

static void *submit_only(void *arg) {
  struct submitter *p = arg;
  for (int i = 0; i < p->count; i++) {
    submit(p->session, p->select, i % 10, p->queue, (uint64_t)i, 0);
    if (i % 16 == 15) usleep(500); /* spread over the other threads' waits */
  }
  return NULL;
}

static void test_drainer_sync_waiter_and_submitter_at_once(const sshard_session *s, const sshard_prepared *select,
                                                          const char *mode) {
  const int queued = h_scale(2000), rounds = h_scale(1000);
  struct drainer d;
  drainer_start(&d, queued);
  struct syncer w = {.session = s, .select = select, .rounds = rounds};
  struct submitter p = {.session = s, .select = select, .queue = d.queue, .count = queued};
  pthread_t sync_thread, submit_thread;
  REQUIRE(pthread_create(&sync_thread, NULL, sync_waits, &w) == 0);
  REQUIRE(pthread_create(&submit_thread, NULL, submit_only, &p) == 0);
  REQUIRE(pthread_join(submit_thread, NULL) == 0);
  REQUIRE(pthread_join(sync_thread, NULL) == 0);
  CHECK(atomic_load(&w.ok) == rounds);
  int all = drainer_await(&d, queued, 60);
  if (!all)
    fprintf(stderr, "    %s: %d of %d completions reached the queue\n", mode, atomic_load(&d.received), queued);
  CHECK(all);
  drainer_stop(&d);
}

/* Waits (sleeping) until *counter reaches `count`, or `seconds` pass. */
static int await_count(atomic_int *counter, int count, double seconds) {
  double deadline = h_now() + seconds;
  while (atomic_load(counter) < count && h_now() < deadline) usleep(1000);
  return atomic_load(counter) >= count;
}

/* A thread blocked for good cannot be joined: report it and stop. */
static void stuck(const char *mode, const char *what) {
  fprintf(stderr, "    %s: %s still blocked after 30 s\n", mode, what);
  h_failures++;
  exit(h_finish("test_driven_threads"));
}

/* Adds `us` microseconds to every response of the emulator's 3 nodes. */
static void delay_responses(const char *base, int us) {
  char ip[32], path[64];
  snprintf(path, sizeof path, "/admin/delay?us=%d", us);
  for (int n = 0; n < 3; n++) {
    h_node_ip(base, n, ip);
    REQUIRE(h_admin_post(ip, 9180, path) == 200);
  }
}

struct shared_future {
  const sshard_future *future;
  pthread_barrier_t *start;
  atomic_int *ok;
};

static void *wait_on_shared_future(void *arg) {
  struct shared_future *w = arg;
  pthread_barrier_wait(w->start);
  if (sshard_future_wait(w->future) == SSHARD_STATUS_OK) atomic_fetch_add(w->ok, 1);
  return NULL;
}

struct shared_queue {
  const sshard_queue *queue;
  atomic_int *received;
};

/* Takes one event at a time, waiting without a limit, until a stop token. */
static void *wait_on_shared_queue(void *arg) {
  struct shared_queue *w = arg;
  for (;;) {
    sshard_event event;
    size_t n = 0;
    if (sshard_queue_wait(w->queue, &event, 1, -1, &n) != SSHARD_STATUS_OK) return NULL;
    if (n == 0) continue;
    sshard_future_free(event.future);
    if (event.token == UINT64_MAX) return NULL;
    atomic_fetch_add(w->received, 1);
  }
}

static void test_two_threads_wait_on_one_future_and_one_queue(const sshard_session *s, const sshard_prepared *select,
                                                             const char *host, const char *mode) {
  const int rounds = h_scale(20);
  delay_responses(host, 20000);
  pthread_barrier_t start;
  REQUIRE(pthread_barrier_init(&start, NULL, 3) == 0);
  atomic_int ok = 0;
  for (int round = 0; round < rounds; round++) {
    sshard_statement *st = NULL;
    OK(sshard_prepared_bind(select, &st));
    OK(sshard_statement_bind_int32(st, 0, round % 10));
    const sshard_future *f = NULL;
    OK(sshard_session_execute(s, st, &f));
    OK(sshard_statement_free(st));
    struct shared_future w = {.future = f, .start = &start, .ok = &ok};
    pthread_t a, b;
    REQUIRE(pthread_create(&a, NULL, wait_on_shared_future, &w) == 0);
    REQUIRE(pthread_create(&b, NULL, wait_on_shared_future, &w) == 0);
    pthread_barrier_wait(&start);
    if (!await_count(&ok, 2 * (round + 1), 30)) stuck(mode, "a wait on a future another thread also waits on");
    REQUIRE(pthread_join(a, NULL) == 0 && pthread_join(b, NULL) == 0);
    OK(sshard_future_free(f));
  }
  CHECK(atomic_load(&ok) == 2 * rounds);
  pthread_barrier_destroy(&start);

  const sshard_queue *q = NULL;
  OK(sshard_queue_new(&q));
  atomic_int received = 0;
  struct shared_queue w = {.queue = q, .received = &received};
  pthread_t a, b;
  REQUIRE(pthread_create(&a, NULL, wait_on_shared_queue, &w) == 0);
  REQUIRE(pthread_create(&b, NULL, wait_on_shared_queue, &w) == 0);
  for (int round = 0; round < rounds; round++) {
    /* Both threads are waiting (the responses take 20 ms) when the two
     * completions come, and each takes one at a time. */
    submit(s, select, 1, q, (uint64_t)(2 * round), 0);
    submit(s, select, 2, q, (uint64_t)(2 * round + 1), 0);
    if (!await_count(&received, 2 * (round + 1), 30)) stuck(mode, "a wait on a queue another thread also waits on");
  }
  delay_responses(host, 0);
  submit(s, select, 1, q, UINT64_MAX, 0);
  submit(s, select, 2, q, UINT64_MAX, 0);
  REQUIRE(pthread_join(a, NULL) == 0 && pthread_join(b, NULL) == 0);
  CHECK(atomic_load(&received) == 2 * rounds);
  OK(sshard_queue_free(q));
}

static void run_mode(const char *host, bool caller_driven) {
  const char *mode = caller_driven ? "caller-driven" : "threaded";
  sshard_config *cfg = h_config(host);
  OK(sshard_config_set_caller_driven_io(cfg, caller_driven));
  OK(sshard_config_set_keyspace(cfg, S("dtks")));
  const sshard_session *s = h_connect_config(cfg);
  const sshard_prepared *select = h_prepare(s, "SELECT v FROM kv WHERE k = ?");
  test_completion_thread_with_waits_then_alone(s, select, mode);
  test_drainer_sync_waiter_and_submitter_at_once(s, select, mode);
  test_two_threads_wait_on_one_future_and_one_queue(s, select, host, mode);
  OK(sshard_prepared_free(select));
  h_close(s);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s <contact point>\n", argv[0]);
    return 2;
  }
  const sshard_session *setup = h_connect(argv[1]);
  OK(h_query(setup, "CREATE KEYSPACE dtks WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}"));
  OK(h_query(setup, "CREATE TABLE dtks.kv (k int PRIMARY KEY, v text)"));
  for (int k = 0; k < 10; k++) {
    char cql[96];
    snprintf(cql, sizeof cql, "INSERT INTO dtks.kv (k, v) VALUES (%d, 'v%d')", k, k);
    OK(h_query(setup, cql));
  }
  /* The threaded session stays open: the process has both kinds at once. */
  run_mode(argv[1], false);
  run_mode(argv[1], true);
  h_close(setup);
  return h_finish("test_driven_threads");
}
