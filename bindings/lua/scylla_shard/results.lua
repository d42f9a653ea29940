-- Completed requests as Lua values: a result becomes rows the way
-- lua-cassandra shapes them (an array of rows keyed by column name, with
-- .meta and .type), a prepare a statement object, a connect a session.
local ffi = require "ffi"
local L = require "scylla_shard.lib"
local values = require "scylla_shard.values"
local codec = require "scylla_shard.codec"
local errors = require "scylla_shard.errors"

local C, S = L.C, L.status
local ffi_string, ffi_gc = ffi.string, ffi.gc
local new_table = require "table.new"
local decode, FAILED = values.decode, values.FAILED
local OK = S.OK

local results = {
  -- Set by scylla_shard.lua: session and prepared-statement objects.
  wrap_session = nil,
  wrap_prepared = nil,
}

local KIND_PREPARE = C.SSHARD_FUTURE_KIND_PREPARE
local KIND_EXECUTE = C.SSHARD_FUTURE_KIND_EXECUTE
local KIND_BATCH = C.SSHARD_FUTURE_KIND_BATCH
local KIND_CONNECT = C.SSHARD_FUTURE_KIND_CONNECT
local ROWS = C.SSHARD_RESULT_KIND_ROWS
local SCHEMA_CHANGE = C.SSHARD_RESULT_KIND_SCHEMA_CHANGE
local SET_KEYSPACE = C.SSHARD_RESULT_KIND_SET_KEYSPACE

local out_result = ffi.new("const sshard_result *[1]")
local out_prepared = ffi.new("const sshard_prepared *[1]")
local out_session = ffi.new("const sshard_session *[1]")
local out_text = ffi.new("const char *[4]")
local out_len = ffi.new("size_t[4]")
local out_bytes = ffi.new("const uint8_t *[1]")
local out_bool = ffi.new("bool[1]")
local out_kind = ffi.new("sshard_result_kind[1]")
local out_type = ffi.new("sshard_type[1]")
local out_data_type = ffi.new("const sshard_data_type *[1]")
local out_value = ffi.new("const sshard_value *[1]")
local out_uuid = ffi.new("uint8_t[16]")

results.INT64_MODES = { cdata = values.INT64_CDATA, number = values.INT64_NUMBER,
  string = values.INT64_STRING }
results.MAP_MODES = { table = false, ordered = true }
local INT64_MODES, MAP_MODES = results.INT64_MODES, results.MAP_MODES

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

-- Column names and types of a result; cached on the prepared statement
-- whose metadata the result shares (the same name pointers: the prepared
-- handle we hold keeps that metadata alive and unique).
local function columns_of(r, n, prepared)
  local cache = prepared and prepared._columns
  if n == 0 or C.sshard_result_column_name(r, 0, out_text, out_len) ~= OK then
    return { count = 0, names = {}, types = {}, meta = {}, last_page = { has_more_pages = false, columns = {} } }
  end
  local first = out_text[0]
  if cache and cache.count == n and cache.first == first then return cache end
  local names, types, meta = {}, {}, {}
  for i = 0, n - 1 do
    local name = tostring(i + 1)
    if C.sshard_result_column_name(r, i, out_text, out_len) == OK then
      name = ffi_string(out_text[0], out_len[0])
    end
    C.sshard_result_column_type(r, i, out_type)
    local t = values.native[out_type[0]]
    if not t then
      C.sshard_result_column_data_type(r, i, out_data_type)
      t = values.describe(out_data_type[0])
    end
    names[i + 1], types[i + 1] = name, t
    meta[i + 1] = { name = name, type = t.name }
  end
  -- The meta of every single-page result of these columns (shared).
  cache = { count = n, first = first, names = names, types = types, meta = meta,
    last_page = { has_more_pages = false, columns = meta } }
  if prepared then prepared._columns = cache end
  return cache
end

-- Warnings (and the trace's id, when asked for): a new table if any.
local function with_extras(r, out, opts)
  C.sshard_result_warning_count(r, out_len)
  local n = tonumber(out_len[0])
  local tracing = opts and opts.tracing and C.sshard_result_tracing_id(r, out_uuid) == OK
  if n == 0 and not tracing then return out end
  if getmetatable(out) then out = { type = out.type } end
  if n > 0 then
    local warnings = {}
    for i = 0, n - 1 do
      C.sshard_result_warning(r, i, out_text, out_len)
      warnings[i + 1] = ffi_string(out_text[0], out_len[0])
    end
    out.warnings = warnings
  end
  if tracing then out.tracing_id = codec.uuid_to_string(out_uuid) end
  return out
end

-- The result of every INSERT, UPDATE... without warnings (shared, so
-- read-only).
local VOID = setmetatable({}, { __index = { type = "VOID" },
  __newindex = function() error("scylla_shard: a VOID result is read-only", 2) end })

local function not_rows(r, kind, opts)
  local out = VOID
  if kind == SCHEMA_CHANGE and C.sshard_result_schema_change(r, out_text, out_len, out_text + 1,
      out_len + 1, out_text + 2, out_len + 2, out_text + 3, out_len + 3) == OK then
    out = { type = "SCHEMA_CHANGE", change = ffi_string(out_text[0], out_len[0]),
      target = ffi_string(out_text[1], out_len[1]), keyspace = ffi_string(out_text[2], out_len[2]) }
    local name = ffi_string(out_text[3], out_len[3])
    if name ~= "" then
      out.name = name
      if out.target == "TABLE" then out.table = name end
    end
  elseif kind == SET_KEYSPACE and C.sshard_result_keyspace(r, out_text, out_len) == OK then
    out = { type = "SET_KEYSPACE", keyspace = ffi_string(out_text[0], out_len[0]) }
  end
  return with_extras(r, out, opts)
end

-- A result handle as Lua: ROWS (rows keyed by column name, with .meta),
-- VOID, SET_KEYSPACE or SCHEMA_CHANGE; or nil, err, code if a value does
-- not decode.
local function rows_of(r, session, prepared, opts)
  C.sshard_result_get_kind(r, out_kind)
  local kind = out_kind[0]
  if kind ~= ROWS then return not_rows(r, kind, opts) end
  C.sshard_result_column_count(r, out_len)
  local columns = columns_of(r, tonumber(out_len[0]), prepared)
  C.sshard_result_row_count(r, out_len)
  local row_count = tonumber(out_len[0])
  C.sshard_result_has_more_pages(r, out_bool)
  local meta = columns.last_page
  if out_bool[0] then
    local paging_state
    if C.sshard_result_paging_state(r, out_bytes, out_len) == OK then
      paging_state = ffi_string(out_bytes[0], out_len[0])
    end
    meta = { has_more_pages = true, paging_state = paging_state, columns = columns.meta }
  end
  local rows = new_table(row_count, 2)
  rows.type, rows.meta = "ROWS", meta
  local names, types, ncols = columns.names, columns.types, columns.count
  local int64_mode, ordered = decoding(session, opts)
  for i = 0, row_count - 1 do
    local row = new_table(0, ncols)
    for j = 1, ncols do
      C.sshard_result_value(r, i, j - 1, out_value)
      local v = decode(out_value[0], types[j], int64_mode, ordered)
      if v == FAILED then
        return errors.call(values.decode_status(), "column " .. names[j] .. " of row " .. (i + 1))
      end
      row[names[j]] = v
    end
    rows[i + 1] = row
  end
  return with_extras(r, rows, opts)
end

-- The outcome of a completed C future (borrowed: the caller frees it):
-- rows (or a session, a prepared statement, true) or nil, err, code,
-- details. With `keep`, the result handle (owned, collected) comes fifth,
-- for the next page.
function results.outcome(cf, status, kind, session, prepared, opts, keep)
  if status ~= OK then return errors.future(cf, status) end
  if kind == KIND_EXECUTE or kind == KIND_BATCH then
    local s = C.sshard_future_get_result(cf, out_result)
    if s ~= OK then return errors.future(cf, s) end
    local r = out_result[0]
    local rows, err, code = rows_of(r, session, prepared, opts)
    if keep and rows then return rows, nil, nil, nil, ffi_gc(r, C.sshard_result_free) end
    C.sshard_result_free(r)
    return rows, err, code
  elseif kind == KIND_PREPARE then
    local s = C.sshard_future_get_prepared(cf, out_prepared)
    if s ~= OK then return errors.future(cf, s) end
    return results.wrap_prepared(ffi_gc(out_prepared[0], C.sshard_prepared_free), session)
  elseif kind == KIND_CONNECT then
    local s = C.sshard_future_get_session(cf, out_session)
    if s ~= OK then return errors.future(cf, s) end
    return results.wrap_session(ffi_gc(out_session[0], C.sshard_session_free), session)
  end
  return true
end

return results
