/* libscylla_shard declarations for LuaJIT ffi.cdef and cffi: generated from
   scylla_shard.h by scripts/gen_cdef.py (`make header`); documented there. */
enum {
  SSHARD_VERSION_MAJOR = 0,
  SSHARD_VERSION_MINOR = 1,
  SSHARD_VERSION_PATCH = 0,
  SSHARD_ABI_VERSION = 1,
  SSHARD_MAX_TIMEOUT_MS = 86400000,
  SSHARD_MAX_FRAME_SIZE = 268435456,
  SSHARD_MAX_PREPARED_CACHE_SIZE = 1048576,
  SSHARD_ADDRESS_MAX_LEN = 64,
  SSHARD_SSL_VERIFY_NONE = 0,
  SSHARD_SSL_VERIFY_PEER_CERT = 1,
  SSHARD_SSL_VERIFY_PEER_IDENTITY = 2,
  SSHARD_SSL_VERIFY_PEER_IDENTITY_DNS = 4,
  SSHARD_LOG_BUFFER_MAX = 1048576,
  SSHARD_METRICS_VERSION = 4,
  SSHARD_MAX_PROFILE_NAME = 256
};

typedef struct sshard_batch sshard_batch;

typedef struct sshard_builder sshard_builder;

typedef struct sshard_column_meta sshard_column_meta;

typedef struct sshard_config sshard_config;

typedef struct sshard_data_type sshard_data_type;

typedef struct sshard_error sshard_error;

typedef struct sshard_execution_profile sshard_execution_profile;

typedef struct sshard_future sshard_future;

typedef struct sshard_keyspace_meta sshard_keyspace_meta;

typedef struct sshard_metrics_snapshot sshard_metrics_snapshot;

typedef struct sshard_prepared sshard_prepared;

typedef struct sshard_queue sshard_queue;

typedef struct sshard_result sshard_result;

typedef struct sshard_row sshard_row;

typedef struct sshard_schema sshard_schema;

typedef struct sshard_session sshard_session;

typedef struct sshard_ssl sshard_ssl;

typedef struct sshard_statement sshard_statement;

typedef struct sshard_table_meta sshard_table_meta;

typedef struct sshard_value sshard_value;

typedef int32_t sshard_status;

typedef uint8_t sshard_compression;

typedef uint16_t sshard_consistency;

typedef uint8_t sshard_retry_policy;

typedef bool (*sshard_address_translator)(void *data, const char *advertised, size_t advertised_len, uint16_t port, char *reachable, size_t reachable_capacity, size_t *reachable_len);

typedef uint8_t sshard_batch_type;

typedef uint32_t sshard_future_kind;

typedef void (*sshard_future_callback)(struct sshard_future *future, void *data);

typedef struct sshard_event {
  uint64_t token;
  struct sshard_future *future;
  sshard_status status;
  sshard_future_kind kind;
} sshard_event;

typedef uint32_t sshard_result_kind;

typedef uint16_t sshard_type;

typedef uint8_t sshard_column_kind;

typedef uint8_t sshard_log_level;

typedef void (*sshard_log_callback)(sshard_log_level level, const char *target, size_t target_len, const char *message, size_t message_len, void *data);

typedef struct sshard_latency {
  uint64_t count;
  uint64_t mean_us;
  uint64_t p50_us;
  uint64_t p95_us;
  uint64_t p99_us;
  uint64_t p999_us;
  uint64_t max_us;
} sshard_latency;

typedef struct sshard_metrics {
  size_t struct_size;
  uint32_t version;
  bool shard_aware;
  uint32_t node_count;
  uint64_t connections;
  uint64_t requests;
  uint64_t errors;
  uint64_t retries;
  uint64_t timeouts;
  uint64_t tablet_tables;
  uint64_t tablets;
  uint64_t tablet_payloads;
  uint64_t prepared_cached;
  uint64_t in_flight;
  uint64_t speculative_executions;
  uint64_t errors_server_timeout;
  uint64_t errors_unavailable;
  uint64_t errors_overloaded;
  uint64_t errors_server_other;
  uint64_t errors_connection;
  uint64_t errors_no_host;
  uint64_t errors_client;
  struct sshard_latency latency;
  uint64_t retry_same_target;
  uint64_t retry_next_target;
  uint64_t retry_downgraded;
  uint64_t retry_ignored;
  uint64_t retry_rethrown;
  uint64_t speculative_wins;
} sshard_metrics;

typedef struct sshard_node_metrics {
  size_t struct_size;
  const char *address;
  size_t address_len;
  const char *datacenter;
  size_t datacenter_len;
  const char *rack;
  size_t rack_len;
  uint8_t host_id[16];
  bool up;
  bool shard_aware_port_in_use;
  uint32_t nr_shards;
  uint32_t shard_count;
  const uint32_t *connections_per_shard;
  const uint64_t *requests_per_shard;
  uint64_t connections;
  uint64_t requests;
  uint64_t requests_other;
  uint64_t errors;
  uint64_t opened_shard_aware;
  uint64_t opened_regular;
  uint64_t shard_aware_fallbacks;
  uint64_t nat_detections;
  struct sshard_latency latency;
} sshard_node_metrics;

enum {
  SSHARD_STATUS_OK = 0,
  SSHARD_STATUS_NULL_ARGUMENT = 1,
  SSHARD_STATUS_INVALID_UTF8 = 2,
  SSHARD_STATUS_INVALID_ARGUMENT = 3,
  SSHARD_STATUS_TYPE_MISMATCH = 4,
  SSHARD_STATUS_WRONG_STATE = 5,
  SSHARD_STATUS_INDEX_OUT_OF_RANGE = 6,
  SSHARD_STATUS_NAME_NOT_FOUND = 7,
  SSHARD_STATUS_WOULD_DEADLOCK = 8,
  SSHARD_STATUS_FORKED = 9,
  SSHARD_STATUS_PANIC = 10,
  SSHARD_STATUS_NULL_VALUE = 11,
  SSHARD_STATUS_PENDING = 12,
  SSHARD_STATUS_NOT_PRESENT = 13,
  SSHARD_STATUS_UNSUPPORTED = 14,
  SSHARD_STATUS_SSL_INVALID_CERT = 15,
  SSHARD_STATUS_SSL_INVALID_PRIVATE_KEY = 16,
  SSHARD_STATUS_NO_HOSTS = 100,
  SSHARD_STATUS_TIMEOUT = 101,
  SSHARD_STATUS_CONNECTION_LOST = 102,
  SSHARD_STATUS_DECODE = 103,
  SSHARD_STATUS_CLOSED = 104,
  SSHARD_STATUS_RUNTIME = 105,
  SSHARD_STATUS_INTERNAL = 106,
  SSHARD_STATUS_SSL_INVALID_PEER_CERT = 107,
  SSHARD_STATUS_SSL_IDENTITY_MISMATCH = 108,
  SSHARD_STATUS_SSL_PROTOCOL_ERROR = 109,
  SSHARD_STATUS_SERVER_BASE = 65536,
  SSHARD_STATUS_SERVER_SERVER_ERROR = 65536,
  SSHARD_STATUS_SERVER_PROTOCOL_ERROR = 65546,
  SSHARD_STATUS_SERVER_BAD_CREDENTIALS = 65792,
  SSHARD_STATUS_SERVER_UNAVAILABLE = 69632,
  SSHARD_STATUS_SERVER_OVERLOADED = 69633,
  SSHARD_STATUS_SERVER_IS_BOOTSTRAPPING = 69634,
  SSHARD_STATUS_SERVER_TRUNCATE_ERROR = 69635,
  SSHARD_STATUS_SERVER_WRITE_TIMEOUT = 69888,
  SSHARD_STATUS_SERVER_READ_TIMEOUT = 70144,
  SSHARD_STATUS_SERVER_READ_FAILURE = 70400,
  SSHARD_STATUS_SERVER_FUNCTION_FAILURE = 70656,
  SSHARD_STATUS_SERVER_WRITE_FAILURE = 70912,
  SSHARD_STATUS_SERVER_SYNTAX_ERROR = 73728,
  SSHARD_STATUS_SERVER_UNAUTHORIZED = 73984,
  SSHARD_STATUS_SERVER_INVALID = 74240,
  SSHARD_STATUS_SERVER_CONFIG_ERROR = 74496,
  SSHARD_STATUS_SERVER_ALREADY_EXISTS = 74752,
  SSHARD_STATUS_SERVER_UNPREPARED = 75008,
  SSHARD_STATUS_SERVER_RATE_LIMIT_REACHED = 126976,
  SSHARD_STATUS_SERVER_LAST = 131071,
  SSHARD_CONSISTENCY_ANY = 0,
  SSHARD_CONSISTENCY_ONE = 1,
  SSHARD_CONSISTENCY_TWO = 2,
  SSHARD_CONSISTENCY_THREE = 3,
  SSHARD_CONSISTENCY_QUORUM = 4,
  SSHARD_CONSISTENCY_ALL = 5,
  SSHARD_CONSISTENCY_LOCAL_QUORUM = 6,
  SSHARD_CONSISTENCY_EACH_QUORUM = 7,
  SSHARD_CONSISTENCY_SERIAL = 8,
  SSHARD_CONSISTENCY_LOCAL_SERIAL = 9,
  SSHARD_CONSISTENCY_LOCAL_ONE = 10,
  SSHARD_COLUMN_KIND_PARTITION_KEY = 0,
  SSHARD_COLUMN_KIND_CLUSTERING = 1,
  SSHARD_COLUMN_KIND_STATIC = 2,
  SSHARD_COLUMN_KIND_REGULAR = 3,
  SSHARD_TYPE_CUSTOM = 0,
  SSHARD_TYPE_ASCII = 1,
  SSHARD_TYPE_BIGINT = 2,
  SSHARD_TYPE_BLOB = 3,
  SSHARD_TYPE_BOOLEAN = 4,
  SSHARD_TYPE_COUNTER = 5,
  SSHARD_TYPE_DECIMAL = 6,
  SSHARD_TYPE_DOUBLE = 7,
  SSHARD_TYPE_FLOAT = 8,
  SSHARD_TYPE_INT = 9,
  SSHARD_TYPE_TIMESTAMP = 11,
  SSHARD_TYPE_UUID = 12,
  SSHARD_TYPE_TEXT = 13,
  SSHARD_TYPE_VARINT = 14,
  SSHARD_TYPE_TIMEUUID = 15,
  SSHARD_TYPE_INET = 16,
  SSHARD_TYPE_DATE = 17,
  SSHARD_TYPE_TIME = 18,
  SSHARD_TYPE_SMALLINT = 19,
  SSHARD_TYPE_TINYINT = 20,
  SSHARD_TYPE_DURATION = 21,
  SSHARD_TYPE_LIST = 32,
  SSHARD_TYPE_MAP = 33,
  SSHARD_TYPE_SET = 34,
  SSHARD_TYPE_UDT = 48,
  SSHARD_TYPE_TUPLE = 49,
  SSHARD_BATCH_TYPE_LOGGED = 0,
  SSHARD_BATCH_TYPE_UNLOGGED = 1,
  SSHARD_BATCH_TYPE_COUNTER = 2,
  SSHARD_RESULT_KIND_VOID = 1,
  SSHARD_RESULT_KIND_ROWS = 2,
  SSHARD_RESULT_KIND_SET_KEYSPACE = 3,
  SSHARD_RESULT_KIND_SCHEMA_CHANGE = 5,
  SSHARD_COMPRESSION_NONE = 0,
  SSHARD_COMPRESSION_LZ4 = 1,
  SSHARD_RETRY_POLICY_DEFAULT = 0,
  SSHARD_RETRY_POLICY_FALLTHROUGH = 1,
  SSHARD_RETRY_POLICY_DOWNGRADING_CONSISTENCY = 2,
  SSHARD_LOG_LEVEL_OFF = 0,
  SSHARD_LOG_LEVEL_ERROR = 1,
  SSHARD_LOG_LEVEL_WARN = 2,
  SSHARD_LOG_LEVEL_INFO = 3,
  SSHARD_LOG_LEVEL_DEBUG = 4,
  SSHARD_LOG_LEVEL_TRACE = 5,
  SSHARD_FUTURE_KIND_CONNECT = 1,
  SSHARD_FUTURE_KIND_PREPARE = 2,
  SSHARD_FUTURE_KIND_EXECUTE = 3,
  SSHARD_FUTURE_KIND_BATCH = 4,
  SSHARD_FUTURE_KIND_USE_KEYSPACE = 5,
  SSHARD_FUTURE_KIND_CLOSE = 6
};

const char *sshard_version(void);

uint32_t sshard_abi_version(void);

const char *sshard_status_str(sshard_status status);

sshard_status sshard_last_error_message(const char **message, size_t *message_len);

sshard_status sshard_config_new(struct sshard_config **config);

sshard_status sshard_config_free(struct sshard_config *config);

sshard_status sshard_config_add_contact_point(struct sshard_config *config, const char *host, size_t host_len);

sshard_status sshard_config_set_port(struct sshard_config *config, uint16_t port);

sshard_status sshard_config_set_shard_aware_port(struct sshard_config *config, bool enabled);

sshard_status sshard_config_set_local_port_range(struct sshard_config *config, uint16_t first, uint16_t last);

sshard_status sshard_config_set_connections_per_shard(struct sshard_config *config, uint32_t connections);

sshard_status sshard_config_set_local_dc(struct sshard_config *config, const char *dc, size_t dc_len);

sshard_status sshard_config_set_local_rack(struct sshard_config *config, const char *rack, size_t rack_len);

sshard_status sshard_config_set_dc_failover(struct sshard_config *config, bool enabled);

sshard_status sshard_config_set_credentials(struct sshard_config *config, const char *username, size_t username_len, const char *password, size_t password_len);

sshard_status sshard_config_set_compression(struct sshard_config *config, sshard_compression compression);

sshard_status sshard_config_set_connect_timeout_ms(struct sshard_config *config, uint64_t timeout_ms);

sshard_status sshard_config_set_request_timeout_ms(struct sshard_config *config, uint64_t timeout_ms);

sshard_status sshard_config_set_heartbeat_interval_ms(struct sshard_config *config, uint64_t interval_ms);

sshard_status sshard_config_set_max_frame_size(struct sshard_config *config, uint64_t bytes);

sshard_status sshard_config_set_worker_threads(struct sshard_config *config, uint32_t threads);

sshard_status sshard_config_set_caller_driven_io(struct sshard_config *config, bool enabled);

sshard_status sshard_config_set_application_name(struct sshard_config *config, const char *name, size_t name_len);

sshard_status sshard_config_set_application_version(struct sshard_config *config, const char *version, size_t version_len);

sshard_status sshard_config_set_consistency(struct sshard_config *config, sshard_consistency level);

sshard_status sshard_config_set_serial_consistency(struct sshard_config *config, sshard_consistency level);

sshard_status sshard_config_set_retry_policy(struct sshard_config *config, sshard_retry_policy policy);

sshard_status sshard_config_set_page_size(struct sshard_config *config, int32_t page_size);

sshard_status sshard_config_set_keyspace(struct sshard_config *config, const char *keyspace, size_t keyspace_len);

sshard_status sshard_config_set_communicator(struct sshard_config *config, const char *path, size_t path_len);

sshard_status sshard_config_set_prepared_cache_size(struct sshard_config *config, size_t size);

sshard_status sshard_config_set_client_timestamps(struct sshard_config *config, bool enabled);

sshard_status sshard_config_set_schema_agreement_timeout_ms(struct sshard_config *config, uint64_t timeout_ms);

sshard_status sshard_config_set_tablet_awareness(struct sshard_config *config, bool enabled);

sshard_status sshard_config_set_host_allow_list(struct sshard_config *config, const char *hosts, size_t hosts_len);

sshard_status sshard_config_set_host_deny_list(struct sshard_config *config, const char *hosts, size_t hosts_len);

sshard_status sshard_config_set_dc_allow_list(struct sshard_config *config, const char *dcs, size_t dcs_len);

sshard_status sshard_config_set_dc_deny_list(struct sshard_config *config, const char *dcs, size_t dcs_len);

sshard_status sshard_config_add_address_translation(struct sshard_config *config, const char *advertised, size_t advertised_len, const char *reachable, size_t reachable_len);

sshard_status sshard_config_set_address_translator(struct sshard_config *config, sshard_address_translator translator, void *data);

sshard_status sshard_ssl_new(struct sshard_ssl **ssl);

sshard_status sshard_ssl_free(struct sshard_ssl *ssl);

sshard_status sshard_ssl_add_trusted_cert(struct sshard_ssl *ssl, const char *pem, size_t pem_len);

sshard_status sshard_ssl_add_trusted_cert_file(struct sshard_ssl *ssl, const char *path, size_t path_len);

sshard_status sshard_ssl_set_system_trust(struct sshard_ssl *ssl, bool enabled);

sshard_status sshard_ssl_set_verify_flags(struct sshard_ssl *ssl, uint32_t flags);

sshard_status sshard_ssl_set_cert(struct sshard_ssl *ssl, const char *pem, size_t pem_len);

sshard_status sshard_ssl_set_cert_file(struct sshard_ssl *ssl, const char *path, size_t path_len);

sshard_status sshard_ssl_set_private_key(struct sshard_ssl *ssl, const char *pem, size_t pem_len, const char *password, size_t password_len);

sshard_status sshard_ssl_set_private_key_file(struct sshard_ssl *ssl, const char *path, size_t path_len);

sshard_status sshard_ssl_set_server_name(struct sshard_ssl *ssl, const char *name, size_t name_len);

sshard_status sshard_config_set_ssl(struct sshard_config *config, const struct sshard_ssl *ssl);

sshard_status sshard_session_connect(const struct sshard_config *config, const struct sshard_future **future);

sshard_status sshard_session_free(const struct sshard_session *session);

sshard_status sshard_session_close(const struct sshard_session *session, const struct sshard_future **future);

sshard_status sshard_session_prepare(const struct sshard_session *session, const char *query, size_t query_len, const struct sshard_future **future);

sshard_status sshard_session_execute(const struct sshard_session *session, const struct sshard_statement *statement, const struct sshard_future **future);

sshard_status sshard_session_execute_many(const struct sshard_session *session, const struct sshard_statement *const *statements, size_t count, const struct sshard_queue *queue, const uint64_t *tokens);

sshard_status sshard_session_next_page(const struct sshard_session *session, const struct sshard_result *result, const struct sshard_future **future);

sshard_status sshard_session_batch(const struct sshard_session *session, const struct sshard_batch *batch, const struct sshard_future **future);

sshard_status sshard_session_use_keyspace(const struct sshard_session *session, const char *keyspace, size_t keyspace_len, const struct sshard_future **future);

sshard_status sshard_session_is_shard_aware(const struct sshard_session *session, bool *shard_aware);

sshard_status sshard_session_in_flight(const struct sshard_session *session, size_t *count);

sshard_status sshard_statement_new(const char *query, size_t query_len, size_t value_count, struct sshard_statement **statement);

sshard_status sshard_statement_free(struct sshard_statement *statement);

sshard_status sshard_statement_value_count(const struct sshard_statement *statement, size_t *count);

sshard_status sshard_statement_set_consistency(struct sshard_statement *statement, sshard_consistency level);

sshard_status sshard_statement_set_serial_consistency(struct sshard_statement *statement, sshard_consistency level);

sshard_status sshard_statement_set_page_size(struct sshard_statement *statement, int32_t page_size);

sshard_status sshard_statement_set_paging_state(struct sshard_statement *statement, const uint8_t *paging_state, size_t paging_state_len);

sshard_status sshard_statement_set_paging_state_from_result(struct sshard_statement *statement, const struct sshard_result *result);

sshard_status sshard_statement_set_timestamp(struct sshard_statement *statement, int64_t timestamp_us);

sshard_status sshard_statement_set_idempotent(struct sshard_statement *statement, bool idempotent);

sshard_status sshard_statement_set_retry_policy(struct sshard_statement *statement, sshard_retry_policy policy);

sshard_status sshard_statement_set_timeout_ms(struct sshard_statement *statement, uint64_t timeout_ms);

sshard_status sshard_statement_set_tracing(struct sshard_statement *statement, bool tracing);

sshard_status sshard_statement_set_routing_key(struct sshard_statement *statement, const uint8_t *key, size_t key_len);

sshard_status sshard_statement_set_routing_key_values(struct sshard_statement *statement, const size_t *positions, size_t count);

sshard_status sshard_statement_set_routing_table(struct sshard_statement *statement, const char *keyspace, size_t keyspace_len, const char *table, size_t table_len);

sshard_status sshard_batch_new(sshard_batch_type type_, struct sshard_batch **batch);

sshard_status sshard_batch_free(struct sshard_batch *batch);

sshard_status sshard_batch_add_statement(struct sshard_batch *batch, const struct sshard_statement *statement);

sshard_status sshard_batch_statement_count(const struct sshard_batch *batch, size_t *count);

sshard_status sshard_batch_set_consistency(struct sshard_batch *batch, sshard_consistency level);

sshard_status sshard_batch_set_serial_consistency(struct sshard_batch *batch, sshard_consistency level);

sshard_status sshard_batch_set_timestamp(struct sshard_batch *batch, int64_t timestamp_us);

sshard_status sshard_batch_set_idempotent(struct sshard_batch *batch, bool idempotent);

sshard_status sshard_batch_set_retry_policy(struct sshard_batch *batch, sshard_retry_policy policy);

sshard_status sshard_batch_set_tracing(struct sshard_batch *batch, bool tracing);

sshard_status sshard_batch_set_timeout_ms(struct sshard_batch *batch, uint64_t timeout_ms);

sshard_status sshard_statement_bind_null(struct sshard_statement *statement, size_t index);

sshard_status sshard_statement_bind_null_by_name(struct sshard_statement *statement, const char *name, size_t name_len);

sshard_status sshard_builder_append_null(struct sshard_builder *builder);

sshard_status sshard_statement_bind_unset(struct sshard_statement *statement, size_t index);

sshard_status sshard_statement_bind_unset_by_name(struct sshard_statement *statement, const char *name, size_t name_len);

sshard_status sshard_statement_bind_bool(struct sshard_statement *statement, size_t index, bool value);

sshard_status sshard_statement_bind_bool_by_name(struct sshard_statement *statement, const char *name, size_t name_len, bool value);

sshard_status sshard_builder_append_bool(struct sshard_builder *builder, bool value);

sshard_status sshard_statement_bind_int8(struct sshard_statement *statement, size_t index, int8_t value);

sshard_status sshard_statement_bind_int8_by_name(struct sshard_statement *statement, const char *name, size_t name_len, int8_t value);

sshard_status sshard_builder_append_int8(struct sshard_builder *builder, int8_t value);

sshard_status sshard_statement_bind_int16(struct sshard_statement *statement, size_t index, int16_t value);

sshard_status sshard_statement_bind_int16_by_name(struct sshard_statement *statement, const char *name, size_t name_len, int16_t value);

sshard_status sshard_builder_append_int16(struct sshard_builder *builder, int16_t value);

sshard_status sshard_statement_bind_int32(struct sshard_statement *statement, size_t index, int32_t value);

sshard_status sshard_statement_bind_int32_by_name(struct sshard_statement *statement, const char *name, size_t name_len, int32_t value);

sshard_status sshard_builder_append_int32(struct sshard_builder *builder, int32_t value);

sshard_status sshard_statement_bind_int64(struct sshard_statement *statement, size_t index, int64_t value);

sshard_status sshard_statement_bind_int64_by_name(struct sshard_statement *statement, const char *name, size_t name_len, int64_t value);

sshard_status sshard_builder_append_int64(struct sshard_builder *builder, int64_t value);

sshard_status sshard_statement_bind_counter(struct sshard_statement *statement, size_t index, int64_t value);

sshard_status sshard_statement_bind_counter_by_name(struct sshard_statement *statement, const char *name, size_t name_len, int64_t value);

sshard_status sshard_builder_append_counter(struct sshard_builder *builder, int64_t value);

sshard_status sshard_statement_bind_float(struct sshard_statement *statement, size_t index, float value);

sshard_status sshard_statement_bind_float_by_name(struct sshard_statement *statement, const char *name, size_t name_len, float value);

sshard_status sshard_builder_append_float(struct sshard_builder *builder, float value);

sshard_status sshard_statement_bind_double(struct sshard_statement *statement, size_t index, double value);

sshard_status sshard_statement_bind_double_by_name(struct sshard_statement *statement, const char *name, size_t name_len, double value);

sshard_status sshard_builder_append_double(struct sshard_builder *builder, double value);

sshard_status sshard_statement_bind_text(struct sshard_statement *statement, size_t index, const char *value, size_t value_len);

sshard_status sshard_statement_bind_text_by_name(struct sshard_statement *statement, const char *name, size_t name_len, const char *value, size_t value_len);

sshard_status sshard_builder_append_text(struct sshard_builder *builder, const char *value, size_t value_len);

sshard_status sshard_statement_bind_blob(struct sshard_statement *statement, size_t index, const uint8_t *value, size_t value_len);

sshard_status sshard_statement_bind_blob_by_name(struct sshard_statement *statement, const char *name, size_t name_len, const uint8_t *value, size_t value_len);

sshard_status sshard_builder_append_blob(struct sshard_builder *builder, const uint8_t *value, size_t value_len);

sshard_status sshard_statement_bind_uuid(struct sshard_statement *statement, size_t index, const uint8_t *value);

sshard_status sshard_statement_bind_uuid_by_name(struct sshard_statement *statement, const char *name, size_t name_len, const uint8_t *value);

sshard_status sshard_builder_append_uuid(struct sshard_builder *builder, const uint8_t *value);

sshard_status sshard_statement_bind_inet(struct sshard_statement *statement, size_t index, const uint8_t *address, size_t address_len);

sshard_status sshard_statement_bind_inet_by_name(struct sshard_statement *statement, const char *name, size_t name_len, const uint8_t *address, size_t address_len);

sshard_status sshard_builder_append_inet(struct sshard_builder *builder, const uint8_t *address, size_t address_len);

sshard_status sshard_statement_bind_date(struct sshard_statement *statement, size_t index, int32_t days);

sshard_status sshard_statement_bind_date_by_name(struct sshard_statement *statement, const char *name, size_t name_len, int32_t days);

sshard_status sshard_builder_append_date(struct sshard_builder *builder, int32_t days);

sshard_status sshard_statement_bind_time(struct sshard_statement *statement, size_t index, int64_t nanos);

sshard_status sshard_statement_bind_time_by_name(struct sshard_statement *statement, const char *name, size_t name_len, int64_t nanos);

sshard_status sshard_builder_append_time(struct sshard_builder *builder, int64_t nanos);

sshard_status sshard_statement_bind_timestamp(struct sshard_statement *statement, size_t index, int64_t millis);

sshard_status sshard_statement_bind_timestamp_by_name(struct sshard_statement *statement, const char *name, size_t name_len, int64_t millis);

sshard_status sshard_builder_append_timestamp(struct sshard_builder *builder, int64_t millis);

sshard_status sshard_statement_bind_duration(struct sshard_statement *statement, size_t index, int32_t months, int32_t days, int64_t nanos);

sshard_status sshard_statement_bind_duration_by_name(struct sshard_statement *statement, const char *name, size_t name_len, int32_t months, int32_t days, int64_t nanos);

sshard_status sshard_builder_append_duration(struct sshard_builder *builder, int32_t months, int32_t days, int64_t nanos);

sshard_status sshard_statement_bind_decimal(struct sshard_statement *statement, size_t index, const uint8_t *unscaled, size_t unscaled_len, int32_t scale);

sshard_status sshard_statement_bind_decimal_by_name(struct sshard_statement *statement, const char *name, size_t name_len, const uint8_t *unscaled, size_t unscaled_len, int32_t scale);

sshard_status sshard_builder_append_decimal(struct sshard_builder *builder, const uint8_t *unscaled, size_t unscaled_len, int32_t scale);

sshard_status sshard_statement_bind_varint(struct sshard_statement *statement, size_t index, const uint8_t *value, size_t value_len);

sshard_status sshard_statement_bind_varint_by_name(struct sshard_statement *statement, const char *name, size_t name_len, const uint8_t *value, size_t value_len);

sshard_status sshard_builder_append_varint(struct sshard_builder *builder, const uint8_t *value, size_t value_len);

sshard_status sshard_statement_bind_builder(struct sshard_statement *statement, size_t index, const struct sshard_builder *value);

sshard_status sshard_statement_bind_builder_by_name(struct sshard_statement *statement, const char *name, size_t name_len, const struct sshard_builder *value);

sshard_status sshard_builder_append_builder(struct sshard_builder *builder, const struct sshard_builder *value);

sshard_status sshard_prepared_free(const struct sshard_prepared *prepared);

sshard_status sshard_prepared_bind(const struct sshard_prepared *prepared, struct sshard_statement **statement);

sshard_status sshard_prepared_parameter_count(const struct sshard_prepared *prepared, size_t *count);

sshard_status sshard_prepared_parameter_name(const struct sshard_prepared *prepared, size_t index, const char **name, size_t *name_len);

sshard_status sshard_prepared_parameter_data_type(const struct sshard_prepared *prepared, size_t index, const struct sshard_data_type **data_type);

sshard_status sshard_prepared_is_lwt(const struct sshard_prepared *prepared, bool *is_lwt);

sshard_status sshard_future_free(const struct sshard_future *future);

sshard_status sshard_future_get_kind(const struct sshard_future *future, sshard_future_kind *kind);

sshard_status sshard_future_wait(const struct sshard_future *future);

sshard_status sshard_future_wait_timed(const struct sshard_future *future, uint64_t timeout_us);

sshard_status sshard_future_ready(const struct sshard_future *future, bool *ready);

sshard_status sshard_future_status(const struct sshard_future *future);

sshard_status sshard_future_set_callback(const struct sshard_future *future, sshard_future_callback callback, void *data);

sshard_status sshard_future_set_queue(const struct sshard_future *future, const struct sshard_queue *queue, uint64_t token);

sshard_status sshard_future_get_error(const struct sshard_future *future, const struct sshard_error **error);

sshard_status sshard_future_get_result(const struct sshard_future *future, const struct sshard_result **result);

sshard_status sshard_future_get_prepared(const struct sshard_future *future, const struct sshard_prepared **prepared);

sshard_status sshard_future_get_session(const struct sshard_future *future, const struct sshard_session **session);

sshard_status sshard_queue_new(const struct sshard_queue **queue);

sshard_status sshard_queue_free(const struct sshard_queue *queue);

sshard_status sshard_queue_poll(const struct sshard_queue *queue, struct sshard_event *events, size_t max, size_t *count);

sshard_status sshard_queue_wait(const struct sshard_queue *queue, struct sshard_event *events, size_t max, int64_t timeout_us, size_t *count);

sshard_status sshard_queue_fd(const struct sshard_queue *queue, int32_t *fd);

sshard_status sshard_queue_pending(const struct sshard_queue *queue, size_t *count);

sshard_status sshard_queue_notify_socket(const struct sshard_queue *queue, const char *path, size_t path_len);

sshard_status sshard_result_free(const struct sshard_result *result);

sshard_status sshard_result_get_kind(const struct sshard_result *result, sshard_result_kind *kind);

sshard_status sshard_result_row_count(const struct sshard_result *result, size_t *count);

sshard_status sshard_result_column_count(const struct sshard_result *result, size_t *count);

sshard_status sshard_result_has_rows(const struct sshard_result *result, bool *has_rows);

sshard_status sshard_result_column_name(const struct sshard_result *result, size_t index, const char **name, size_t *name_len);

sshard_status sshard_result_column_type(const struct sshard_result *result, size_t index, sshard_type *kind);

sshard_status sshard_result_column_data_type(const struct sshard_result *result, size_t index, const struct sshard_data_type **data_type);

sshard_status sshard_result_column_index(const struct sshard_result *result, const char *name, size_t name_len, size_t *index);

sshard_status sshard_result_row(const struct sshard_result *result, size_t index, const struct sshard_row **row);

sshard_status sshard_result_value(const struct sshard_result *result, size_t row, size_t column, const struct sshard_value **value);

sshard_status sshard_result_row_cells(const struct sshard_result *result, size_t row, const uint8_t **bytes, int32_t *lengths, size_t count);

sshard_status sshard_row_value(const struct sshard_row *row, size_t index, const struct sshard_value **value);

sshard_status sshard_row_value_by_name(const struct sshard_row *row, const char *name, size_t name_len, const struct sshard_value **value);

sshard_status sshard_result_has_more_pages(const struct sshard_result *result, bool *has_more);

sshard_status sshard_result_paging_state(const struct sshard_result *result, const uint8_t **paging_state, size_t *paging_state_len);

sshard_status sshard_result_coordinator(const struct sshard_result *result, const char **address, size_t *address_len);

sshard_status sshard_result_shard(const struct sshard_result *result, uint32_t *shard);

sshard_status sshard_result_keyspace(const struct sshard_result *result, const char **keyspace, size_t *keyspace_len);

sshard_status sshard_result_schema_change(const struct sshard_result *result, const char **change, size_t *change_len, const char **target, size_t *target_len, const char **keyspace, size_t *keyspace_len, const char **name, size_t *name_len);

sshard_status sshard_result_warning_count(const struct sshard_result *result, size_t *count);

sshard_status sshard_result_warning(const struct sshard_result *result, size_t index, const char **warning, size_t *warning_len);

sshard_status sshard_result_tracing_id(const struct sshard_result *result, uint8_t *id);

sshard_status sshard_result_schema_in_agreement(const struct sshard_result *result, bool *agreed);

sshard_status sshard_value_is_null(const struct sshard_value *value, bool *is_null);

sshard_status sshard_value_type(const struct sshard_value *value, sshard_type *kind);

sshard_status sshard_value_data_type(const struct sshard_value *value, const struct sshard_data_type **data_type);

sshard_status sshard_value_get_bool(const struct sshard_value *value, bool *out);

sshard_status sshard_value_get_int8(const struct sshard_value *value, int8_t *out);

sshard_status sshard_value_get_int16(const struct sshard_value *value, int16_t *out);

sshard_status sshard_value_get_int32(const struct sshard_value *value, int32_t *out);

sshard_status sshard_value_get_int64(const struct sshard_value *value, int64_t *out);

sshard_status sshard_value_get_counter(const struct sshard_value *value, int64_t *out);

sshard_status sshard_value_get_float(const struct sshard_value *value, float *out);

sshard_status sshard_value_get_double(const struct sshard_value *value, double *out);

sshard_status sshard_value_get_text(const struct sshard_value *value, const char **text, size_t *text_len);

sshard_status sshard_value_get_blob(const struct sshard_value *value, const uint8_t **blob, size_t *blob_len);

sshard_status sshard_value_get_bytes(const struct sshard_value *value, const uint8_t **bytes, size_t *bytes_len);

sshard_status sshard_value_get_uuid(const struct sshard_value *value, uint8_t *uuid);

sshard_status sshard_value_get_inet(const struct sshard_value *value, uint8_t *address, size_t *address_len);

sshard_status sshard_value_get_date(const struct sshard_value *value, int32_t *days);

sshard_status sshard_value_get_time(const struct sshard_value *value, int64_t *nanos);

sshard_status sshard_value_get_timestamp(const struct sshard_value *value, int64_t *millis);

sshard_status sshard_value_get_duration(const struct sshard_value *value, int32_t *months, int32_t *days, int64_t *nanos);

sshard_status sshard_value_get_decimal(const struct sshard_value *value, const uint8_t **unscaled, size_t *unscaled_len, int32_t *scale);

sshard_status sshard_value_get_varint(const struct sshard_value *value, const uint8_t **varint, size_t *varint_len);

sshard_status sshard_value_element_count(const struct sshard_value *value, size_t *count);

sshard_status sshard_value_element(const struct sshard_value *value, size_t index, const struct sshard_value **element);

sshard_status sshard_value_map_entry(const struct sshard_value *value, size_t index, const struct sshard_value **key, const struct sshard_value **entry_value);

sshard_status sshard_value_field(const struct sshard_value *value, size_t index, const char **name, size_t *name_len, const struct sshard_value **field_value);

sshard_status sshard_value_field_by_name(const struct sshard_value *value, const char *name, size_t name_len, const struct sshard_value **field_value);

sshard_status sshard_builder_new(sshard_type kind, struct sshard_builder **builder);

sshard_status sshard_builder_free(struct sshard_builder *builder);

sshard_status sshard_builder_field_name(struct sshard_builder *builder, const char *name, size_t name_len);

sshard_status sshard_builder_count(const struct sshard_builder *builder, size_t *count);

sshard_status sshard_data_type_kind(const struct sshard_data_type *data_type, sshard_type *kind);

sshard_status sshard_data_type_sub_type_count(const struct sshard_data_type *data_type, size_t *count);

sshard_status sshard_data_type_sub_type(const struct sshard_data_type *data_type, size_t index, const struct sshard_data_type **sub_type);

sshard_status sshard_data_type_field_name(const struct sshard_data_type *data_type, size_t index, const char **name, size_t *name_len);

sshard_status sshard_data_type_name(const struct sshard_data_type *data_type, const char **name, size_t *name_len);

sshard_status sshard_data_type_keyspace(const struct sshard_data_type *data_type, const char **keyspace, size_t *keyspace_len);

sshard_status sshard_session_get_schema(const struct sshard_session *session, const struct sshard_schema **schema);

sshard_status sshard_schema_free(const struct sshard_schema *schema);

sshard_status sshard_schema_keyspace_count(const struct sshard_schema *schema, size_t *count);

sshard_status sshard_schema_keyspace(const struct sshard_schema *schema, size_t index, const struct sshard_keyspace_meta **keyspace);

sshard_status sshard_schema_keyspace_by_name(const struct sshard_schema *schema, const char *name, size_t name_len, const struct sshard_keyspace_meta **keyspace);

sshard_status sshard_keyspace_meta_name(const struct sshard_keyspace_meta *keyspace, const char **name, size_t *name_len);

sshard_status sshard_keyspace_meta_uses_tablets(const struct sshard_keyspace_meta *keyspace, bool *uses_tablets);

sshard_status sshard_keyspace_meta_replication_count(const struct sshard_keyspace_meta *keyspace, size_t *count);

sshard_status sshard_keyspace_meta_replication(const struct sshard_keyspace_meta *keyspace, size_t index, const char **key, size_t *key_len, const char **value, size_t *value_len);

sshard_status sshard_keyspace_meta_table_count(const struct sshard_keyspace_meta *keyspace, size_t *count);

sshard_status sshard_keyspace_meta_table(const struct sshard_keyspace_meta *keyspace, size_t index, const struct sshard_table_meta **table);

sshard_status sshard_keyspace_meta_table_by_name(const struct sshard_keyspace_meta *keyspace, const char *name, size_t name_len, const struct sshard_table_meta **table);

sshard_status sshard_keyspace_meta_type_count(const struct sshard_keyspace_meta *keyspace, size_t *count);

sshard_status sshard_keyspace_meta_type(const struct sshard_keyspace_meta *keyspace, size_t index, const struct sshard_data_type **data_type);

sshard_status sshard_keyspace_meta_type_by_name(const struct sshard_keyspace_meta *keyspace, const char *name, size_t name_len, const struct sshard_data_type **data_type);

sshard_status sshard_table_meta_name(const struct sshard_table_meta *table, const char **name, size_t *name_len);

sshard_status sshard_table_meta_column_count(const struct sshard_table_meta *table, size_t *count);

sshard_status sshard_table_meta_column(const struct sshard_table_meta *table, size_t index, const struct sshard_column_meta **column);

sshard_status sshard_table_meta_column_by_name(const struct sshard_table_meta *table, const char *name, size_t name_len, const struct sshard_column_meta **column);

sshard_status sshard_table_meta_partition_key_count(const struct sshard_table_meta *table, size_t *count);

sshard_status sshard_table_meta_partition_key(const struct sshard_table_meta *table, size_t index, const struct sshard_column_meta **column);

sshard_status sshard_table_meta_clustering_key_count(const struct sshard_table_meta *table, size_t *count);

sshard_status sshard_table_meta_clustering_key(const struct sshard_table_meta *table, size_t index, const struct sshard_column_meta **column);

sshard_status sshard_column_meta_name(const struct sshard_column_meta *column, const char **name, size_t *name_len);

sshard_status sshard_column_meta_data_type(const struct sshard_column_meta *column, const struct sshard_data_type **data_type);

sshard_status sshard_column_meta_kind(const struct sshard_column_meta *column, sshard_column_kind *kind);

sshard_status sshard_column_meta_is_descending(const struct sshard_column_meta *column, bool *descending);

sshard_status sshard_error_status(const struct sshard_error *error, sshard_status *status);

sshard_status sshard_error_message(const struct sshard_error *error, const char **message, size_t *message_len);

sshard_status sshard_error_server_code(const struct sshard_error *error, int32_t *code);

sshard_status sshard_error_consistency(const struct sshard_error *error, sshard_consistency *consistency);

sshard_status sshard_error_received(const struct sshard_error *error, int32_t *received);

sshard_status sshard_error_required(const struct sshard_error *error, int32_t *required);

sshard_status sshard_error_num_failures(const struct sshard_error *error, int32_t *failures);

sshard_status sshard_error_data_present(const struct sshard_error *error, bool *data_present);

sshard_status sshard_error_write_type(const struct sshard_error *error, const char **write_type, size_t *write_type_len);

sshard_status sshard_error_keyspace(const struct sshard_error *error, const char **keyspace, size_t *keyspace_len);

sshard_status sshard_error_table(const struct sshard_error *error, const char **table, size_t *table_len);

sshard_status sshard_error_function(const struct sshard_error *error, const char **function, size_t *function_len);

sshard_status sshard_log_set_level(sshard_log_level level);

sshard_status sshard_log_set_callback(sshard_log_callback callback, void *data);

sshard_status sshard_log_set_buffer(size_t capacity);

sshard_status sshard_log_poll(sshard_log_level *level, char *buffer, size_t capacity, size_t *length);

sshard_status sshard_session_get_metrics(const struct sshard_session *session, struct sshard_metrics *metrics, size_t metrics_size);

sshard_status sshard_session_get_metrics_snapshot(const struct sshard_session *session, const struct sshard_metrics_snapshot **snapshot);

sshard_status sshard_metrics_snapshot_free(const struct sshard_metrics_snapshot *snapshot);

sshard_status sshard_metrics_snapshot_totals(const struct sshard_metrics_snapshot *snapshot, struct sshard_metrics *metrics, size_t metrics_size);

sshard_status sshard_metrics_snapshot_node_count(const struct sshard_metrics_snapshot *snapshot, size_t *count);

sshard_status sshard_metrics_snapshot_node(const struct sshard_metrics_snapshot *snapshot, size_t index, struct sshard_node_metrics *node, size_t node_size);

sshard_status sshard_metrics_snapshot_prometheus(const struct sshard_metrics_snapshot *snapshot, const char **text, size_t *len);

sshard_status sshard_execution_profile_new(struct sshard_execution_profile **profile);

sshard_status sshard_execution_profile_free(struct sshard_execution_profile *profile);

sshard_status sshard_execution_profile_set_consistency(struct sshard_execution_profile *profile, sshard_consistency level);

sshard_status sshard_execution_profile_set_serial_consistency(struct sshard_execution_profile *profile, sshard_consistency level);

sshard_status sshard_execution_profile_set_request_timeout_ms(struct sshard_execution_profile *profile, uint64_t timeout_ms);

sshard_status sshard_execution_profile_set_retry_policy(struct sshard_execution_profile *profile, sshard_retry_policy policy);

sshard_status sshard_execution_profile_set_local_dc(struct sshard_execution_profile *profile, const char *dc, size_t dc_len);

sshard_status sshard_execution_profile_set_local_rack(struct sshard_execution_profile *profile, const char *rack, size_t rack_len);

sshard_status sshard_execution_profile_set_dc_failover(struct sshard_execution_profile *profile, bool enabled);

sshard_status sshard_config_set_execution_profile(struct sshard_config *config, const char *name, size_t name_len, const struct sshard_execution_profile *profile);

sshard_status sshard_statement_set_execution_profile(struct sshard_statement *statement, const char *name, size_t name_len);

sshard_status sshard_batch_set_execution_profile(struct sshard_batch *batch, const char *name, size_t name_len);

sshard_status sshard_config_set_constant_speculative_execution(struct sshard_config *config, uint64_t delay_ms, uint32_t max_attempts);

sshard_status sshard_config_set_percentile_speculative_execution(struct sshard_config *config, double percentile, uint32_t max_attempts);

sshard_status sshard_config_set_no_speculative_execution(struct sshard_config *config);

sshard_status sshard_execution_profile_set_constant_speculative_execution(struct sshard_execution_profile *profile, uint64_t delay_ms, uint32_t max_attempts);

sshard_status sshard_execution_profile_set_percentile_speculative_execution(struct sshard_execution_profile *profile, double percentile, uint32_t max_attempts);

sshard_status sshard_execution_profile_set_no_speculative_execution(struct sshard_execution_profile *profile);

sshard_status sshard_statement_set_constant_speculative_execution(struct sshard_statement *statement, uint64_t delay_ms, uint32_t max_attempts);

sshard_status sshard_statement_set_percentile_speculative_execution(struct sshard_statement *statement, double percentile, uint32_t max_attempts);

sshard_status sshard_statement_set_no_speculative_execution(struct sshard_statement *statement);

sshard_status sshard_batch_set_constant_speculative_execution(struct sshard_batch *batch, uint64_t delay_ms, uint32_t max_attempts);

sshard_status sshard_batch_set_percentile_speculative_execution(struct sshard_batch *batch, double percentile, uint32_t max_attempts);

sshard_status sshard_batch_set_no_speculative_execution(struct sshard_batch *batch);
