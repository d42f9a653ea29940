"""CQL values <-> Python objects, as scylla-driver maps them.

Reading: a result's cells come out of the library as their serialized
bytes (one call per cell) and are decoded here by a decoder built once per
column type. Writing a prepared statement's values: typed binds
(sshard_statement_bind_*), nested values through sshard_builder, checked by
the library against the markers' types. Simple statements with `%s`
parameters get CQL literals, as scylla-driver's encoder makes them.
"""

import datetime
import decimal
import ipaddress
import math
import socket
import struct
import uuid
from collections import namedtuple

from scylla_shard._native import ffi, lib, OK
from scylla_shard import util
from scylla_shard.util import (Date, Duration, OrderedMap, OrderedMapSerializedKey, SortedSet,
                               Time)

T = lib  # SSHARD_TYPE_* constants
NULL_VALUE = lib.SSHARD_STATUS_NULL_VALUE

_int32 = struct.Struct(">i")
_uint32 = struct.Struct(">I")


class DataType(object):
    """A CQL type read from the library: kind, nested types, and for UDTs
    the keyspace, name and field names."""

    __slots__ = ("kind", "subtypes", "name", "keyspace", "field_names", "_decoder", "_tuple")

    def __init__(self, kind, subtypes=(), name=None, keyspace=None, field_names=()):
        self.kind = kind
        self.subtypes = tuple(subtypes)
        self.name = name
        self.keyspace = keyspace
        self.field_names = tuple(field_names)
        self._decoder = None
        self._tuple = None

    def cql_name(self):
        simple = _TYPE_NAMES.get(self.kind)
        if simple:
            return simple
        if self.kind == T.SSHARD_TYPE_UDT:
            return self.name
        if self.kind == T.SSHARD_TYPE_CUSTOM:
            return "'%s'" % self.name
        inner = ", ".join(t.cql_name() for t in self.subtypes)
        return "%s<%s>" % (_COMPOUND_NAMES[self.kind], inner)

    __repr__ = cql_name

    @property
    def decoder(self):
        if self._decoder is None:
            self._decoder = _make_decoder(self)
        return self._decoder


_TYPE_NAMES = {
    T.SSHARD_TYPE_ASCII: "ascii", T.SSHARD_TYPE_BIGINT: "bigint", T.SSHARD_TYPE_BLOB: "blob",
    T.SSHARD_TYPE_BOOLEAN: "boolean", T.SSHARD_TYPE_COUNTER: "counter",
    T.SSHARD_TYPE_DECIMAL: "decimal", T.SSHARD_TYPE_DOUBLE: "double",
    T.SSHARD_TYPE_FLOAT: "float", T.SSHARD_TYPE_INT: "int",
    T.SSHARD_TYPE_TIMESTAMP: "timestamp", T.SSHARD_TYPE_UUID: "uuid",
    T.SSHARD_TYPE_TEXT: "text", T.SSHARD_TYPE_VARINT: "varint",
    T.SSHARD_TYPE_TIMEUUID: "timeuuid", T.SSHARD_TYPE_INET: "inet",
    T.SSHARD_TYPE_DATE: "date", T.SSHARD_TYPE_TIME: "time",
    T.SSHARD_TYPE_SMALLINT: "smallint", T.SSHARD_TYPE_TINYINT: "tinyint",
    T.SSHARD_TYPE_DURATION: "duration",
}
_COMPOUND_NAMES = {T.SSHARD_TYPE_LIST: "list", T.SSHARD_TYPE_SET: "set",
                   T.SSHARD_TYPE_MAP: "map", T.SSHARD_TYPE_TUPLE: "tuple"}


def _borrowed_text(getter, *args):
    p = ffi.new("const char **")
    n = ffi.new("size_t *")
    if getter(*args, p, n) != OK:
        return None
    return ffi.unpack(p[0], n[0]).decode("utf-8")


def read_data_type(dt):
    """A DataType from an sshard_data_type view."""
    kind = ffi.new("sshard_type *")
    lib.sshard_data_type_kind(dt, kind)
    kind = kind[0]
    count = ffi.new("size_t *")
    lib.sshard_data_type_sub_type_count(dt, count)
    sub = ffi.new("const sshard_data_type **")
    subtypes = []
    for i in range(count[0]):
        lib.sshard_data_type_sub_type(dt, i, sub)
        subtypes.append(read_data_type(sub[0]))
    if kind == T.SSHARD_TYPE_UDT:
        names = [_borrowed_text(lib.sshard_data_type_field_name, dt, i)
                 for i in range(count[0])]
        return DataType(kind, subtypes, _borrowed_text(lib.sshard_data_type_name, dt),
                        _borrowed_text(lib.sshard_data_type_keyspace, dt), names)
    if kind == T.SSHARD_TYPE_CUSTOM:
        return DataType(kind, name=_borrowed_text(lib.sshard_data_type_name, dt))
    return DataType(kind, subtypes)


_NATIVE = {}


def native_type(kind):
    t = _NATIVE.get(kind)
    if t is None:
        t = _NATIVE[kind] = DataType(kind)
    return t


# ---------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------

def _struct_decoder(fmt):
    unpack = struct.Struct(fmt).unpack

    def decode(b):
        return unpack(b)[0] if b else None
    return decode


def _decode_text(b):
    return b.decode("utf-8")


def _decode_ascii(b):
    return b.decode("ascii")


def _decode_varint(b):
    return int.from_bytes(b, "big", signed=True) if b else None


def _decode_decimal(b):
    if not b:
        return None
    scale = _int32.unpack_from(b)[0]
    unscaled = int.from_bytes(b[4:], "big", signed=True)
    return decimal.Decimal('%de%d' % (unscaled, -scale))


def _decode_uuid(b):
    return uuid.UUID(bytes=b) if b else None


def _decode_inet(b):
    if len(b) == 16:
        return socket.inet_ntop(socket.AF_INET6, b)
    return socket.inet_ntoa(b) if b else None


_EPOCH = util.DATETIME_EPOC
_timedelta = datetime.timedelta
_int64_unpack = struct.Struct(">q").unpack


def _decode_timestamp(b):
    return _EPOCH + _timedelta(milliseconds=_int64_unpack(b)[0]) if b else None


def _decode_date(b):
    return Date(_uint32.unpack(b)[0] - 2 ** 31) if b else None


def _decode_time(b):
    return Time(_int64_unpack(b)[0]) if b else None


def _read_vint(b, pos):
    first = b[pos]
    extra = 0
    mask = 0x80
    while extra < 8 and first & mask:
        extra += 1
        mask >>= 1
    value = first & (0xFF >> extra) if extra < 8 else 0
    for i in range(extra):
        value = (value << 8) | b[pos + 1 + i]
    return (value >> 1) ^ -(value & 1), pos + 1 + extra


def _decode_duration(b):
    if not b:
        return None
    months, pos = _read_vint(b, 0)
    days, pos = _read_vint(b, pos)
    nanos, _ = _read_vint(b, pos)
    return Duration(months, days, nanos)


def _decode_bool(b):
    return b != b"\x00" if b else None


def _decode_blob(b):
    return b


_NATIVE_DECODERS = {
    T.SSHARD_TYPE_ASCII: _decode_ascii, T.SSHARD_TYPE_TEXT: _decode_text,
    T.SSHARD_TYPE_BIGINT: _struct_decoder(">q"), T.SSHARD_TYPE_COUNTER: _struct_decoder(">q"),
    T.SSHARD_TYPE_INT: _struct_decoder(">i"), T.SSHARD_TYPE_SMALLINT: _struct_decoder(">h"),
    T.SSHARD_TYPE_TINYINT: _struct_decoder(">b"), T.SSHARD_TYPE_FLOAT: _struct_decoder(">f"),
    T.SSHARD_TYPE_DOUBLE: _struct_decoder(">d"), T.SSHARD_TYPE_BOOLEAN: _decode_bool,
    T.SSHARD_TYPE_BLOB: _decode_blob, T.SSHARD_TYPE_CUSTOM: _decode_blob,
    T.SSHARD_TYPE_VARINT: _decode_varint, T.SSHARD_TYPE_DECIMAL: _decode_decimal,
    T.SSHARD_TYPE_UUID: _decode_uuid, T.SSHARD_TYPE_TIMEUUID: _decode_uuid,
    T.SSHARD_TYPE_INET: _decode_inet, T.SSHARD_TYPE_TIMESTAMP: _decode_timestamp,
    T.SSHARD_TYPE_DATE: _decode_date, T.SSHARD_TYPE_TIME: _decode_time,
    T.SSHARD_TYPE_DURATION: _decode_duration,
}


def _cells(b, pos, count):
    """Yields `count` [int length][bytes] cells from b[pos:] (None for NULL)."""
    for _ in range(count):
        n = _int32.unpack_from(b, pos)[0]
        pos += 4
        if n < 0:
            yield None
        else:
            yield b[pos:pos + n]
            pos += n


def _nested(decode):
    return lambda cell: None if cell is None else decode(cell)


def udt_class(t):
    """The named tuple of a UDT (scylla-driver's class for UDTs that are not
    registered: the type's name, its fields)."""
    if t._tuple is None:
        try:
            t._tuple = namedtuple(t.name, t.field_names)
        except ValueError:
            t._tuple = namedtuple(t.name if t.name.isidentifier() else "UDT",
                                  t.field_names, rename=True)
    return t._tuple


def _make_decoder(t):
    native = _NATIVE_DECODERS.get(t.kind)
    if native is not None:
        return native
    kind = t.kind
    if kind in (T.SSHARD_TYPE_LIST, T.SSHARD_TYPE_SET):
        item = _nested(t.subtypes[0].decoder)
        as_set = kind == T.SSHARD_TYPE_SET

        def decode_collection(b):
            if not b:
                return None
            items = [item(c) for c in _cells(b, 4, _int32.unpack_from(b)[0])]
            return SortedSet(items) if as_set else items
        return decode_collection
    if kind == T.SSHARD_TYPE_MAP:
        key, value = _nested(t.subtypes[0].decoder), _nested(t.subtypes[1].decoder)

        def decode_map(b):
            if not b:
                return None
            cells = _cells(b, 4, 2 * _int32.unpack_from(b)[0])
            out = OrderedMapSerializedKey()
            for k in cells:
                out._insert(key(k), value(next(cells)))
            return out
        return decode_map
    if kind in (T.SSHARD_TYPE_TUPLE, T.SSHARD_TYPE_UDT):
        parts = [_nested(s.decoder) for s in t.subtypes]
        make = udt_class(t) if kind == T.SSHARD_TYPE_UDT else None

        def decode_fields(b):
            if not b:
                return None
            values = []
            pos = 0
            for part in parts:
                if pos >= len(b):  # fields added to the type after the value was written
                    values.append(None)
                    continue
                n = _int32.unpack_from(b, pos)[0]
                pos += 4
                if n < 0:
                    values.append(None)
                else:
                    values.append(part(b[pos:pos + n]))
                    pos += n
            return make(*values) if make else tuple(values)
        return decode_fields
    return _decode_blob


# ---------------------------------------------------------------------------
# Encoding for prepared statements: (bind to statement, append to builder)
# ---------------------------------------------------------------------------

class Unset(object):
    """UNSET_VALUE: leaves the column untouched (the marker is not bound)."""

    def __repr__(self):
        return "UNSET_VALUE"


UNSET_VALUE = Unset()


def _int(v):
    if isinstance(v, int):
        return (v,)
    raise TypeError("expected an int, got %s" % type(v).__name__)


def _float(v):
    if isinstance(v, (int, float, decimal.Decimal)):
        return (float(v),)
    raise TypeError("expected a float, got %s" % type(v).__name__)


def _text(v):
    if isinstance(v, str):
        b = v.encode("utf-8")
    elif isinstance(v, (bytes, bytearray)):
        b = bytes(v)
    else:
        raise TypeError("expected a str, got %s" % type(v).__name__)
    return (b, len(b))


def _blob(v):
    if isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        return (ffi.from_buffer("uint8_t[]", b), len(b))
    raise TypeError("expected bytes, got %s" % type(v).__name__)


def _uuid(v):
    if isinstance(v, uuid.UUID):
        return (ffi.from_buffer("uint8_t[]", v.bytes),)
    raise TypeError("expected a uuid.UUID, got %s" % type(v).__name__)


def _inet(v):
    if isinstance(v, str):
        try:
            packed = socket.inet_pton(socket.AF_INET6 if ":" in v else socket.AF_INET, v)
        except OSError:
            raise ValueError("can't interpret %r as an inet address" % (v,))
    elif isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        packed = v.packed
    else:
        raise TypeError("expected an address string or ipaddress object, got %s"
                        % type(v).__name__)
    return (ffi.from_buffer("uint8_t[]", packed), len(packed))


def _date(v):
    if isinstance(v, Date):
        return (v.days_from_epoch,)
    if isinstance(v, (int, str, datetime.date)):
        return (Date(v).days_from_epoch,)
    raise TypeError("expected a Date, datetime.date, int or str, got %s" % type(v).__name__)


def _time(v):
    if isinstance(v, Time):
        return (v.nanosecond_time,)
    if isinstance(v, (int, str, datetime.time)):
        return (Time(v).nanosecond_time,)
    raise TypeError("expected a Time, datetime.time, int or str, got %s" % type(v).__name__)


def _timestamp(v):
    if isinstance(v, datetime.datetime):
        return (util.ms_timestamp_from_datetime(v),)
    if isinstance(v, datetime.date):
        return (util.ms_timestamp_from_datetime(datetime.datetime(v.year, v.month, v.day)),)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (int(v),)
    raise TypeError('expected a datetime, date, or timestamp in ms, got %s' % type(v).__name__)


def _duration(v):
    if isinstance(v, Duration):
        return (v.months, v.days, v.nanoseconds)
    raise TypeError("expected a Duration, got %s" % type(v).__name__)


def _signed_bytes(n):
    length = (n + (n < 0)).bit_length() // 8 + 1
    return n.to_bytes(length, "big", signed=True)


def _varint(v):
    if isinstance(v, int):
        b = _signed_bytes(v)
        return (ffi.from_buffer("uint8_t[]", b), len(b))
    raise TypeError("expected an int, got %s" % type(v).__name__)


def _decimal(v):
    if isinstance(v, (int, float, str)):
        v = decimal.Decimal(v if not isinstance(v, float) else repr(v))
    if not isinstance(v, decimal.Decimal):
        raise TypeError("expected a Decimal, got %s" % type(v).__name__)
    if not v.is_finite():
        raise ValueError("a CQL decimal cannot hold %s" % v)
    sign, digits, exponent = v.as_tuple()
    unscaled = int("".join(map(str, digits)) or "0")
    if sign:
        unscaled = -unscaled
    b = _signed_bytes(unscaled)
    return (ffi.from_buffer("uint8_t[]", b), len(b), -exponent)


def _bool(v):
    return (bool(v),)


def _native(name, convert):
    bind = getattr(lib, "sshard_statement_bind_" + name)
    append = getattr(lib, "sshard_builder_append_" + name)
    return convert, bind, append


_NATIVE_ENCODERS = {
    T.SSHARD_TYPE_BOOLEAN: _native("bool", _bool),
    T.SSHARD_TYPE_TINYINT: _native("int8", _int),
    T.SSHARD_TYPE_SMALLINT: _native("int16", _int),
    T.SSHARD_TYPE_INT: _native("int32", _int),
    T.SSHARD_TYPE_BIGINT: _native("int64", _int),
    T.SSHARD_TYPE_COUNTER: _native("counter", _int),
    T.SSHARD_TYPE_FLOAT: _native("float", _float),
    T.SSHARD_TYPE_DOUBLE: _native("double", _float),
    T.SSHARD_TYPE_TEXT: _native("text", _text),
    T.SSHARD_TYPE_ASCII: _native("text", _text),
    T.SSHARD_TYPE_BLOB: _native("blob", _blob),
    T.SSHARD_TYPE_CUSTOM: _native("blob", _blob),
    T.SSHARD_TYPE_UUID: _native("uuid", _uuid),
    T.SSHARD_TYPE_TIMEUUID: _native("uuid", _uuid),
    T.SSHARD_TYPE_INET: _native("inet", _inet),
    T.SSHARD_TYPE_DATE: _native("date", _date),
    T.SSHARD_TYPE_TIME: _native("time", _time),
    T.SSHARD_TYPE_TIMESTAMP: _native("timestamp", _timestamp),
    T.SSHARD_TYPE_DURATION: _native("duration", _duration),
    T.SSHARD_TYPE_DECIMAL: _native("decimal", _decimal),
    T.SSHARD_TYPE_VARINT: _native("varint", _varint),
}


class EncodeError(Exception):
    def __init__(self, status, what):
        Exception.__init__(self, status, what)
        self.status = status
        self.what = what


def _check(status, what):
    if status != OK:
        raise EncodeError(status, what)


def _udt_items(t, value):
    if isinstance(value, dict):
        return [value.get(name) for name in t.field_names]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        if len(value) > len(t.field_names):
            raise ValueError("%d values for UDT %s with %d fields"
                             % (len(value), t.name, len(t.field_names)))
        return list(value) + [None] * (len(t.field_names) - len(value))
    return [getattr(value, name, None) for name in t.field_names]


def _fill_builder(builder, t, value):
    kind = t.kind
    if kind in (T.SSHARD_TYPE_LIST, T.SSHARD_TYPE_SET):
        if isinstance(value, (str, bytes, dict)):
            raise TypeError("expected a list or set for %s, got %s"
                            % (t.cql_name(), type(value).__name__))
        for item in value:
            append_value(builder, t.subtypes[0], item)
    elif kind == T.SSHARD_TYPE_MAP:
        items = value.items() if hasattr(value, "items") else value
        for k, v in items:
            append_value(builder, t.subtypes[0], k)
            append_value(builder, t.subtypes[1], v)
    elif kind == T.SSHARD_TYPE_TUPLE:
        if len(value) != len(t.subtypes):
            raise ValueError("expected a tuple of %d values for %s, got %d"
                             % (len(t.subtypes), t.cql_name(), len(value)))
        for sub, item in zip(t.subtypes, value):
            append_value(builder, sub, item)
    elif kind == T.SSHARD_TYPE_UDT:
        for name, sub, item in zip(t.field_names, t.subtypes, _udt_items(t, value)):
            n = name.encode("utf-8")
            _check(lib.sshard_builder_field_name(builder, n, len(n)), "UDT field " + name)
            append_value(builder, sub, item)


def _built(t, value, use):
    b = ffi.new("sshard_builder **")
    _check(lib.sshard_builder_new(t.kind, b), t.cql_name())
    try:
        _fill_builder(b[0], t, value)
        use(b[0])
    finally:
        lib.sshard_builder_free(b[0])


def append_value(builder, t, value):
    if value is None:
        _check(lib.sshard_builder_append_null(builder), "NULL")
        return
    native = _NATIVE_ENCODERS.get(t.kind)
    if native is not None:
        convert, _, append = native
        _check(append(builder, *convert(value)), t.cql_name())
        return
    _built(t, value, lambda inner: _check(lib.sshard_builder_append_builder(builder, inner),
                                          t.cql_name()))


def bind_value(statement, index, t, value):
    """Binds `value` to marker `index` of `statement` as CQL type `t`."""
    if value is None:
        _check(lib.sshard_statement_bind_null(statement, index), "NULL")
        return
    if value is UNSET_VALUE:
        _check(lib.sshard_statement_bind_unset(statement, index), "UNSET")
        return
    native = _NATIVE_ENCODERS.get(t.kind)
    if native is not None:
        convert, bind, _ = native
        _check(bind(statement, index, *convert(value)), t.cql_name())
        return
    _built(t, value, lambda inner: _check(lib.sshard_statement_bind_builder(
        statement, index, inner), t.cql_name()))


# ---------------------------------------------------------------------------
# CQL literals for simple statements with %s parameters
# ---------------------------------------------------------------------------

class ValueSequence(list):
    """A sequence bound as `(a, b, ...)`, for `IN %s`."""


def _quote(s):
    return "'%s'" % s.replace("'", "''")


def _literal_float(v):
    if math.isinf(v):
        return 'Infinity' if v > 0 else '-Infinity'
    if math.isnan(v):
        return 'NaN'
    return repr(v)


def _literal_date(v):
    if isinstance(v, Date):
        try:
            v.date()
        except ValueError:
            return str(v.days_from_epoch + 2 ** 31)
        return _quote(str(v))
    return _quote(v.strftime('%Y-%m-%d'))


def _literal_map(v):
    return '{%s}' % ', '.join('%s: %s' % (cql_literal(k), cql_literal(x)) for k, x in v.items())


_LITERALS = {
    type(None): lambda v: 'NULL',
    bool: lambda v: 'true' if v else 'false',
    int: str,
    float: _literal_float,
    decimal.Decimal: lambda v: str(v),
    str: _quote,
    bytes: lambda v: '0x' + v.hex(),
    bytearray: lambda v: '0x' + bytes(v).hex(),
    memoryview: lambda v: '0x' + bytes(v).hex(),
    uuid.UUID: str,
    datetime.datetime: lambda v: str(util.ms_timestamp_from_datetime(v)),
    datetime.date: _literal_date,
    datetime.time: lambda v: _quote(str(Time(v))),
    Date: _literal_date,
    Time: lambda v: _quote(str(v)),
    Duration: str,
    dict: _literal_map,
    OrderedMap: _literal_map,
    OrderedMapSerializedKey: _literal_map,
    list: lambda v: '[%s]' % ', '.join(cql_literal(x) for x in v),
    tuple: lambda v: '(%s)' % ', '.join(cql_literal(x) for x in v),
    ValueSequence: lambda v: '(%s)' % ', '.join(cql_literal(x) for x in v),
    set: lambda v: '{%s}' % ', '.join(cql_literal(x) for x in v),
    frozenset: lambda v: '{%s}' % ', '.join(cql_literal(x) for x in v),
    SortedSet: lambda v: '{%s}' % ', '.join(cql_literal(x) for x in v),
    ipaddress.IPv4Address: lambda v: _quote(v.compressed),
    ipaddress.IPv6Address: lambda v: _quote(v.compressed),
}


def cql_literal(value):
    encode = _LITERALS.get(type(value))
    if encode is not None:
        return encode(value)
    if isinstance(value, tuple):  # named tuples (UDT values): a UDT literal
        fields = getattr(value, "_fields", None)
        if fields:
            return '{%s}' % ', '.join('%s: %s' % (f, cql_literal(x))
                                      for f, x in zip(fields, value))
    for base, encode in _LITERALS.items():
        if isinstance(value, base) and base is not type(None):
            return encode(value)
    return str(value)


def bind_params(query, params):
    """`query % params` with every value turned into its CQL literal."""
    if isinstance(params, dict):
        return query % {k: cql_literal(v) for k, v in params.items()}
    return query % tuple(cql_literal(v) for v in params)
