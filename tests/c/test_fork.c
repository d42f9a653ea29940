/* fork() after the runtime started: in the child, objects made before the
 * fork answer FORKED (and are leaked, not dropped, when freed); the child
 * can build new ones and use the cluster. The parent is unaffected.
 *
 * The child reports its result through a pipe, not only its exit status:
 * under valgrind the child's leak check flags the parent's runtime, which
 * the child leaks on purpose (its only references lived on the parent's
 * worker threads, which do not exist in the child), and valgrind then
 * replaces the exit status. The parent's own leak check must be clean. */
#include <sys/wait.h>

#include "harness.h"

static int child(const char *host, const sshard_session *old_session, const sshard_queue *old_queue,
                 const sshard_future *old_future, sshard_statement *old_statement,
                 sshard_config *old_config, const sshard_result *old_result) {
  const sshard_future *f = NULL;
  CHECK_STATUS(sshard_session_execute(old_session, old_statement, &f), SSHARD_STATUS_FORKED);
  CHECK(f == NULL);
  CHECK_STATUS(sshard_session_prepare(old_session, S("SELECT 1"), &f), SSHARD_STATUS_FORKED);
  bool aware = false;
  CHECK_STATUS(sshard_session_is_shard_aware(old_session, &aware), SSHARD_STATUS_FORKED);
  CHECK_STATUS(sshard_future_wait(old_future), SSHARD_STATUS_FORKED);
  CHECK_STATUS(sshard_statement_bind_int32(old_statement, 0, 1), SSHARD_STATUS_FORKED);
  CHECK_STATUS(sshard_config_set_port(old_config, 9042), SSHARD_STATUS_FORKED);
  size_t n = 0;
  CHECK_STATUS(sshard_result_row_count(old_result, &n), SSHARD_STATUS_FORKED);
  sshard_event ev[1];
  CHECK_STATUS(sshard_queue_poll(old_queue, ev, 1, &n), SSHARD_STATUS_FORKED);
  const char *m = NULL;
  size_t mlen = 0;
  OK(sshard_last_error_message(&m, &mlen));
  CHECK(strstr(m, "fork") != NULL);

  /* Freeing old objects leaks them and says so. */
  CHECK_STATUS(sshard_session_free(old_session), SSHARD_STATUS_FORKED);
  CHECK_STATUS(sshard_queue_free(old_queue), SSHARD_STATUS_FORKED);
  CHECK_STATUS(sshard_future_free(old_future), SSHARD_STATUS_FORKED);
  CHECK_STATUS(sshard_statement_free(old_statement), SSHARD_STATUS_FORKED);
  CHECK_STATUS(sshard_config_free(old_config), SSHARD_STATUS_FORKED);
  CHECK_STATUS(sshard_result_free(old_result), SSHARD_STATUS_FORKED);

  /* New objects work: a new session with its own runtime. */
  const sshard_session *s = h_connect(host);
  CHECK_STATUS(h_query(s, "INSERT INTO forkks.kv (k, v) VALUES (2, 'child')"), SSHARD_STATUS_OK);
  sshard_statement *st = NULL;
  OK(sshard_statement_new(S("SELECT v FROM forkks.kv WHERE k = 1"), 0, &st));
  sshard_status status;
  const sshard_result *r = h_execute(s, st, &status);
  CHECK_STATUS(status, SSHARD_STATUS_OK);
  OK(sshard_result_row_count(r, &n));
  CHECK(n == 1);
  sshard_result_free(r);
  sshard_statement_free(st);
  h_close(s);
  return h_finish("test_fork (child)");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s <contact point>\n", argv[0]);
    return 2;
  }
  const char *host = argv[1];
  sshard_config *config = h_config(host);
  const sshard_session *session = h_connect(host);
  OK(h_query(session, "CREATE KEYSPACE forkks WITH replication = "
                      "{'class': 'SimpleStrategy', 'replication_factor': 1}"));
  OK(h_query(session, "CREATE TABLE forkks.kv (k int PRIMARY KEY, v text)"));
  OK(h_query(session, "INSERT INTO forkks.kv (k, v) VALUES (1, 'parent')"));
  const sshard_queue *queue = NULL;
  OK(sshard_queue_new(&queue));
  sshard_statement *st = NULL;
  OK(sshard_statement_new(S("SELECT v FROM forkks.kv WHERE k = ?"), 1, &st));
  OK(sshard_statement_bind_int32(st, 0, 1));
  sshard_status status;
  const sshard_result *result = h_execute(session, st, &status);
  CHECK_STATUS(status, SSHARD_STATUS_OK);
  const sshard_future *future = NULL;
  OK(sshard_session_execute(session, st, &future));
  OK(sshard_future_wait(future));

  int report[2];
  REQUIRE(pipe(report) == 0);
  fflush(NULL);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(report[0]);
    int rc = child(host, session, queue, future, st, config, result);
    char verdict = rc == 0 ? 'P' : 'F';
    if (write(report[1], &verdict, 1) != 1) rc = 3;
    close(report[1]);
    fflush(NULL);
    exit(rc);
  }
  close(report[1]);
  char verdict = 0;
  CHECK(read(report[0], &verdict, 1) == 1 && verdict == 'P');
  close(report[0]);
  int wstatus = 0;
  REQUIRE(waitpid(pid, &wstatus, 0) == pid);
  CHECK(WIFEXITED(wstatus));
  if (!getenv("SSHARD_TEST_VALGRIND")) CHECK(WEXITSTATUS(wstatus) == 0);

  /* The parent's objects are unaffected. */
  const sshard_result *again = h_execute(session, st, &status);
  CHECK_STATUS(status, SSHARD_STATUS_OK);
  size_t n = 0;
  OK(sshard_result_row_count(again, &n));
  CHECK(n == 1);
  sshard_result_free(again);
  CHECK_STATUS(h_query(session, "SELECT v FROM forkks.kv WHERE k = 2"), SSHARD_STATUS_OK);
  OK(sshard_result_free(result));
  OK(sshard_future_free(future));
  OK(sshard_statement_free(st));
  OK(sshard_queue_free(queue));
  OK(sshard_config_free(config));
  h_close(session);
  return h_finish("test_fork (parent)");
}
