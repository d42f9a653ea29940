-- include/scylla_shard_cdef.h loads into real LuaJIT: ffi.cdef parses it,
-- the library's functions are callable through ffi.load, the constants are
-- reachable through the library namespace, and the structs have the layout
-- the C compiler gives them.
--   luajit tests/lua/test_cdef.lua CDEF LIBRARY LAYOUT
-- LAYOUT: lines "name sizeof" and "name.field offsetof" printed by a C
-- program compiled against scylla_shard.h (make lua-check).
package.path = arg[0]:gsub("[^/]+$", "") .. "?.lua;" .. package.path
local t = require "harness"
local ffi = require "ffi"

local cdef_path, library, layout_path = arg[1], arg[2], arg[3]
local f = assert(io.open(cdef_path))
local cdef = f:read("*a")
f:close()

t.test("the cdef file has no preprocessor line", function()
  assert(not cdef:find("\n%s*#"), "a line starts with #")
end)
t.test("ffi.cdef parses the cdef file", function() ffi.cdef(cdef) end)

local lib = ffi.load(library)
t.equal("sshard_abi_version() through ffi.load", lib.sshard_abi_version(), lib.SSHARD_ABI_VERSION)
t.equal("SSHARD_STATUS_OK", lib.SSHARD_STATUS_OK, 0)
t.equal("SSHARD_STATUS_SERVER_BASE", lib.SSHARD_STATUS_SERVER_BASE, 65536)
t.equal("SSHARD_METRICS_VERSION", lib.SSHARD_METRICS_VERSION, 4)
t.check("SSHARD_VERSION_MAJOR", type(lib.SSHARD_VERSION_MAJOR) == "number")
t.equal("status names", ffi.string(lib.sshard_status_str(lib.SSHARD_STATUS_NULL_ARGUMENT)), "NULL_ARGUMENT")
t.equal("version string", ffi.string(lib.sshard_version()),
  ("%d.%d.%d"):format(lib.SSHARD_VERSION_MAJOR, lib.SSHARD_VERSION_MINOR, lib.SSHARD_VERSION_PATCH))

-- A call with an out parameter: a NULL handle gives a status, not a crash.
t.test("a NULL handle gives NULL_ARGUMENT", function()
  local out = ffi.new("const sshard_future *[1]")
  assert(lib.sshard_session_connect(nil, out) == lib.SSHARD_STATUS_NULL_ARGUMENT)
end)
t.test("a config is made, set and freed", function()
  local config = ffi.new("sshard_config *[1]")
  assert(lib.sshard_config_new(config) == lib.SSHARD_STATUS_OK)
  assert(lib.sshard_config_add_contact_point(config[0], "127.0.0.1", 9) == lib.SSHARD_STATUS_OK)
  assert(lib.sshard_config_set_consistency(config[0], lib.SSHARD_CONSISTENCY_LOCAL_QUORUM) == lib.SSHARD_STATUS_OK)
  assert(lib.sshard_config_free(config[0]) == lib.SSHARD_STATUS_OK)
end)

-- Struct layouts as the C compiler sees them.
local n = 0
for line in io.lines(layout_path) do
  local name, number = line:match("^(%S+) (%d+)$")
  local struct, field = name:match("^([%w_]+)%.([%w_]+)$")
  if field then
    t.equal("offsetof(" .. name .. ")", ffi.offsetof(struct, field), tonumber(number))
  else
    t.equal("sizeof(" .. name .. ")", ffi.sizeof(name), tonumber(number))
  end
  n = n + 1
end
t.check("the layout file lists the structs", n > 0)
t.finish()
