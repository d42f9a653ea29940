-- A session with caller-driven I/O (caller_driven_io = true): the thread
-- that waits (scylla.wait, future:wait, a synchronous execute) runs the
-- connections. Its own process, so the binding's completion queue receives
-- this session's futures only (a queue shared with a threaded session is
-- not driven).
--   luajit tests/lua/test_caller_driven.lua BASE_IP
package.path = arg[0]:gsub("[^/]+$", "") .. "?.lua;" .. package.path
local support = require "support"
local t = require "harness"
local scylla = require "scylla_shard"

local N = 10000
local driven = support.connect { caller_driven_io = true }
support.must(driven, "CREATE KEYSPACE ck WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
support.must(driven, "CREATE TABLE ck.kv (k int PRIMARY KEY, v text)")
assert(driven:set_keyspace("ck"))

t.test("5,000 requests through scylla.wait and future:wait, all correct", function()
  local ins = assert(driven:prepare("INSERT INTO kv (k, v) VALUES (?, ?)"))
  local sel = assert(driven:prepare("SELECT v FROM kv WHERE k = ?"))
  local futures = {}
  for k = 1, 5000 do futures[k] = assert(ins:execute_async { N + k, "d" .. k }) end
  local deadline = scylla.now() + 60
  local done = 0
  while done < #futures and scylla.now() < deadline do done = done + scylla.wait(1) end
  for k = 1, 5000 do assert(futures[k]:result(), k) end
  for k = 1, 5000 do futures[k] = assert(sel:execute_async { N + k }) end
  for k = 1, 5000 do
    local rows = assert(futures[k]:wait(10))
    assert(rows[1].v == "d" .. k, k)
  end
  -- A synchronous request, and a refused option value.
  assert(driven:execute("SELECT v FROM kv WHERE k = ?", { N + 1 })[1].v == "d1")
  local nope, err = scylla.connect { contact_points = { "127.0.0.1" }, caller_driven_io = "yes" }
  assert(nope == nil and err:find("caller_driven_io"), err)
end)

assert(driven:close())

t.finish()
