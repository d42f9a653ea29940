-- scylla_shard: a shard-aware, tablet-aware ScyllaDB / Cassandra driver for
-- LuaJIT, over libscylla_shard's C API through ffi (no C shim).
--
--   local scylla = require "scylla_shard"
--   local session = assert(scylla.connect { contact_points = { "127.0.0.1" } })
--   local rows, err, code = session:execute("SELECT v FROM ks.t WHERE k = ?", { 1 })
--
-- The API follows lua-cassandra's: results are arrays of rows keyed by
-- column name with `rows.meta` and `rows.type`; failures are
-- `nil, err, code` (code: the status number, see scylla.status). Requests
-- run on the library's threads; their completions reach Lua only through
-- a completion queue that Lua drains (scylla.poll, future:wait): the
-- library never calls into Lua. See bindings/lua/README.md.
local ffi = require "ffi"
local bit = require "bit"
local L = require "scylla_shard.lib"
local values = require "scylla_shard.values"
local codec = require "scylla_shard.codec"
local metrics = require "scylla_shard.metrics"
local schema = require "scylla_shard.schema"

local C = L.C
local table_new = require "table.new"
local ffi_string, ffi_gc, ffi_new = ffi.string, ffi.gc, ffi.new
local type, tonumber, tostring, pairs, setmetatable, error, pcall =
  type, tonumber, tostring, pairs, setmetatable, error, pcall
local put, decode, FAILED = values.put, values.decode, values.FAILED
local BY_INDEX, BY_NAME = values.BY_INDEX, values.BY_NAME

local M = {
  _VERSION = ffi_string(C.sshard_version()),
  ABI_VERSION = L.ABI_VERSION,
  null = values.null,
  unset = values.unset,
  status = L.status,
  library_path = L.library_path,
  cdef_path = L.cdef_path,
}

local S = L.status
local OK, PENDING, FORKED = S.OK, S.PENDING, S.FORKED

local KIND_CONNECT = C.SSHARD_FUTURE_KIND_CONNECT
local KIND_PREPARE = C.SSHARD_FUTURE_KIND_PREPARE
local KIND_EXECUTE = C.SSHARD_FUTURE_KIND_EXECUTE
local KIND_BATCH = C.SSHARD_FUTURE_KIND_BATCH
local KIND_USE_KEYSPACE = C.SSHARD_FUTURE_KIND_USE_KEYSPACE
local KIND_CLOSE = C.SSHARD_FUTURE_KIND_CLOSE

pcall(ffi.cdef, "int getpid(void);")
if not pcall(ffi.typeof, "struct timespec") then
  ffi.cdef "struct timespec { long tv_sec; long tv_nsec; };"
end
pcall(ffi.cdef, "int clock_gettime(int clk_id, struct timespec *tp);")
local CLOCK_MONOTONIC = 1
local timespec = ffi_new("struct timespec")

-- Monotonic seconds.
local function now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) * 1e-9
end
M.now = now

-- Out parameters, reused (Lua runs one call at a time per state).
local out_future = ffi_new("const sshard_future *[1]")
local out_session = ffi_new("const sshard_session *[1]")
local out_prepared = ffi_new("const sshard_prepared *[1]")
local out_result = ffi_new("const sshard_result *[1]")
local out_statement = ffi_new("sshard_statement *[1]")
local out_batch = ffi_new("sshard_batch *[1]")
local out_config = ffi_new("sshard_config *[1]")
local out_ssl = ffi_new("sshard_ssl *[1]")
local out_queue = ffi_new("const sshard_queue *[1]")
local out_error = ffi_new("const sshard_error *[1]")
local out_text = ffi_new("const char *[4]")
local out_value = ffi_new("const sshard_value *[1]")
local out_bytes = ffi_new("const uint8_t *[1]")
local out_len = ffi_new("size_t[4]")
local out_bool = ffi_new("bool[1]")
local out_i32 = ffi_new("int32_t[1]")
local out_u16 = ffi_new("uint16_t[1]")
local out_kind = ffi_new("sshard_type[1]")
local out_fd = ffi_new("int32_t[1]")
local out_uuid = ffi_new("uint8_t[16]")
local positions = ffi_new("size_t[64]")

---------------------------------------------------------------- errors

local function status_name(status)
  return ffi_string(C.sshard_status_str(status))
end

local FORK_HINT = " (a session, statement or future made before fork() cannot be used in the child: "
  .. "make a new session in this process; under OpenResty, in init_worker_by_lua*, not init_by_lua*)"

-- `nil, "NAME: message", status` for a call that failed synchronously.
local function call_failure(status, message)
  if not message then
    if C.sshard_last_error_message(out_text, out_len) == OK then
      message = ffi_string(out_text[0], out_len[0])
    else
      message = ""
    end
  end
  if status == FORKED then message = message .. FORK_HINT end
  return nil, status_name(status) .. (message ~= "" and (": " .. message) or ""), status
end
M._call_failure = call_failure

local function error_text(e, getter)
  if getter(e, out_text, out_len) == OK then return ffi_string(out_text[0], out_len[0]) end
end

local function error_number(e, getter, out)
  if getter(e, out) == OK then return out[0] end
end

-- The failure of a completed future: nil, "NAME: server message", status,
-- and a table of the details the error carries.
local function future_failure(cf, status)
  local message = ""
  local details = { status = status, name = status_name(status) }
  if C.sshard_future_get_error(cf, out_error) == OK then
    local e = out_error[0]
    message = error_text(e, C.sshard_error_message) or ""
    details.server_code = error_number(e, C.sshard_error_server_code, out_i32)
    details.consistency = error_number(e, C.sshard_error_consistency, out_u16)
    details.received = error_number(e, C.sshard_error_received, out_i32)
    details.required = error_number(e, C.sshard_error_required, out_i32)
    details.failures = error_number(e, C.sshard_error_num_failures, out_i32)
    details.data_present = error_number(e, C.sshard_error_data_present, out_bool)
    details.write_type = error_text(e, C.sshard_error_write_type)
    details.keyspace = error_text(e, C.sshard_error_keyspace)
    details.table = error_text(e, C.sshard_error_table)
    details["function"] = error_text(e, C.sshard_error_function)
  end
  if status == FORKED then message = message .. FORK_HINT end
  details.message = message
  return nil, details.name .. (message ~= "" and (": " .. message) or ""), status, details
end

local function invalid(message)
  return nil, "INVALID_ARGUMENT: " .. message, S.INVALID_ARGUMENT
end

-- A refused argument: the Lua side's reason, else the library's message.
local function bind_failure(status, what)
  local message = values.take_why()
  if not message and C.sshard_last_error_message(out_text, out_len) == OK then
    message = ffi_string(out_text[0], out_len[0])
  end
  return call_failure(status, what .. ": " .. (message or ""))
end

---------------------------------------------------------------- names

local CONSISTENCY = {}
for _, name in ipairs { "ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM",
  "EACH_QUORUM", "SERIAL", "LOCAL_SERIAL", "LOCAL_ONE" } do
  CONSISTENCY[name] = C["SSHARD_CONSISTENCY_" .. name]
end
M.consistency = CONSISTENCY

local function consistency_arg(v, what)
  if type(v) == "number" then return v end
  local level = type(v) == "string" and CONSISTENCY[v:upper()]
  if not level then return nil, ("%s: unknown consistency %s"):format(what, tostring(v)) end
  return level
end

local BATCH_TYPES = { logged = C.SSHARD_BATCH_TYPE_LOGGED, unlogged = C.SSHARD_BATCH_TYPE_UNLOGGED,
  counter = C.SSHARD_BATCH_TYPE_COUNTER }

local INT64_MODES = { cdata = values.INT64_CDATA, number = values.INT64_NUMBER,
  string = values.INT64_STRING }
local MAP_MODES = { table = false, ordered = true }

---------------------------------------------------------------- typed values

M.typed = values.typed
for _, name in ipairs { "ascii", "bigint", "blob", "boolean", "counter", "decimal", "double",
  "float", "int", "timestamp", "uuid", "text", "varchar", "varint", "timeuuid", "inet", "date",
  "time", "smallint", "tinyint", "duration" } do
  local t = values.native[values.kinds[name]]
  M[name] = function(v) return setmetatable({ type = t, value = v }, values.Typed) end
end
for _, shape in ipairs { "list", "set", "map", "tuple", "udt" } do
  M[shape] = function(v) return values.shaped(shape, v) end
end
-- An ordered map argument: { {key, value}, ... }.
function M.ordered_map(pairs_list)
  return setmetatable(pairs_list, values.OrderedMap)
end

---------------------------------------------------------------- completion queue

-- One queue per process (a queue made before fork() is replaced in the
-- child). A request's token is a slot number, taken from a free list and
-- given back when its event comes, so the tables keyed by token stay dense
-- arrays (no hashing, no rehash as tokens grow). Futures are held by slot
-- in a weak table: a future nobody holds is collected, and its
-- completion, when it comes, is freed unread.
local Q = {
  ptr = nil,
  pid = nil,
  pending = setmetatable({}, { __mode = "v" }),
  held = {}, -- futures with a callback: kept until they complete

  outstanding = 0, -- events still to come (held futures or not)
  -- What decoding each slot's completion needs (kept here, not on the
  -- future, so that a future is a small table).
  kinds = {},
  sessions = {},
  prepareds = {},
  optss = {},
  keeps = {},
  free = {}, -- slots given back, a stack
  nfree = 0,
  slots = 0, -- slots ever made
  events = nil,
  capacity = 0,
}

-- A free slot (token) for a new request.
local function take_slot()
  local n = Q.nfree
  if n > 0 then
    Q.nfree = n - 1
    return Q.free[n]
  end
  local slot = Q.slots + 1
  Q.slots = slot
  return slot
end

-- Gives back the slot of a request whose event has come.
local function give_slot(slot)
  local n = Q.nfree + 1
  Q.nfree = n
  Q.free[n] = slot
end

local function getpid()
  return ffi.C.getpid()
end
M.getpid = getpid

local Future = {}
Future.__index = Future
M.Future = Future

-- A completed future's outcome: the first value in _a, the others (an
-- error's message, code and details, or a kept result) in _x when there
-- are any, so a successful future stores one field.
local function settle(fut, a, b, c, d, e)
  fut._a = a
  if b ~= nil or c ~= nil or d ~= nil or e ~= nil then fut._x = { b, c, d, e } end
  fut.done = true
end

local function fail_orphans(pending)
  for _, fut in pairs(pending) do
    settle(fut, call_failure(FORKED, "the request was made in process " .. tostring(Q.pid)))
  end
end

local function reset_queue()
  if Q.ptr then ffi_gc(Q.ptr, nil) end -- the parent's: leaked by the library
  local orphans = Q.pending
  Q.ptr, Q.pid, Q.outstanding, Q.held = nil, nil, 0, {}
  Q.pending = setmetatable({}, { __mode = "v" })
  Q.free, Q.nfree, Q.slots = {}, 0, 0
  Q.kinds, Q.sessions, Q.prepareds, Q.optss, Q.keeps = {}, {}, {}, {}, {}
  fail_orphans(orphans)
end

local function queue()
  local q = Q.ptr
  if q then return q end
  local s = C.sshard_queue_new(out_queue)
  if s ~= OK then return nil, call_failure(s) end
  q = ffi_gc(out_queue[0], C.sshard_queue_free)
  Q.ptr, Q.pid = q, getpid()
  return q
end
M._queue = queue

local function event_buffer(n)
  if n > Q.capacity then
    local capacity = Q.capacity > 0 and Q.capacity or 256
    while capacity < n do capacity = capacity * 2 end
    Q.events = ffi_new("sshard_event[?]", capacity)
    Q.capacity = capacity
  end
  return Q.events
end

local NONE = nil

-- Hands a submitted C future to the queue: returns a Future.
local function track(cf, kind, session, prepared, opts, keep)
  local q, err, code = queue()
  if not q then
    C.sshard_future_free(cf)
    return nil, err, code
  end
  local token = take_slot()
  local s = C.sshard_future_set_queue(cf, q, token)
  if s == FORKED then -- our queue was made before a fork(): make this process's
    reset_queue()
    q, err, code = queue()
    token = take_slot()
    s = q and C.sshard_future_set_queue(cf, q, token) or code
  end
  -- The event carries its own reference.
  C.sshard_future_free(cf)
  if s ~= OK then
    give_slot(token)
    return call_failure(s)
  end
  Q.kinds[token], Q.sessions[token], Q.prepareds[token], Q.optss[token], Q.keeps[token] =
    kind, session, prepared, opts, keep
  -- Every field a completion sets is named here (nil until set: storing
  -- even nil to an absent key adds it), so the table is copied whole from
  -- its template and does not grow (a rehash per request otherwise); 5
  -- fields in 8 slots leave room for a few of the caller's. NONE, not a
  -- literal nil: the parser keeps the key of a variable's slot in the
  -- template, while a literal nil's slot is free for the next key.
  local fut = setmetatable({ done = false, _token = token, _a = NONE, _x = NONE, _callback = NONE },
    Future)
  Q.pending[token] = fut
  Q.outstanding = Q.outstanding + 1
  return fut
end
M._track = track

local complete_outcome

-- Events of the batch being dispatched that are done with (read when a
-- completion raises, to settle the rest).
local settled = 0

-- Completes the futures of events[0..n-1]: each outcome is decoded now
-- (the caller reads it next) and the C future freed. Returns k (futures
-- put in into[1..k]) and the futures with a waker or a callback.
local function complete_events(events, n, into)
  local pending, held = Q.pending, Q.held
  local kinds, sessions, prepareds, optss, keeps = Q.kinds, Q.sessions, Q.prepareds, Q.optss, Q.keeps
  local notify
  local k = 0
  for i = 0, n - 1 do
    settled = i
    local ev = events[i]
    local cf = ev.future
    local token = tonumber(ev.token)
    local fut = pending[token]
    local session, prepared, opts, keep = sessions[token], prepareds[token], optss[token], keeps[token]
    sessions[token], prepareds[token], optss[token], keeps[token] = nil, nil, nil, nil
    give_slot(token)
    if fut then
      local a, b, c, d, e = complete_outcome(cf, ev.status, kinds[token], session, prepared, opts, keep)
      fut._a = a
      if b ~= nil or c ~= nil or d ~= nil or e ~= nil then fut._x = { b, c, d, e } end
      fut.done = true
      pending[token], held[token] = nil, nil
      if into then
        k = k + 1
        into[k] = fut
      end
      if fut._waker or fut._callback then
        notify = notify or {}
        notify[#notify + 1] = fut
      end
    end
    C.sshard_future_free(cf)
  end
  settled = n
  return k, notify
end

-- After a completion raised `err` at event `settled`: that event and the
-- ones after it complete with the error, so no future waits forever and no
-- C future leaks.
local function settle_rest(events, n, into, k, err)
  for i = settled, n - 1 do
    local ev = events[i]
    local token = tonumber(ev.token)
    local fut = Q.pending[token]
    -- The raising event gave its slot back already.
    if i > settled then
      give_slot(token)
      Q.sessions[token], Q.prepareds[token], Q.optss[token], Q.keeps[token] = nil, nil, nil, nil
    end
    if fut then
      Q.pending[token], Q.held[token] = nil, nil
      settle(fut, call_failure(S.INTERNAL, "completing the request raised: " .. tostring(err)))
      if into then
        k = k + 1
        into[k] = fut
      end
    end
    C.sshard_future_free(ev.future)
  end
  return k
end

-- Completes the futures of `n` polled events (those still held go to
-- into[1..k] when `into` is given); runs their wakers and callbacks after
-- all of them are recorded (a failing callback loses no event), then
-- raises the first error, if any. Returns n, k.
local function dispatch(events, n, into)
  Q.outstanding = Q.outstanding - n
  local ok, k, notify = pcall(complete_events, events, n, into)
  local first_error
  if not ok then
    first_error = k
    k = settle_rest(events, n, into, into and #into or 0, first_error)
    notify = nil
  end
  if notify then
    for i = 1, #notify do
      local fut = notify[i]
      local waker, callback = fut._waker, fut._callback
      if waker then waker:post(fut._waiting or 1) end
      if callback then
        local cb_ok, err = pcall(callback, fut:result())
        if not cb_ok and not first_error then first_error = err end
      end
    end
  end
  if first_error then error(first_error, 0) end
  return n, k
end

-- Completes every future whose request has finished, up to `max` (default:
-- all that are waiting), in one FFI call. Returns how many completed; with
-- a table `into`, the completed futures (those still referenced) go to
-- into[1..k] and k comes second.
function M.poll(max, into)
  local q = Q.ptr
  if not q then return 0, 0 end
  max = max or (Q.outstanding > 0 and Q.outstanding or 1)
  local events = event_buffer(max)
  local s = C.sshard_queue_poll(q, events, max, out_len)
  if s ~= OK then
    if s == FORKED then reset_queue() return 0, 0 end
    error(select(2, call_failure(s)), 2)
  end
  return dispatch(events, tonumber(out_len[0]), into)
end

-- Blocks until at least one event is waiting or `timeout_s` passes
-- (nil: no limit), then completes what is waiting.
local function wait_queue(timeout_s, into)
  local q = Q.ptr
  if not q then return 0, 0 end
  local max = Q.outstanding > 0 and Q.outstanding or 1
  local events = event_buffer(max)
  local us = timeout_s and math.floor(timeout_s * 1e6) or -1
  local s = C.sshard_queue_wait(q, events, max, us, out_len)
  if s ~= OK then
    if s == FORKED then reset_queue() return 0, 0 end
    return call_failure(s)
  end
  return dispatch(events, tonumber(out_len[0]), into)
end

-- Blocks (plain LuaJIT) until a request completes or `timeout_s` passes
-- (nil: no limit), then completes every finished one; returns how many
-- (and fills `into` as scylla.poll does).
function M.wait(timeout_s, into)
  local n, k = wait_queue(timeout_s, into)
  if not n then error(k, 2) end
  return n, k
end

-- The queue's eventfd, readable while completions wait: add it to an event
-- loop (luv, cqueues, epoll) and call scylla.poll() when it is readable.
function M.fd()
  local q, err, code = queue()
  if not q then return nil, err, code end
  local s = C.sshard_queue_fd(q, out_fd)
  if s ~= OK then return call_failure(s) end
  return out_fd[0]
end

-- Requests whose completion has not been polled yet (abandoned ones too).
function M.outstanding()
  return Q.outstanding
end

---------------------------------------------------------------- futures

-- Blocking wait (plain LuaJIT): drains the queue until this future is done.
local function blocking_wait(fut, timeout_s)
  local deadline = timeout_s and now() + timeout_s
  while not fut.done do
    local left = deadline and deadline - now()
    if left and left <= 0 then break end
    local n, err, code = wait_queue(left)
    if not n then return nil, err, code end
  end
  return true
end

-- Waits at most `timeout_s` seconds (nil: until done) and returns the
-- outcome, or nil, "PENDING: ...", scylla.status.PENDING if it is not done
-- by then (the future stays usable).
function Future:wait(timeout_s)
  if not self.done then
    local waiter = self._session and self._session._future_waiter or blocking_wait
    local ok, err, code = waiter(self, timeout_s)
    if not ok then return nil, err, code end
    if not self.done then
      return nil, "PENDING: the request has not completed within " .. tostring(timeout_s) .. " s", PENDING
    end
  end
  return self:result()
end

-- Whether the request has completed (polls the queue first; never blocks).
function Future:ready()
  if not self.done then M.poll() end
  return self.done
end

-- The outcome of a completed future (rows / session / statement, or
-- nil, err, code, details); nil, "PENDING", PENDING before it completes.
function Future:result()
  if not self.done then return nil, "PENDING: the request has not completed", PENDING end
  local x = self._x
  if x then return self._a, x[1], x[2], x[3], x[4] end
  return self._a
end

-- Runs `fn(outcome...)` when the future completes (from the scylla.poll or
-- wait call that completes it; at once if it has). The future is kept
-- until then even if nobody else holds it.
function Future:on_complete(fn)
  if self.done then
    fn(self:result())
  else
    self._callback = fn
    Q.held[self._token] = self
  end
  return self
end

---------------------------------------------------------------- results

local Session = {}
Session.__index = Session
M.Session = Session

local Prepared = {}
Prepared.__index = Prepared
M.Prepared = Prepared

-- Decoding options of a call: `int64` and `map` from opts, else the
-- session's.
local function decoding(session, opts)
  local int64_mode, ordered = session._int64, session._ordered_maps
  if opts then
    if opts.int64 then int64_mode = INT64_MODES[opts.int64] or int64_mode end
    if opts.map ~= nil then ordered = MAP_MODES[opts.map] or ordered end
  end
  return int64_mode, ordered
end

-- Longest rows decoded by a generated function (a Lua function has at most
-- 200 locals); longer ones go through the generic loop.
local ROW_DECODER_MAX = 64

-- A function decoding row i of a result with these columns into a table:
-- generated once per column set, so the row is made from a template
-- holding every column name (no rehash as columns are added) and each
-- column's type is a constant of the trace. Returns nil for rows too
-- long. The decoder returns the row, or FAILED and the column.
local function row_decoder(names, types)
  local n = #names
  if n == 0 or n > ROW_DECODER_MAX then return nil end
  local src = { "local C, decode, types, FAILED, out_value = ...\n",
    "return function(r, i, int64_mode, ordered)\n" }
  for j = 1, n do
    src[#src + 1] = ("C.sshard_result_value(r, i, %d, out_value)\n"
      .. "local v%d = decode(out_value[0], types[%d], int64_mode, ordered)\n"
      .. "if v%d == FAILED then return FAILED, %d end\n"):format(j - 1, j, j, j, j)
  end
  local fields = {}
  for j = 1, n do fields[j] = ("[%q] = v%d"):format(names[j], j) end
  src[#src + 1] = "return { " .. table.concat(fields, ", ") .. " }\nend\n"
  local chunk = load(table.concat(src), "=scylla_shard.row_decoder")
  if not chunk then return nil end
  return chunk(C, decode, types, FAILED, ffi_new("const sshard_value *[1]"))
end

-- Column names and types of a result; cached on the prepared statement
-- whose metadata the result shares (the same name pointers: the prepared
-- handle we hold keeps that metadata alive and unique).
local function columns_of(r, n, prepared)
  local cache = prepared and prepared._columns
  if n > 0 and C.sshard_result_column_name(r, 0, out_text, out_len) == OK then
    local first = out_text[0]
    if cache and cache.count == n and cache.first == first then return cache end
    local names, types, meta = {}, {}, {}
    for i = 0, n - 1 do
      local name
      if C.sshard_result_column_name(r, i, out_text, out_len) == OK then
        name = ffi_string(out_text[0], out_len[0])
      else
        name = tostring(i + 1)
      end
      C.sshard_result_column_type(r, i, out_kind)
      local kind = out_kind[0]
      local t = values.native[kind]
      if not t then
        local dt = ffi_new("const sshard_data_type *[1]")
        C.sshard_result_column_data_type(r, i, dt)
        t = values.describe(dt[0])
      end
      names[i + 1], types[i + 1] = name, t
      meta[i + 1] = { name = name, type = t.name }
    end
    cache = { count = n, first = first, names = names, types = types, meta = meta,
      decode_row = row_decoder(names, types) }
    if prepared then prepared._columns = cache end
    return cache
  end
  return { count = 0, names = {}, types = {}, meta = {} }
end

local RESULT_VOID, RESULT_ROWS = C.SSHARD_RESULT_KIND_VOID, C.SSHARD_RESULT_KIND_ROWS
local out_result_kind = ffi_new("sshard_result_kind[1]")

local function result_extras(r, out, opts)
  C.sshard_result_warning_count(r, out_len)
  local n = tonumber(out_len[0])
  if n > 0 then
    local warnings = {}
    for i = 0, n - 1 do
      C.sshard_result_warning(r, i, out_text, out_len)
      warnings[i + 1] = ffi_string(out_text[0], out_len[0])
    end
    out.warnings = warnings
  end
  if opts and opts.tracing and C.sshard_result_tracing_id(r, out_uuid) == OK then
    out.tracing_id = codec.uuid_to_string(out_uuid)
  end
end

-- A result as lua-cassandra shapes it: ROWS (an array of rows keyed by
-- column name, with .meta), VOID, SET_KEYSPACE or SCHEMA_CHANGE.
local function rows_of(r, session, prepared, opts)
  -- One call tells rows from nothing (an INSERT's VOID) from the rest.
  local kind
  if C.sshard_result_get_kind(r, out_result_kind) == OK then
    kind = out_result_kind[0]
  else
    C.sshard_result_has_rows(r, out_bool)
    kind = out_bool[0] and RESULT_ROWS or nil
  end
  if kind == RESULT_VOID then
    local out = { type = "VOID" }
    result_extras(r, out, opts)
    return out
  end
  if kind ~= RESULT_ROWS then
    local out
    if C.sshard_result_schema_change(r, out_text, out_len, out_text + 1, out_len + 1, out_text + 2,
        out_len + 2, out_text + 3, out_len + 3) == OK then
      out = { type = "SCHEMA_CHANGE", change = ffi_string(out_text[0], out_len[0]),
        target = ffi_string(out_text[1], out_len[1]), keyspace = ffi_string(out_text[2], out_len[2]) }
      local name = ffi_string(out_text[3], out_len[3])
      if name ~= "" then
        out.name = name
        if out.target == "TABLE" then out.table = name end
      end
      if C.sshard_result_schema_in_agreement(r, out_bool) == OK then
        out.schema_in_agreement = out_bool[0]
      end
    elseif C.sshard_result_keyspace(r, out_text, out_len) == OK then
      out = { type = "SET_KEYSPACE", keyspace = ffi_string(out_text[0], out_len[0]) }
    else
      out = { type = "VOID" }
    end
    result_extras(r, out, opts)
    return out
  end
  C.sshard_result_column_count(r, out_len)
  local columns = columns_of(r, tonumber(out_len[0]), prepared)
  C.sshard_result_row_count(r, out_len)
  local row_count = tonumber(out_len[0])
  C.sshard_result_has_more_pages(r, out_bool)
  local more = out_bool[0]
  local paging_state
  if more and C.sshard_result_paging_state(r, out_bytes, out_len) == OK then
    paging_state = ffi_string(out_bytes[0], out_len[0])
  end
  local meta = { has_more_pages = more, paging_state = paging_state, columns = columns.meta }
  local rows
  if row_count <= 1 then
    -- The usual single row: a template with its array slot and both keys.
    rows = { nil, type = "ROWS", meta = meta }
  else
    rows = table_new(row_count, 2)
    rows.type, rows.meta = "ROWS", meta
  end
  local names, types, ncols = columns.names, columns.types, columns.count
  local int64_mode, ordered = decoding(session, opts)
  local decode_row = columns.decode_row
  if decode_row then
    for i = 0, row_count - 1 do
      local row, j = decode_row(r, i, int64_mode, ordered)
      if row == FAILED then
        return call_failure(values.decode_status(), "column " .. names[j] .. " of row " .. (i + 1))
      end
      rows[i + 1] = row
    end
    result_extras(r, rows, opts)
    return rows
  end
  for i = 0, row_count - 1 do
    local row = table_new(0, ncols)
    for j = 0, ncols - 1 do
      C.sshard_result_value(r, i, j, out_value)
      local v = decode(out_value[0], types[j + 1], int64_mode, ordered)
      if v == FAILED then
        return call_failure(values.decode_status(), "column " .. names[j + 1] .. " of row " .. (i + 1))
      end
      row[names[j + 1]] = v
    end
    rows[i + 1] = row
  end
  result_extras(r, rows, opts)
  return rows
end

local wrap_session, wrap_prepared

-- The outcome of a completed C future: rows (or a session, a prepared
-- statement, true) or nil, err, code, details. With `keep`, the result
-- handle comes fifth (for the next page).
function complete_outcome(cf, status, kind, session, prepared, opts, keep)
  if status ~= OK then return future_failure(cf, status) end
  if kind == KIND_EXECUTE or kind == KIND_BATCH then
    local s = C.sshard_future_get_result(cf, out_result)
    if s ~= OK then return future_failure(cf, s) end
    local r = out_result[0]
    -- Only a kept result (the next page's) needs a finalizer; decoding
    -- reports failures as values, so r is freed here on every other path.
    if keep then r = ffi_gc(r, C.sshard_result_free) end
    local rows, err, code = rows_of(r, session, prepared, opts)
    if keep then
      if rows then return rows, nil, nil, nil, r end
      ffi_gc(r, nil)
    end
    C.sshard_result_free(r)
    return rows, err, code
  elseif kind == KIND_PREPARE then
    local s = C.sshard_future_get_prepared(cf, out_prepared)
    if s ~= OK then return future_failure(cf, s) end
    return wrap_prepared(ffi_gc(out_prepared[0], C.sshard_prepared_free), session, opts)
  elseif kind == KIND_CONNECT then
    local s = C.sshard_future_get_session(cf, out_session)
    if s ~= OK then return future_failure(cf, s) end
    return wrap_session(ffi_gc(out_session[0], C.sshard_session_free), session)
  end
  return true
end
M._complete_outcome = complete_outcome

-- Plain LuaJIT: block until the submitted future completes.
local function blocking_await(session, cf, kind, prepared, opts, keep)
  local status = C.sshard_future_wait(cf)
  local a, b, c, d, e = complete_outcome(cf, status, kind, session, prepared, opts, keep)
  C.sshard_future_free(cf)
  return a, b, c, d, e
end

---------------------------------------------------------------- statements

-- Retry policy names (DataStax's) and their C values.
local RETRY_POLICIES = {
  default = C.SSHARD_RETRY_POLICY_DEFAULT,
  fallthrough = C.SSHARD_RETRY_POLICY_FALLTHROUGH,
  downgrading_consistency = C.SSHARD_RETRY_POLICY_DOWNGRADING_CONSISTENCY,
}
local function retry_policy_arg(v)
  local policy = RETRY_POLICIES[v]
  if not policy then
    return nil, "retry_policy: \"default\", \"fallthrough\" or \"downgrading_consistency\" expected"
  end
  return policy
end

-- Speculative execution (idempotent requests only): { delay_ms = N,
-- max_attempts = M } (constant), { percentile = P, max_attempts = M }
-- (the session's latency at P), or false (none); max_attempts counts every
-- execution, the first included. `kind`: "config", "execution_profile",
-- "statement" or "batch" (the C setters' middle part).
local function apply_speculation(handle, v, kind)
  local prefix = "sshard_" .. kind .. "_set_"
  if v == false or v == "none" then return C[prefix .. "no_speculative_execution"](handle) end
  if type(v) ~= "table" then
    return nil, "speculative_execution: { delay_ms =, max_attempts = }, { percentile =, max_attempts = } or false expected"
  end
  local attempts = v.max_attempts
  if type(attempts) ~= "number" or attempts ~= math.floor(attempts) or attempts < 1 or attempts > 16 then
    return nil, "speculative_execution.max_attempts: a whole number from 1 to 16 expected"
  end
  if v.percentile ~= nil then
    if type(v.percentile) ~= "number" then return nil, "speculative_execution.percentile: a number expected" end
    return C[prefix .. "percentile_speculative_execution"](handle, v.percentile, attempts)
  end
  local delay = v.delay_ms
  if type(delay) ~= "number" or delay ~= math.floor(delay) or delay < 0 then
    return nil, "speculative_execution.delay_ms: a whole number of milliseconds expected"
  end
  return C[prefix .. "constant_speculative_execution"](handle, delay, attempts)
end

-- opts.execution_profile (a name registered with connect{ execution_profiles })
-- and opts.speculative_execution, on a statement or batch.
local function apply_profile_options(handle, opts, kind)
  local name = opts.execution_profile
  if name ~= nil then
    if type(name) ~= "string" then return nil, "execution_profile: a profile name expected" end
    local s = C["sshard_" .. kind .. "_set_execution_profile"](handle, name, #name)
    if s ~= OK then return s end
  end
  if opts.speculative_execution ~= nil then
    return apply_speculation(handle, opts.speculative_execution, kind)
  end
  return OK
end

-- Options of one request (opts), applied to a statement.
local function apply_options(st, opts)
  local s, why = apply_profile_options(st, opts, "statement")
  if s == nil then return invalid(why) end
  if s ~= OK then return call_failure(s) end
  local v = opts.retry_policy
  if v ~= nil then
    local policy, err = retry_policy_arg(v)
    if not policy then return invalid(err) end
    s = C.sshard_statement_set_retry_policy(st, policy)
    if s ~= OK then return call_failure(s) end
  end
  v = opts.consistency
  if v ~= nil then
    local level, err = consistency_arg(v, "consistency")
    if not level then return invalid(err) end
    s = C.sshard_statement_set_consistency(st, level)
    if s ~= OK then return call_failure(s) end
  end
  v = opts.serial_consistency
  if v ~= nil then
    local level, err = consistency_arg(v, "serial_consistency")
    if not level then return invalid(err) end
    s = C.sshard_statement_set_serial_consistency(st, level)
    if s ~= OK then return call_failure(s) end
  end
  if opts.page_size ~= nil then
    s = C.sshard_statement_set_page_size(st, opts.page_size)
    if s ~= OK then return call_failure(s) end
  end
  if opts.paging_state ~= nil then
    local ps = opts.paging_state
    if type(ps) ~= "string" then return invalid("paging_state must be a string (rows.meta.paging_state)") end
    s = C.sshard_statement_set_paging_state(st, ps, #ps)
    if s ~= OK then return call_failure(s) end
  end
  if opts.timestamp ~= nil then
    s = C.sshard_statement_set_timestamp(st, opts.timestamp)
    if s ~= OK then return call_failure(s) end
  end
  if opts.idempotent ~= nil then
    s = C.sshard_statement_set_idempotent(st, opts.idempotent and true or false)
    if s ~= OK then return call_failure(s) end
  end
  if opts.timeout_ms ~= nil then
    s = C.sshard_statement_set_timeout_ms(st, opts.timeout_ms)
    if s ~= OK then return call_failure(s) end
  end
  if opts.tracing ~= nil then
    s = C.sshard_statement_set_tracing(st, opts.tracing and true or false)
    if s ~= OK then return call_failure(s) end
  end
  local key = opts.routing_key
  if key ~= nil then
    if type(key) == "string" then
      s = C.sshard_statement_set_routing_key(st, key, #key)
    elseif type(key) == "table" then
      if #key > 64 then return invalid("routing_key: at most 64 positions") end
      for i = 1, #key do
        if type(key[i]) ~= "number" or key[i] < 1 then
          return invalid("routing_key: positions of arguments (from 1) expected")
        end
        positions[i - 1] = key[i] - 1
      end
      s = C.sshard_statement_set_routing_key_values(st, positions, #key)
    else
      return invalid("routing_key: the serialized key (string) or argument positions (array)")
    end
    if s ~= OK then return call_failure(s) end
  end
  if opts.routing_keyspace ~= nil or opts.routing_table ~= nil then
    local ks, tbl = opts.routing_keyspace, opts.routing_table
    s = C.sshard_statement_set_routing_table(st, ks, ks and #ks or 0, tbl, tbl and #tbl or 0)
    if s ~= OK then return call_failure(s) end
  end
  return true
end

-- Named arguments of a simple statement: their count (for the markers).
local function count_keys(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

-- A new simple statement with its values bound (the caller frees it).
local function simple_statement(query, args, opts)
  if type(query) ~= "string" then return invalid("the query must be a string or a prepared statement") end
  local named = opts and opts.named
  local n = 0
  if args then
    if type(args) ~= "table" then return invalid("args must be a table") end
    n = named and count_keys(args) or (args.n or #args)
  end
  local s = C.sshard_statement_new(query, #query, n, out_statement)
  if s ~= OK then return call_failure(s) end
  local st = out_statement[0]
  if args then
    if named then
      for name, v in pairs(args) do
        name = tostring(name)
        s = put(BY_NAME, st, name, v, nil)
        if s ~= OK then
          C.sshard_statement_free(st)
          return bind_failure(s, "argument " .. name)
        end
      end
    else
      for i = 1, n do
        s = put(BY_INDEX, st, i - 1, args[i], nil)
        if s ~= OK then
          C.sshard_statement_free(st)
          return bind_failure(s, "argument " .. i)
        end
      end
    end
  end
  return st
end

-- Binds `args` to `st` of `prepared` (every marker: an absent argument is
-- unset).
local function bind_prepared(prepared, st, args, named)
  local types, count = prepared._types, prepared._count
  if args == nil then
    for i = 0, count - 1 do BY_INDEX.unset(st, i) end
    return true
  end
  if type(args) ~= "table" then return invalid("args must be a table") end
  if named then
    local index = prepared._index
    for name in pairs(args) do
      if not index[name] and not (type(name) == "string" and index[name:lower()]) then
        return call_failure(S.NAME_NOT_FOUND, "the prepared statement has no marker named " .. tostring(name))
      end
    end
    local names = prepared._names
    for i = 1, count do
      local name = names[i]
      local v = args[name]
      if v == nil then
        for key, value in pairs(args) do
          if type(key) == "string" and key:lower() == name then v = value break end
        end
      end
      local s = put(BY_INDEX, st, i - 1, v, types[i])
      if s ~= OK then return bind_failure(s, "argument " .. name) end
    end
  else
    local n = args.n or #args
    if n > count then
      return invalid(("%d arguments for %d markers"):format(n, count))
    end
    local binder = prepared._binder
    if binder then
      local s, i = binder(st, args)
      if s ~= OK then return bind_failure(s, "argument " .. i .. " (" .. prepared._names[i] .. ")") end
      return true
    end
    for i = 1, count do
      local s = put(BY_INDEX, st, i - 1, args[i], types[i])
      if s ~= OK then return bind_failure(s, "argument " .. i .. " (" .. prepared._names[i] .. ")") end
    end
  end
  return true
end

-- A function binding positional arguments to every marker of a prepared
-- statement, generated once per statement: straight-line code (a trace
-- through one statement's execute is then no loop whose trip count
-- changes with the statement, which the JIT gives up unrolling), the
-- common Lua forms of each marker's type bound by one direct C call, the
-- rest through put(). Returns OK, or the status and the argument that
-- failed.
local BINDER_MAX = 64
local TWO_53 = 2 ^ 53
local DIRECT = {
  [values.kinds.int] = "if type(v) == 'number' and v == floor(v) and v >= -2147483648 and v <= 2147483647 "
    .. "then s = C.sshard_statement_bind_int32(st, %d, v) else s = put(BY_INDEX, st, %d, v, types[%d]) end\n",
  [values.kinds.bigint] = "if type(v) == 'number' and v == floor(v) and v >= -TWO_53 and v <= TWO_53 "
    .. "then s = C.sshard_statement_bind_int64(st, %d, v) else s = put(BY_INDEX, st, %d, v, types[%d]) end\n",
  [values.kinds.text] = "if type(v) == 'string' then s = C.sshard_statement_bind_text(st, %d, v, #v) "
    .. "else s = put(BY_INDEX, st, %d, v, types[%d]) end\n",
  [values.kinds.ascii] = "if type(v) == 'string' then s = C.sshard_statement_bind_text(st, %d, v, #v) "
    .. "else s = put(BY_INDEX, st, %d, v, types[%d]) end\n",
  [values.kinds.boolean] = "if type(v) == 'boolean' then s = C.sshard_statement_bind_bool(st, %d, v) "
    .. "else s = put(BY_INDEX, st, %d, v, types[%d]) end\n",
  [values.kinds.double] = "if type(v) == 'number' then s = C.sshard_statement_bind_double(st, %d, v) "
    .. "else s = put(BY_INDEX, st, %d, v, types[%d]) end\n",
}
local function make_binder(types)
  local n = #types
  if n == 0 or n > BINDER_MAX then return nil end
  local src = { "local put, BY_INDEX, OK, types, C, floor, TWO_53 = ...\n",
    "local type = type\n", "return function(st, args)\nlocal s, v\n" }
  for i = 1, n do
    local direct = DIRECT[types[i].kind]
    src[#src + 1] = ("v = args[%d]\n"):format(i)
    if direct then
      src[#src + 1] = direct:format(i - 1, i - 1, i)
    else
      src[#src + 1] = ("s = put(BY_INDEX, st, %d, v, types[%d])\n"):format(i - 1, i)
    end
    src[#src + 1] = ("if s ~= OK then return s, %d end\n"):format(i)
  end
  src[#src + 1] = "return OK\nend\n"
  local chunk = load(table.concat(src), "=scylla_shard.binder")
  if not chunk then return nil end
  return chunk(put, BY_INDEX, OK, types, C, math.floor, TWO_53)
end

function Session:_finish_connect()
  return nil, "CLOSED: the session is closed", S.CLOSED
end

-- The C session of a session object (waits for a connect still running).
local function handle_of(session)
  local cs = session._cs
  if cs then return cs end
  if session._closed then return nil, "CLOSED: the session is closed", S.CLOSED end
  return session:_finish_connect()
end

-- Submits an execute: returns the C future (owned by the caller) and the
-- prepared statement it runs, or nil, err, code.
local function submit_execute(session, query, args, opts)
  local cs, err, code = handle_of(session)
  if not cs then return nil, err, code end
  local prepared
  if type(query) == "table" and getmetatable(query) == Prepared then
    prepared = query
  elseif opts and opts.prepared then
    prepared, err, code = session:_prepared_for(query)
    if not prepared then return nil, err, code end
  end
  local st, reused
  if prepared then
    if opts == nil and prepared._st then
      st, reused = prepared._st, true
    else
      local s = C.sshard_prepared_bind(prepared._ptr, out_statement)
      if s ~= OK then return call_failure(s) end
      st = out_statement[0]
    end
    local ok
    ok, err, code = bind_prepared(prepared, st, args, opts and opts.named)
    if not ok then
      if not reused then C.sshard_statement_free(st) end
      return nil, err, code
    end
  else
    st, err, code = simple_statement(query, args, opts)
    if not st then return nil, err, code end
  end
  if opts then
    local ok
    ok, err, code = apply_options(st, opts)
    if not ok then
      C.sshard_statement_free(st)
      return nil, err, code
    end
  end
  local s = C.sshard_session_execute(cs, st, out_future)
  if not reused then C.sshard_statement_free(st) end
  if s ~= OK then return call_failure(s) end
  return out_future[0], prepared
end

---------------------------------------------------------------- sessions

local function check_keys(t, known, what)
  for k in pairs(t) do
    if not known[k] then return nil, ("unknown %s option %q"):format(what, tostring(k)) end
  end
  return true
end

local function can_always_wait()
  return true
end

-- A session object over the C session `cs`, with the settings (and, for
-- OpenResty, the waiting strategy: `_await`, `_future_waiter`,
-- `_can_wait`) of `template`.
function wrap_session(cs, template)
  local session = setmetatable({
    _cs = cs,
    _pid = getpid(),
    _int64 = values.INT64_CDATA,
    _ordered_maps = false,
    _prepared_cache = {},
    _prepared_count = 0,
    _prepared_limit = 1024,
    _await = blocking_await,
    _future_waiter = blocking_wait,
    _can_wait = can_always_wait,
  }, Session)
  if template then
    for k, v in pairs(template) do session[k] = v end
    session._cs = cs
  end
  return session
end
M._wrap_session = wrap_session

-- Settings of connect{}: each applies one value to the C config.
local function number_setter(fn, lo, hi)
  return function(cfg, v)
    if type(v) ~= "number" or v ~= math.floor(v) or v < lo or v > hi then
      return nil, ("a whole number from %d to %d expected"):format(lo, hi)
    end
    return C[fn](cfg, v)
  end
end
local U16, U32, I32, MS = 65535, 4294967295, 2147483647, 2 ^ 53
local function bool_setter(fn)
  return function(cfg, v)
    if type(v) ~= "boolean" then return nil, "a boolean expected" end
    return C[fn](cfg, v)
  end
end
local function string_setter(fn)
  return function(cfg, v)
    if type(v) ~= "string" then return nil, "a string expected" end
    return C[fn](cfg, v, #v)
  end
end
local function consistency_setter(fn)
  return function(cfg, v)
    local level, err = consistency_arg(v, "consistency")
    if not level then return nil, err end
    return C[fn](cfg, level)
  end
end

local SSL_VERIFY = {
  none = C.SSHARD_SSL_VERIFY_NONE,
  peer_cert = C.SSHARD_SSL_VERIFY_PEER_CERT,
  peer_identity = C.SSHARD_SSL_VERIFY_PEER_IDENTITY,
  peer_identity_dns = C.SSHARD_SSL_VERIFY_PEER_IDENTITY_DNS,
}
local SSL_TEXT = { "ca", "ca_file", "cert", "cert_file", "key", "key_file", "server_name" }
local SSL_KEYS = { system_trust = true, verify = true }
for _, k in ipairs(SSL_TEXT) do SSL_KEYS[k] = true end

-- ssl = { ca = PEM, ca_file, system_trust, verify = name or { names },
-- cert, cert_file, key, key_file, server_name }: checked by the library
-- (sshard_config_set_ssl) before any connection. A failure returns its
-- status with the library's message (read before the settings are freed).
local function ssl_setter(cfg, v)
  if type(v) ~= "table" then return nil, "a table of TLS settings expected" end
  local ok, why = check_keys(v, SSL_KEYS, "ssl")
  if not ok then return nil, why end
  for _, k in ipairs(SSL_TEXT) do
    if v[k] ~= nil and type(v[k]) ~= "string" then return nil, k .. ": a string expected" end
  end
  if v.system_trust ~= nil and type(v.system_trust) ~= "boolean" then
    return nil, "system_trust: a boolean expected"
  end
  local flags
  if v.verify ~= nil then
    local names = type(v.verify) == "table" and v.verify or { v.verify }
    flags = 0
    for _, name in ipairs(names) do
      local flag = SSL_VERIFY[name]
      if not flag then
        return nil, "verify: \"none\", \"peer_cert\", \"peer_identity\" or \"peer_identity_dns\" expected"
      end
      flags = bit.bor(flags, flag)
    end
  end
  local s = C.sshard_ssl_new(out_ssl)
  if s ~= OK then return s end
  local ssl = out_ssl[0]
  local steps = {
    function() return v.ca and C.sshard_ssl_add_trusted_cert(ssl, v.ca, #v.ca) end,
    function() return v.ca_file and C.sshard_ssl_add_trusted_cert_file(ssl, v.ca_file, #v.ca_file) end,
    function() return v.system_trust ~= nil and C.sshard_ssl_set_system_trust(ssl, v.system_trust) end,
    function() return flags and C.sshard_ssl_set_verify_flags(ssl, flags) end,
    function() return v.cert and C.sshard_ssl_set_cert(ssl, v.cert, #v.cert) end,
    function() return v.cert_file and C.sshard_ssl_set_cert_file(ssl, v.cert_file, #v.cert_file) end,
    function() return v.key and C.sshard_ssl_set_private_key(ssl, v.key, #v.key, nil, 0) end,
    function() return v.key_file and C.sshard_ssl_set_private_key_file(ssl, v.key_file, #v.key_file) end,
    function() return v.server_name and C.sshard_ssl_set_server_name(ssl, v.server_name, #v.server_name) end,
    function() return C.sshard_config_set_ssl(cfg, ssl) end,
  }
  for _, step in ipairs(steps) do
    s = step()
    if s and s ~= OK then
      local message = ""
      if C.sshard_last_error_message(out_text, out_len) == OK then
        message = ffi_string(out_text[0], out_len[0])
      end
      C.sshard_ssl_free(ssl)
      return s, nil, message
    end
  end
  C.sshard_ssl_free(ssl)
  return OK
end

-- The options of one execution profile (connect{ execution_profiles = {
-- name = { ... } } }).
local PROFILE = {
  consistency = function(p, v)
    local level, why = consistency_arg(v, "consistency")
    if not level then return nil, why end
    return C.sshard_execution_profile_set_consistency(p, level)
  end,
  serial_consistency = function(p, v)
    local level, why = consistency_arg(v, "serial_consistency")
    if not level then return nil, why end
    return C.sshard_execution_profile_set_serial_consistency(p, level)
  end,
  request_timeout_ms = number_setter("sshard_execution_profile_set_request_timeout_ms", 0, MS),
  retry_policy = function(p, v)
    local policy, why = retry_policy_arg(v)
    if not policy then return nil, why end
    return C.sshard_execution_profile_set_retry_policy(p, policy)
  end,
  speculative_execution = function(p, v) return apply_speculation(p, v, "execution_profile") end,
  local_dc = string_setter("sshard_execution_profile_set_local_dc"),
  local_rack = string_setter("sshard_execution_profile_set_local_rack"),
  dc_failover = bool_setter("sshard_execution_profile_set_dc_failover"),
}
local out_profile = ffi_new("sshard_execution_profile *[1]")

-- execution_profiles = { name = { consistency =, serial_consistency =,
-- request_timeout_ms =, retry_policy =, speculative_execution =, local_dc =,
-- local_rack =, dc_failover = } }: registered on the config by name.
local function profiles_setter(cfg, v)
  if type(v) ~= "table" then return nil, "a table of profiles by name expected" end
  for name, options in pairs(v) do
    if type(name) ~= "string" or type(options) ~= "table" then
      return nil, "{ name = { options } } expected"
    end
    local ok, why = check_keys(options, PROFILE, "execution profile")
    if not ok then return nil, why end
    local s = C.sshard_execution_profile_new(out_profile)
    if s ~= OK then return s end
    local profile = out_profile[0]
    for key, setter in pairs(PROFILE) do
      if options[key] ~= nil then
        s, why = setter(profile, options[key])
        if s ~= OK then
          C.sshard_execution_profile_free(profile)
          if s == nil then return nil, name .. "." .. key .. ": " .. why end
          return s
        end
      end
    end
    s = C.sshard_config_set_execution_profile(cfg, name, #name, profile)
    C.sshard_execution_profile_free(profile)
    if s ~= OK then return s end
  end
  return OK
end

-- A host or datacenter list: "a,b" (the C form) or { "a", "b" }.
local function list_setter(fn)
  return function(cfg, v)
    if type(v) == "table" then
      for i, entry in ipairs(v) do
        if type(entry) ~= "string" then return nil, "entry " .. i .. " is not a string" end
      end
      v = table.concat(v, ",")
    end
    if type(v) ~= "string" then return nil, "a string or an array of strings expected" end
    return C[fn](cfg, v, #v)
  end
end

-- { ["advertised ip"] = "reachable ip[:port]", ... }
local function translation_setter(cfg, v)
  if type(v) ~= "table" then return nil, "{ [\"advertised ip\"] = \"reachable ip[:port]\" } expected" end
  for advertised, reachable in pairs(v) do
    if type(advertised) ~= "string" or type(reachable) ~= "string" then
      return nil, "{ [\"advertised ip\"] = \"reachable ip[:port]\" } expected"
    end
    local s = C.sshard_config_add_address_translation(cfg, advertised, #advertised, reachable, #reachable)
    if s ~= OK then return s end
  end
  return OK
end

local CONFIG = {
  ssl = ssl_setter,
  execution_profiles = profiles_setter,
  speculative_execution = function(cfg, v) return apply_speculation(cfg, v, "config") end,
  host_allow_list = list_setter("sshard_config_set_host_allow_list"),
  host_deny_list = list_setter("sshard_config_set_host_deny_list"),
  dc_allow_list = list_setter("sshard_config_set_dc_allow_list"),
  dc_deny_list = list_setter("sshard_config_set_dc_deny_list"),
  address_translation = translation_setter,
  retry_policy = function(cfg, v)
    local policy, why = retry_policy_arg(v)
    if not policy then return nil, why end
    return C.sshard_config_set_retry_policy(cfg, policy)
  end,
  contact_points = function(cfg, v)
    if type(v) == "string" then v = { v } end
    if type(v) ~= "table" or #v == 0 then return nil, "an array of \"host\" or \"host:port\" expected" end
    for _, host in ipairs(v) do
      if type(host) ~= "string" then return nil, "contact points are strings" end
      local s = C.sshard_config_add_contact_point(cfg, host, #host)
      if s ~= OK then return s end
    end
    return OK
  end,
  port = number_setter("sshard_config_set_port", 1, U16),
  shard_aware_port = bool_setter("sshard_config_set_shard_aware_port"),
  local_port_range = function(cfg, v)
    if type(v) ~= "table" or type(v[1]) ~= "number" or type(v[2]) ~= "number"
        or v[1] < 0 or v[2] > U16 or v[1] > v[2] then
      return nil, "{ first, last } local ports expected"
    end
    return C.sshard_config_set_local_port_range(cfg, v[1], v[2])
  end,
  connections_per_shard = number_setter("sshard_config_set_connections_per_shard", 0, U32),
  local_dc = string_setter("sshard_config_set_local_dc"),
  local_rack = string_setter("sshard_config_set_local_rack"),
  dc_failover = bool_setter("sshard_config_set_dc_failover"),
  compression = function(cfg, v)
    local c = ({ none = C.SSHARD_COMPRESSION_NONE, lz4 = C.SSHARD_COMPRESSION_LZ4 })[v]
    if not c then return nil, "\"none\" or \"lz4\" expected" end
    return C.sshard_config_set_compression(cfg, c)
  end,
  connect_timeout_ms = number_setter("sshard_config_set_connect_timeout_ms", 0, MS),
  request_timeout_ms = number_setter("sshard_config_set_request_timeout_ms", 0, MS),
  heartbeat_interval_ms = number_setter("sshard_config_set_heartbeat_interval_ms", 0, MS),
  worker_threads = number_setter("sshard_config_set_worker_threads", 0, U32),
  caller_driven_io = bool_setter("sshard_config_set_caller_driven_io"),
  application_name = string_setter("sshard_config_set_application_name"),
  application_version = string_setter("sshard_config_set_application_version"),
  consistency = consistency_setter("sshard_config_set_consistency"),
  serial_consistency = consistency_setter("sshard_config_set_serial_consistency"),
  page_size = number_setter("sshard_config_set_page_size", -I32 - 1, I32),
  keyspace = string_setter("sshard_config_set_keyspace"),
  communicator = string_setter("sshard_config_set_communicator"),
  prepared_cache_size = number_setter("sshard_config_set_prepared_cache_size", 0, MS),
  tablet_awareness = bool_setter("sshard_config_set_tablet_awareness"),
  max_frame_size = number_setter("sshard_config_set_max_frame_size", 0, MS),
  client_timestamps = bool_setter("sshard_config_set_client_timestamps"),
  schema_agreement_timeout_ms = number_setter("sshard_config_set_schema_agreement_timeout_ms", 0, MS),
}
-- Options read by the binding itself.
local LUA_OPTIONS = { username = true, password = true, int64 = true, map = true }

local KNOWN_CONFIG = {}
for k in pairs(CONFIG) do KNOWN_CONFIG[k] = true end
for k in pairs(LUA_OPTIONS) do KNOWN_CONFIG[k] = true end
M.config_options = KNOWN_CONFIG

-- A C config from connect{} options (the caller frees it), and the
-- session's Lua-side settings.
local function make_config(options)
  if type(options) ~= "table" then return invalid("connect{...}: a table of options expected") end
  local ok, err = check_keys(options, KNOWN_CONFIG, "connect")
  if not ok then return invalid(err) end
  if not options.contact_points and not options.communicator then
    return invalid("connect{...}: contact_points (or communicator) is required")
  end
  local settings = { _int64 = values.INT64_CDATA, _ordered_maps = false, _prepared_limit = 1024 }
  if options.int64 ~= nil then
    settings._int64 = INT64_MODES[options.int64]
    if not settings._int64 then return invalid("int64: \"cdata\", \"number\" or \"string\" expected") end
  end
  if options.map ~= nil then
    settings._ordered_maps = MAP_MODES[options.map]
    if settings._ordered_maps == nil then return invalid("map: \"table\" or \"ordered\" expected") end
  end
  if (options.username == nil) ~= (options.password == nil) then
    return invalid("username and password go together")
  end
  if options.prepared_cache_size then settings._prepared_limit = math.max(options.prepared_cache_size, 1) end
  local s = C.sshard_config_new(out_config)
  if s ~= OK then return call_failure(s) end
  local cfg = ffi_gc(out_config[0], C.sshard_config_free)
  for name, setter in pairs(CONFIG) do
    local v = options[name]
    if v ~= nil then
      local status, why, message = setter(cfg, v)
      if status == nil then return invalid(name .. ": " .. why) end
      if status ~= OK then
        if not message then
          C.sshard_last_error_message(out_text, out_len)
          message = ffi_string(out_text[0], out_len[0])
        end
        return call_failure(status, name .. ": " .. message)
      end
    end
  end
  if options.username then
    local u, p = options.username, options.password
    if type(u) ~= "string" or type(p) ~= "string" then return invalid("username and password are strings") end
    s = C.sshard_config_set_credentials(cfg, u, #u, p, #p)
    if s ~= OK then return call_failure(s) end
  end
  return cfg, settings
end

-- Submits a connect: the C future (owned by the caller) and the settings.
function M._submit_connect(options)
  local cfg, settings, code = make_config(options)
  if not cfg then return nil, settings, code end
  local s = C.sshard_session_connect(cfg, out_future)
  ffi_gc(cfg, nil)
  C.sshard_config_free(cfg)
  if s ~= OK then return call_failure(s) end
  return out_future[0], settings
end

-- Connects and returns a session, or nil, err, code. Every setting of the
-- C config has an option of the same name (bindings/lua/README.md).
function M.connect(options)
  local cf, settings, code = M._submit_connect(options)
  if not cf then return nil, settings, code end
  local status = C.sshard_future_wait(cf)
  local session, err, code2 = complete_outcome(cf, status, KIND_CONNECT, settings)
  C.sshard_future_free(cf)
  return session, err, code2
end

-- Executes `query` (CQL text or a prepared statement) with `args`
-- (an array, or a table of names with opts.named) and returns its rows, or
-- nil, err, code.
function Session:execute(query, args, opts)
  local ok, err, code0 = self._can_wait()
  if not ok then return nil, err, code0 end
  local cf, prepared, code = submit_execute(self, query, args, opts)
  if not cf then return nil, prepared, code end
  return self._await(self, cf, KIND_EXECUTE, prepared, opts)
end

-- Like execute, returning a Future at once (completed by scylla.poll or
-- future:wait).
function Session:execute_async(query, args, opts)
  local cf, prepared, code = submit_execute(self, query, args, opts)
  if not cf then return nil, prepared, code end
  return track(cf, KIND_EXECUTE, self, prepared, opts)
end

-- Pages through the results: for rows, err, page in session:iterate(...).
-- An error comes as one last iteration: false, err, page.
function Session:iterate(query, args, opts)
  local page, finished, result, prepared_of_pages = 0, false, nil, nil
  return function()
    if finished then return nil end
    page = page + 1
    local cf, prepared, code
    local can, why = self._can_wait()
    if not can then
      finished = true
      return false, why, page
    end
    local cs, err = handle_of(self)
    if not cs then
      finished = true
      return false, err, page
    end
    if result then
      local s = C.sshard_session_next_page(cs, result, out_future)
      ffi_gc(result, nil)
      C.sshard_result_free(result)
      result = nil
      if s ~= OK then
        finished = true
        return false, select(2, call_failure(s)), page
      end
      cf, prepared = out_future[0], prepared_of_pages
    else
      cf, prepared, code = submit_execute(self, query, args, opts)
      if not cf then
        finished = true
        return false, prepared, page
      end
      prepared_of_pages = prepared
    end
    local rows, err2, _, _, r = self._await(self, cf, KIND_EXECUTE, prepared, opts, true)
    if not rows then
      finished = true
      return false, err2, page
    end
    if rows.meta.has_more_pages then
      result = r
    else
      finished = true
      if r then
        ffi_gc(r, nil)
        C.sshard_result_free(r)
      end
      if #rows == 0 and page > 1 then return nil end
    end
    return rows, nil, page
  end
end

-- Prepares `query`; returns a statement with :execute(args, opts), or
-- nil, err, code.
function Session:prepare(query)
  if type(query) ~= "string" then return invalid("the query must be a string") end
  local ok, err0, code0 = self._can_wait()
  if not ok then return nil, err0, code0 end
  local cs, err, code = handle_of(self)
  if not cs then return nil, err, code end
  local s = C.sshard_session_prepare(cs, query, #query, out_future)
  if s ~= OK then return call_failure(s) end
  local stmt, err2, code2 = self._await(self, out_future[0], KIND_PREPARE, nil, nil)
  if stmt then stmt._query = query end
  return stmt, err2, code2
end

-- The prepared statement of `query` for opts.prepared (cached per session).
function Session:_prepared_for(query)
  local cached = self._prepared_cache[query]
  if cached then return cached end
  local stmt, err, code = self:prepare(query)
  if not stmt then return nil, err, code end
  if self._prepared_count >= self._prepared_limit then
    self._prepared_cache, self._prepared_count = {}, 0
  end
  self._prepared_cache[query] = stmt
  self._prepared_count = self._prepared_count + 1
  return stmt
end

-- Runs statements together: queries is { {stmt_or_query, args}, ... } (or
-- plain query strings); opts.type is "logged" (default), "unlogged" or
-- "counter" (lua-cassandra's logged = false / counter = true work too).
function Session:batch(queries, opts)
  local ok, err0, code0 = self._can_wait()
  if not ok then return nil, err0, code0 end
  local cf, err, code = self:_submit_batch(queries, opts)
  if not cf then return nil, err, code end
  return self._await(self, cf, KIND_BATCH, nil, opts)
end

function Session:batch_async(queries, opts)
  local cf, err, code = self:_submit_batch(queries, opts)
  if not cf then return nil, err, code end
  return track(cf, KIND_BATCH, self, nil, opts)
end

function Session:_submit_batch(queries, opts)
  if type(queries) ~= "table" then return invalid("batch: an array of queries expected") end
  local cs, err, code = handle_of(self)
  if not cs then return nil, err, code end
  opts = opts or {}
  local kind = opts.type or (opts.counter and "counter") or (opts.logged == false and "unlogged") or "logged"
  local batch_type = BATCH_TYPES[kind]
  if not batch_type then return invalid("batch type: \"logged\", \"unlogged\" or \"counter\" expected") end
  local s = C.sshard_batch_new(batch_type, out_batch)
  if s ~= OK then return call_failure(s) end
  local b = ffi_gc(out_batch[0], C.sshard_batch_free)
  local item_opts = opts.named and { named = true } or nil
  for i, item in ipairs(queries) do
    local query, args = item, nil
    if type(item) == "table" and getmetatable(item) == nil then query, args = item[1], item[2] end
    local st
    if type(query) == "table" and getmetatable(query) == Prepared then
      s = C.sshard_prepared_bind(query._ptr, out_statement)
      if s ~= OK then return call_failure(s) end
      st = out_statement[0]
      local ok
      ok, err, code = bind_prepared(query, st, args, opts.named)
      if not ok then
        C.sshard_statement_free(st)
        return nil, "statement " .. i .. ": " .. err, code
      end
    else
      if opts.prepared and type(query) == "string" then
        local p
        p, err, code = self:_prepared_for(query)
        if not p then return nil, "statement " .. i .. ": " .. err, code end
        s = C.sshard_prepared_bind(p._ptr, out_statement)
        if s ~= OK then return call_failure(s) end
        st = out_statement[0]
        local ok
        ok, err, code = bind_prepared(p, st, args, opts.named)
        if not ok then
          C.sshard_statement_free(st)
          return nil, "statement " .. i .. ": " .. err, code
        end
      else
        st, err, code = simple_statement(query, args, item_opts)
        if not st then return nil, "statement " .. i .. ": " .. err, code end
      end
    end
    s = C.sshard_batch_add_statement(b, st)
    C.sshard_statement_free(st)
    if s ~= OK then return call_failure(s) end
  end
  local v = opts.consistency
  if v ~= nil then
    local level, why = consistency_arg(v, "consistency")
    if not level then return invalid(why) end
    s = C.sshard_batch_set_consistency(b, level)
    if s ~= OK then return call_failure(s) end
  end
  v = opts.serial_consistency
  if v ~= nil then
    local level, why = consistency_arg(v, "serial_consistency")
    if not level then return invalid(why) end
    s = C.sshard_batch_set_serial_consistency(b, level)
    if s ~= OK then return call_failure(s) end
  end
  if opts.timestamp ~= nil then
    s = C.sshard_batch_set_timestamp(b, opts.timestamp)
    if s ~= OK then return call_failure(s) end
  end
  if opts.idempotent ~= nil then
    s = C.sshard_batch_set_idempotent(b, opts.idempotent and true or false)
    if s ~= OK then return call_failure(s) end
  end
  if opts.retry_policy ~= nil then
    local policy, why = retry_policy_arg(opts.retry_policy)
    if not policy then return invalid(why) end
    s = C.sshard_batch_set_retry_policy(b, policy)
    if s ~= OK then return call_failure(s) end
  end
  local why
  s, why = apply_profile_options(b, opts, "batch")
  if s == nil then return invalid(why) end
  if s ~= OK then return call_failure(s) end
  if opts.tracing ~= nil then
    s = C.sshard_batch_set_tracing(b, opts.tracing and true or false)
    if s ~= OK then return call_failure(s) end
  end
  if opts.timeout_ms ~= nil then
    s = C.sshard_batch_set_timeout_ms(b, opts.timeout_ms)
    if s ~= OK then return call_failure(s) end
  end
  s = C.sshard_session_batch(cs, b, out_future)
  ffi_gc(b, nil)
  C.sshard_batch_free(b)
  if s ~= OK then return call_failure(s) end
  return out_future[0]
end

-- Switches every connection to `keyspace` (lua-cassandra: set_keyspace).
function Session:set_keyspace(keyspace)
  if type(keyspace) ~= "string" then return invalid("the keyspace must be a string") end
  local ok, err0, code0 = self._can_wait()
  if not ok then return nil, err0, code0 end
  local cs, err, code = handle_of(self)
  if not cs then return nil, err, code end
  local s = C.sshard_session_use_keyspace(cs, keyspace, #keyspace, out_future)
  if s ~= OK then return call_failure(s) end
  return self._await(self, out_future[0], KIND_USE_KEYSPACE)
end

-- Refuses new requests, lets those in flight finish, closes the
-- connections. Returns true, or nil, err, code.
function Session:close()
  if self._closed then return true end
  local ok0, err0, code0 = self._can_wait()
  if not ok0 then return nil, err0, code0 end
  local cs, err, code = handle_of(self)
  if not cs then return nil, err, code end
  local s = C.sshard_session_close(cs, out_future)
  if s ~= OK then return call_failure(s) end
  self._closed = true
  local ok, err2, code2 = self._await(self, out_future[0], KIND_CLOSE)
  self._cs = nil
  ffi_gc(cs, nil)
  C.sshard_session_free(cs)
  return ok, err2, code2
end

-- Requests submitted and not completed yet.
function Session:in_flight()
  local cs, err, code = handle_of(self)
  if not cs then return nil, err, code end
  local s = C.sshard_session_in_flight(cs, out_len)
  if s ~= OK then return call_failure(s) end
  return tonumber(out_len[0])
end

-- The session's metrics now (one snapshot): shard awareness, connections,
-- request, error and retry counts, tablets known, latency percentiles, and
-- `nodes` (each with its connections and requests per shard). With
-- `{ nodes = false }`, the totals only (cheaper: no snapshot).
function Session:metrics(opts)
  local cs, err, code = handle_of(self)
  if not cs then return nil, err, code end
  local out, s
  if opts and opts.nodes == false then
    out, s = metrics.totals(cs)
  else
    out, s = metrics.read(cs)
  end
  if not out then return call_failure(s) end
  return out
end

-- The schema as the session knows it now (one consistent snapshot, kept
-- up to date by the library on schema events): { keyspaces = { [name] = {
-- name, uses_tablets, replication = { class = ..., ... }, tables = {
-- [name] = { name, columns = { {name, type, kind, descending}, ... },
-- columns_by_name, partition_key = { column, ... }, clustering_key = {
-- column, ... } } }, types = { [name] = udt type } } } }.
function Session:schema()
  local cs, err, code = handle_of(self)
  if not cs then return nil, err, code end
  local out, s = schema.read(cs)
  if not out then return call_failure(s) end
  return out
end

-- The session's metrics in the Prometheus text format (0.0.4), ready to
-- serve from a /metrics location.
function Session:prometheus()
  local cs, err, code = handle_of(self)
  if not cs then return nil, err, code end
  local text, s = metrics.prometheus(cs)
  if not text then return call_failure(s) end
  return text
end

---------------------------------------------------------------- prepared statements

function wrap_prepared(ptr, session)
  local count, names, types, index = 0, {}, {}, {}
  if C.sshard_prepared_parameter_count(ptr, out_len) == OK then count = tonumber(out_len[0]) end
  local dt = ffi_new("const sshard_data_type *[1]")
  for i = 0, count - 1 do
    local name = tostring(i + 1)
    if C.sshard_prepared_parameter_name(ptr, i, out_text, out_len) == OK then
      name = ffi_string(out_text[0], out_len[0])
    end
    C.sshard_prepared_parameter_data_type(ptr, i, dt)
    names[i + 1], types[i + 1] = name, values.describe(dt[0])
    index[name] = i + 1
  end
  C.sshard_prepared_is_lwt(ptr, out_bool)
  local stmt = setmetatable({ _ptr = ptr, _session = session, _count = count, _names = names,
    _types = types, _index = index, is_lwt = out_bool[0], _binder = make_binder(types) }, Prepared)
  -- A statement reused by executions without options (every marker is
  -- bound each time; execute copies it).
  if C.sshard_prepared_bind(ptr, out_statement) == OK then
    stmt._st = ffi_gc(out_statement[0], C.sshard_statement_free)
  end
  return stmt
end

function Prepared:execute(args, opts)
  return self._session:execute(self, args, opts)
end

function Prepared:execute_async(args, opts)
  return self._session:execute_async(self, args, opts)
end

-- Marker names and types: { {name = "k", type = "int"}, ... }.
function Prepared:parameters()
  local out = {}
  for i = 1, self._count do out[i] = { name = self._names[i], type = self._types[i].name } end
  return out
end

---------------------------------------------------------------- logging

local LOG_LEVELS = { off = C.SSHARD_LOG_LEVEL_OFF, error = C.SSHARD_LOG_LEVEL_ERROR,
  warn = C.SSHARD_LOG_LEVEL_WARN, info = C.SSHARD_LOG_LEVEL_INFO,
  debug = C.SSHARD_LOG_LEVEL_DEBUG, trace = C.SSHARD_LOG_LEVEL_TRACE }
local LOG_NAMES = {}
for name, level in pairs(LOG_LEVELS) do LOG_NAMES[level] = name end

-- The library's log goes to a buffer that scylla.read_log() drains (never
-- a callback: the library's threads must not call Lua).
function M.set_log_level(level)
  local l = LOG_LEVELS[level]
  if not l then return invalid("log level: off, error, warn, info, debug or trace") end
  local s = C.sshard_log_set_level(l)
  if s ~= OK then return call_failure(s) end
  return true
end

function M.set_log_buffer(capacity)
  local s = C.sshard_log_set_buffer(capacity)
  if s ~= OK then return call_failure(s) end
  return true
end

local log_level = ffi_new("sshard_log_level[1]")
local log_text = ffi_new("char[4096]")

-- The buffered log records, oldest first: an array of { level, text }.
function M.read_log(max)
  local out = {}
  max = max or 1000
  while #out < max and C.sshard_log_poll(log_level, log_text, 4096, out_len) == OK do
    local n = math.min(tonumber(out_len[0]), 4096)
    out[#out + 1] = { level = LOG_NAMES[log_level[0]], text = ffi_string(log_text, n) }
  end
  return out
end

return M
