"""Schema and host metadata with scylla-driver's names (`cassandra.metadata`):
`cluster.metadata.keyspaces[ks].tables[t].columns[c].cql_type`, user types,
replication, and `all_hosts()`.

The library keeps the schema current (schema change events, and DDL
through the session), so every read of `Metadata.keyspaces` is a copy of
the session's schema at that moment (`sshard_session_get_schema`); there
is nothing to refresh by hand. Hosts come from the metrics snapshot."""

from collections import OrderedDict
import uuid

from scylla_shard._native import ffi, lib
from scylla_shard._errors import check as _check
from scylla_shard import _codec, _metrics

_text = _codec._borrowed_text


class ReplicationStrategy(object):
    """A keyspace's replication: `name` (the class, short form), `options`
    (the replication map as the server gives it), and, as in scylla-driver,
    `replication_factor` for SimpleStrategy and `dc_replication_factors`
    for NetworkTopologyStrategy."""

    def __init__(self, options):
        self.options = options
        klass = options.get("class", "")
        self.name = klass.rsplit(".", 1)[-1]
        factors = {k: v for k, v in options.items() if k != "class"}
        self.replication_factor = _int_or(factors.get("replication_factor"))
        self.dc_replication_factors = {} if self.name == "SimpleStrategy" else \
            {k: _int_or(v) for k, v in factors.items() if k != "replication_factor"}

    def __repr__(self):
        return "<ReplicationStrategy %s %r>" % (self.name, self.options)


def _int_or(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


class KeyspaceMetadata(object):
    """`name`, `replication_strategy`, `tables` and `user_types` (by name),
    and `uses_tablets`."""

    durable_writes = True

    def __init__(self, name, replication, uses_tablets):
        self.name = name
        self.replication_strategy = ReplicationStrategy(replication)
        self.uses_tablets = uses_tablets
        self.tables = OrderedDict()
        self.user_types = OrderedDict()
        self.views = {}
        self.indexes = {}
        self.functions = {}
        self.aggregates = {}

    def __repr__(self):
        return "<KeyspaceMetadata %s tables=%s>" % (self.name, list(self.tables))


class TableMetadata(object):
    """`keyspace_name`, `name`, `columns` (by name, in schema order),
    `partition_key`, `clustering_key` and `primary_key` (ColumnMetadata
    lists)."""

    is_cql_compatible = True

    def __init__(self, keyspace_name, name):
        self.keyspace_name = keyspace_name
        self.name = name
        self.columns = OrderedDict()
        self.partition_key = []
        self.clustering_key = []

    @property
    def primary_key(self):
        return self.partition_key + self.clustering_key

    def __repr__(self):
        return "<TableMetadata %s.%s>" % (self.keyspace_name, self.name)


class ColumnMetadata(object):
    """`table`, `name`, `cql_type` (the CQL text of its type), `is_static`,
    `is_reversed` (clustering order DESC)."""

    def __init__(self, table, name, cql_type, kind, is_reversed):
        self.table = table
        self.name = name
        self.cql_type = cql_type
        self.kind = kind
        self.is_static = kind == lib.SSHARD_COLUMN_KIND_STATIC
        self.is_reversed = is_reversed

    def __repr__(self):
        return "<ColumnMetadata %s %s>" % (self.name, self.cql_type)


class UserType(object):
    """`keyspace`, `name`, `field_names`, `field_types` (CQL text)."""

    def __init__(self, keyspace, name, field_names, field_types):
        self.keyspace = keyspace
        self.name = name
        self.field_names = field_names
        self.field_types = field_types

    def __repr__(self):
        return "<UserType %s.%s>" % (self.keyspace, self.name)


class Host(object):
    """A node as scylla-driver's `Host` shows it: `endpoint` and `address`
    ("host:port" and host), `datacenter`, `rack`, `host_id`, `is_up`."""

    def __init__(self, node):
        self.endpoint = node["address"]
        self.address = self.endpoint.rsplit(":", 1)[0].strip("[]")
        self.datacenter = node["datacenter"] or None
        self.rack = node["rack"] or None
        self.host_id = uuid.UUID(node["host_id"])
        self.is_up = node["up"]

    def __repr__(self):
        return "<Host: %s %s>" % (self.endpoint, self.datacenter)


def _count(getter, handle):
    n = ffi.new("size_t *")
    _check(getter(handle, n))
    return n[0]


def _items(count_getter, item_getter, handle, ctype):
    out = ffi.new(ctype + " *")
    for i in range(_count(count_getter, handle)):
        _check(item_getter(handle, i, out))
        yield out[0]


def _replication(ks):
    key, key_len = ffi.new("const char **"), ffi.new("size_t *")
    value, value_len = ffi.new("const char **"), ffi.new("size_t *")
    options = {}
    for i in range(_count(lib.sshard_keyspace_meta_replication_count, ks)):
        _check(lib.sshard_keyspace_meta_replication(ks, i, key, key_len, value, value_len))
        options[ffi.unpack(key[0], key_len[0]).decode()] = \
            ffi.unpack(value[0], value_len[0]).decode()
    return options


def _column(table, col):
    dt = ffi.new("const sshard_data_type **")
    _check(lib.sshard_column_meta_data_type(col, dt))
    kind = ffi.new("sshard_column_kind *")
    _check(lib.sshard_column_meta_kind(col, kind))
    desc = ffi.new("bool *")
    _check(lib.sshard_column_meta_is_descending(col, desc))
    return ColumnMetadata(table, _text(lib.sshard_column_meta_name, col),
                          _codec.read_data_type(dt[0]).cql_name(), kind[0], bool(desc[0]))


def _table(keyspace_name, t):
    table = TableMetadata(keyspace_name, _text(lib.sshard_table_meta_name, t))
    for col in _items(lib.sshard_table_meta_column_count, lib.sshard_table_meta_column, t,
                      "const sshard_column_meta *"):
        column = _column(table, col)
        table.columns[column.name] = column
    for count, item, keys in (
            (lib.sshard_table_meta_partition_key_count, lib.sshard_table_meta_partition_key,
             table.partition_key),
            (lib.sshard_table_meta_clustering_key_count, lib.sshard_table_meta_clustering_key,
             table.clustering_key)):
        for col in _items(count, item, t, "const sshard_column_meta *"):
            keys.append(table.columns[_text(lib.sshard_column_meta_name, col)])
    return table


def _keyspace(ks):
    name = _text(lib.sshard_keyspace_meta_name, ks)
    tablets = ffi.new("bool *")
    _check(lib.sshard_keyspace_meta_uses_tablets(ks, tablets))
    keyspace = KeyspaceMetadata(name, _replication(ks), bool(tablets[0]))
    for t in _items(lib.sshard_keyspace_meta_table_count, lib.sshard_keyspace_meta_table, ks,
                    "const sshard_table_meta *"):
        table = _table(name, t)
        keyspace.tables[table.name] = table
    for dt in _items(lib.sshard_keyspace_meta_type_count, lib.sshard_keyspace_meta_type, ks,
                     "const sshard_data_type *"):
        udt = _codec.read_data_type(dt)
        keyspace.user_types[udt.name] = UserType(name, udt.name, list(udt.field_names),
                                                 [t.cql_name() for t in udt.subtypes])
    return keyspace


def read_keyspaces(session_handle):
    """{name: KeyspaceMetadata} of the session's schema now."""
    out = ffi.new("const sshard_schema **")
    _check(lib.sshard_session_get_schema(session_handle, out))
    schema = out[0]
    try:
        return OrderedDict(
            (k.name, k) for k in (_keyspace(ks) for ks in _items(
                lib.sshard_schema_keyspace_count, lib.sshard_schema_keyspace, schema,
                "const sshard_keyspace_meta *")))
    finally:
        lib.sshard_schema_free(schema)


class Metadata(object):
    """`cluster.metadata`: read through the cluster's first open session
    (empty before `connect()`)."""

    def __init__(self, cluster):
        self._cluster = cluster

    def _session(self):
        session = self._cluster._first_session()
        if session is not None:
            session._check_process()
        return session

    @property
    def keyspaces(self):
        session = self._session()
        return read_keyspaces(session._handle) if session is not None else OrderedDict()

    def all_hosts(self):
        session = self._session()
        if session is None:
            return []
        return [Host(node) for node in _metrics.read(session._handle)["nodes"]]

    def get_host(self, endpoint_or_address, port=None):
        """The Host at "host:port", or at `address` (and `port`), or None."""
        for host in self.all_hosts():
            if host.endpoint == endpoint_or_address or (
                    host.address == endpoint_or_address and
                    (port is None or host.endpoint.endswith(":%d" % port))):
                return host
        return None
