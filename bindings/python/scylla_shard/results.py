"""Results: a page read out of an sshard_result (_Page) and the ResultSet
that pages through them, with scylla-driver's attributes."""

import threading

from scylla_shard._native import ffi, lib, OK
from scylla_shard import _codec
from scylla_shard._errors import raise_status



class _Outs(object):
    """Out-parameters for result reading, one set per thread (a call's
    out-value is read before the thread makes its next call)."""

    def __init__(self):
        self.b = ffi.new("bool *")
        self.n = ffi.new("size_t *")
        self.bytes = ffi.new("const uint8_t **")
        self.value = ffi.new("const sshard_value **")
        self.result = ffi.new("const sshard_result **")
        self._cells = {}

    def cells(self, ncols):
        """(bytes, lengths) arrays for sshard_result_row_cells of `ncols`."""
        arrays = self._cells.get(ncols)
        if arrays is None:
            arrays = self._cells[ncols] = (ffi.new("const uint8_t *[]", ncols),
                                           ffi.new("int32_t[]", ncols))
        return arrays


_thread_outs = threading.local()


def _outs():
    try:
        return _thread_outs.outs
    except AttributeError:
        _thread_outs.outs = _Outs()
        return _thread_outs.outs



# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------

class _Page(object):
    """One result page read out of an sshard_result (which it owns)."""

    __slots__ = ("handle", "column_names", "column_types", "rows", "has_more_pages",
                 "paging_state", "has_rows", "coordinator", "warnings", "trace_id")

    def __init__(self, handle, prepared=None):
        self.handle = handle
        outs = _outs()
        b, n = outs.b, outs.n
        lib.sshard_result_has_rows(handle, b)
        self.has_rows = has_rows = bool(b[0])
        if has_rows:
            lib.sshard_result_has_more_pages(handle, b)
        self.has_more_pages = has_rows and bool(b[0])
        self.paging_state = None
        if self.has_more_pages:
            p = outs.bytes
            if lib.sshard_result_paging_state(handle, p, n) == OK and n[0]:
                self.paging_state = ffi.buffer(p[0], n[0])[:]
        self.warnings = None
        self.trace_id = None
        if not self.has_rows:
            self.column_names, self.column_types, self.rows = [], [], []
            return
        lib.sshard_result_column_count(handle, n)
        ncols = n[0]
        # A prepared statement's rows keep its result metadata (as
        # scylla-driver keeps it in the PreparedStatement): read it once.
        cached = prepared._result_metadata if prepared is not None else None
        if cached is not None and len(cached[0]) == ncols:
            names, types = cached
        else:
            names, types = _column_metadata(handle, ncols)
            if prepared is not None:
                prepared._result_metadata = (names, types)
        self.column_names = names
        self.column_types = types
        self.rows = _decode_rows(handle, [t.decoder for t in types], outs)

    def free(self):
        handle, self.handle = self.handle, None
        if handle is not None:
            lib.sshard_result_free(handle)

    def __del__(self):
        if lib is not None:
            self.free()


def _column_metadata(handle, ncols):
    names, types = [], []
    n = ffi.new("size_t *")
    kind = ffi.new("sshard_type *")
    dt = ffi.new("const sshard_data_type **")
    text = ffi.new("const char **")
    for c in range(ncols):
        lib.sshard_result_column_name(handle, c, text, n)
        names.append(ffi.unpack(text[0], n[0]).decode("utf-8"))
        lib.sshard_result_column_type(handle, c, kind)
        if kind[0] in _codec._NATIVE_DECODERS:
            types.append(_codec.native_type(kind[0]))
        else:
            lib.sshard_result_column_data_type(handle, c, dt)
            types.append(_codec.read_data_type(dt[0]))
    return names, types


def _decode_rows(handle, decoders, outs):
    n = outs.n
    lib.sshard_result_row_count(handle, n)
    nrows, ncols = n[0], len(decoders)
    if ncols == 0:
        return [()] * nrows
    data, lengths = outs.cells(ncols)
    row_cells, buffer = lib.sshard_result_row_cells, ffi.buffer
    columns = list(enumerate(decoders))
    rows = []
    for r in range(nrows):
        status = row_cells(handle, r, data, lengths, ncols)
        if status != OK:
            raise_status(status)
        row = []
        for c, decode in columns:
            length = lengths[c]
            row.append(decode(buffer(data[c], length)[:]) if length >= 0 else None)
        rows.append(tuple(row))
    return rows


class ResultSet(object):
    """The rows of a request. Iterating it fetches the following pages
    transparently (each fetch waits for its page)."""

    def __init__(self, session, row_factory, page, response_future=None):
        self.response_future = response_future
        self._session = session
        self._row_factory = row_factory
        self._set_page(page)

    def _set_page(self, page):
        old = getattr(self, "_page", None)
        self._page = page
        self.column_names = page.column_names
        self.column_types = page.column_types
        self._current_rows = self._row_factory(page.column_names, page.rows) \
            if page.has_rows else []
        if not page.has_more_pages:
            page.free()  # nothing more to fetch: let the result go now
        if old is not None and old is not page:
            old.free()

    @property
    def current_rows(self):
        """The rows of the page fetched last."""
        return self._current_rows

    @property
    def has_more_pages(self):
        return self._page.has_more_pages

    @property
    def paging_state(self):
        """The opaque state to resume after this page with
        `execute(..., paging_state=...)`; None on the last page."""
        return self._page.paging_state

    def fetch_next_page(self):
        """Replaces the current page by the next one (waits for it)."""
        if not self._page.has_more_pages:
            return
        self._set_page(self._session._next_page_sync(self._page))

    def __iter__(self):
        while True:
            for row in self._current_rows:
                yield row
            if not self._page.has_more_pages:
                return
            self.fetch_next_page()

    def all(self):
        """Every row of every remaining page, as a list."""
        return list(self)

    def one(self):
        """The first row, or None."""
        rows = self._current_rows
        return rows[0] if rows else None

    def __getitem__(self, i):
        return self._current_rows[i]

    def __bool__(self):
        return bool(self._current_rows)

    @property
    def was_applied(self):
        """Whether a conditional statement (LWT) applied."""
        if not self.column_names or self.column_names[0] != "[applied]":
            raise RuntimeError("No LWT were present in the BatchStatement or the "
                               "statement was not conditional")
        row = self.one()
        if isinstance(row, dict):
            return row["[applied]"]
        return row[0]

    def __repr__(self):
        return "<ResultSet rows=%d has_more_pages=%s>" % (len(self._current_rows),
                                                           self.has_more_pages)
