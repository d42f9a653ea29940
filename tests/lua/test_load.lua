-- Loading the module: each case runs `require "scylla_shard"` in a fresh
-- luajit with a broken setting and checks the error says what is wrong
-- (an ABI version mismatch, a library or declarations file that is not
-- there). Needs no cluster.
--   luajit tests/lua/test_load.lua
package.path = arg[0]:gsub("[^/]+$", "") .. "?.lua;" .. package.path
local t = require "harness"

local library = assert(os.getenv("SCYLLA_SHARD_LIBRARY"), "SCYLLA_SHARD_LIBRARY")
local cdef = assert(os.getenv("SCYLLA_SHARD_CDEF"), "SCYLLA_SHARD_CDEF")

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Runs require in a child luajit with `env` (name -> value); returns its
-- exit success and its output (stderr included).
local function load_with(env)
  local parts = {}
  for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. shell_quote(v) end
  -- LuaJIT's close() of a pipe does not report the exit status: echo it.
  local command = table.concat(parts, " ") .. " luajit -e 'require \"scylla_shard\" print(\"LOADED\")' 2>&1;"
    .. " echo EXIT=$?"
  local p = assert(io.popen(command))
  local out = p:read("*a")
  p:close()
  return out:find("EXIT=0\n$") ~= nil, out
end

local function with_abi(version)
  local f = assert(io.open(cdef, "rb"))
  local text = f:read("*a")
  f:close()
  local changed, n = text:gsub("SSHARD_ABI_VERSION = %d+", "SSHARD_ABI_VERSION = " .. version)
  assert(n == 1, "SSHARD_ABI_VERSION not found in " .. cdef)
  local path = os.tmpname()
  f = assert(io.open(path, "wb"))
  f:write(changed)
  f:close()
  return path
end

t.test("the module loads with matching versions", function()
  local ok, out = load_with { SCYLLA_SHARD_LIBRARY = library, SCYLLA_SHARD_CDEF = cdef }
  assert(ok and out:find("LOADED"), out)
end)

t.test("declarations of another ABI version are refused, naming the three versions", function()
  local path = with_abi(99)
  local ok, out = load_with { SCYLLA_SHARD_LIBRARY = library, SCYLLA_SHARD_CDEF = path }
  os.remove(path)
  assert(not ok and not out:find("LOADED"), out)
  assert(out:find("C ABI mismatch", 1, true) and out:find("declares 99", 1, true)
    and out:find("implements version 1", 1, true), out)
end)

t.test("a library that is not there is named", function()
  local ok, out = load_with { SCYLLA_SHARD_LIBRARY = "/nonexistent/libscylla_shard.so", SCYLLA_SHARD_CDEF = cdef }
  assert(not ok and out:find("SCYLLA_SHARD_LIBRARY=/nonexistent/libscylla_shard.so", 1, true), out)
end)

t.test("a declarations file that is not there is named", function()
  local ok, out = load_with { SCYLLA_SHARD_LIBRARY = library, SCYLLA_SHARD_CDEF = "/nonexistent/cdef.h" }
  assert(not ok and out:find("SCYLLA_SHARD_CDEF=/nonexistent/cdef.h does not exist", 1, true), out)
end)

t.finish()
