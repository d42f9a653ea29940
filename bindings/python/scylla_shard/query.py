"""Statements and row factories with scylla-driver's names
(`cassandra.query`): SimpleStatement, PreparedStatement, BoundStatement,
BatchStatement, BatchType, and the row factories.
"""

import re
import threading
from collections import OrderedDict, namedtuple

from scylla_shard._native import ffi, lib, OK
from scylla_shard import _codec
from scylla_shard._codec import UNSET_VALUE, ValueSequence, bind_params  # noqa: F401
from scylla_shard.consistency import ConsistencyLevel

FETCH_SIZE_UNSET = object()

# ---------------------------------------------------------------------------
# Row factories: factory(column_names, rows as tuples) -> rows
# ---------------------------------------------------------------------------

_START_BADCHAR = re.compile(r'^[^a-zA-Z0-9]*')
_END_BADCHAR = re.compile(r'[^a-zA-Z0-9_]*$')
_NON_ALPHA = re.compile(r'[^a-zA-Z0-9]')
_clean_names = {}


def _clean_column_name(name):
    clean = _clean_names.get(name)
    if clean is None:
        clean = _NON_ALPHA.sub("_", _START_BADCHAR.sub("", _END_BADCHAR.sub("", name)))
        _clean_names[name] = clean
    return clean


def tuple_factory(colnames, rows):
    """Each row as a tuple."""
    return rows


_row_classes = {}


def _row_class(colnames):
    key = tuple(colnames)
    cls = _row_classes.get(key)
    if cls is None:
        names = [_clean_column_name(n) for n in colnames]
        try:
            cls = namedtuple('Row', names)
        except ValueError:
            cls = namedtuple('Row', names, rename=True)
        if len(_row_classes) > 4096:
            _row_classes.clear()
        _row_classes[key] = cls
    return cls


def named_tuple_factory(colnames, rows):
    """Each row as a named tuple `Row` with the (cleaned) column names as
    fields: the default."""
    make = _row_class(colnames)._make
    return [make(row) for row in rows]


def dict_factory(colnames, rows):
    """Each row as a dict keyed by column name."""
    return [dict(zip(colnames, row)) for row in rows]


def ordered_dict_factory(colnames, rows):
    """Each row as an OrderedDict keyed by column name."""
    return [OrderedDict(zip(colnames, row)) for row in rows]


# ---------------------------------------------------------------------------
# Statements
# ---------------------------------------------------------------------------

class Statement(object):
    """Options shared by every statement."""

    consistency_level = None
    serial_consistency_level = None
    fetch_size = FETCH_SIZE_UNSET
    keyspace = None
    table = None
    custom_payload = None
    is_idempotent = False
    retry_policy = None
    timeout = None
    _routing_key = None

    def __init__(self, retry_policy=None, consistency_level=None, routing_key=None,
                 serial_consistency_level=None, fetch_size=FETCH_SIZE_UNSET, keyspace=None,
                 custom_payload=None, is_idempotent=False, table=None):
        if retry_policy is not None:
            self.retry_policy = retry_policy  # accepted; retries are the library's
        if consistency_level is not None:
            self.consistency_level = consistency_level
        self._routing_key = routing_key
        if serial_consistency_level is not None:
            self.serial_consistency_level = serial_consistency_level
        if fetch_size is not FETCH_SIZE_UNSET:
            self.fetch_size = fetch_size
        if keyspace is not None:
            self.keyspace = keyspace
        if table is not None:
            self.table = table
        if custom_payload is not None:
            self.custom_payload = custom_payload
        self.is_idempotent = is_idempotent

    @property
    def routing_key(self):
        """The serialized partition key the statement is routed by (bytes)."""
        return self._routing_key

    @routing_key.setter
    def routing_key(self, key):
        if isinstance(key, (list, tuple)):
            # Components already serialized, as scylla-driver accepts them.
            if len(key) == 1:
                key = key[0]
            else:
                key = b"".join(len(k).to_bytes(2, "big") + k + b"\x00" for k in key)
        self._routing_key = key

    @routing_key.deleter
    def routing_key(self):
        self._routing_key = None


class SimpleStatement(Statement):
    """Unprepared CQL; `%s` / `%(name)s` placeholders are filled from the
    parameters as CQL literals. `routing_key` (serialized) with `keyspace`
    (and `table` for tablet keyspaces) routes it like a prepared statement."""

    def __init__(self, query_string, retry_policy=None, consistency_level=None,
                 routing_key=None, serial_consistency_level=None,
                 fetch_size=FETCH_SIZE_UNSET, keyspace=None, custom_payload=None,
                 is_idempotent=False, table=None):
        Statement.__init__(self, retry_policy, consistency_level, None,
                           serial_consistency_level, fetch_size, keyspace, custom_payload,
                           is_idempotent, table)
        if routing_key is not None:
            self.routing_key = routing_key
        self._query_string = query_string

    @property
    def query_string(self):
        return self._query_string

    def __str__(self):
        consistency = ConsistencyLevel.value_to_name.get(self.consistency_level, 'Not Set')
        return u'<SimpleStatement query="%s", consistency=%s>' % (self.query_string, consistency)

    __repr__ = __str__


class PreparedStatement(object):
    """A statement prepared on the cluster. `bind(values)` makes a
    BoundStatement; sessions also take it with parameters directly."""

    consistency_level = None
    serial_consistency_level = None
    fetch_size = FETCH_SIZE_UNSET
    is_idempotent = False
    retry_policy = None
    custom_payload = None
    keyspace = None
    _result_metadata = None  # (column names, types) of its rows, once seen

    def __init__(self, handle, query_string, keyspace):
        self._handle = handle  # sshard_prepared *, one reference
        self.query_string = query_string
        self.keyspace = keyspace
        count = ffi.new("size_t *")
        lib.sshard_prepared_parameter_count(handle, count)
        names, types = [], []
        dt = ffi.new("const sshard_data_type **")
        for i in range(count[0]):
            names.append(_codec._borrowed_text(lib.sshard_prepared_parameter_name, handle, i))
            lib.sshard_prepared_parameter_data_type(handle, i, dt)
            types.append(_codec.read_data_type(dt[0]))
        self.param_names = names
        self.param_types = types
        self._name_index = {}
        for i, n in enumerate(names):
            self._name_index.setdefault(n, i)
        self._binders = [_binder(t) for t in types]
        lwt = ffi.new("bool *")
        lib.sshard_prepared_is_lwt(handle, lwt)
        self._is_lwt = bool(lwt[0])
        self._scratch = {}  # thread id -> a statement reused by that thread

    def __del__(self):
        handle, self._handle = getattr(self, "_handle", None), None
        if lib is None:
            return
        for stmt in getattr(self, "_scratch", {}).values():
            lib.sshard_statement_free(stmt)
        if handle is not None:
            lib.sshard_prepared_free(handle)

    def is_lwt(self):
        return self._is_lwt

    def bind(self, values):
        return BoundStatement(self).bind(values)

    def _new_statement(self, values):
        """A new sshard_statement * with `values` bound (caller frees it)."""
        out = ffi.new("sshard_statement **")
        status = lib.sshard_prepared_bind(self._handle, out)
        if status != OK:
            from scylla_shard._errors import exception_for
            from scylla_shard._native import last_error_message
            raise exception_for(status, last_error_message())
        stmt = out[0]
        try:
            if values:
                self._bind_all(stmt, values)
        except BaseException:
            lib.sshard_statement_free(stmt)
            raise
        return stmt

    def _scratch_statement(self, values):
        """This thread's reusable statement with `values` bound (every
        marker: the previous values are all overwritten), or None when the
        values do not cover every marker positionally."""
        if type(values) not in (tuple, list) or len(values) != len(self._binders):
            return None
        scratch = self._scratch
        ident = threading.get_ident()
        stmt = scratch.get(ident)
        if stmt is None:
            stmt = scratch[ident] = self._new_statement(())
        self._bind_all(stmt, values)
        return stmt

    def _bind_all(self, stmt, values):
        binders = self._binders
        if isinstance(values, dict):
            items = []
            for name, value in values.items():
                i = self._name_index.get(name)
                if i is None:
                    raise KeyError("no bind marker named %r in %r" % (name, self.query_string))
                items.append((i, value))
            # Markers a dict leaves out stay unset, as scylla-driver does.
        else:
            if len(values) > len(binders):
                raise ValueError(
                    "Too many arguments provided to bind() (got %d, expected %d)"
                    % (len(values), len(binders)))
            items = enumerate(values)
        null, unset, unset_value = lib.sshard_statement_bind_null, \
            lib.sshard_statement_bind_unset, UNSET_VALUE
        i = value = None
        try:
            for i, value in items:
                if value is None:
                    status = null(stmt, i)
                elif value is unset_value:
                    status = unset(stmt, i)
                else:
                    status = binders[i](stmt, i, value)
                if status:
                    raise _codec.EncodeError(status, self.param_types[i].cql_name())
        except (_codec.EncodeError, TypeError, ValueError, OverflowError, AttributeError) as exc:
            from scylla_shard._native import last_error_message
            detail = last_error_message() if isinstance(exc, _codec.EncodeError) else exc
            raise TypeError(
                "Received an argument of invalid type for column \"%s\". "
                "Expected: %s, Got: %s; (%s)" % (
                    self.param_names[i], self.param_types[i].cql_name(),
                    type(value).__name__, detail)) from None

    def __str__(self):
        consistency = ConsistencyLevel.value_to_name.get(self.consistency_level, 'Not Set')
        return u'<PreparedStatement query="%s", consistency=%s>' % (
            self.query_string, consistency)

    __repr__ = __str__


_DIRECT = {  # the C bind takes the Python value as it is (cffi checks it)
    lib.SSHARD_TYPE_TINYINT: lib.sshard_statement_bind_int8,
    lib.SSHARD_TYPE_SMALLINT: lib.sshard_statement_bind_int16,
    lib.SSHARD_TYPE_INT: lib.sshard_statement_bind_int32,
    lib.SSHARD_TYPE_BIGINT: lib.sshard_statement_bind_int64,
    lib.SSHARD_TYPE_COUNTER: lib.sshard_statement_bind_counter,
}


def _bind_text(stmt, i, v, _bind=lib.sshard_statement_bind_text):
    b = v.encode("utf-8") if type(v) is str else _codec._text(v)[0]
    return _bind(stmt, i, b, len(b))


def _binder(t):
    """A function (statement, index, value) -> status that binds one
    non-NULL marker value of type t: the typed C bind, resolved once."""
    direct = _DIRECT.get(t.kind)
    if direct is not None:
        def bind_int(stmt, i, v):
            if not isinstance(v, int):
                raise TypeError("expected an int, got %s" % type(v).__name__)
            return direct(stmt, i, v)
        return bind_int
    if t.kind in (lib.SSHARD_TYPE_TEXT, lib.SSHARD_TYPE_ASCII):
        return _bind_text
    native = _codec._NATIVE_ENCODERS.get(t.kind)
    if native is None:
        def bind_nested(stmt, i, v):
            _codec.bind_value(stmt, i, t, v)
            return 0
        return bind_nested
    convert, bind, _ = native
    return lambda stmt, i, v: bind(stmt, i, *convert(v))


class BoundStatement(Statement):
    """A prepared statement with its values."""

    def __init__(self, prepared_statement, retry_policy=None, consistency_level=None,
                 routing_key=None, serial_consistency_level=None,
                 fetch_size=FETCH_SIZE_UNSET, keyspace=None, custom_payload=None):
        self.prepared_statement = prepared_statement
        ps = prepared_statement
        Statement.__init__(
            self, retry_policy or ps.retry_policy,
            consistency_level if consistency_level is not None else ps.consistency_level,
            routing_key,
            serial_consistency_level if serial_consistency_level is not None
            else ps.serial_consistency_level,
            fetch_size if fetch_size is not FETCH_SIZE_UNSET else ps.fetch_size,
            keyspace or ps.keyspace, custom_payload, ps.is_idempotent)
        self.values = []
        self._handle = None

    def bind(self, values):
        """Binds `values` (a sequence, or a dict by marker name); checked
        against the markers' types at once."""
        if values is None:
            values = ()
        handle = self.prepared_statement._new_statement(values)
        old, self._handle = self._handle, handle
        if old is not None:
            lib.sshard_statement_free(old)
        self.values = list(values.values()) if isinstance(values, dict) else list(values)
        return self

    def _statement(self):
        if self._handle is None:
            self.bind(())
        return self._handle

    def __del__(self):
        handle, self._handle = getattr(self, "_handle", None), None
        if handle is not None and lib is not None:
            lib.sshard_statement_free(handle)

    def is_lwt(self):
        return self.prepared_statement.is_lwt()

    def __str__(self):
        consistency = ConsistencyLevel.value_to_name.get(self.consistency_level, 'Not Set')
        return u'<BoundStatement query="%s", values=%s, consistency=%s>' % (
            self.prepared_statement.query_string, self.values, consistency)

    __repr__ = __str__


class BatchType(object):
    LOGGED = None
    UNLOGGED = None
    COUNTER = None

    def __init__(self, name, value):
        self.name = name
        self.value = value

    def __str__(self):
        return self.name

    def __repr__(self):
        return "BatchType.%s" % (self.name,)


BatchType.LOGGED = BatchType("LOGGED", lib.SSHARD_BATCH_TYPE_LOGGED)
BatchType.UNLOGGED = BatchType("UNLOGGED", lib.SSHARD_BATCH_TYPE_UNLOGGED)
BatchType.COUNTER = BatchType("COUNTER", lib.SSHARD_BATCH_TYPE_COUNTER)


class BatchStatement(Statement):
    """Statements applied together (LOGGED by default)."""

    def __init__(self, batch_type=BatchType.LOGGED, retry_policy=None,
                 consistency_level=None, serial_consistency_level=None, session=None,
                 custom_payload=None):
        Statement.__init__(self, retry_policy=retry_policy, consistency_level=consistency_level,
                           serial_consistency_level=serial_consistency_level,
                           custom_payload=custom_payload)
        self.batch_type = batch_type
        self._statements = []  # sshard_statement * each, owned
        self._is_lwt = False

    def add(self, statement, parameters=None):
        """Adds a statement (CQL text, SimpleStatement, PreparedStatement or
        BoundStatement) with its parameters."""
        if isinstance(statement, str):
            statement = SimpleStatement(statement)
        if isinstance(statement, SimpleStatement):
            text = statement.query_string
            if parameters:
                text = bind_params(text, parameters)
            self._statements.append(new_simple_statement(text))
        elif isinstance(statement, PreparedStatement):
            self._statements.append(statement._new_statement(parameters or ()))
            self._is_lwt = self._is_lwt or statement.is_lwt()
        elif isinstance(statement, BoundStatement):
            if parameters:
                raise ValueError("Parameters cannot be passed with a BoundStatement "
                                 "to BatchStatement.add()")
            stmt = statement.prepared_statement._new_statement(statement.values)
            self._statements.append(stmt)
            self._is_lwt = self._is_lwt or statement.is_lwt()
            if self.keyspace is None:
                self.keyspace = statement.keyspace
        else:
            raise TypeError("cannot add %r to a batch" % (statement,))
        return self

    def add_all(self, statements, parameters):
        for statement, value in zip(statements, parameters):
            self.add(statement, value)

    def clear(self):
        for stmt in self._statements:
            lib.sshard_statement_free(stmt)
        del self._statements[:]
        self.keyspace = None
        self._is_lwt = False

    def is_lwt(self):
        return self._is_lwt

    def __len__(self):
        return len(self._statements)

    def __del__(self):
        if lib is not None:
            for stmt in getattr(self, "_statements", ()):
                lib.sshard_statement_free(stmt)

    def __str__(self):
        consistency = ConsistencyLevel.value_to_name.get(self.consistency_level, 'Not Set')
        return (u'<BatchStatement type=%s, statements=%d, consistency=%s>'
                % (self.batch_type, len(self), consistency))

    __repr__ = __str__


def new_simple_statement(text):
    q = text.encode("utf-8")
    out = ffi.new("sshard_statement **")
    status = lib.sshard_statement_new(q, len(q), 0, out)
    if status != OK:
        from scylla_shard._errors import exception_for
        from scylla_shard._native import last_error_message
        raise exception_for(status, last_error_message())
    return out[0]
