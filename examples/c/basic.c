/* basic: a synchronous program. Connects, creates a keyspace and a table,
 * writes rows with a prepared statement, reads them back and prints them.
 *
 *   basic [contact point, default 127.0.0.1]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scylla_shard.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* Prints the status and the library's message, then exits. */
static void die(const char *what, sshard_status s) {
  const char *m = "";
  size_t n = 0;
  sshard_last_error_message(&m, &n);
  fprintf(stderr, "%s: %s: %.*s\n", what, sshard_status_str(s), (int)n, m);
  exit(1);
}

#define TRY(what, expr)                       \
  do {                                        \
    sshard_status s_ = (expr);                \
    if (s_ != SSHARD_STATUS_OK) die(what, s_); \
  } while (0)

/* Waits for a future; on failure prints its error object and exits. */
static void wait_ok(const char *what, const sshard_future *f) {
  sshard_status s = sshard_future_wait(f);
  if (s == SSHARD_STATUS_OK) return;
  const sshard_error *e = NULL;
  const char *m = "";
  size_t n = 0;
  if (sshard_future_get_error(f, &e) == SSHARD_STATUS_OK) sshard_error_message(e, &m, &n);
  fprintf(stderr, "%s: %s: %.*s\n", what, sshard_status_str(s), (int)n, m);
  exit(1);
}

static void run(const sshard_session *session, const char *cql) {
  sshard_statement *st = NULL;
  const sshard_future *f = NULL;
  TRY("statement", sshard_statement_new(cql, strlen(cql), 0, &st));
  TRY("execute", sshard_session_execute(session, st, &f));
  wait_ok(cql, f);
  sshard_future_free(f);
  sshard_statement_free(st);
}

int main(int argc, char **argv) {
  const char *host = argc > 1 ? argv[1] : "127.0.0.1";
  sshard_config *config = NULL;
  TRY("config", sshard_config_new(&config));
  TRY("contact point", sshard_config_add_contact_point(config, host, strlen(host)));
  TRY("app name", sshard_config_set_application_name(config, S("basic example")));

  const sshard_future *f = NULL;
  TRY("connect", sshard_session_connect(config, &f));
  wait_ok("connect", f);
  const sshard_session *session = NULL;
  TRY("session", sshard_future_get_session(f, &session));
  sshard_future_free(f);
  sshard_config_free(config);

  bool shard_aware = false;
  sshard_session_is_shard_aware(session, &shard_aware);
  printf("connected to %s, shard aware: %s\n", host, shard_aware ? "yes" : "no");

  run(session, "CREATE KEYSPACE IF NOT EXISTS example WITH replication = "
               "{'class': 'SimpleStrategy', 'replication_factor': 1}");
  run(session, "CREATE TABLE IF NOT EXISTS example.users (id int PRIMARY KEY, name text, score double)");

  TRY("prepare", sshard_session_prepare(session, S("INSERT INTO example.users (id, name, score) VALUES (?, ?, ?)"), &f));
  wait_ok("prepare", f);
  const sshard_prepared *insert = NULL;
  TRY("prepared", sshard_future_get_prepared(f, &insert));
  sshard_future_free(f);

  const char *names[] = {"ada", "brian", "claude", "dennis", "edsger"};
  for (int i = 0; i < 5; i++) {
    sshard_statement *st = NULL;
    TRY("bind", sshard_prepared_bind(insert, &st));
    TRY("bind id", sshard_statement_bind_int32(st, 0, i));
    TRY("bind name", sshard_statement_bind_text_by_name(st, S("name"), names[i], strlen(names[i])));
    TRY("bind score", sshard_statement_bind_double(st, 2, 10.0 * i + 0.5));
    TRY("execute", sshard_session_execute(session, st, &f));
    wait_ok("insert", f);
    sshard_future_free(f);
    sshard_statement_free(st);
  }
  sshard_prepared_free(insert);

  sshard_statement *select = NULL;
  TRY("select", sshard_statement_new(S("SELECT id, name, score FROM example.users"), 0, &select));
  TRY("execute", sshard_session_execute(session, select, &f));
  wait_ok("select", f);
  const sshard_result *result = NULL;
  TRY("result", sshard_future_get_result(f, &result));
  size_t rows = 0;
  sshard_result_row_count(result, &rows);
  for (size_t r = 0; r < rows; r++) {
    const sshard_row *row = NULL;
    const sshard_value *v = NULL;
    int32_t id = 0;
    const char *name = NULL;
    size_t name_len = 0;
    double score = 0;
    TRY("row", sshard_result_row(result, r, &row));
    TRY("id", sshard_row_value(row, 0, &v));
    TRY("id", sshard_value_get_int32(v, &id));
    TRY("name", sshard_row_value_by_name(row, S("name"), &v));
    TRY("name", sshard_value_get_text(v, &name, &name_len));
    TRY("score", sshard_row_value(row, 2, &v));
    TRY("score", sshard_value_get_double(v, &score));
    printf("  %d %.*s %.1f\n", id, (int)name_len, name, score);
  }
  printf("%zu rows\n", rows);
  sshard_result_free(result);
  sshard_future_free(f);
  sshard_statement_free(select);

  TRY("close", sshard_session_close(session, &f));
  wait_ok("close", f);
  sshard_future_free(f);
  sshard_session_free(session);
  return rows == 5 ? 0 : 1;
}
