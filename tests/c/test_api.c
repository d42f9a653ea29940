/* C API tests that need no cluster: statuses, NULL and invalid arguments,
 * builders, statements, queues (and their notify sockets), futures of a
 * refused connect. */
#include <errno.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "harness.h"

static void test_statuses_and_versions(void) {
  CHECK(strcmp(sshard_status_str(SSHARD_STATUS_OK), "OK") == 0);
  CHECK(strcmp(sshard_status_str(SSHARD_STATUS_NULL_ARGUMENT), "NULL_ARGUMENT") == 0);
  CHECK(strcmp(sshard_status_str(SSHARD_STATUS_FORKED), "FORKED") == 0);
  CHECK(strcmp(sshard_status_str(SSHARD_STATUS_SERVER_SYNTAX_ERROR), "SERVER_SYNTAX_ERROR") == 0);
  CHECK(SSHARD_STATUS_SERVER_SYNTAX_ERROR == SSHARD_STATUS_SERVER_BASE + 0x2000);
  CHECK(strcmp(sshard_status_str(12345), "UNKNOWN") == 0);
  CHECK(strcmp(sshard_version(), "0.1.0") == 0);
  CHECK(sshard_abi_version() == SSHARD_ABI_VERSION);
}

static void test_null_arguments(void) {
  /* Every _free accepts NULL. */
  OK(sshard_config_free(NULL));
  OK(sshard_statement_free(NULL));
  OK(sshard_batch_free(NULL));
  OK(sshard_builder_free(NULL));
  OK(sshard_session_free(NULL));
  OK(sshard_prepared_free(NULL));
  OK(sshard_result_free(NULL));
  OK(sshard_future_free(NULL));
  OK(sshard_queue_free(NULL));

  CHECK_STATUS(sshard_config_new(NULL), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_config_set_port(NULL, 9042), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_statement_new(S("SELECT 1"), 0, NULL), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_statement_bind_int32(NULL, 0, 1), SSHARD_STATUS_NULL_ARGUMENT);
  const sshard_future *f = NULL;
  CHECK_STATUS(sshard_session_connect(NULL, &f), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK(f == NULL);
  CHECK_STATUS(sshard_session_execute(NULL, NULL, &f), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_future_wait(NULL), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_queue_poll(NULL, NULL, 0, NULL), SSHARD_STATUS_NULL_ARGUMENT);
  size_t n = 0;
  CHECK_STATUS(sshard_result_row_count(NULL, &n), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_value_get_int32(NULL, NULL), SSHARD_STATUS_NULL_ARGUMENT);

  /* The message says which argument. */
  CHECK_STATUS(sshard_statement_new(S("x"), 0, NULL), SSHARD_STATUS_NULL_ARGUMENT);
  const char *m = NULL;
  size_t mlen = 0;
  OK(sshard_last_error_message(&m, &mlen));
  CHECK(mlen > 0 && strstr(m, "statement") != NULL);
}

static void test_config(void) {
  sshard_config *cfg = NULL;
  OK(sshard_config_new(&cfg));
  CHECK_STATUS(sshard_config_add_contact_point(cfg, "\xff\xfe", 2), SSHARD_STATUS_INVALID_UTF8);
  CHECK_STATUS(sshard_config_add_contact_point(cfg, NULL, 5), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_config_set_consistency(cfg, 77), SSHARD_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(sshard_config_set_serial_consistency(cfg, SSHARD_CONSISTENCY_ONE),
               SSHARD_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(sshard_config_set_compression(cfg, 9), SSHARD_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(sshard_config_set_local_port_range(cfg, 60000, 50000), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_config_set_compression(cfg, SSHARD_COMPRESSION_LZ4));
  OK(sshard_config_set_local_port_range(cfg, 50000, 60000));
  OK(sshard_config_set_credentials(cfg, S("user"), S("secret")));
  OK(sshard_config_set_application_name(cfg, S("test_api")));
  OK(sshard_config_set_tablet_awareness(cfg, false));
  /* No contact point: refused synchronously, no runtime started. */
  const sshard_future *f = NULL;
  CHECK_STATUS(sshard_session_connect(cfg, &f), SSHARD_STATUS_INVALID_ARGUMENT);
  CHECK(f == NULL);
  OK(sshard_config_free(cfg));
}

static void test_simple_statement_binding(void) {
  sshard_statement *st = NULL;
  OK(sshard_statement_new(S("INSERT INTO t (a, b, c) VALUES (?, ?, ?)"), 3, &st));
  size_t count = 0;
  OK(sshard_statement_value_count(st, &count));
  CHECK(count == 3);
  OK(sshard_statement_bind_int32(st, 0, 7));
  OK(sshard_statement_bind_text(st, 1, S("hello")));
  OK(sshard_statement_bind_null(st, 2));
  CHECK_STATUS(sshard_statement_bind_int32(st, 3, 7), SSHARD_STATUS_INDEX_OUT_OF_RANGE);
  CHECK_STATUS(sshard_statement_bind_text(st, 1, "\xc3", 1), SSHARD_STATUS_INVALID_UTF8);
  uint8_t u[16] = {0};
  OK(sshard_statement_bind_uuid(st, 2, u));
  CHECK_STATUS(sshard_statement_bind_uuid(st, 2, NULL), SSHARD_STATUS_NULL_ARGUMENT);
  uint8_t ip[4] = {127, 0, 0, 1};
  OK(sshard_statement_bind_inet(st, 2, ip, 4));
  CHECK_STATUS(sshard_statement_bind_inet(st, 2, ip, 3), SSHARD_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(sshard_statement_bind_time(st, 2, -1), SSHARD_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(sshard_statement_bind_duration(st, 2, 1, -1, 0), SSHARD_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(sshard_statement_bind_varint(st, 2, NULL, 0), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_statement_set_consistency(st, SSHARD_CONSISTENCY_QUORUM));
  CHECK_STATUS(sshard_statement_set_consistency(st, 42), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_statement_set_serial_consistency(st, SSHARD_CONSISTENCY_LOCAL_SERIAL));
  OK(sshard_statement_set_page_size(st, 100));
  OK(sshard_statement_set_paging_state(st, (const uint8_t *)"abc", 3));
  OK(sshard_statement_set_paging_state(st, NULL, 0));
  OK(sshard_statement_set_timestamp(st, 1700000000000000));
  OK(sshard_statement_set_idempotent(st, true));
  OK(sshard_statement_set_timeout_ms(st, 1000));

  /* Named values in a simple statement: all or none. */
  sshard_statement *named = NULL;
  OK(sshard_statement_new(S("SELECT * FROM t WHERE a = :a AND b = :b"), 2, &named));
  OK(sshard_statement_bind_int32_by_name(named, S("a"), 1));
  OK(sshard_statement_bind_int32_by_name(named, S("a"), 2)); /* same slot again */
  OK(sshard_statement_bind_int32_by_name(named, S("b"), 3));
  CHECK_STATUS(sshard_statement_bind_int32_by_name(named, S("c"), 3),
               SSHARD_STATUS_INDEX_OUT_OF_RANGE);

  /* Batches copy statements; named values are refused. */
  sshard_batch *b = NULL;
  CHECK_STATUS(sshard_batch_new(9, &b), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_batch_new(SSHARD_BATCH_TYPE_UNLOGGED, &b));
  OK(sshard_batch_add_statement(b, st));
  CHECK_STATUS(sshard_batch_add_statement(b, named), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_batch_set_consistency(b, SSHARD_CONSISTENCY_ONE));
  OK(sshard_batch_set_timestamp(b, 5));
  OK(sshard_batch_set_idempotent(b, true));
  OK(sshard_batch_set_timeout_ms(b, 10));
  OK(sshard_statement_free(st)); /* the batch keeps its copy */
  OK(sshard_batch_statement_count(b, &count));
  CHECK(count == 1);
  OK(sshard_batch_free(b));
  OK(sshard_statement_free(named));
}

static void test_builders(void) {
  sshard_builder *list = NULL, *map = NULL, *udt = NULL, *tuple = NULL;
  CHECK_STATUS(sshard_builder_new(SSHARD_TYPE_INT, &list), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_builder_new(SSHARD_TYPE_LIST, &list));
  OK(sshard_builder_append_int32(list, 1));
  OK(sshard_builder_append_int32(list, 2));
  OK(sshard_builder_new(SSHARD_TYPE_MAP, &map));
  OK(sshard_builder_append_text(map, S("k")));
  OK(sshard_builder_append_builder(map, list));
  OK(sshard_builder_new(SSHARD_TYPE_UDT, &udt));
  OK(sshard_builder_field_name(udt, S("street")));
  OK(sshard_builder_append_text(udt, S("Main")));
  CHECK_STATUS(sshard_builder_field_name(list, S("x")), SSHARD_STATUS_WRONG_STATE);
  OK(sshard_builder_new(SSHARD_TYPE_TUPLE, &tuple));
  OK(sshard_builder_append_null(tuple));
  OK(sshard_builder_append_builder(tuple, udt));
  size_t n = 0;
  OK(sshard_builder_count(tuple, &n));
  CHECK(n == 2);

  sshard_statement *st = NULL;
  OK(sshard_statement_new(S("INSERT INTO t (a) VALUES (?)"), 1, &st));
  OK(sshard_statement_bind_builder(st, 0, map));
  OK(sshard_statement_bind_builder(st, 0, tuple));
  /* A map with a dangling key. */
  OK(sshard_builder_append_int32(map, 5));
  CHECK_STATUS(sshard_statement_bind_builder(st, 0, map), SSHARD_STATUS_WRONG_STATE);
  /* NULL inside a list. */
  OK(sshard_builder_append_null(list));
  CHECK_STATUS(sshard_statement_bind_builder(st, 0, list), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_statement_free(st));
  OK(sshard_builder_free(list));
  OK(sshard_builder_free(map));
  OK(sshard_builder_free(udt));
  OK(sshard_builder_free(tuple));
}

static void test_empty_queue(void) {
  const sshard_queue *q = NULL;
  OK(sshard_queue_new(&q));
  int fd = -1;
  OK(sshard_queue_fd(q, &fd));
  CHECK(fd >= 0);
  struct pollfd p = {.fd = fd, .events = POLLIN};
  CHECK(poll(&p, 1, 0) == 0);
  sshard_event events[4];
  size_t n = 99;
  OK(sshard_queue_poll(q, events, 4, &n));
  CHECK(n == 0);
  CHECK_STATUS(sshard_queue_poll(q, NULL, 4, &n), SSHARD_STATUS_NULL_ARGUMENT);
  OK(sshard_queue_poll(q, NULL, 0, &n));
  double t0 = h_now();
  OK(sshard_queue_wait(q, events, 4, 20000, &n));
  CHECK(n == 0);
  CHECK(h_now() - t0 >= 0.015);
  OK(sshard_queue_pending(q, &n));
  CHECK(n == 0);
  OK(sshard_queue_free(q));
}

/* A connect that cannot succeed: the future fails with NO_HOSTS, through
 * wait, a queue event and the error object. */
static void test_failed_connect(void) {
  sshard_config *cfg = NULL;
  OK(sshard_config_new(&cfg));
  OK(sshard_config_add_contact_point(cfg, S("127.0.0.1")));
  OK(sshard_config_set_port(cfg, 1)); /* nothing listens on port 1 */
  OK(sshard_config_set_connect_timeout_ms(cfg, 1000));
  OK(sshard_config_set_worker_threads(cfg, 1));
  const sshard_future *f = NULL;
  OK(sshard_session_connect(cfg, &f));
  OK(sshard_config_free(cfg));
  const sshard_queue *q = NULL;
  OK(sshard_queue_new(&q));
  OK(sshard_future_set_queue(f, q, 77));
  CHECK_STATUS(sshard_future_set_queue(f, q, 78), SSHARD_STATUS_WRONG_STATE);
  sshard_status s = sshard_future_wait_timed(f, 30 * 1000 * 1000);
  CHECK(s != SSHARD_STATUS_OK && s != SSHARD_STATUS_PENDING);
  CHECK_STATUS(sshard_future_status(f), s);
  bool ready = false;
  OK(sshard_future_ready(f, &ready));
  CHECK(ready);
  sshard_future_kind kind = 0;
  OK(sshard_future_get_kind(f, &kind));
  CHECK(kind == SSHARD_FUTURE_KIND_CONNECT);
  const sshard_session *session = NULL;
  CHECK_STATUS(sshard_future_get_session(f, &session), s);
  CHECK(session == NULL);
  const sshard_result *r = NULL;
  CHECK_STATUS(sshard_future_get_result(f, &r), s);
  const sshard_error *e = NULL;
  OK(sshard_future_get_error(f, &e));
  sshard_status es = 0;
  OK(sshard_error_status(e, &es));
  CHECK(es == s);
  const char *m = NULL;
  size_t mlen = 0;
  OK(sshard_error_message(e, &m, &mlen));
  CHECK(mlen > 0);
  int32_t code = 0;
  CHECK_STATUS(sshard_error_server_code(e, &code), SSHARD_STATUS_NOT_PRESENT);

  sshard_event ev[2];
  size_t n = 0;
  OK(sshard_queue_wait(q, ev, 2, 5 * 1000 * 1000, &n));
  CHECK(n == 1);
  if (n == 1) {
    CHECK(ev[0].token == 77);
    CHECK(ev[0].status == s);
    CHECK(ev[0].kind == SSHARD_FUTURE_KIND_CONNECT);
    CHECK(ev[0].future == f); /* a new reference to the same future */
    OK(sshard_future_free(ev[0].future));
  }
  OK(sshard_queue_poll(q, ev, 2, &n));
  CHECK(n == 0);
  OK(sshard_future_free(f));
  OK(sshard_queue_free(q));
}

/* A connect to a port nobody listens on: its future fails at once. */
static const sshard_future *refused_connect(void) {
  sshard_config *cfg = NULL;
  OK(sshard_config_new(&cfg));
  OK(sshard_config_add_contact_point(cfg, S("127.0.0.1")));
  OK(sshard_config_set_port(cfg, 1));
  OK(sshard_config_set_connect_timeout_ms(cfg, 1000));
  OK(sshard_config_set_worker_threads(cfg, 1));
  const sshard_future *f = NULL;
  OK(sshard_session_connect(cfg, &f));
  OK(sshard_config_free(cfg));
  return f;
}

static int connect_unix(const char *path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Bytes readable on `fd` within `timeout_ms` (read and counted), -1 at EOF. */
static int read_bytes(int fd, int timeout_ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  if (poll(&p, 1, timeout_ms) != 1) return 0;
  char buf[64];
  ssize_t n = read(fd, buf, sizeof buf);
  return n == 0 ? -1 : (int)n;
}

/* A queue's notify socket: every connected client gets one byte per
 * empty-to-non-empty transition (and none while the queue stays non-empty),
 * a client that hung up is dropped, the file is private and goes with the
 * queue. */
static void test_notify_socket(void) {
  char dir[] = "/tmp/sshard-notify-XXXXXX";
  REQUIRE(mkdtemp(dir) != NULL);
  char path[128];
  snprintf(path, sizeof path, "%s/queue.sock", dir);
  const sshard_queue *q = NULL;
  OK(sshard_queue_new(&q));
  CHECK_STATUS(sshard_queue_notify_socket(NULL, STR(path)), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_queue_notify_socket(q, NULL, 5), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_queue_notify_socket(q, path, 0), SSHARD_STATUS_INVALID_ARGUMENT);
  char long_path[200];
  memset(long_path, 'a', sizeof long_path);
  long_path[0] = '/';
  CHECK_STATUS(sshard_queue_notify_socket(q, long_path, sizeof long_path), SSHARD_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(sshard_queue_notify_socket(q, S("/nonexistent-dir/q.sock")), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_queue_notify_socket(q, STR(path)));
  CHECK_STATUS(sshard_queue_notify_socket(q, STR(path)), SSHARD_STATUS_WRONG_STATE);
  struct stat st;
  REQUIRE(stat(path, &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 0777) == 0600);
  /* Another queue cannot take a path that exists (and leaves it alone). */
  const sshard_queue *other = NULL;
  OK(sshard_queue_new(&other));
  CHECK_STATUS(sshard_queue_notify_socket(other, STR(path)), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_queue_free(other));
  CHECK(stat(path, &st) == 0);

  int a = connect_unix(path), b = connect_unix(path);
  REQUIRE(a >= 0 && b >= 0);
  CHECK(read_bytes(a, 0) == 0);
  sshard_event ev[4];
  size_t n = 0;
  for (int round = 0; round < 2; round++) {
    const sshard_future *f1 = refused_connect(), *f2 = refused_connect();
    OK(sshard_future_set_queue(f1, q, 1));
    OK(sshard_future_set_queue(f2, q, 2));
    CHECK(read_bytes(a, 10000) == 1);
    CHECK(read_bytes(b, 10000) == 1);
    /* Both complete; the second arrives while the first waits: no byte.
     * (A future completes before its event is queued: wait for both.) */
    CHECK(sshard_future_wait_timed(f2, 10 * 1000 * 1000) != SSHARD_STATUS_PENDING);
    size_t queued = 0;
    for (double deadline = h_now() + 10; queued < 2 && h_now() < deadline; usleep(1000))
      OK(sshard_queue_pending(q, &queued));
    CHECK(queued == 2);
    OK(sshard_future_free(f1));
    OK(sshard_future_free(f2));
    size_t got = 0;
    while (got < 2) {
      OK(sshard_queue_wait(q, ev, 4, 5 * 1000 * 1000, &n));
      if (n == 0) break;
      for (size_t i = 0; i < n; i++) OK(sshard_future_free(ev[i].future));
      got += n;
    }
    CHECK(got == 2);
    CHECK(read_bytes(a, 0) == 0);
    CHECK(read_bytes(b, 0) == 0);
  }
  /* A client that hung up is dropped; the others still hear. */
  close(b);
  const sshard_future *f = refused_connect();
  OK(sshard_future_set_queue(f, q, 3));
  CHECK(read_bytes(a, 10000) == 1);
  OK(sshard_queue_wait(q, ev, 4, 10 * 1000 * 1000, &n));
  CHECK(n == 1);
  if (n == 1) OK(sshard_future_free(ev[0].future));
  OK(sshard_future_free(f));

  /* The file and the connections go with the queue. */
  OK(sshard_queue_free(q));
  CHECK(stat(path, &st) != 0 && errno == ENOENT);
  CHECK(read_bytes(a, 1000) == -1);
  close(a);
  CHECK(rmdir(dir) == 0);
}

/* Resident memory of this process in bytes (/proc/self/statm). */
static long rss_bytes(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return -1;
  if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
  fclose(f);
  return resident * sysconf(_SC_PAGESIZE);
}

/* Sizes and counts from the caller are checked against what the protocol
 * can carry before anything is allocated for them. */
static void test_sizes_are_bounded(void) {
  sshard_statement *st = NULL;
  CHECK_STATUS(sshard_statement_new(S("SELECT 1"), (size_t)1 << 40, &st), SSHARD_STATUS_INVALID_ARGUMENT);
  CHECK(st == NULL);
  CHECK_STATUS(sshard_statement_new(S("SELECT 1"), 65536, &st), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_statement_new(S("SELECT 1"), 65535, &st));
  size_t n = 0;
  OK(sshard_statement_value_count(st, &n));
  CHECK(n == 65535);
  /* A blob or text longer than a frame body: refused without reading it. */
  static const uint8_t byte = 1;
  CHECK_STATUS(sshard_statement_bind_blob(st, 0, &byte, (size_t)1 << 40), SSHARD_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(sshard_statement_bind_text(st, 0, "x", (size_t)1 << 31), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_statement_free(st));
  CHECK_STATUS(sshard_statement_new("x", (size_t)1 << 33, 0, &st), SSHARD_STATUS_INVALID_ARGUMENT);
  sshard_config *cfg = NULL;
  OK(sshard_config_new(&cfg));
  CHECK_STATUS(sshard_config_add_contact_point(cfg, "h", (size_t)1 << 40), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_config_free(cfg));
  CHECK_STATUS(sshard_log_set_buffer((size_t)1 << 40), SSHARD_STATUS_INVALID_ARGUMENT);
  /* A batch holds at most 65,535 statements. */
  sshard_batch *batch = NULL;
  OK(sshard_batch_new(SSHARD_BATCH_TYPE_UNLOGGED, &batch));
  OK(sshard_statement_new(S("INSERT INTO t (k) VALUES (1)"), 0, &st));
  const int scale = h_scale(65535);
  for (int i = 0; i < scale; i++) OK(sshard_batch_add_statement(batch, st));
  if (scale == 65535) CHECK_STATUS(sshard_batch_add_statement(batch, st), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_statement_free(st));
  OK(sshard_batch_free(batch));
}

/* Nesting is limited when binding (32 levels, as when decoding): a builder
 * nested 20,000 deep is refused with a status, never a stack overflow. */
static void test_nesting_is_bounded(void) {
  sshard_builder *inner = NULL;
  OK(sshard_builder_new(SSHARD_TYPE_LIST, &inner));
  OK(sshard_builder_append_int32(inner, 1));
  int refused_at = 0;
  for (int depth = 2; depth <= 20000 && !refused_at; depth++) {
    sshard_builder *outer = NULL;
    OK(sshard_builder_new(SSHARD_TYPE_LIST, &outer));
    sshard_status s = sshard_builder_append_builder(outer, inner);
    if (s != SSHARD_STATUS_OK) {
      CHECK_STATUS(s, SSHARD_STATUS_INVALID_ARGUMENT);
      refused_at = depth;
      OK(sshard_builder_free(outer));
      break;
    }
    OK(sshard_builder_free(inner));
    inner = outer;
  }
  CHECK(refused_at == 33);
  /* The deepest accepted value binds to a simple statement. */
  sshard_statement *st = NULL;
  OK(sshard_statement_new(S("INSERT INTO t (k, v) VALUES (1, ?)"), 1, &st));
  OK(sshard_statement_bind_builder(st, 0, inner));
  OK(sshard_statement_free(st));
  OK(sshard_builder_free(inner));
}

static void ignore_log(sshard_log_level level, const char *target, size_t target_len,
                       const char *message, size_t message_len, void *data) {
  (void)level, (void)target, (void)target_len, (void)message, (void)message_len, (void)data;
}

/* Replacing the log sinks again and again uses no more memory. */
static void test_log_sinks_can_be_replaced_forever(void) {
  const int rounds = h_scale(1000000);
  long before = rss_bytes();
  for (int i = 0; i < rounds; i++) {
    OK(sshard_log_set_buffer((size_t)(16 + i % 7)));
    OK(sshard_log_set_callback(i % 2 ? NULL : ignore_log, (void *)(intptr_t)i));
  }
  long grown = rss_bytes() - before;
  if (grown > 4L << 20) fprintf(stderr, "    RSS grew by %ld bytes\n", grown);
  CHECK(before > 0 && grown < 4L << 20);
  OK(sshard_log_set_buffer(0));
  OK(sshard_log_set_callback(NULL, NULL));
}

int main(void) {
  test_statuses_and_versions();
  test_null_arguments();
  test_config();
  test_simple_statement_binding();
  test_builders();
  test_empty_queue();
  test_failed_connect();
  test_notify_socket();
  test_sizes_are_bounded();
  test_nesting_is_bounded();
  test_log_sinks_can_be_replaced_forever();
  return h_finish("test_api");
}
