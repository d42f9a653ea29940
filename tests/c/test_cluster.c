/* C API tests against an emulated cluster (address in argv[1]): connect,
 * prepare/execute, every type round trip, paging, batches, server errors,
 * completion queue + eventfd + epoll, callbacks, close with requests in
 * flight, metrics, logging. */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>

#include "harness.h"

static const sshard_session *session;
static const char *base_ip;
static atomic_int log_records;

static void on_log(sshard_log_level level, const char *target, size_t target_len,
                   const char *message, size_t message_len, void *data) {
  (void)level;
  (void)target;
  (void)target_len;
  (void)message;
  (void)message_len;
  if (data == &log_records) atomic_fetch_add(&log_records, 1);
}

static void test_connect_and_schema(const char *host) {
  OK(sshard_log_set_level(SSHARD_LOG_LEVEL_INFO));
  OK(sshard_log_set_callback(on_log, &log_records));
  OK(sshard_log_set_buffer(64));
  sshard_config *cfg = h_config(host);
  OK(sshard_config_set_connections_per_shard(cfg, 1));
  OK(sshard_config_set_local_dc(cfg, S("datacenter1")));
  OK(sshard_config_set_local_rack(cfg, S("rack1")));
  OK(sshard_config_set_dc_failover(cfg, true));
  OK(sshard_config_set_shard_aware_port(cfg, true));
  OK(sshard_config_set_page_size(cfg, 5000));
  OK(sshard_config_set_application_name(cfg, S("test_cluster")));
  OK(sshard_config_set_application_version(cfg, S("1.0")));
  OK(sshard_config_set_heartbeat_interval_ms(cfg, 10000));
  OK(sshard_config_set_request_timeout_ms(cfg, 20000));
  OK(sshard_config_set_consistency(cfg, SSHARD_CONSISTENCY_ONE));
  OK(sshard_config_set_compression(cfg, SSHARD_COMPRESSION_LZ4));
  const sshard_future *cf = NULL;
  OK(sshard_session_connect(cfg, &cf));
  OK(sshard_config_free(cfg));
  OK(sshard_future_wait(cf));
  OK(sshard_future_get_session(cf, &session));
  OK(sshard_future_free(cf));
  REQUIRE(session != NULL);
  bool aware = false;
  OK(sshard_session_is_shard_aware(session, &aware));
  CHECK(aware);
  CHECK(atomic_load(&log_records) > 0); /* "session connected" */
  char buf[256];
  size_t len = 0;
  sshard_log_level level = 0;
  OK(sshard_log_poll(&level, buf, sizeof buf, &len));
  CHECK(len > 0 && level >= SSHARD_LOG_LEVEL_ERROR && level <= SSHARD_LOG_LEVEL_INFO);
  OK(sshard_log_set_callback(NULL, NULL));
  OK(sshard_log_set_buffer(0));
  OK(sshard_log_set_level(SSHARD_LOG_LEVEL_WARN));

  OK(h_query(session, "CREATE KEYSPACE ctest WITH replication = "
                      "{'class': 'SimpleStrategy', 'replication_factor': 2}"));
  const sshard_future *f = NULL;
  OK(sshard_session_use_keyspace(session, S("ctest"), &f));
  OK(sshard_future_wait(f));
  OK(sshard_future_free(f));
  OK(h_query(session, "CREATE TYPE addr (street text, no int)"));
  OK(h_query(session,
             "CREATE TABLE all_types (id int PRIMARY KEY, a ascii, b bigint, bl blob, bo boolean, "
             "d decimal, db double, f float, i int, ts timestamp, u uuid, t text, vi varint, "
             "tu timeuuid, ip inet, dt date, tm time, si smallint, ti tinyint, du duration, "
             "l list<int>, s set<text>, m map<text, int>, tp tuple<int, text>, ud frozen<addr>)"));
  OK(h_query(session, "CREATE TABLE counters (id int PRIMARY KEY, c counter)"));
  OK(h_query(session,
             "CREATE TABLE nested (id int PRIMARY KEY, tp frozen<tuple<boolean, tinyint, smallint, "
             "bigint, float, double, blob, uuid, inet, date, time, timestamp, varint, decimal>>, "
             "ds list<duration>, c int, x text)"));
  OK(h_query(session, "CREATE TABLE kv (k int PRIMARY KEY, v text)"));
  OK(h_query(session, "CREATE TABLE wide (p int, c int, v text, PRIMARY KEY (p, c))"));
}

/* A DDL result says what changed; other results are no schema change. */
static void test_schema_change_results(void) {
  const char *p[4] = {0};
  size_t n[4] = {0};
  sshard_statement *st = NULL;
  OK(sshard_statement_new(S("CREATE TABLE IF NOT EXISTS ddl_probe (k int PRIMARY KEY)"), 0, &st));
  sshard_status s;
  const sshard_result *r = h_execute(session, st, &s);
  OK(s);
  REQUIRE(r != NULL);
  sshard_result_kind kind = 0;
  OK(sshard_result_get_kind(r, &kind));
  CHECK(kind == SSHARD_RESULT_KIND_SCHEMA_CHANGE);
  CHECK_STATUS(sshard_result_get_kind(r, NULL), SSHARD_STATUS_NULL_ARGUMENT);
  OK(sshard_result_schema_change(r, &p[0], &n[0], &p[1], &n[1], &p[2], &n[2], &p[3], &n[3]));
  CHECK(n[0] == 7 && memcmp(p[0], "CREATED", 7) == 0);
  CHECK(n[1] == 5 && memcmp(p[1], "TABLE", 5) == 0);
  CHECK(n[2] == 5 && memcmp(p[2], "ctest", 5) == 0);
  CHECK(n[3] == 9 && memcmp(p[3], "ddl_probe", 9) == 0);
  CHECK_STATUS(sshard_result_schema_change(r, NULL, &n[0], &p[1], &n[1], &p[2], &n[2], &p[3], &n[3]),
               SSHARD_STATUS_NULL_ARGUMENT);
  sshard_result_free(r);
  sshard_statement_free(st);
  OK(sshard_statement_new(S("SELECT k FROM ddl_probe"), 0, &st));
  r = h_execute(session, st, &s);
  OK(s);
  REQUIRE(r != NULL);
  OK(sshard_result_get_kind(r, &kind));
  CHECK(kind == SSHARD_RESULT_KIND_ROWS);
  const char *before = p[0];
  CHECK_STATUS(sshard_result_schema_change(r, &p[0], &n[0], &p[1], &n[1], &p[2], &n[2], &p[3], &n[3]),
               SSHARD_STATUS_NOT_PRESENT);
  CHECK(p[0] == before); /* untouched on failure */
  sshard_result_free(r);
  sshard_statement_free(st);
  const char *kinds[][2] = {{"USE ctest", "3"}, {"INSERT INTO kv (k, v) VALUES (1, 'x')", "1"},
                            {"DROP TABLE ddl_probe", "5"}};
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    OK(sshard_statement_new(STR(kinds[i][0]), 0, &st));
    r = h_execute(session, st, &s);
    OK(s);
    REQUIRE(r != NULL);
    OK(sshard_result_get_kind(r, &kind));
    CHECK(kind == (sshard_result_kind)atoi(kinds[i][1]));
    sshard_result_free(r);
    sshard_statement_free(st);
  }
}

static const uint8_t UUID4[16] = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x4d, 0xef,
                                  0x80, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07};
static const uint8_t UUID1[16] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x11, 0xef,
                                  0x80, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07};
static const uint8_t IP6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
static const uint8_t VARINT[9] = {0x01, 0, 0, 0, 0, 0, 0, 0, 0}; /* 2^64 */
static const uint8_t UNSCALED[2] = {0xcf, 0xc7};                 /* -12345 */

/* The value of column `name` of `row`. */
static const sshard_value *col(const sshard_row *row, const char *name) {
  const sshard_value *v = NULL;
  OK(sshard_row_value_by_name(row, STR(name), &v));
  return v;
}

static void test_every_type(void) {
  const sshard_prepared *ins = h_prepare(
      session,
      "INSERT INTO all_types (id, a, b, bl, bo, d, db, f, i, ts, u, t, vi, tu, ip, dt, tm, si, "
      "ti, du, l, s, m, tp, ud) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
      "?, ?, ?, ?, ?, ?)");
  size_t n = 0;
  OK(sshard_prepared_parameter_count(ins, &n));
  CHECK(n == 25);
  const char *name;
  size_t name_len;
  OK(sshard_prepared_parameter_name(ins, 1, &name, &name_len));
  CHECK(name_len == 1 && name[0] == 'a');
  const sshard_data_type *dt = NULL;
  sshard_type kind = 0;
  OK(sshard_prepared_parameter_data_type(ins, 20, &dt));
  OK(sshard_data_type_kind(dt, &kind));
  CHECK(kind == SSHARD_TYPE_LIST);
  bool lwt = true;
  OK(sshard_prepared_is_lwt(ins, &lwt));
  CHECK(!lwt);

  sshard_statement *st = NULL;
  OK(sshard_prepared_bind(ins, &st));
  OK(sshard_statement_bind_int32(st, 0, 1));
  OK(sshard_statement_bind_text(st, 1, S("ascii!")));
  CHECK_STATUS(sshard_statement_bind_text(st, 1, S("\xc5\xbc")), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_statement_bind_int64_by_name(st, S("b"), -9000000000LL));
  OK(sshard_statement_bind_blob(st, 3, (const uint8_t *)"\x00\x01\xff", 3));
  OK(sshard_statement_bind_bool(st, 4, true));
  OK(sshard_statement_bind_decimal(st, 5, UNSCALED, 2, 3));
  OK(sshard_statement_bind_double(st, 6, 2.5));
  OK(sshard_statement_bind_float_by_name(st, S("F"), -1.25f)); /* unquoted: case-insensitive */
  OK(sshard_statement_bind_int32(st, 8, -42));
  OK(sshard_statement_bind_timestamp(st, 9, 1700000000123LL));
  OK(sshard_statement_bind_uuid(st, 10, UUID4));
  OK(sshard_statement_bind_text(st, 11, S("za\xc5\xbc\xc3\xb3\xc5\x82\xc4\x87")));
  OK(sshard_statement_bind_varint(st, 12, VARINT, sizeof VARINT));
  CHECK_STATUS(sshard_statement_bind_uuid(st, 13, UUID4), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_statement_bind_uuid(st, 13, UUID1));
  OK(sshard_statement_bind_inet(st, 14, IP6, 16));
  OK(sshard_statement_bind_date(st, 15, -3));
  OK(sshard_statement_bind_time(st, 16, 3723000000001LL));
  OK(sshard_statement_bind_int16(st, 17, -300));
  OK(sshard_statement_bind_int8(st, 18, -7));
  OK(sshard_statement_bind_duration(st, 19, 1, 2, 3000000000LL));

  sshard_builder *list = NULL, *set = NULL, *map = NULL, *tuple = NULL, *udt = NULL;
  OK(sshard_builder_new(SSHARD_TYPE_LIST, &list));
  for (int i = 1; i <= 3; i++) OK(sshard_builder_append_int32(list, i * 10));
  OK(sshard_statement_bind_builder(st, 20, list));
  OK(sshard_builder_new(SSHARD_TYPE_SET, &set));
  OK(sshard_builder_append_text(set, S("x")));
  OK(sshard_builder_append_text(set, S("y")));
  OK(sshard_statement_bind_builder(st, 21, set));
  OK(sshard_builder_new(SSHARD_TYPE_MAP, &map));
  OK(sshard_builder_append_text(map, S("one")));
  OK(sshard_builder_append_int32(map, 1));
  OK(sshard_builder_append_text(map, S("two")));
  OK(sshard_builder_append_int32(map, 2));
  OK(sshard_statement_bind_builder(st, 22, map));
  OK(sshard_builder_new(SSHARD_TYPE_TUPLE, &tuple));
  OK(sshard_builder_append_int32(tuple, 5));
  OK(sshard_builder_append_null(tuple));
  OK(sshard_statement_bind_builder(st, 23, tuple));
  OK(sshard_builder_new(SSHARD_TYPE_UDT, &udt));
  OK(sshard_builder_field_name(udt, S("no")));
  OK(sshard_builder_append_int32(udt, 12));
  OK(sshard_builder_field_name(udt, S("street")));
  OK(sshard_builder_append_text(udt, S("Main St")));
  OK(sshard_statement_bind_builder_by_name(st, S("ud"), udt));

  /* Type checks against the markers. */
  CHECK_STATUS(sshard_statement_bind_int32(st, 2, 1), SSHARD_STATUS_TYPE_MISMATCH);
  CHECK_STATUS(sshard_statement_bind_text(st, 0, S("x")), SSHARD_STATUS_TYPE_MISMATCH);
  CHECK_STATUS(sshard_statement_bind_builder(st, 21, map), SSHARD_STATUS_TYPE_MISMATCH);
  CHECK_STATUS(sshard_statement_bind_builder(st, 22, list), SSHARD_STATUS_TYPE_MISMATCH);
  sshard_builder *bad_list = NULL;
  OK(sshard_builder_new(SSHARD_TYPE_LIST, &bad_list));
  OK(sshard_builder_append_text(bad_list, S("not an int")));
  CHECK_STATUS(sshard_statement_bind_builder(st, 20, bad_list), SSHARD_STATUS_TYPE_MISMATCH);
  CHECK_STATUS(sshard_statement_bind_int32(st, 25, 1), SSHARD_STATUS_INDEX_OUT_OF_RANGE);
  CHECK_STATUS(sshard_statement_bind_int32_by_name(st, S("nope"), 1), SSHARD_STATUS_NAME_NOT_FOUND);
  sshard_builder_free(bad_list);
  sshard_builder_free(list);
  sshard_builder_free(set);
  sshard_builder_free(map);
  sshard_builder_free(tuple);
  sshard_builder_free(udt);

  sshard_status s;
  const sshard_result *r = h_execute(session, st, &s);
  CHECK_STATUS(s, SSHARD_STATUS_OK);
  bool has_rows = true;
  OK(sshard_result_has_rows(r, &has_rows));
  CHECK(!has_rows);
  sshard_result_free(r);
  /* A second row with every column NULL but the key. */
  OK(sshard_statement_free(st));
  OK(sshard_prepared_bind(ins, &st));
  OK(sshard_statement_bind_int32(st, 0, 2));
  for (int i = 1; i < 25; i++) OK(sshard_statement_bind_null(st, (size_t)i));
  r = h_execute(session, st, &s);
  CHECK_STATUS(s, SSHARD_STATUS_OK);
  sshard_result_free(r);
  OK(sshard_statement_free(st));
  OK(sshard_prepared_free(ins));

  const sshard_prepared *sel = h_prepare(session, "SELECT * FROM all_types WHERE id = ?");
  OK(sshard_prepared_bind(sel, &st));
  OK(sshard_statement_bind_int32(st, 0, 1));
  r = h_execute(session, st, &s);
  REQUIRE(s == SSHARD_STATUS_OK && r != NULL);
  size_t rows = 0, cols = 0;
  OK(sshard_result_row_count(r, &rows));
  OK(sshard_result_column_count(r, &cols));
  CHECK(rows == 1 && cols == 25);
  const sshard_row *row = NULL;
  OK(sshard_result_row(r, 0, &row));
  const sshard_value *v = NULL;
#define COL(name) (v = col(row, name))
  const char *p = NULL;
  const uint8_t *bp = NULL;
  size_t plen = 0;
  int8_t i8 = 0;
  int16_t i16 = 0;
  int32_t i32 = 0, i32b = 0;
  int64_t i64 = 0;
  float fl = 0;
  double db = 0;
  bool bo = false;
  uint8_t u[16];
  OK(sshard_value_get_int32(COL("id"), &i32));
  CHECK(i32 == 1);
  OK(sshard_value_get_text(COL("a"), &p, &plen));
  CHECK(plen == 6 && memcmp(p, "ascii!", 6) == 0);
  OK(sshard_value_get_int64(COL("b"), &i64));
  CHECK(i64 == -9000000000LL);
  OK(sshard_value_get_blob(COL("bl"), &bp, &plen));
  CHECK(plen == 3 && memcmp(bp, "\x00\x01\xff", 3) == 0);
  OK(sshard_value_get_bool(COL("bo"), &bo));
  CHECK(bo);
  OK(sshard_value_get_decimal(COL("d"), &bp, &plen, &i32));
  CHECK(plen == 2 && memcmp(bp, UNSCALED, 2) == 0 && i32 == 3);
  OK(sshard_value_get_double(COL("db"), &db));
  CHECK(db == 2.5);
  OK(sshard_value_get_float(COL("f"), &fl));
  CHECK(fl == -1.25f);
  OK(sshard_value_get_int32(COL("i"), &i32));
  CHECK(i32 == -42);
  OK(sshard_value_get_timestamp(COL("ts"), &i64));
  CHECK(i64 == 1700000000123LL);
  OK(sshard_value_get_uuid(COL("u"), u));
  CHECK(memcmp(u, UUID4, 16) == 0);
  OK(sshard_value_get_text(COL("t"), &p, &plen));
  CHECK(plen == strlen("za\xc5\xbc\xc3\xb3\xc5\x82\xc4\x87") &&
        memcmp(p, "za\xc5\xbc\xc3\xb3\xc5\x82\xc4\x87", plen) == 0);
  OK(sshard_value_get_varint(COL("vi"), &bp, &plen));
  CHECK(plen == sizeof VARINT && memcmp(bp, VARINT, plen) == 0);
  OK(sshard_value_get_uuid(COL("tu"), u));
  CHECK(memcmp(u, UUID1, 16) == 0);
  uint8_t addr[16];
  OK(sshard_value_get_inet(COL("ip"), addr, &plen));
  CHECK(plen == 16 && memcmp(addr, IP6, 16) == 0);
  OK(sshard_value_get_date(COL("dt"), &i32));
  CHECK(i32 == -3);
  OK(sshard_value_get_time(COL("tm"), &i64));
  CHECK(i64 == 3723000000001LL);
  OK(sshard_value_get_int16(COL("si"), &i16));
  CHECK(i16 == -300);
  OK(sshard_value_get_int8(COL("ti"), &i8));
  CHECK(i8 == -7);
  OK(sshard_value_get_duration(COL("du"), &i32, &i32b, &i64));
  CHECK(i32 == 1 && i32b == 2 && i64 == 3000000000LL);

  /* Collections, tuples, UDTs. */
  const sshard_value *e = NULL, *k = NULL;
  OK(sshard_value_element_count(COL("l"), &n));
  CHECK(n == 3);
  OK(sshard_value_element(v, 2, &e));
  OK(sshard_value_get_int32(e, &i32));
  CHECK(i32 == 30);
  CHECK_STATUS(sshard_value_element(v, 3, &e), SSHARD_STATUS_INDEX_OUT_OF_RANGE);
  OK(sshard_value_element_count(COL("s"), &n));
  CHECK(n == 2);
  OK(sshard_value_element(v, 0, &e));
  OK(sshard_value_get_text(e, &p, &plen));
  CHECK(plen == 1 && p[0] == 'x');
  OK(sshard_value_element_count(COL("m"), &n));
  CHECK(n == 2);
  OK(sshard_value_map_entry(v, 1, &k, &e));
  OK(sshard_value_get_text(k, &p, &plen));
  OK(sshard_value_get_int32(e, &i32));
  CHECK(plen == 3 && memcmp(p, "two", 3) == 0 && i32 == 2);
  CHECK_STATUS(sshard_value_element(v, 0, &e), SSHARD_STATUS_TYPE_MISMATCH);
  OK(sshard_value_element_count(COL("tp"), &n));
  CHECK(n == 2);
  OK(sshard_value_element(v, 0, &e));
  OK(sshard_value_get_int32(e, &i32));
  CHECK(i32 == 5);
  OK(sshard_value_element(v, 1, &e));
  OK(sshard_value_is_null(e, &bo));
  CHECK(bo);
  CHECK_STATUS(sshard_value_get_text(e, &p, &plen), SSHARD_STATUS_NULL_VALUE);
  OK(sshard_value_element_count(COL("ud"), &n));
  CHECK(n == 2);
  OK(sshard_value_field(v, 0, &p, &plen, &e));
  CHECK(plen == 6 && memcmp(p, "street", 6) == 0);
  OK(sshard_value_get_text(e, &p, &plen));
  CHECK(plen == 7 && memcmp(p, "Main St", 7) == 0);
  OK(sshard_value_field_by_name(v, S("no"), &e));
  OK(sshard_value_get_int32(e, &i32));
  CHECK(i32 == 12);
  CHECK_STATUS(sshard_value_field_by_name(v, S("zip"), &e), SSHARD_STATUS_NAME_NOT_FOUND);
  OK(sshard_value_data_type(v, &dt));
  OK(sshard_data_type_name(dt, &p, &plen));
  CHECK(plen == 4 && memcmp(p, "addr", 4) == 0);

  /* Getter type checks. */
  CHECK_STATUS(sshard_value_get_int32(COL("t"), &i32), SSHARD_STATUS_TYPE_MISMATCH);
  CHECK_STATUS(sshard_value_get_int64(COL("i"), &i64), SSHARD_STATUS_TYPE_MISMATCH);
  CHECK_STATUS(sshard_value_get_text(COL("bl"), &p, &plen), SSHARD_STATUS_TYPE_MISMATCH);
  OK(sshard_value_get_bytes(COL("i"), &bp, &plen));
  CHECK(plen == 4);
  CHECK_STATUS(sshard_row_value(row, 25, &v), SSHARD_STATUS_INDEX_OUT_OF_RANGE);
  CHECK_STATUS(sshard_row_value_by_name(row, S("nope"), &v), SSHARD_STATUS_NAME_NOT_FOUND);
  OK(sshard_result_column_index(r, S("TS"), &n));
  OK(sshard_result_column_name(r, n, &p, &plen));
  CHECK(plen == 2 && memcmp(p, "ts", 2) == 0);
  OK(sshard_result_column_type(r, n, &kind));
  CHECK(kind == SSHARD_TYPE_TIMESTAMP);
  sshard_result_free(r);

  /* The all-NULL row. */
  OK(sshard_statement_bind_int32(st, 0, 2));
  r = h_execute(session, st, &s);
  REQUIRE(s == SSHARD_STATUS_OK && r != NULL);
  OK(sshard_result_row(r, 0, &row));
  for (size_t c = 1; c < 25; c++) {
    OK(sshard_row_value(row, c, &v));
    OK(sshard_value_is_null(v, &bo));
    CHECK(bo);
  }
  CHECK_STATUS(sshard_value_get_uuid(COL("u"), u), SSHARD_STATUS_NULL_VALUE);
  CHECK_STATUS(sshard_value_element_count(COL("l"), &n), SSHARD_STATUS_NULL_VALUE);
  sshard_result_free(r);
#undef COL
  OK(sshard_statement_free(st));
  OK(sshard_prepared_free(sel));

  /* Counters. */
  const sshard_prepared *inc = h_prepare(session, "UPDATE counters SET c = c + ? WHERE id = ?");
  OK(sshard_prepared_bind(inc, &st));
  OK(sshard_statement_bind_counter(st, 0, 5));
  OK(sshard_statement_bind_int32(st, 1, 1));
  r = h_execute(session, st, &s);
  CHECK_STATUS(s, SSHARD_STATUS_OK);
  sshard_result_free(r);
  OK(sshard_statement_bind_int64(st, 0, -2));
  r = h_execute(session, st, &s);
  CHECK_STATUS(s, SSHARD_STATUS_OK);
  sshard_result_free(r);
  OK(sshard_statement_free(st));
  OK(sshard_prepared_free(inc));
  OK(sshard_statement_new(S("SELECT c FROM counters WHERE id = 1"), 0, &st));
  r = h_execute(session, st, &s);
  REQUIRE(s == SSHARD_STATUS_OK && r != NULL);
  OK(sshard_result_value(r, 0, 0, &v));
  OK(sshard_value_get_counter(v, &i64));
  CHECK(i64 == 3);
  sshard_result_free(r);
  OK(sshard_statement_free(st));
}

/* Every native type as a builder element, through the server and back. */
static void test_nested_elements(void) {
  const sshard_prepared *ins =
      h_prepare(session, "INSERT INTO nested (id, tp, ds, c, x) VALUES (?, ?, ?, ?, ?)");
  sshard_builder *tp = NULL, *ds = NULL;
  OK(sshard_builder_new(SSHARD_TYPE_TUPLE, &tp));
  OK(sshard_builder_append_bool(tp, true));
  OK(sshard_builder_append_int8(tp, -8));
  OK(sshard_builder_append_int16(tp, -16));
  OK(sshard_builder_append_int64(tp, -64));
  OK(sshard_builder_append_float(tp, 0.5f));
  OK(sshard_builder_append_double(tp, -0.25));
  OK(sshard_builder_append_blob(tp, (const uint8_t *)"\x01\x02", 2));
  OK(sshard_builder_append_uuid(tp, UUID4));
  const uint8_t ip4[4] = {10, 1, 2, 3};
  OK(sshard_builder_append_inet(tp, ip4, 4));
  OK(sshard_builder_append_date(tp, 19000));
  OK(sshard_builder_append_time(tp, 1000));
  OK(sshard_builder_append_timestamp(tp, -1000));
  OK(sshard_builder_append_varint(tp, VARINT, sizeof VARINT));
  OK(sshard_builder_append_decimal(tp, UNSCALED, 2, -1));
  OK(sshard_builder_new(SSHARD_TYPE_LIST, &ds));
  OK(sshard_builder_append_duration(ds, 0, 0, 5));
  OK(sshard_builder_append_duration(ds, -1, -2, -3));
  sshard_builder *bad = NULL;
  OK(sshard_builder_new(SSHARD_TYPE_LIST, &bad));
  OK(sshard_builder_append_counter(bad, 1));
  sshard_statement *st = NULL;
  OK(sshard_prepared_bind(ins, &st));
  OK(sshard_statement_bind_int32_by_name(st, S("id"), 3));
  OK(sshard_statement_bind_builder_by_name(st, S("tp"), tp));
  CHECK_STATUS(sshard_statement_bind_builder_by_name(st, S("ds"), bad), SSHARD_STATUS_TYPE_MISMATCH);
  OK(sshard_statement_bind_builder(st, 2, ds));
  OK(sshard_statement_bind_null_by_name(st, S("c")));
  OK(sshard_statement_bind_unset_by_name(st, S("x")));
  OK(sshard_statement_set_consistency(st, SSHARD_CONSISTENCY_QUORUM));
  OK(sshard_statement_set_idempotent(st, true));
  OK(sshard_statement_set_timestamp(st, 1700000000000000LL));
  OK(sshard_statement_set_timeout_ms(st, 10000));
  sshard_status s;
  const sshard_result *r = h_execute(session, st, &s);
  CHECK_STATUS(s, SSHARD_STATUS_OK);
  sshard_result_free(r);
  OK(sshard_statement_free(st));
  sshard_builder_free(tp);
  sshard_builder_free(ds);
  sshard_builder_free(bad);
  OK(sshard_prepared_free(ins));

  OK(sshard_statement_new(S("SELECT tp, ds, c, x FROM nested WHERE id = ?"), 1, &st));
  OK(sshard_statement_bind_int32(st, 0, 3));
  r = h_execute(session, st, &s);
  REQUIRE(s == SSHARD_STATUS_OK && r != NULL);
  const sshard_value *v = NULL, *e = NULL;
  const sshard_data_type *dt = NULL, *sub = NULL;
  size_t n = 0;
  OK(sshard_result_column_data_type(r, 0, &dt));
  OK(sshard_data_type_sub_type_count(dt, &n));
  CHECK(n == 14);
  sshard_type kind = 0;
  OK(sshard_data_type_sub_type(dt, 13, &sub));
  OK(sshard_data_type_kind(sub, &kind));
  CHECK(kind == SSHARD_TYPE_DECIMAL);
  OK(sshard_result_value(r, 0, 0, &v));
  bool b = false;
  int8_t i8 = 0;
  int16_t i16 = 0;
  int32_t i32 = 0, j32 = 0;
  int64_t i64 = 0;
  float f = 0;
  double d = 0;
  const uint8_t *bp = NULL;
  size_t len = 0;
  uint8_t buf[16];
  OK(sshard_value_element(v, 0, &e));
  OK(sshard_value_get_bool(e, &b));
  CHECK(b);
  OK(sshard_value_element(v, 1, &e));
  OK(sshard_value_get_int8(e, &i8));
  CHECK(i8 == -8);
  OK(sshard_value_element(v, 2, &e));
  OK(sshard_value_get_int16(e, &i16));
  CHECK(i16 == -16);
  OK(sshard_value_element(v, 3, &e));
  OK(sshard_value_get_int64(e, &i64));
  CHECK(i64 == -64);
  OK(sshard_value_element(v, 4, &e));
  OK(sshard_value_get_float(e, &f));
  CHECK(f == 0.5f);
  OK(sshard_value_element(v, 5, &e));
  OK(sshard_value_get_double(e, &d));
  CHECK(d == -0.25);
  OK(sshard_value_element(v, 6, &e));
  OK(sshard_value_get_blob(e, &bp, &len));
  CHECK(len == 2 && bp[1] == 2);
  OK(sshard_value_element(v, 7, &e));
  OK(sshard_value_get_uuid(e, buf));
  CHECK(memcmp(buf, UUID4, 16) == 0);
  OK(sshard_value_element(v, 8, &e));
  OK(sshard_value_get_inet(e, buf, &len));
  CHECK(len == 4 && memcmp(buf, ip4, 4) == 0);
  OK(sshard_value_element(v, 9, &e));
  OK(sshard_value_get_date(e, &i32));
  CHECK(i32 == 19000);
  OK(sshard_value_element(v, 10, &e));
  OK(sshard_value_get_time(e, &i64));
  CHECK(i64 == 1000);
  OK(sshard_value_element(v, 11, &e));
  OK(sshard_value_get_timestamp(e, &i64));
  CHECK(i64 == -1000);
  OK(sshard_value_element(v, 12, &e));
  OK(sshard_value_get_varint(e, &bp, &len));
  CHECK(len == sizeof VARINT && memcmp(bp, VARINT, len) == 0);
  OK(sshard_value_element(v, 13, &e));
  OK(sshard_value_get_decimal(e, &bp, &len, &i32));
  CHECK(len == 2 && memcmp(bp, UNSCALED, 2) == 0 && i32 == -1);
  OK(sshard_result_value(r, 0, 1, &v));
  OK(sshard_value_type(v, &kind));
  CHECK(kind == SSHARD_TYPE_LIST);
  OK(sshard_value_element_count(v, &n));
  CHECK(n == 2);
  OK(sshard_value_element(v, 1, &e));
  OK(sshard_value_get_duration(e, &i32, &j32, &i64));
  CHECK(i32 == -1 && j32 == -2 && i64 == -3);
  OK(sshard_result_value(r, 0, 2, &v));
  OK(sshard_value_is_null(v, &b));
  CHECK(b);
  OK(sshard_result_value(r, 0, 3, &v));
  OK(sshard_value_is_null(v, &b));
  CHECK(b); /* unset on insert: never written */
  /* Where it ran. */
  const char *p = NULL;
  uint32_t shard = 99;
  OK(sshard_result_coordinator(r, &p, &len));
  CHECK(len > 0);
  OK(sshard_result_shard(r, &shard));
  CHECK(shard < 4);
  CHECK_STATUS(sshard_result_keyspace(r, &p, &len), SSHARD_STATUS_NOT_PRESENT);
  sshard_result_free(r);
  OK(sshard_statement_free(st));
}

static void test_paging_and_batches(void) {
  const sshard_prepared *ins = h_prepare(session, "INSERT INTO wide (p, c, v) VALUES (?, ?, ?)");
  /* A logged batch of prepared statements plus a simple one. */
  sshard_batch *b = NULL;
  OK(sshard_batch_new(SSHARD_BATCH_TYPE_LOGGED, &b));
  for (int c = 0; c < 24; c++) {
    sshard_statement *st = NULL;
    OK(sshard_prepared_bind(ins, &st));
    OK(sshard_statement_bind_int32(st, 0, 7));
    OK(sshard_statement_bind_int32(st, 1, c));
    OK(sshard_statement_bind_text(st, 2, S("row")));
    OK(sshard_batch_add_statement(b, st));
    OK(sshard_statement_free(st));
  }
  sshard_statement *simple = NULL;
  OK(sshard_statement_new(S("INSERT INTO wide (p, c, v) VALUES (?, ?, ?)"), 3, &simple));
  OK(sshard_statement_bind_int32(simple, 0, 7));
  OK(sshard_statement_bind_int32(simple, 1, 24));
  OK(sshard_statement_bind_text(simple, 2, S("simple")));
  OK(sshard_batch_add_statement(b, simple));
  OK(sshard_statement_free(simple));
  OK(sshard_batch_set_consistency(b, SSHARD_CONSISTENCY_QUORUM));
  OK(sshard_batch_set_serial_consistency(b, SSHARD_CONSISTENCY_SERIAL));
  const sshard_future *f = NULL;
  OK(sshard_session_batch(session, b, &f));
  OK(sshard_future_wait(f));
  sshard_future_kind kind = 0;
  OK(sshard_future_get_kind(f, &kind));
  CHECK(kind == SSHARD_FUTURE_KIND_BATCH);
  OK(sshard_future_free(f));
  OK(sshard_batch_free(b));
  OK(sshard_batch_new(SSHARD_BATCH_TYPE_UNLOGGED, &b));
  CHECK_STATUS(sshard_session_batch(session, b, &f), SSHARD_STATUS_INVALID_ARGUMENT);
  OK(sshard_batch_free(b));
  OK(sshard_prepared_free(ins));

  /* Paging: 25 rows, pages of 10. */
  sshard_statement *st = NULL;
  OK(sshard_statement_new(S("SELECT c, v FROM wide WHERE p = ?"), 1, &st));
  OK(sshard_statement_bind_int32(st, 0, 7));
  OK(sshard_statement_set_page_size(st, 10));
  int pages = 0, total = 0, next_c = 0;
  bool more = true;
  while (more && pages < 10) {
    sshard_status s;
    const sshard_result *r = h_execute(session, st, &s);
    REQUIRE(s == SSHARD_STATUS_OK && r != NULL);
    size_t rows = 0;
    OK(sshard_result_row_count(r, &rows));
    for (size_t i = 0; i < rows; i++) {
      const sshard_value *v = NULL;
      int32_t c = -1;
      OK(sshard_result_value(r, i, 0, &v));
      OK(sshard_value_get_int32(v, &c));
      CHECK(c == next_c);
      next_c++;
    }
    total += (int)rows;
    pages++;
    OK(sshard_result_has_more_pages(r, &more));
    const uint8_t *ps = NULL;
    size_t ps_len = 0;
    OK(sshard_result_paging_state(r, &ps, &ps_len));
    CHECK(more == (ps_len > 0));
    OK(sshard_statement_set_paging_state_from_result(st, r));
    sshard_result_free(r);
  }
  CHECK(total == 25);
  CHECK(pages >= 3);

  /* Automatic paging: each result fetches its own next page. */
  OK(sshard_statement_set_paging_state(st, NULL, 0));
  sshard_status s;
  const sshard_result *r = h_execute(session, st, &s);
  REQUIRE(s == SSHARD_STATUS_OK && r != NULL);
  int auto_total = 0, auto_pages = 0;
  for (;;) {
    size_t rows = 0;
    OK(sshard_result_row_count(r, &rows));
    for (size_t i = 0; i < rows; i++) {
      const sshard_value *v = NULL;
      int32_t c = -1;
      OK(sshard_result_value(r, i, 0, &v));
      OK(sshard_value_get_int32(v, &c));
      CHECK(c == auto_total);
      auto_total++;
    }
    auto_pages++;
    OK(sshard_result_has_more_pages(r, &more));
    const sshard_future *f = NULL;
    if (!more) {
      CHECK_STATUS(sshard_session_next_page(session, r, &f), SSHARD_STATUS_WRONG_STATE);
      sshard_result_free(r);
      break;
    }
    OK(sshard_session_next_page(session, r, &f));
    sshard_result_free(r);
    r = NULL;
    OK(sshard_future_wait(f));
    OK(sshard_future_get_result(f, &r));
    OK(sshard_future_free(f));
    REQUIRE(auto_pages < 10);
  }
  CHECK(auto_total == 25);
  CHECK(auto_pages == pages);
  CHECK_STATUS(sshard_session_next_page(session, NULL, NULL), SSHARD_STATUS_NULL_ARGUMENT);
  OK(sshard_statement_free(st));
}

static void test_server_errors(void) {
  sshard_statement *st = NULL;
  OK(sshard_statement_new(S("SELEKT nonsense"), 0, &st));
  const sshard_future *f = NULL;
  OK(sshard_session_execute(session, st, &f));
  CHECK_STATUS(sshard_future_wait(f), SSHARD_STATUS_SERVER_SYNTAX_ERROR);
  const sshard_error *e = NULL;
  OK(sshard_future_get_error(f, &e));
  int32_t code = 0;
  OK(sshard_error_server_code(e, &code));
  CHECK(code == 0x2000);
  const char *m = NULL;
  size_t mlen = 0;
  OK(sshard_error_message(e, &m, &mlen));
  CHECK(mlen > 0);
  const sshard_result *r = NULL;
  CHECK_STATUS(sshard_future_get_result(f, &r), SSHARD_STATUS_SERVER_SYNTAX_ERROR);
  OK(sshard_future_free(f));
  OK(sshard_statement_free(st));

  CHECK_STATUS(h_query(session, "SELECT * FROM no_such_table"), SSHARD_STATUS_SERVER_INVALID);

  OK(sshard_statement_new(S("CREATE TABLE kv (k int PRIMARY KEY)"), 0, &st));
  OK(sshard_session_execute(session, st, &f));
  CHECK_STATUS(sshard_future_wait(f), SSHARD_STATUS_SERVER_ALREADY_EXISTS);
  OK(sshard_future_get_error(f, &e));
  OK(sshard_error_keyspace(e, &m, &mlen));
  CHECK(mlen == 5 && memcmp(m, "ctest", 5) == 0);
  OK(sshard_error_table(e, &m, &mlen));
  CHECK(mlen == 2 && memcmp(m, "kv", 2) == 0);
  OK(sshard_future_free(f));
  OK(sshard_statement_free(st));

  const sshard_future *pf = NULL;
  OK(sshard_session_prepare(session, S("INSERT INTO nowhere (a) VALUES (?)"), &pf));
  CHECK_STATUS(sshard_future_wait(pf), SSHARD_STATUS_SERVER_INVALID);
  const sshard_prepared *p = NULL;
  CHECK_STATUS(sshard_future_get_prepared(pf, &p), SSHARD_STATUS_SERVER_INVALID);
  OK(sshard_future_free(pf));
}

/* Thousands of prepared writes in flight through one queue, drained from
 * an epoll loop on its eventfd; every token exactly once. */
static void test_queue_epoll(void) {
  const int total = h_scale(3000);
  const int window = h_scale(1000);
  const sshard_prepared *ins = h_prepare(session, "INSERT INTO kv (k, v) VALUES (?, ?)");
  const sshard_queue *q = NULL;
  OK(sshard_queue_new(&q));
  int fd = -1;
  OK(sshard_queue_fd(q, &fd));
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 1};
  REQUIRE(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0);
  unsigned char *seen = calloc((size_t)total, 1);
  sshard_statement *st = NULL;
  OK(sshard_prepared_bind(ins, &st));
  int submitted = 0, completed = 0, failed = 0, dup = 0, in_flight = 0, max_in_flight = 0;
  double deadline = h_now() + 120;
  sshard_event events[256];
  while (completed < total && h_now() < deadline) {
    while (submitted < total && in_flight < window) {
      OK(sshard_statement_bind_int32(st, 0, submitted));
      OK(sshard_statement_bind_text(st, 1, S("queued")));
      const sshard_future *f = NULL;
      OK(sshard_session_execute(session, st, &f));
      OK(sshard_future_set_queue(f, q, (uint64_t)submitted));
      OK(sshard_future_free(f));
      submitted++;
      in_flight++;
    }
    if (in_flight > max_in_flight) max_in_flight = in_flight;
    struct epoll_event out;
    int nready = epoll_wait(ep, &out, 1, 1000);
    if (nready <= 0) continue;
    size_t n = 0;
    do {
      OK(sshard_queue_poll(q, events, 256, &n));
      for (size_t i = 0; i < n; i++) {
        uint64_t t = events[i].token;
        if (t < (uint64_t)total && !seen[t]) seen[t] = 1; else dup++;
        if (events[i].status != SSHARD_STATUS_OK) failed++;
        CHECK(events[i].kind == SSHARD_FUTURE_KIND_EXECUTE);
        const sshard_result *r = NULL;
        if (events[i].status == SSHARD_STATUS_OK) OK(sshard_future_get_result(events[i].future, &r));
        sshard_result_free(r);
        OK(sshard_future_free(events[i].future));
      }
      completed += (int)n;
      in_flight -= (int)n;
    } while (n == 256);
  }
  CHECK(completed == total);
  CHECK(failed == 0);
  CHECK(dup == 0);
  CHECK(max_in_flight >= window);
  /* Drained: the eventfd is no longer readable, nothing more arrives. */
  struct pollfd pfd = {.fd = fd, .events = POLLIN};
  CHECK(poll(&pfd, 1, 50) == 0);
  size_t pending = 1;
  OK(sshard_queue_pending(q, &pending));
  CHECK(pending == 0);
  close(ep);
  free(seen);
  OK(sshard_statement_free(st));
  OK(sshard_queue_free(q));
  OK(sshard_prepared_free(ins));
}

/* Many statements started by one call into one queue: every token once,
 * the rows written; the statements may be freed at once; a NULL entry
 * starts none and names its index; NULL arguments return a status. */
static void test_execute_many(void) {
  const int total = h_scale(600);
  const int base = 100000;
  const sshard_prepared *ins = h_prepare(session, "INSERT INTO kv (k, v) VALUES (?, ?)");
  const sshard_queue *q = NULL;
  OK(sshard_queue_new(&q));
  sshard_statement **sts = calloc((size_t)total, sizeof *sts);
  uint64_t *tokens = calloc((size_t)total, sizeof *tokens);
  unsigned char *seen = calloc((size_t)total, 1);
  REQUIRE(sts && tokens && seen);
  char value[32];
  for (int i = 0; i < total; i++) {
    OK(sshard_prepared_bind(ins, &sts[i]));
    OK(sshard_statement_bind_int32(sts[i], 0, base + i));
    snprintf(value, sizeof value, "many-%d", i);
    OK(sshard_statement_bind_text(sts[i], 1, STR(value)));
    tokens[i] = (uint64_t)(1000 + i);
  }

  /* A NULL in the middle: nothing starts, the error names the entry. */
  sshard_statement *null_at = sts[2];
  sts[2] = NULL;
  CHECK_STATUS(sshard_session_execute_many(session, (const sshard_statement *const *)sts,
                                           (size_t)total, q, tokens),
               SSHARD_STATUS_NULL_ARGUMENT);
  const char *m = NULL;
  size_t mlen = 0;
  OK(sshard_last_error_message(&m, &mlen));
  CHECK(mlen >= 13 && memcmp(m, "statements[2]", 13) == 0);
  sts[2] = null_at;
  CHECK_STATUS(sshard_session_execute_many(NULL, (const sshard_statement *const *)sts, 1, q,
                                           tokens),
               SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_session_execute_many(session, NULL, 1, q, tokens),
               SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_session_execute_many(session, (const sshard_statement *const *)sts, 1,
                                           NULL, tokens),
               SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_session_execute_many(session, (const sshard_statement *const *)sts, 1, q,
                                           NULL),
               SSHARD_STATUS_NULL_ARGUMENT);
  OK(sshard_session_execute_many(session, NULL, 0, q, NULL)); /* nothing to do */

  OK(sshard_session_execute_many(session, (const sshard_statement *const *)sts, (size_t)total,
                                 q, tokens));
  /* The requests hold what they need: the statements can go now. */
  for (int i = 0; i < total; i++) OK(sshard_statement_free(sts[i]));
  int completed = 0, failed = 0, stray = 0;
  double deadline = h_now() + 60;
  sshard_event events[128];
  while (completed + stray < total && h_now() < deadline) {
    size_t n = 0;
    OK(sshard_queue_wait(q, events, 128, 200000, &n));
    for (size_t i = 0; i < n; i++) {
      uint64_t t = events[i].token - 1000;
      if (events[i].token >= 1000 && t < (uint64_t)total && !seen[t]) {
        seen[t] = 1;
        completed++;
      } else {
        stray++; /* a token twice, or one of the refused calls' */
      }
      if (events[i].status != SSHARD_STATUS_OK) failed++;
      CHECK(events[i].kind == SSHARD_FUTURE_KIND_EXECUTE);
      OK(sshard_future_free(events[i].future));
    }
  }
  CHECK(completed == total);
  CHECK(failed == 0);
  CHECK(stray == 0);
  /* Nothing else was started: no event follows (the refused calls). */
  size_t late = 0;
  OK(sshard_queue_wait(q, events, 128, 100000, &late));
  CHECK(late == 0);

  /* The rows are there, with their values. */
  sshard_statement *sel = NULL;
  OK(sshard_statement_new(S("SELECT v FROM kv WHERE k = ?"), 1, &sel));
  for (int i = 0; i < total; i += total / 7 + 1) {
    OK(sshard_statement_bind_int32(sel, 0, base + i));
    const sshard_future *f = NULL;
    OK(sshard_session_execute(session, sel, &f));
    OK(sshard_future_wait(f));
    const sshard_result *r = NULL;
    OK(sshard_future_get_result(f, &r));
    size_t rows = 0;
    OK(sshard_result_row_count(r, &rows));
    CHECK(rows == 1);
    if (rows == 1) {
      const sshard_row *row = NULL;
      OK(sshard_result_row(r, 0, &row));
      const char *text = NULL;
      size_t len = 0;
      OK(sshard_value_get_text(col(row, "v"), &text, &len));
      snprintf(value, sizeof value, "many-%d", i);
      CHECK(len == strlen(value) && memcmp(text, value, len) == 0);
    }
    sshard_result_free(r);
    OK(sshard_future_free(f));
  }
  OK(sshard_statement_free(sel));
  free(seen);
  free(tokens);
  free(sts);
  OK(sshard_queue_free(q));
  OK(sshard_prepared_free(ins));
}

/* A row's raw cells in one call: bytes and lengths, -1 and NULL for a NULL
 * cell; a wrong count, row or NULL array is refused. */
static void test_row_cells(void) {
  OK(h_query(session, "INSERT INTO kv (k, v) VALUES (424242, null)"));
  sshard_statement *st = NULL;
  OK(sshard_statement_new(S("SELECT k, v FROM kv WHERE k = 424242"), 0, &st));
  sshard_status s = SSHARD_STATUS_OK;
  const sshard_result *r = h_execute(session, st, &s);
  REQUIRE(s == SSHARD_STATUS_OK && r != NULL);
  size_t rows = 0;
  OK(sshard_result_row_count(r, &rows));
  REQUIRE(rows == 1);
  const uint8_t *bytes[2] = {NULL, NULL};
  int32_t lengths[2] = {0, 0};
  OK(sshard_result_row_cells(r, 0, bytes, lengths, 2));
  CHECK(lengths[0] == 4 && bytes[0] != NULL);
  if (lengths[0] == 4 && bytes[0] != NULL) {
    uint32_t k = ((uint32_t)bytes[0][0] << 24) | ((uint32_t)bytes[0][1] << 16) |
                 ((uint32_t)bytes[0][2] << 8) | bytes[0][3];
    CHECK(k == 424242);
  }
  CHECK(lengths[1] == -1 && bytes[1] == NULL);
  CHECK_STATUS(sshard_result_row_cells(r, 0, bytes, lengths, 1), SSHARD_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(sshard_result_row_cells(r, 1, bytes, lengths, 2),
               SSHARD_STATUS_INDEX_OUT_OF_RANGE);
  CHECK_STATUS(sshard_result_row_cells(r, 0, NULL, lengths, 2), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_result_row_cells(r, 0, bytes, NULL, 2), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_result_row_cells(NULL, 0, bytes, lengths, 2), SSHARD_STATUS_NULL_ARGUMENT);
  sshard_result_free(r);
  OK(sshard_statement_free(st));
}

/* Callbacks: run on a runtime thread, may read the result, must not block
 * (blocking calls there return WOULD_DEADLOCK). */
static atomic_int cb_done, cb_ok, cb_deadlock_refused, cb_on_main;
static pthread_t main_thread;
static void on_done(sshard_future *f, void *data) {
  (void)data;
  if (pthread_equal(pthread_self(), main_thread)) {
    atomic_fetch_add(&cb_on_main, 1); /* completed before the callback was set */
  } else if (sshard_future_wait(f) == SSHARD_STATUS_WOULD_DEADLOCK) {
    atomic_fetch_add(&cb_deadlock_refused, 1);
  }
  const sshard_result *r = NULL;
  if (sshard_future_status(f) == SSHARD_STATUS_OK && sshard_future_get_result(f, &r) == SSHARD_STATUS_OK) {
    atomic_fetch_add(&cb_ok, 1);
    sshard_result_free(r);
  }
  atomic_fetch_add(&cb_done, 1);
}

static void test_callbacks(void) {
  main_thread = pthread_self();
  const int total = h_scale(200);
  sshard_statement *st = NULL;
  OK(sshard_statement_new(S("SELECT v FROM kv WHERE k = ?"), 1, &st));
  for (int i = 0; i < total; i++) {
    OK(sshard_statement_bind_int32(st, 0, i));
    const sshard_future *f = NULL;
    OK(sshard_session_execute(session, st, &f));
    OK(sshard_future_set_callback(f, on_done, NULL));
    CHECK_STATUS(sshard_future_set_callback(f, on_done, NULL), SSHARD_STATUS_WRONG_STATE);
    OK(sshard_future_free(f));
  }
  double deadline = h_now() + 60;
  while (atomic_load(&cb_done) < total && h_now() < deadline) usleep(1000);
  CHECK(atomic_load(&cb_done) == total);
  CHECK(atomic_load(&cb_ok) == total);
  /* Every callback on a runtime thread had its blocking wait refused. */
  CHECK(atomic_load(&cb_deadlock_refused) + atomic_load(&cb_on_main) == total);
  /* A callback set on a completed future runs at once, on this thread. */
  OK(sshard_statement_bind_int32(st, 0, 0));
  const sshard_future *f = NULL;
  OK(sshard_session_execute(session, st, &f));
  OK(sshard_future_wait(f));
  int before = atomic_load(&cb_done);
  OK(sshard_future_set_callback(f, on_done, NULL));
  CHECK(atomic_load(&cb_done) == before + 1);
  CHECK_STATUS(sshard_future_set_callback(f, NULL, NULL), SSHARD_STATUS_NULL_ARGUMENT);
  OK(sshard_future_free(f));
  OK(sshard_statement_free(st));
}

static void test_metrics(void) {
  static sshard_metrics m, after;
  memset(&m, 0xff, sizeof m);
  OK(sshard_session_get_metrics(session, &m, sizeof m));
  CHECK(m.struct_size == sizeof m);
  CHECK(m.version == SSHARD_METRICS_VERSION);
  CHECK(m.shard_aware);
  CHECK(m.node_count == 3);
  CHECK(m.connections >= 3);
  CHECK(m.requests > 0);
  CHECK(m.in_flight == 0);
  CHECK(m.latency.count == m.requests);
  CHECK(m.latency.p50_us <= m.latency.p99_us && m.latency.p99_us <= m.latency.max_us);
  CHECK(m.errors == m.timeouts + m.errors_server_timeout + m.errors_unavailable + m.errors_overloaded +
                        m.errors_server_other + m.errors_connection + m.errors_no_host + m.errors_client);

  /* Ten good requests and one the server refuses: counted by kind. */
  for (int i = 0; i < 10; i++) OK(h_query(session, "SELECT v FROM ctest.kv WHERE k = 1"));
  CHECK(h_query(session, "SELEC nonsense") == SSHARD_STATUS_SERVER_SYNTAX_ERROR);
  OK(sshard_session_get_metrics(session, &after, sizeof after));
  CHECK(after.requests == m.requests + 11);
  CHECK(after.latency.count == m.latency.count + 11);
  CHECK(after.errors == m.errors + 1);
  CHECK(after.errors_server_other == m.errors_server_other + 1);

  /* A snapshot: every node and shard at one moment, unchanged while read. */
  const sshard_metrics_snapshot *snap = NULL;
  OK(sshard_session_get_metrics_snapshot(session, &snap));
  static sshard_metrics totals;
  OK(sshard_metrics_snapshot_totals(snap, &totals, sizeof totals));
  CHECK(totals.requests == after.requests);
  size_t nodes = 0;
  OK(sshard_metrics_snapshot_node_count(snap, &nodes));
  CHECK(nodes == 3);
  uint64_t requests = 0, connections = 0;
  for (size_t i = 0; i < nodes; i++) {
    sshard_node_metrics n;
    memset(&n, 0xff, sizeof n);
    OK(sshard_metrics_snapshot_node(snap, i, &n, sizeof n));
    CHECK(n.struct_size == sizeof n);
    CHECK(n.nr_shards == 4 && n.shard_count == 4);
    CHECK(n.up && n.shard_aware_port_in_use);
    CHECK(strlen(n.address) == n.address_len && n.address_len > 0);
    CHECK(strcmp(n.datacenter, "datacenter1") == 0 && n.datacenter_len == 11);
    CHECK(strlen(n.rack) == n.rack_len && n.rack_len > 0);
    uint64_t per_shard = 0, conns = 0;
    for (uint32_t sh = 0; sh < n.shard_count; sh++) {
      per_shard += n.requests_per_shard[sh];
      conns += n.connections_per_shard[sh];
      CHECK(n.connections_per_shard[sh] >= 1);
    }
    CHECK(n.requests == per_shard + n.requests_other);
    CHECK(n.connections == conns);
    /* Every attempt was timed; the pool opened its shards through the
     * shard-aware port after the first connection. */
    CHECK(n.latency.count == n.requests);
    CHECK(n.opened_shard_aware >= n.nr_shards - 1 && n.opened_regular >= 1);
    requests += n.requests;
    connections += n.connections;
  }
  CHECK(connections == totals.connections);
  CHECK(requests > 0);
  sshard_node_metrics n;
  CHECK_STATUS(sshard_metrics_snapshot_node(snap, nodes, &n, sizeof n), SSHARD_STATUS_INDEX_OUT_OF_RANGE);
  CHECK_STATUS(sshard_metrics_snapshot_node(snap, 0, NULL, sizeof n), SSHARD_STATUS_NULL_ARGUMENT);

  const char *text = NULL;
  size_t len = 0;
  OK(sshard_metrics_snapshot_prometheus(snap, &text, &len));
  CHECK(text != NULL && strlen(text) == len);
  char line[64];
  snprintf(line, sizeof line, "\nscylla_shard_requests_total %llu\n", (unsigned long long)totals.requests);
  CHECK(strstr(text, line) != NULL);
  CHECK(strstr(text, "# TYPE scylla_shard_request_latency_seconds summary") != NULL);
  CHECK(strstr(text, "scylla_shard_connections{node=\"") != NULL);
  CHECK(strstr(text, "datacenter=\"datacenter1\"") != NULL);

  /* More requests do not change the snapshot. */
  OK(h_query(session, "SELECT v FROM ctest.kv WHERE k = 1"));
  OK(sshard_metrics_snapshot_totals(snap, &totals, sizeof totals));
  CHECK(totals.requests == after.requests);
  OK(sshard_metrics_snapshot_free(snap));
  OK(sshard_metrics_snapshot_free(NULL));

  /* An older, smaller struct gets its leading fields only. */
  struct {
    size_t struct_size;
    uint32_t version;
  } small = {0, 0};
  OK(sshard_session_get_metrics(session, (sshard_metrics *)(void *)&small, sizeof small));
  CHECK(small.struct_size == sizeof small && small.version == SSHARD_METRICS_VERSION);
  CHECK_STATUS(sshard_session_get_metrics(session, &m, 2), SSHARD_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(sshard_session_get_metrics(session, NULL, sizeof m), SSHARD_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sshard_session_get_metrics_snapshot(session, NULL), SSHARD_STATUS_NULL_ARGUMENT);
}

/* A tablet keyspace: the session learns tablets from the server's
 * payloads (visible in the metrics), and a second pass over the same keys
 * brings no new payload because every request now reaches its owner. */
static void test_tablets(void) {
  OK(h_query(session, "CREATE KEYSPACE ctablets WITH replication = "
                      "{'class': 'NetworkTopologyStrategy', 'datacenter1': 1} "
                      "AND tablets = {'enabled': true, 'initial': 8}"));
  OK(h_query(session, "CREATE TABLE ctablets.t (k int PRIMARY KEY, v int)"));
  const sshard_prepared *ins = h_prepare(session, "INSERT INTO ctablets.t (k, v) VALUES (?, ?)");
  REQUIRE(ins != NULL);
  sshard_statement *st = NULL;
  OK(sshard_prepared_bind(ins, &st));
  static sshard_metrics m;
  uint64_t payloads[2] = {0, 0};
  for (int pass = 0; pass < 2; pass++) {
    for (int k = 0; k < 1000; k++) {
      OK(sshard_statement_bind_int32(st, 0, k));
      OK(sshard_statement_bind_int32(st, 1, pass));
      sshard_status s;
      const sshard_result *r = h_execute(session, st, &s);
      CHECK(s == SSHARD_STATUS_OK);
      sshard_result_free(r);
    }
    OK(sshard_session_get_metrics(session, &m, sizeof m));
    payloads[pass] = m.tablet_payloads;
  }
  CHECK(m.tablet_tables == 1);
  CHECK(m.tablets >= 1 && m.tablets <= 8);
  CHECK(payloads[0] >= 1 && payloads[0] <= 8);
  CHECK(payloads[1] == payloads[0]);
  OK(sshard_statement_free(st));
  OK(sshard_prepared_free(ins));
}

/* Routable requests the emulator saw reach a non-replica node or a
 * replica's wrong shard, over all 3 nodes. */
static unsigned long long misroutes(void) {
  return h_emulator_counter(base_ip, 3, "emulator_misrouted_node_total") +
         h_emulator_counter(base_ip, 3, "emulator_misrouted_shard_total");
}

/* Runs `rows` simple INSERTs of composite keys (k, c); `route` picks how
 * the statement names its partition: 0 not at all, 1 by its values, 2 by a
 * raw composite key. Returns the misroutes they caused. */
static unsigned long long simple_inserts(const char *table, int rows, int route, int pass) {
  char cql[160];
  snprintf(cql, sizeof cql, "INSERT INTO %s (k, c, v, w) VALUES (?, ?, ?, 0)", table);
  char keyspace[32];
  snprintf(keyspace, sizeof keyspace, "%.*s", (int)(strchr(table, '.') - table), table);
  unsigned long long before = misroutes();
  sshard_statement *st = NULL;
  OK(sshard_statement_new(STR(cql), 3, &st));
  if (route) OK(sshard_statement_set_routing_table(st, STR(keyspace), S("kc")));
  const size_t positions[2] = {0, 1};
  if (route == 1) OK(sshard_statement_set_routing_key_values(st, positions, 2));
  for (int i = 0; i < rows; i++) {
    OK(sshard_statement_bind_int32(st, 0, i));
    OK(sshard_statement_bind_int32(st, 1, i * 7));
    OK(sshard_statement_bind_int32(st, 2, pass));
    if (route == 2) {
      /* (k, c) as a composite key: 2-byte length, big-endian int, 0. */
      uint8_t key[14] = {0, 4, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0};
      uint32_t k = (uint32_t)i, c = (uint32_t)(i * 7);
      for (int b = 0; b < 4; b++) {
        key[2 + b] = (uint8_t)(k >> (24 - 8 * b));
        key[9 + b] = (uint8_t)(c >> (24 - 8 * b));
      }
      OK(sshard_statement_set_routing_key(st, key, sizeof key));
    }
    sshard_status status;
    sshard_result_free(h_execute(session, st, &status));
    CHECK_STATUS(status, SSHARD_STATUS_OK);
  }
  OK(sshard_statement_free(st));
  return misroutes() - before;
}

/* Simple (unprepared) statements with a routing key are routed like
 * prepared ones, on vnode and tablet tables, their pages included. */
static void test_simple_statements_with_routing_keys(void) {
  OK(h_query(session, "CREATE KEYSPACE rkv WITH replication = "
                      "{'class': 'SimpleStrategy', 'replication_factor': 1}"));
  OK(h_query(session, "CREATE TABLE rkv.kc (k int, c int, v int, w int, PRIMARY KEY ((k, c), w))"));
  OK(h_query(session, "CREATE KEYSPACE rkt WITH replication = "
                      "{'class': 'NetworkTopologyStrategy', 'datacenter1': 1} "
                      "AND tablets = {'enabled': true, 'initial': 8}"));
  OK(h_query(session, "CREATE TABLE rkt.kc (k int, c int, v int, w int, PRIMARY KEY ((k, c), w))"));
  const int rows = h_scale(300);
  /* Without a routing key most go astray (3 nodes x 4 shards). */
  CHECK(simple_inserts("rkv.kc", rows, 0, 0) > (unsigned long long)rows / 2);
  CHECK(simple_inserts("rkv.kc", rows, 1, 1) == 0);
  CHECK(simple_inserts("rkv.kc", rows, 2, 2) == 0);
  /* A tablet table: learned on the first pass (at most one miss per
   * tablet, one request in flight), exact on the next. */
  CHECK(simple_inserts("rkt.kc", rows, 1, 0) <= 8);
  CHECK(simple_inserts("rkt.kc", rows, 1, 1) == 0);
  CHECK(simple_inserts("rkt.kc", rows, 2, 2) == 0);

  /* Paging a simple SELECT of one partition: every page routed. */
  const char *keyspaces[2] = {"rkv", "rkt"};
  for (int t = 0; t < 2; t++) {
    char cql[128];
    snprintf(cql, sizeof cql, "INSERT INTO %s.kc (k, c, v, w) VALUES (1, 2, 0, ?)", keyspaces[t]);
    sshard_statement *ins = NULL;
    OK(sshard_statement_new(STR(cql), 1, &ins));
    for (int w = 0; w < 20; w++) {
      OK(sshard_statement_bind_int32(ins, 0, w));
      sshard_status status;
      sshard_result_free(h_execute(session, ins, &status));
      CHECK_STATUS(status, SSHARD_STATUS_OK);
    }
    OK(sshard_statement_free(ins));
    snprintf(cql, sizeof cql, "SELECT w FROM %s.kc WHERE k = ? AND c = ?", keyspaces[t]);
    sshard_statement *sel = NULL;
    OK(sshard_statement_new(STR(cql), 2, &sel));
    OK(sshard_statement_bind_int32(sel, 0, 1));
    OK(sshard_statement_bind_int32(sel, 1, 2));
    OK(sshard_statement_set_page_size(sel, 3));
    OK(sshard_statement_set_routing_table(sel, STR(keyspaces[t]), S("kc")));
    const size_t positions[2] = {0, 1};
    OK(sshard_statement_set_routing_key_values(sel, positions, 2));
    unsigned long long before = misroutes();
    sshard_status status;
    const sshard_result *page = h_execute(session, sel, &status);
    size_t total = 0, pages = 0;
    while (page) {
      size_t n = 0;
      OK(sshard_result_row_count(page, &n));
      total += n;
      pages++;
      bool more = false;
      OK(sshard_result_has_more_pages(page, &more));
      const sshard_result *next = NULL;
      if (more) {
        const sshard_future *f = NULL;
        OK(sshard_session_next_page(session, page, &f));
        OK(sshard_future_wait(f));
        OK(sshard_future_get_result(f, &next));
        OK(sshard_future_free(f));
      }
      OK(sshard_result_free(page));
      page = next;
    }
    CHECK(total == 20 && pages >= 7);
    CHECK(misroutes() - before == 0);
    OK(sshard_statement_free(sel));
  }
  /* Bad positions are refused. */
  sshard_statement *st = NULL;
  OK(sshard_statement_new(S("SELECT * FROM rkv.kc WHERE k = ? AND c = ?"), 2, &st));
  const size_t bad[1] = {2};
  CHECK_STATUS(sshard_statement_set_routing_key_values(st, bad, 1), SSHARD_STATUS_INDEX_OUT_OF_RANGE);
  CHECK_STATUS(sshard_statement_set_routing_key_values(st, NULL, 1), SSHARD_STATUS_NULL_ARGUMENT);
  OK(sshard_statement_set_routing_key_values(st, NULL, 0));
  OK(sshard_statement_free(st));
}

/* A borrowed (pointer, length) name equals `want`. */
static int name_is(const char *name, size_t len, const char *want) {
  return len == strlen(want) && memcmp(name, want, len) == 0;
}

/* Schema metadata: keyspaces with replication and tablets, tables with
 * keys in order, columns with types, user types; snapshots stay as they
 * were while later DDL shows in the next one. */
static void test_schema_metadata(void) {
  const sshard_schema *before = NULL;
  OK(sshard_session_get_schema(session, &before));
  const sshard_keyspace_meta *ks = NULL;
  OK(sshard_schema_keyspace_by_name(before, S("ctest"), &ks));
  bool tablets = true;
  OK(sshard_keyspace_meta_uses_tablets(ks, &tablets));
  CHECK(!tablets);
  size_t n = 0;
  OK(sshard_keyspace_meta_replication_count(ks, &n));
  int found_factor = 0;
  for (size_t i = 0; i < n; i++) {
    const char *k, *v;
    size_t kl, vl;
    OK(sshard_keyspace_meta_replication(ks, i, &k, &kl, &v, &vl));
    if (name_is(k, kl, "replication_factor")) found_factor = name_is(v, vl, "2");
  }
  CHECK(found_factor);
  const sshard_keyspace_meta *tks = NULL;
  OK(sshard_schema_keyspace_by_name(before, S("ctablets"), &tks));
  OK(sshard_keyspace_meta_uses_tablets(tks, &tablets));
  CHECK(tablets);
  CHECK_STATUS(sshard_schema_keyspace_by_name(before, S("nope"), &tks), SSHARD_STATUS_NAME_NOT_FOUND);

  const sshard_table_meta *wide = NULL;
  OK(sshard_keyspace_meta_table_by_name(ks, S("wide"), &wide));
  OK(sshard_table_meta_column_count(wide, &n));
  CHECK(n == 3);
  const sshard_column_meta *col = NULL;
  const char *name;
  size_t len;
  OK(sshard_table_meta_partition_key_count(wide, &n));
  CHECK(n == 1);
  OK(sshard_table_meta_partition_key(wide, 0, &col));
  OK(sshard_column_meta_name(col, &name, &len));
  CHECK(name_is(name, len, "p"));
  OK(sshard_table_meta_clustering_key(wide, 0, &col));
  OK(sshard_column_meta_name(col, &name, &len));
  CHECK(name_is(name, len, "c"));
  sshard_column_kind kind = 99;
  OK(sshard_column_meta_kind(col, &kind));
  CHECK(kind == SSHARD_COLUMN_KIND_CLUSTERING);
  bool desc = true;
  OK(sshard_column_meta_is_descending(col, &desc));
  CHECK(!desc);
  OK(sshard_table_meta_column_by_name(wide, S("v"), &col));
  const sshard_data_type *ty = NULL;
  sshard_type type_kind = 0;
  OK(sshard_column_meta_data_type(col, &ty));
  OK(sshard_data_type_kind(ty, &type_kind));
  CHECK(type_kind == SSHARD_TYPE_TEXT);

  /* A column of a user type, and the type itself. */
  const sshard_table_meta *all = NULL;
  OK(sshard_keyspace_meta_table_by_name(ks, S("all_types"), &all));
  OK(sshard_table_meta_column_by_name(all, S("ud"), &col));
  OK(sshard_column_meta_data_type(col, &ty));
  OK(sshard_data_type_kind(ty, &type_kind));
  CHECK(type_kind == SSHARD_TYPE_UDT);
  OK(sshard_keyspace_meta_type_by_name(ks, S("addr"), &ty));
  OK(sshard_data_type_sub_type_count(ty, &n));
  CHECK(n == 2);
  OK(sshard_data_type_field_name(ty, 1, &name, &len));
  CHECK(name_is(name, len, "no"));

  /* DDL after the snapshot: absent there, present in the next one. */
  OK(h_query(session, "CREATE TABLE ctest.later (k int, c1 int, c2 text, s int static, v int, "
                      "PRIMARY KEY ((k), c1, c2)) WITH CLUSTERING ORDER BY (c1 DESC, c2 ASC)"));
  const sshard_table_meta *later = NULL;
  CHECK_STATUS(sshard_keyspace_meta_table_by_name(ks, S("later"), &later), SSHARD_STATUS_NAME_NOT_FOUND);
  const sshard_schema *after = NULL;
  OK(sshard_session_get_schema(session, &after));
  OK(sshard_schema_keyspace_by_name(after, S("ctest"), &ks));
  OK(sshard_keyspace_meta_table_by_name(ks, S("later"), &later));
  OK(sshard_table_meta_clustering_key_count(later, &n));
  CHECK(n == 2);
  OK(sshard_table_meta_clustering_key(later, 0, &col));
  OK(sshard_column_meta_is_descending(col, &desc));
  CHECK(desc);
  OK(sshard_table_meta_column(later, 3, &col));
  OK(sshard_column_meta_name(col, &name, &len));
  CHECK(name_is(name, len, "s"));
  OK(sshard_column_meta_kind(col, &kind));
  CHECK(kind == SSHARD_COLUMN_KIND_STATIC);
  OK(sshard_schema_free(before));
  OK(sshard_schema_free(after));
  OK(sshard_schema_free(NULL));
}

/* The prepared-statement cache keeps at most its configured size, and a
 * handle the caller holds keeps working whatever it evicts. */
static void test_prepared_cache_is_bounded(const char *host) {
  sshard_config *cfg = h_config(host);
  OK(sshard_config_set_prepared_cache_size(cfg, 10));
  CHECK_STATUS(sshard_config_set_prepared_cache_size(cfg, (size_t)1 << 40), SSHARD_STATUS_INVALID_ARGUMENT);
  const sshard_session *s = h_connect_config(cfg);
  const sshard_prepared *held = h_prepare(s, "SELECT v FROM ctest.kv WHERE k = ?");
  const int distinct = h_scale(5000);
  for (int i = 0; i < distinct; i++) {
    char cql[96];
    snprintf(cql, sizeof cql, "SELECT v FROM ctest.kv WHERE k = %d", i);
    OK(sshard_prepared_free(h_prepare(s, cql)));
  }
  static sshard_metrics m;
  OK(sshard_session_get_metrics(s, &m, sizeof m));
  CHECK(m.prepared_cached == 10);
  sshard_statement *st = NULL;
  OK(sshard_prepared_bind(held, &st));
  OK(sshard_statement_bind_int32(st, 0, 1));
  sshard_status status;
  sshard_result_free(h_execute(s, st, &status));
  CHECK_STATUS(status, SSHARD_STATUS_OK);
  /* Preparing the held one again finds the same statement. */
  const sshard_prepared *again = h_prepare(s, "SELECT v FROM ctest.kv WHERE k = ?");
  size_t count = 0;
  OK(sshard_prepared_parameter_count(again, &count));
  CHECK(count == 1);
  OK(sshard_prepared_free(again));
  OK(sshard_statement_free(st));
  OK(sshard_prepared_free(held));
  h_close(s);
}

/* Close waits for every request submitted before it; later ones fail
 * with CLOSED. */
static void test_close_with_requests_in_flight(void) {
  const int total = h_scale(500);
  const sshard_future **fs = calloc((size_t)total, sizeof *fs);
  sshard_statement *st = NULL;
  OK(sshard_statement_new(S("INSERT INTO kv (k, v) VALUES (?, 'late')"), 1, &st));
  for (int i = 0; i < total; i++) {
    OK(sshard_statement_bind_int32(st, 0, 100000 + i));
    OK(sshard_session_execute(session, st, &fs[i]));
  }
  const sshard_future *close_f = NULL;
  OK(sshard_session_close(session, &close_f));
  const sshard_future *late = NULL;
  OK(sshard_session_execute(session, st, &late));
  CHECK_STATUS(sshard_future_wait(late), SSHARD_STATUS_CLOSED);
  OK(sshard_future_free(late));
  OK(sshard_future_wait(close_f));
  OK(sshard_future_free(close_f));
  size_t in_flight = 99;
  OK(sshard_session_in_flight(session, &in_flight));
  CHECK(in_flight == 0);
  int ok = 0;
  for (int i = 0; i < total; i++) {
    bool ready = false;
    OK(sshard_future_ready(fs[i], &ready));
    CHECK(ready);
    if (sshard_future_status(fs[i]) == SSHARD_STATUS_OK) ok++;
    OK(sshard_future_free(fs[i]));
  }
  CHECK(ok == total);
  free(fs);
  OK(sshard_statement_free(st));
  OK(sshard_session_free(session));
  session = NULL;
}

/* Freeing a session with requests in flight (no close): it closes in the
 * background and every request completes normally. */
static void test_free_with_requests_in_flight(const char *host) {
  const sshard_session *s = h_connect(host);
  const sshard_queue *q = NULL;
  OK(sshard_queue_new(&q));
  sshard_statement *st = NULL;
  OK(sshard_statement_new(S("SELECT v FROM ctest.kv WHERE k = ?"), 1, &st));
  const int total = h_scale(300);
  for (int i = 0; i < total; i++) {
    OK(sshard_statement_bind_int32(st, 0, i));
    const sshard_future *f = NULL;
    OK(sshard_session_execute(s, st, &f));
    OK(sshard_future_set_queue(f, q, (uint64_t)i));
    OK(sshard_future_free(f));
  }
  OK(sshard_session_free(s));
  int got = 0;
  double deadline = h_now() + 30;
  sshard_event events[64];
  while (got < total && h_now() < deadline) {
    size_t n = 0;
    OK(sshard_queue_wait(q, events, 64, 100000, &n));
    for (size_t i = 0; i < n; i++) {
      CHECK_STATUS(events[i].status, SSHARD_STATUS_OK);
      OK(sshard_future_free(events[i].future));
    }
    got += (int)n;
  }
  CHECK(got == total);
  OK(sshard_statement_free(st));
  OK(sshard_queue_free(q));
}

/* Server warnings reach the result: a batch over several partitions past
 * Scylla's 128 KiB warn threshold carries the guardrail's warning. */
static void test_batch_size_warning(void) {
  REQUIRE(h_query(session, "CREATE TABLE blobs (k int PRIMARY KEY, v blob)") == SSHARD_STATUS_OK);
  const sshard_prepared *ins = h_prepare(session, "INSERT INTO blobs (k, v) VALUES (?, ?)");
  static uint8_t payload[50000];
  memset(payload, 7, sizeof payload);
  for (int big = 1; big >= 0; big--) {
    sshard_batch *b = NULL;
    OK(sshard_batch_new(SSHARD_BATCH_TYPE_UNLOGGED, &b));
    for (int k = 0; k < 3; k++) {
      sshard_statement *st = NULL;
      OK(sshard_prepared_bind(ins, &st));
      OK(sshard_statement_bind_int32(st, 0, k));
      OK(sshard_statement_bind_blob(st, 1, payload, big ? sizeof payload : 10));
      OK(sshard_batch_add_statement(b, st));
      OK(sshard_statement_free(st));
    }
    const sshard_future *f = NULL;
    OK(sshard_session_batch(session, b, &f));
    OK(sshard_future_wait(f));
    const sshard_result *r = NULL;
    OK(sshard_future_get_result(f, &r));
    size_t count = 99;
    OK(sshard_result_warning_count(r, &count));
    const char *w = NULL;
    size_t wlen = 0;
    if (big) {
      CHECK(count == 1);
      OK(sshard_result_warning(r, 0, &w, &wlen));
      const char *want = "Unlogged batch modifying 3 partitions in ctest.blobs is of size 150012 bytes, "
                         "exceeding specified WARN threshold of 131072 by 18940.";
      CHECK(wlen == strlen(want) && memcmp(w, want, wlen) == 0);
      if (wlen != strlen(want)) fprintf(stderr, "    warning: %.*s\n", (int)wlen, w);
      CHECK_STATUS(sshard_result_warning(r, 1, &w, &wlen), SSHARD_STATUS_INDEX_OUT_OF_RANGE);
    } else {
      CHECK(count == 0);
      CHECK_STATUS(sshard_result_warning(r, 0, &w, &wlen), SSHARD_STATUS_INDEX_OUT_OF_RANGE);
    }
    sshard_result_free(r);
    OK(sshard_future_free(f));
    OK(sshard_batch_free(b));
  }
  OK(sshard_prepared_free(ins));
}

/* A traced statement's result carries the id of its trace, which
 * system_traces.sessions serves; an untraced one carries none. */
static void test_tracing(void) {
  sshard_statement *st = NULL;
  OK(sshard_statement_new(S("SELECT v FROM wide WHERE p = ?"), 1, &st));
  OK(sshard_statement_bind_int32(st, 0, 7));
  OK(sshard_statement_set_tracing(st, true));
  sshard_status s;
  const sshard_result *r = h_execute(session, st, &s);
  REQUIRE(s == SSHARD_STATUS_OK && r != NULL);
  uint8_t id[16] = {0};
  OK(sshard_result_tracing_id(r, id));
  CHECK((id[6] >> 4) == 1); /* a timeuuid */
  sshard_result_free(r);
  OK(sshard_statement_set_tracing(st, false));
  r = h_execute(session, st, &s);
  REQUIRE(s == SSHARD_STATUS_OK && r != NULL);
  uint8_t untouched[16] = {0xaa};
  CHECK_STATUS(sshard_result_tracing_id(r, untouched), SSHARD_STATUS_NOT_PRESENT);
  CHECK(untouched[0] == 0xaa);
  sshard_result_free(r);
  OK(sshard_statement_free(st));

  OK(sshard_statement_new(S("SELECT * FROM system_traces.sessions WHERE session_id = ?"), 1, &st));
  OK(sshard_statement_bind_uuid(st, 0, id));
  r = h_execute(session, st, &s);
  REQUIRE(s == SSHARD_STATUS_OK && r != NULL);
  size_t rows = 0;
  OK(sshard_result_row_count(r, &rows));
  CHECK(rows == 1);
  if (rows == 1) {
    const sshard_row *row = NULL;
    OK(sshard_result_row(r, 0, &row));
    const char *text = NULL;
    size_t len = 0;
    OK(sshard_value_get_text(col(row, "request"), &text, &len));
    CHECK(len == 18 && memcmp(text, "Execute CQL3 query", 18) == 0);
    bool is_null = true;
    OK(sshard_value_is_null(col(row, "duration"), &is_null));
    CHECK(!is_null);
  }
  sshard_result_free(r);
  OK(sshard_statement_free(st));
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s <contact point>\n", argv[0]);
    return 2;
  }
  base_ip = argv[1];
  test_connect_and_schema(argv[1]);
  test_schema_change_results();
  test_every_type();
  test_nested_elements();
  test_paging_and_batches();
  test_server_errors();
  test_batch_size_warning();
  test_tracing();
  test_queue_epoll();
  test_execute_many();
  test_row_cells();
  test_callbacks();
  test_metrics();
  test_tablets();
  test_simple_statements_with_routing_keys();
  test_prepared_cache_is_bounded(argv[1]);
  test_schema_metadata();
  test_close_with_requests_in_flight();
  test_free_with_requests_in_flight(argv[1]);
  return h_finish("test_cluster");
}
