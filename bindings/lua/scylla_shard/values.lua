-- CQL values between Lua and the C API: type descriptions, the binding of
-- Lua values to statement markers and builders (checked against a
-- prepared marker's type, or inferred for simple statements), and the
-- decoding of result values into Lua.
--
-- Lua forms (bindings/lua/README.md, "Types"):
--   boolean: boolean; tinyint, smallint, int, float, double: number;
--   bigint, counter, varint: int64 cdata (or number, or string: the
--     `int64` option; a varint beyond 64 bits is always a string);
--   decimal: string ("123.45"); text, ascii: string; blob: string of bytes;
--   uuid, timeuuid: canonical string; inet: "192.0.2.1" / "2001:db8::1";
--   date: days since 1970-01-01 (number); time: nanoseconds since midnight;
--   timestamp: milliseconds since the epoch; duration: { months, days,
--   nanoseconds }; list, set, tuple: array; map: table (or, with the
--   `map = "ordered"` option, an array of { key, value } pairs); UDT: table
--   keyed by field; NULL: scylla.null.
local ffi = require "ffi"
local codec = require "scylla_shard.codec"
local L = require "scylla_shard.lib"

local C = L.C
local floor, huge, type, tonumber, tostring = math.floor, math.huge, type, tonumber, tostring
local getmetatable, setmetatable, next, pairs, ipairs = getmetatable, setmetatable, next, pairs, ipairs
local ffi_string, istype = ffi.string, ffi.istype

local values = {}

local OK = C.SSHARD_STATUS_OK
local NULL_VALUE = C.SSHARD_STATUS_NULL_VALUE
local INVALID_ARGUMENT = C.SSHARD_STATUS_INVALID_ARGUMENT
local TYPE_MISMATCH = C.SSHARD_STATUS_TYPE_MISMATCH

---------------------------------------------------------------- sentinels

-- NULL in rows and in arguments; `unset` leaves a column untouched.
local null = setmetatable({}, { __tostring = function() return "scylla.null" end })
local unset = setmetatable({}, { __tostring = function() return "scylla.unset" end })
values.null, values.unset = null, unset

-- OpenResty's (and cjson's) null is accepted as NULL too.
local ngx_null = rawget(_G, "ngx") and ngx.null

---------------------------------------------------------------- types

local K = {
  custom = C.SSHARD_TYPE_CUSTOM, ascii = C.SSHARD_TYPE_ASCII, bigint = C.SSHARD_TYPE_BIGINT,
  blob = C.SSHARD_TYPE_BLOB, boolean = C.SSHARD_TYPE_BOOLEAN, counter = C.SSHARD_TYPE_COUNTER,
  decimal = C.SSHARD_TYPE_DECIMAL, double = C.SSHARD_TYPE_DOUBLE, float = C.SSHARD_TYPE_FLOAT,
  int = C.SSHARD_TYPE_INT, timestamp = C.SSHARD_TYPE_TIMESTAMP, uuid = C.SSHARD_TYPE_UUID,
  text = C.SSHARD_TYPE_TEXT, varint = C.SSHARD_TYPE_VARINT, timeuuid = C.SSHARD_TYPE_TIMEUUID,
  inet = C.SSHARD_TYPE_INET, date = C.SSHARD_TYPE_DATE, time = C.SSHARD_TYPE_TIME,
  smallint = C.SSHARD_TYPE_SMALLINT, tinyint = C.SSHARD_TYPE_TINYINT,
  duration = C.SSHARD_TYPE_DURATION, list = C.SSHARD_TYPE_LIST, map = C.SSHARD_TYPE_MAP,
  set = C.SSHARD_TYPE_SET, udt = C.SSHARD_TYPE_UDT, tuple = C.SSHARD_TYPE_TUPLE,
}
values.kinds = K
local KIND_NAME = {}
for name, kind in pairs(K) do KIND_NAME[kind] = name end
K.varchar = K.text

-- A type description: { kind = K.x, name = "list<int>", sub = (list/set
-- element), key, value (map), elements (tuple), fields = { {name, type} }
-- (UDT) }. Natives are shared.
local NATIVE = {}
for kind, name in pairs(KIND_NAME) do
  if kind ~= K.list and kind ~= K.set and kind ~= K.map and kind ~= K.tuple and kind ~= K.udt
      and kind ~= K.custom then
    NATIVE[kind] = { kind = kind, name = name }
  end
end
values.native = NATIVE

local out_kind = ffi.new("sshard_type[1]")
local out_size = ffi.new("size_t[1]")
local out_type = ffi.new("const sshard_data_type *[1]")
local out_text = ffi.new("const char *[1]")

-- The description of a C `sshard_data_type` view.
function values.describe(dt)
  C.sshard_data_type_kind(dt, out_kind)
  local kind = out_kind[0]
  if NATIVE[kind] then return NATIVE[kind] end
  C.sshard_data_type_sub_type_count(dt, out_size)
  local subs = {}
  for i = 0, tonumber(out_size[0]) - 1 do
    C.sshard_data_type_sub_type(dt, i, out_type)
    subs[i + 1] = out_type[0]
  end
  for i, sub in ipairs(subs) do subs[i] = values.describe(sub) end
  local t = { kind = kind }
  if kind == K.list or kind == K.set then
    t.sub = subs[1]
    t.name = KIND_NAME[kind] .. "<" .. t.sub.name .. ">"
  elseif kind == K.map then
    t.key, t.value = subs[1], subs[2]
    t.name = "map<" .. t.key.name .. ", " .. t.value.name .. ">"
  elseif kind == K.tuple then
    t.elements = subs
    local names = {}
    for i, e in ipairs(subs) do names[i] = e.name end
    t.name = "tuple<" .. table.concat(names, ", ") .. ">"
  elseif kind == K.udt then
    t.fields = {}
    for i, sub in ipairs(subs) do
      C.sshard_data_type_field_name(dt, i - 1, out_text, out_size)
      t.fields[i] = { name = ffi_string(out_text[0], out_size[0]), type = sub }
    end
    if C.sshard_data_type_name(dt, out_text, out_size) == OK then
      t.name = ffi_string(out_text[0], out_size[0])
    else
      t.name = "udt"
    end
  else
    if C.sshard_data_type_name(dt, out_text, out_size) == OK then
      t.name = ffi_string(out_text[0], out_size[0])
    else
      t.name = "custom"
    end
  end
  return t
end

-- Parses a CQL type ("bigint", "map<text, frozen<list<int>>>") into a
-- description, for typing values of simple statements.
function values.parse_type(s)
  local pos = 1
  local function skip() pos = s:find("[^%s]", pos) or #s + 1 end
  local parse
  function parse()
    skip()
    local name = s:match("^[%a_][%w_]*", pos)
    if not name then error("bad CQL type " .. ("%q"):format(s), 0) end
    pos = pos + #name
    name = name:lower()
    skip()
    local args = {}
    if s:sub(pos, pos) == "<" then
      pos = pos + 1
      repeat
        args[#args + 1] = parse()
        skip()
        local sep = s:sub(pos, pos)
        pos = pos + 1
      until sep ~= ","
      if s:sub(pos - 1, pos - 1) ~= ">" then error("bad CQL type " .. ("%q"):format(s), 0) end
    end
    if name == "frozen" and #args == 1 then return args[1] end
    local kind = K[name]
    if not kind and #args == 0 then
      -- A user-defined type: its fields are not known here, so its value
      -- is given positionally (an array in declaration order).
      return { kind = K.udt, name = name }
    end
    if not kind or kind == K.udt or kind == K.custom then
      error("unknown CQL type " .. ("%q"):format(name) .. " in " .. ("%q"):format(s), 0)
    end
    if kind == K.list or kind == K.set then
      if #args ~= 1 then error(name .. " takes one type: " .. s, 0) end
      return { kind = kind, sub = args[1], name = name .. "<" .. args[1].name .. ">" }
    elseif kind == K.map then
      if #args ~= 2 then error("map takes two types: " .. s, 0) end
      return { kind = kind, key = args[1], value = args[2],
               name = "map<" .. args[1].name .. ", " .. args[2].name .. ">" }
    elseif kind == K.tuple then
      if #args == 0 then error("tuple takes types: " .. s, 0) end
      local names = {}
      for i, e in ipairs(args) do names[i] = e.name end
      return { kind = kind, elements = args, name = "tuple<" .. table.concat(names, ", ") .. ">" }
    end
    if #args > 0 then error(name .. " takes no type arguments: " .. s, 0) end
    return NATIVE[kind]
  end
  local ok, t = pcall(parse)
  if not ok then return nil, t end
  skip()
  if pos <= #s then return nil, "bad CQL type " .. ("%q"):format(s) end
  return t
end

---------------------------------------------------------------- typed values

-- A value with its CQL type, for simple statements (whose markers have no
-- known type): scylla.typed("bigint", 5), scylla.bigint(5), scylla.set{...}.
local Typed = {}
Typed.__index = Typed
Typed.__tostring = function(v) return "scylla.typed(" .. v.type.name .. ")" end
values.Typed = Typed

-- Maps read with the "ordered" option: { {key, value}, ... } in server
-- order; also accepted as arguments.
local OrderedMap = {}
OrderedMap.__index = OrderedMap
values.OrderedMap = OrderedMap

function values.typed(cql_type, value)
  local t = cql_type
  if type(cql_type) == "string" then
    local err
    t, err = values.parse_type(cql_type)
    if not t then error(err, 2) end
  elseif type(cql_type) ~= "table" or not cql_type.kind then
    error("scylla.typed: a CQL type name or description expected", 2)
  end
  return setmetatable({ type = t, value = value }, Typed)
end

-- Collections typed by their shape only: their elements are inferred
-- (or typed themselves).
local SHAPE = {
  list = { kind = K.list, name = "list" }, set = { kind = K.set, name = "set" },
  map = { kind = K.map, name = "map" }, tuple = { kind = K.tuple, name = "tuple" },
  udt = { kind = K.udt, name = "udt" },
}
function values.shaped(shape, value)
  return setmetatable({ type = SHAPE[shape], value = value }, Typed)
end

---------------------------------------------------------------- binding

-- Where a value goes: a statement marker by index, by name, or a builder.
-- Each table maps a value kind to its C function, called (handle, key, ...).
local function targets()
  local by_index, by_name, append = {}, {}, {}
  -- Arguments after (handle, key) of each kind's C functions: a wrapper
  -- per arity, so every call passes exactly what the C function takes.
  local arity = { null = 0, bool = 1, int8 = 1, int16 = 1, int32 = 1, int64 = 1, counter = 1,
    float = 1, double = 1, uuid = 1, date = 1, time = 1, timestamp = 1, builder = 1, text = 2,
    blob = 2, inet = 2, varint = 2, duration = 3, decimal = 3 }
  for k, n in pairs(arity) do
    local index_fn = C["sshard_statement_bind_" .. k]
    local name_fn = C["sshard_statement_bind_" .. k .. "_by_name"]
    local append_fn = C["sshard_builder_append_" .. k]
    if n == 0 then
      by_index[k] = function(h, i) return index_fn(h, i) end
      by_name[k] = function(h, name) return name_fn(h, name, #name) end
      append[k] = function(h) return append_fn(h) end
    elseif n == 1 then
      by_index[k] = function(h, i, a) return index_fn(h, i, a) end
      by_name[k] = function(h, name, a) return name_fn(h, name, #name, a) end
      append[k] = function(h, _, a) return append_fn(h, a) end
    elseif n == 2 then
      by_index[k] = function(h, i, a, b) return index_fn(h, i, a, b) end
      by_name[k] = function(h, name, a, b) return name_fn(h, name, #name, a, b) end
      append[k] = function(h, _, a, b) return append_fn(h, a, b) end
    else
      by_index[k] = function(h, i, a, b, c) return index_fn(h, i, a, b, c) end
      by_name[k] = function(h, name, a, b, c) return name_fn(h, name, #name, a, b, c) end
      append[k] = function(h, _, a, b, c) return append_fn(h, a, b, c) end
    end
  end
  local unset_index, unset_name = C.sshard_statement_bind_unset, C.sshard_statement_bind_unset_by_name
  by_index.unset = function(h, i) return unset_index(h, i) end
  by_name.unset = function(h, name) return unset_name(h, name, #name) end
  -- A builder has no "unset": inside a collection or UDT it is NULL.
  append.unset = append.null
  return by_index, by_name, append
end
local BY_INDEX, BY_NAME, APPEND = targets()
values.BY_INDEX, values.BY_NAME, values.APPEND = BY_INDEX, BY_NAME, APPEND

local uuid_buf = ffi.new("uint8_t[16]")
local inet_buf = ffi.new("uint8_t[16]")
local builder_out = ffi.new("sshard_builder *[1]")
local int64_t, uint64_t = ffi.typeof("int64_t"), ffi.typeof("uint64_t")
local TWO_53 = 2 ^ 53

-- The failure of the last put() (a Lua-side conversion).
local why

local function fail(status, message)
  why = message
  return status
end

local function describe_value(v)
  if v == nil then return "nil" end
  local s = type(v) == "string" and ("%q"):format(#v > 40 and v:sub(1, 40) .. "..." or v) or tostring(v)
  return s .. " (" .. type(v) .. ")"
end

local function mismatch(v, t)
  return fail(TYPE_MISMATCH, "cannot bind " .. describe_value(v) .. " as " .. t.name)
end

local function is_int64(v)
  return type(v) == "cdata" and (istype(int64_t, v) or istype(uint64_t, v))
end

-- A whole number in [lo, hi] from a number or a 64-bit cdata, or nil.
local function whole(v, lo, hi)
  if type(v) == "number" then
    if v == floor(v) and v >= lo and v <= hi then return v end
  elseif is_int64(v) and v >= lo and v <= hi then
    return tonumber(v)
  end
end

-- A 64-bit integer argument: number (whole, exact), int64/uint64 cdata or
-- decimal string.
local function int64_arg(v)
  if type(v) == "number" then
    if v == floor(v) and v >= -TWO_53 and v <= TWO_53 then return v end
    return nil, describe_value(v) .. " is not a whole number a double holds exactly: pass an int64 cdata or a string"
  elseif type(v) == "cdata" and istype(int64_t, v) then
    return v
  elseif type(v) == "cdata" and istype(uint64_t, v) then
    if v > 9223372036854775807ULL then return nil, tostring(v) .. " does not fit in a bigint" end
    return int64_t(v)
  elseif type(v) == "string" then
    return codec.int64_from_string(v)
  end
end

local function is_array(v)
  local n = #v
  if n == 0 then return next(v) == nil end
  local count = 0
  for _ in pairs(v) do count = count + 1 end
  return count == n
end

-- The type of a value of a simple statement (whose markers' types are not
-- known), from its Lua form.
local function infer(v)
  local tv = type(v)
  if tv == "boolean" then return NATIVE[K.boolean] end
  if tv == "number" then
    if v == floor(v) and v >= -2147483648 and v <= 2147483647 then return NATIVE[K.int] end
    return NATIVE[K.double]
  end
  if tv == "string" then return NATIVE[K.text] end
  if is_int64(v) then return NATIVE[K.bigint] end
  if tv == "table" then
    local mt = getmetatable(v)
    if mt == OrderedMap then return SHAPE.map end
    if mt == nil then return is_array(v) and SHAPE.list or SHAPE.map end
  end
end

local put

-- Appends each value of `list` (array) to a new builder of `t`.
local function build(t, v)
  local kind = t.kind
  if C.sshard_builder_new(kind, builder_out) ~= OK then
    return nil, fail(C.SSHARD_STATUS_INTERNAL, "sshard_builder_new failed")
  end
  local b = builder_out[0]
  local status = OK
  if kind == K.list or kind == K.set then
    local items = v
    if kind == K.set and not is_array(v) then
      -- A set given as { [element] = true, ... }.
      items = {}
      local sortable = true
      for element, present in pairs(v) do
        if present == true then
          items[#items + 1] = element
          local te = type(element)
          sortable = sortable and (te == "number" or te == "string") and te == type(items[1])
        end
      end
      -- In a stable order (the server keeps a set sorted anyway).
      if sortable then table.sort(items) end
    end
    for i = 1, #items do
      status = put(APPEND, b, nil, items[i], t.sub)
      if status ~= OK then break end
    end
  elseif kind == K.map then
    if getmetatable(v) == OrderedMap or (is_array(v) and #v > 0 and getmetatable(v[1]) == OrderedMap) then
      for i = 1, #v do
        status = put(APPEND, b, nil, v[i][1], t.key)
        if status == OK then status = put(APPEND, b, nil, v[i][2], t.value) end
        if status ~= OK then break end
      end
    else
      for key, value in pairs(v) do
        status = put(APPEND, b, nil, key, t.key)
        if status == OK then status = put(APPEND, b, nil, value, t.value) end
        if status ~= OK then break end
      end
    end
  elseif kind == K.tuple then
    local n = t.elements and #t.elements or #v
    for i = 1, n do
      local element = v[i]
      status = put(APPEND, b, nil, element == nil and null or element, t.elements and t.elements[i])
      if status ~= OK then break end
    end
  elseif kind == K.udt then
    if t.fields then
      for i = 1, #t.fields do
        local field = t.fields[i]
        local value = v[field.name]
        if value ~= nil then
          status = C.sshard_builder_field_name(b, field.name, #field.name)
          if status == OK then status = put(APPEND, b, nil, value, field.type) end
          if status ~= OK then break end
        end
      end
      for name in pairs(v) do
        local known = false
        for i = 1, #t.fields do if t.fields[i].name == name then known = true break end end
        if not known then
          status = fail(C.SSHARD_STATUS_NAME_NOT_FOUND, t.name .. " has no field " .. tostring(name))
          break
        end
      end
    elseif is_array(v) then
      -- Fields in declaration order (a simple statement's UDT: the server
      -- reads them positionally).
      for i = 1, #v do
        status = put(APPEND, b, nil, v[i], nil)
        if status ~= OK then break end
      end
    else
      status = fail(TYPE_MISMATCH, "a UDT value of a simple statement is an array of its fields "
        .. "in declaration order (field names need the prepared statement's types)")
    end
  end
  if status ~= OK then
    C.sshard_builder_free(b)
    return nil, status
  end
  return b
end

-- Binds `v` to `key` of `h` through `target` (BY_INDEX, BY_NAME or
-- APPEND), as type `t` (nil: inferred). Returns a status; for a failure
-- found on the Lua side values.why() says why.
function put(target, h, key, v, t)
  if v == nil or v == unset then return target.unset(h, key) end
  if v == null or (ngx_null and v == ngx_null) then return target.null(h, key) end
  if type(v) == "table" and getmetatable(v) == Typed then
    local hint = v.type
    v = v.value
    if v == nil or v == unset then return target.unset(h, key) end
    if v == null or (ngx_null and v == ngx_null) then return target.null(h, key) end
    if not t or not t.kind then t = hint end
  end
  if not t then
    t = infer(v)
    if not t then return fail(TYPE_MISMATCH, "cannot infer a CQL type for " .. describe_value(v)) end
  end
  local kind = t.kind
  if kind == K.int then
    local n = whole(v, -2147483648, 2147483647)
    if n then return target.int32(h, key, n) end
  elseif kind == K.text or kind == K.ascii then
    if type(v) == "string" then return target.text(h, key, v, #v) end
  elseif kind == K.bigint or kind == K.counter then
    local n, err = int64_arg(v)
    if n then return target.int64(h, key, n) end
    if err then return fail(INVALID_ARGUMENT, err) end
  elseif kind == K.boolean then
    if type(v) == "boolean" then return target.bool(h, key, v) end
  elseif kind == K.double then
    if type(v) == "number" then return target.double(h, key, v) end
    if is_int64(v) then return target.double(h, key, tonumber(v)) end
  elseif kind == K.float then
    if type(v) == "number" then return target.float(h, key, v) end
  elseif kind == K.smallint then
    local n = whole(v, -32768, 32767)
    if n then return target.int16(h, key, n) end
  elseif kind == K.tinyint then
    local n = whole(v, -128, 127)
    if n then return target.int8(h, key, n) end
  elseif kind == K.blob or kind == K.custom then
    if type(v) == "string" then return target.blob(h, key, v, #v) end
  elseif kind == K.uuid or kind == K.timeuuid then
    if type(v) == "string" then
      local ok, err = codec.uuid_from_string(v, uuid_buf)
      if not ok then return fail(INVALID_ARGUMENT, err) end
      return target.uuid(h, key, uuid_buf)
    end
  elseif kind == K.inet then
    if type(v) == "string" then
      local len, err = codec.inet_from_string(v, inet_buf)
      if not len then return fail(INVALID_ARGUMENT, err) end
      return target.inet(h, key, inet_buf, len)
    end
  elseif kind == K.timestamp then
    local n, err = int64_arg(v)
    if n then return target.timestamp(h, key, n) end
    if err then return fail(INVALID_ARGUMENT, err) end
  elseif kind == K.date then
    if type(v) == "string" then
      local days, err = codec.date_from_string(v)
      if not days then return fail(INVALID_ARGUMENT, err) end
      v = days
    end
    local n = whole(v, -2147483648, 2147483647)
    if n then return target.date(h, key, n) end
  elseif kind == K.time then
    if type(v) == "string" then
      local nanos, err = codec.time_from_string(v)
      if not nanos then return fail(INVALID_ARGUMENT, err) end
      v = nanos
    end
    local n = whole(v, 0, 86399999999999)
    if n then return target.time(h, key, n) end
  elseif kind == K.duration then
    if type(v) == "table" and getmetatable(v) == nil then
      local months, days = whole(v.months or 0, -2147483648, 2147483647), whole(v.days or 0, -2147483648, 2147483647)
      local nanos = int64_arg(v.nanoseconds or 0)
      if months and days and nanos then return target.duration(h, key, months, days, nanos) end
    end
  elseif kind == K.varint then
    local bytes, err
    if type(v) == "string" then
      bytes, err = codec.varint_from_string(v)
    elseif type(v) == "number" or is_int64(v) then
      local n
      n, err = int64_arg(v)
      if n then bytes = codec.int64_to_bytes(n) end
    end
    if bytes then return target.varint(h, key, bytes, #bytes) end
    if err then return fail(INVALID_ARGUMENT, err) end
  elseif kind == K.decimal then
    local unscaled, scale
    if type(v) == "string" then
      unscaled, scale = codec.decimal_from_string(v)
    elseif type(v) == "number" and v == v and v ~= huge and v ~= -huge then
      unscaled, scale = codec.decimal_from_string(("%.17g"):format(v))
    elseif is_int64(v) then
      unscaled, scale = codec.int64_to_bytes(v), 0
    end
    if unscaled then return target.decimal(h, key, unscaled, #unscaled, scale) end
    if scale then return fail(INVALID_ARGUMENT, scale) end
  elseif kind == K.list or kind == K.set or kind == K.map or kind == K.tuple or kind == K.udt then
    if type(v) == "table" then
      local b, status = build(t, v)
      if not b then return status end
      status = target.builder(h, key, b)
      C.sshard_builder_free(b)
      return status
    end
  end
  return mismatch(v, t)
end
values.put = put

-- Why the last put() refused a value on the Lua side (nil when the C
-- library refused it: its message is in sshard_last_error_message);
-- cleared by the call.
function values.take_why()
  local w = why
  why = nil
  return w
end

---------------------------------------------------------------- decoding

-- The type of values whose type is not known: their bytes.
local BYTES = { kind = K.custom, name = "blob" }

-- What decoders return when the C side refused a value
-- (values.decode_status() says why).
local FAILED = setmetatable({}, { __tostring = function() return "decode failure" end })
values.FAILED = FAILED

local o_bool = ffi.new("bool[1]")
local o_i8 = ffi.new("int8_t[1]")
local o_i16 = ffi.new("int16_t[1]")
local o_i32 = ffi.new("int32_t[2]")
local o_i64 = ffi.new("int64_t[1]")
local o_f32 = ffi.new("float[1]")
local o_f64 = ffi.new("double[1]")
local o_bytes = ffi.new("const uint8_t *[1]")
local o_chars = ffi.new("const char *[1]")
local o_len = ffi.new("size_t[1]")
local o_bytes16 = ffi.new("uint8_t[16]")
local o_value = ffi.new("const sshard_value *[2]")

-- Decoding options: how 64-bit integers and maps come back.
values.INT64_CDATA, values.INT64_NUMBER, values.INT64_STRING = 1, 2, 3

-- The status of the last refused decode.
local decode_failure = OK

local function refused(status)
  decode_failure = status
  return FAILED
end

function values.decode_status()
  return decode_failure
end

local function int64_out(n, int64_mode)
  if int64_mode == 1 then return n end
  if int64_mode == 2 then return tonumber(n) end
  return codec.int64_to_string(n)
end

local decode

-- `v` (a const sshard_value *) as Lua, `t` its type; `int64_mode` and
-- `ordered_maps` are the decoding options.
function decode(v, t, int64_mode, ordered_maps)
  local kind = t.kind
  local s
  if kind == K.int then
    s = C.sshard_value_get_int32(v, o_i32)
    if s == OK then return o_i32[0] end
  elseif kind == K.text or kind == K.ascii then
    s = C.sshard_value_get_text(v, o_chars, o_len)
    if s == OK then return ffi_string(o_chars[0], o_len[0]) end
  elseif kind == K.bigint or kind == K.counter then
    s = C.sshard_value_get_int64(v, o_i64)
    if s == OK then
      local n = o_i64[0]
      if int64_mode == 1 then return n end
      return int64_out(n, int64_mode)
    end
  elseif kind == K.boolean then
    s = C.sshard_value_get_bool(v, o_bool)
    if s == OK then return o_bool[0] end
  elseif kind == K.double then
    s = C.sshard_value_get_double(v, o_f64)
    if s == OK then return o_f64[0] end
  elseif kind == K.float then
    s = C.sshard_value_get_float(v, o_f32)
    if s == OK then return o_f32[0] end
  elseif kind == K.smallint then
    s = C.sshard_value_get_int16(v, o_i16)
    if s == OK then return o_i16[0] end
  elseif kind == K.tinyint then
    s = C.sshard_value_get_int8(v, o_i8)
    if s == OK then return o_i8[0] end
  elseif kind == K.blob or kind == K.custom then
    s = C.sshard_value_get_blob(v, o_bytes, o_len)
    if s == OK then return ffi_string(o_bytes[0], o_len[0]) end
  elseif kind == K.uuid or kind == K.timeuuid then
    s = C.sshard_value_get_uuid(v, o_bytes16)
    if s == OK then return codec.uuid_to_string(o_bytes16) end
  elseif kind == K.inet then
    s = C.sshard_value_get_inet(v, o_bytes16, o_len)
    if s == OK then return codec.inet_to_string(o_bytes16, tonumber(o_len[0])) end
  elseif kind == K.timestamp then
    s = C.sshard_value_get_timestamp(v, o_i64)
    if s == OK then return tonumber(o_i64[0]) end
  elseif kind == K.date then
    s = C.sshard_value_get_date(v, o_i32)
    if s == OK then return o_i32[0] end
  elseif kind == K.time then
    s = C.sshard_value_get_time(v, o_i64)
    if s == OK then return tonumber(o_i64[0]) end
  elseif kind == K.duration then
    s = C.sshard_value_get_duration(v, o_i32, o_i32 + 1, o_i64)
    if s == OK then
      return { months = o_i32[0], days = o_i32[1], nanoseconds = tonumber(o_i64[0]) }
    end
  elseif kind == K.varint then
    s = C.sshard_value_get_varint(v, o_bytes, o_len)
    if s == OK then
      local len = tonumber(o_len[0])
      if len <= 8 and int64_mode ~= 3 then
        return int64_out(codec.int64_from_bytes(o_bytes[0], len), int64_mode)
      end
      local digits = codec.varint_to_string(o_bytes[0], len)
      if int64_mode == 2 then return tonumber(digits) end
      return digits
    end
  elseif kind == K.decimal then
    s = C.sshard_value_get_decimal(v, o_bytes, o_len, o_i32)
    if s == OK then return codec.decimal_to_string(o_bytes[0], tonumber(o_len[0]), o_i32[0]) end
  elseif kind == K.list or kind == K.set or kind == K.tuple then
    s = C.sshard_value_element_count(v, o_len)
    if s == OK then
      local n = tonumber(o_len[0])
      local out = {}
      for i = 1, n do
        local element_type = kind == K.tuple and t.elements[i] or t.sub
        s = C.sshard_value_element(v, i - 1, o_value)
        if s ~= OK then return refused(s) end
        local e = decode(o_value[0], element_type, int64_mode, ordered_maps)
        if e == FAILED then return FAILED end
        out[i] = e
      end
      return out
    end
  elseif kind == K.map then
    s = C.sshard_value_element_count(v, o_len)
    if s == OK then
      local n = tonumber(o_len[0])
      local out = ordered_maps and setmetatable({}, OrderedMap) or {}
      for i = 1, n do
        s = C.sshard_value_map_entry(v, i - 1, o_value, o_value + 1)
        if s ~= OK then return refused(s) end
        local value_view = o_value[1]
        local key = decode(o_value[0], t.key, int64_mode, ordered_maps)
        if key == FAILED then return FAILED end
        local value = decode(value_view, t.value, int64_mode, ordered_maps)
        if value == FAILED then return FAILED end
        if ordered_maps then out[i] = { key, value } else out[key] = value end
      end
      return out
    end
  elseif kind == K.udt then
    s = C.sshard_value_element_count(v, o_len)
    if s == OK then
      local n = tonumber(o_len[0])
      local out = {}
      for i = 1, n do
        s = C.sshard_value_field(v, i - 1, o_chars, o_len, o_value)
        if s ~= OK then return refused(s) end
        local name = ffi_string(o_chars[0], o_len[0])
        local field = t.fields and t.fields[i]
        local value = decode(o_value[0], field and field.type or BYTES, int64_mode, ordered_maps)
        if value == FAILED then return FAILED end
        out[name] = value
      end
      return out
    end
  else
    s = C.sshard_value_get_bytes(v, o_bytes, o_len)
    if s == OK then return ffi_string(o_bytes[0], o_len[0]) end
  end
  if s == NULL_VALUE then return null end
  return refused(s)
end
values.decode = decode

return values
