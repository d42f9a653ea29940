/* callback: completions delivered to a C callback. The callback runs on a
 * library runtime thread: it reads the result, counts, and never blocks
 * (blocking calls there return SSHARD_STATUS_WOULD_DEADLOCK). The main
 * thread waits on a condition variable.
 *
 *   callback [contact point, default 127.0.0.1] [requests, default 1000]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scylla_shard.h"

#define S(lit) (lit), (sizeof(lit) - 1)

struct progress {
  pthread_mutex_t lock;
  pthread_cond_t done;
  int completed;
  int failed;
  int total;
};

static void on_complete(sshard_future *future, void *data) {
  struct progress *p = data;
  const sshard_result *result = NULL;
  int ok = sshard_future_get_result(future, &result) == SSHARD_STATUS_OK;
  sshard_result_free(result);
  pthread_mutex_lock(&p->lock);
  p->completed++;
  if (!ok) p->failed++;
  if (p->completed == p->total) pthread_cond_signal(&p->done);
  pthread_mutex_unlock(&p->lock);
}

static int wait_ok(const sshard_future *f) {
  sshard_status s = sshard_future_wait(f);
  if (s != SSHARD_STATUS_OK) fprintf(stderr, "failed: %s\n", sshard_status_str(s));
  return s == SSHARD_STATUS_OK;
}

int main(int argc, char **argv) {
  const char *host = argc > 1 ? argv[1] : "127.0.0.1";
  int total = argc > 2 ? atoi(argv[2]) : 1000;
  sshard_config *config = NULL;
  const sshard_future *f = NULL;
  const sshard_session *session = NULL;
  sshard_config_new(&config);
  sshard_config_add_contact_point(config, host, strlen(host));
  sshard_session_connect(config, &f);
  sshard_config_free(config);
  if (!wait_ok(f) || sshard_future_get_session(f, &session) != SSHARD_STATUS_OK) return 1;
  sshard_future_free(f);

  sshard_statement *ddl = NULL;
  const char *cql[] = {
      "CREATE KEYSPACE IF NOT EXISTS example WITH replication = "
      "{'class': 'SimpleStrategy', 'replication_factor': 1}",
      "CREATE TABLE IF NOT EXISTS example.events (id int PRIMARY KEY, payload blob)"};
  for (int i = 0; i < 2; i++) {
    sshard_statement_new(cql[i], strlen(cql[i]), 0, &ddl);
    sshard_session_execute(session, ddl, &f);
    if (!wait_ok(f)) return 1;
    sshard_future_free(f);
    sshard_statement_free(ddl);
  }
  sshard_session_prepare(session, S("INSERT INTO example.events (id, payload) VALUES (?, ?)"), &f);
  const sshard_prepared *insert = NULL;
  if (!wait_ok(f) || sshard_future_get_prepared(f, &insert) != SSHARD_STATUS_OK) return 1;
  sshard_future_free(f);

  struct progress p = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, total};
  sshard_statement *st = NULL;
  sshard_prepared_bind(insert, &st);
  for (int i = 0; i < total; i++) {
    uint8_t payload[8] = {(uint8_t)i, (uint8_t)(i >> 8), 1, 2, 3, 4, 5, 6};
    sshard_statement_bind_int32(st, 0, i);
    sshard_statement_bind_blob(st, 1, payload, sizeof payload);
    sshard_session_execute(session, st, &f);
    sshard_future_set_callback(f, on_complete, &p);
    sshard_future_free(f); /* the callback gets the future anyway */
  }
  pthread_mutex_lock(&p.lock);
  while (p.completed < total) pthread_cond_wait(&p.done, &p.lock);
  pthread_mutex_unlock(&p.lock);
  printf("callbacks: %d completed, %d failed\n", p.completed, p.failed);

  sshard_statement_free(st);
  sshard_prepared_free(insert);
  sshard_session_close(session, &f);
  wait_ok(f);
  sshard_future_free(f);
  sshard_session_free(session);
  return p.failed == 0 ? 0 : 1;
}
