-- A session's schema metadata as Lua tables, copied out of one C snapshot
-- (sshard_session_get_schema): keyspaces with their replication and
-- whether they use tablets, tables with their columns (CQL types described
-- as values.describe does), partition and clustering keys in order, and
-- user-defined types. The library keeps the metadata (refreshed on schema
-- events); this module only reads one consistent snapshot of it.
local ffi = require "ffi"
local L = require "scylla_shard.lib"
local values = require "scylla_shard.values"

local C = L.C
local OK = L.status.OK
local ffi_string, tonumber = ffi.string, tonumber

local schema = {}

local out_schema = ffi.new("const sshard_schema *[1]")
local out_keyspace = ffi.new("const sshard_keyspace_meta *[1]")
local out_table = ffi.new("const sshard_table_meta *[1]")
local out_column = ffi.new("const sshard_column_meta *[1]")
local out_type = ffi.new("const sshard_data_type *[1]")
local out_count = ffi.new("size_t[1]")
local out_text = ffi.new("const char *[1]")
local out_len = ffi.new("size_t[1]")
local out_value = ffi.new("const char *[1]")
local out_value_len = ffi.new("size_t[1]")
local out_bool = ffi.new("bool[1]")
local out_kind = ffi.new("sshard_column_kind[1]")

local COLUMN_KIND = {
  [C.SSHARD_COLUMN_KIND_PARTITION_KEY] = "partition_key",
  [C.SSHARD_COLUMN_KIND_CLUSTERING] = "clustering",
  [C.SSHARD_COLUMN_KIND_STATIC] = "static",
  [C.SSHARD_COLUMN_KIND_REGULAR] = "regular",
}

-- Runs a C call; on failure, raises its status (caught by schema.read).
local function must(s)
  if s ~= OK then error(s, 0) end
end

local function count(fn, handle)
  must(fn(handle, out_count))
  return tonumber(out_count[0])
end

local function name_of(fn, handle)
  must(fn(handle, out_text, out_len))
  return ffi_string(out_text[0], out_len[0])
end

local function column(c)
  must(C.sshard_column_meta_kind(c, out_kind))
  must(C.sshard_column_meta_is_descending(c, out_bool))
  must(C.sshard_column_meta_data_type(c, out_type))
  return { name = name_of(C.sshard_column_meta_name, c), type = values.describe(out_type[0]),
    kind = COLUMN_KIND[out_kind[0]] or "regular", descending = out_bool[0] }
end

local function table_of(t)
  local out = { name = name_of(C.sshard_table_meta_name, t), columns = {}, columns_by_name = {},
    partition_key = {}, clustering_key = {} }
  for i = 0, count(C.sshard_table_meta_column_count, t) - 1 do
    must(C.sshard_table_meta_column(t, i, out_column))
    local c = column(out_column[0])
    out.columns[i + 1] = c
    out.columns_by_name[c.name] = c
  end
  -- The keys in their order, as the column entries above.
  for i = 0, count(C.sshard_table_meta_partition_key_count, t) - 1 do
    must(C.sshard_table_meta_partition_key(t, i, out_column))
    out.partition_key[i + 1] = out.columns_by_name[name_of(C.sshard_column_meta_name, out_column[0])]
  end
  for i = 0, count(C.sshard_table_meta_clustering_key_count, t) - 1 do
    must(C.sshard_table_meta_clustering_key(t, i, out_column))
    out.clustering_key[i + 1] = out.columns_by_name[name_of(C.sshard_column_meta_name, out_column[0])]
  end
  return out
end

local function keyspace_of(k)
  must(C.sshard_keyspace_meta_uses_tablets(k, out_bool))
  local out = { name = name_of(C.sshard_keyspace_meta_name, k), uses_tablets = out_bool[0],
    replication = {}, tables = {}, types = {} }
  for i = 0, count(C.sshard_keyspace_meta_replication_count, k) - 1 do
    must(C.sshard_keyspace_meta_replication(k, i, out_text, out_len, out_value, out_value_len))
    out.replication[ffi_string(out_text[0], out_len[0])] = ffi_string(out_value[0], out_value_len[0])
  end
  for i = 0, count(C.sshard_keyspace_meta_table_count, k) - 1 do
    must(C.sshard_keyspace_meta_table(k, i, out_table))
    local t = table_of(out_table[0])
    out.tables[t.name] = t
  end
  for i = 0, count(C.sshard_keyspace_meta_type_count, k) - 1 do
    must(C.sshard_keyspace_meta_type(k, i, out_type))
    local udt = values.describe(out_type[0])
    out.types[udt.name] = udt
  end
  return out
end

-- { keyspaces = { [name] = keyspace } } from one snapshot of session `cs`;
-- nil, status on failure.
function schema.read(cs)
  local s = C.sshard_session_get_schema(cs, out_schema)
  if s ~= OK then return nil, s end
  local snapshot = out_schema[0]
  local ok, result = pcall(function()
    local keyspaces = {}
    for i = 0, count(C.sshard_schema_keyspace_count, snapshot) - 1 do
      must(C.sshard_schema_keyspace(snapshot, i, out_keyspace))
      local k = keyspace_of(out_keyspace[0])
      keyspaces[k.name] = k
    end
    return { keyspaces = keyspaces }
  end)
  C.sshard_schema_free(snapshot)
  if not ok then
    if type(result) == "number" then return nil, result end
    error(result, 0)
  end
  return result
end

return schema
