-- fork() after a session started: in the child the parent's session,
-- prepared statement and futures refuse work with a clear error (FORKED,
-- naming fork), nothing crashes, and the child can connect anew and use
-- the cluster (a new completion queue included). The parent is unaffected.
--   luajit tests/lua/test_fork.lua BASE_IP
package.path = arg[0]:gsub("[^/]+$", "") .. "?.lua;" .. package.path
local support = require "support"
local t = require "harness"
local scylla = require "scylla_shard"
local ffi = require "ffi"
local must = support.must

pcall(ffi.cdef, [[
  int fork(void);
  int waitpid(int pid, int *status, int options);
  void _exit(int status);
]])

local session = support.connect()
must(session, "CREATE KEYSPACE fk WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
must(session, "CREATE TABLE fk.kv (k int PRIMARY KEY, v text)")
must(session, "INSERT INTO fk.kv (k, v) VALUES (1, 'parent')")
local select_ = assert(session:prepare("SELECT v FROM fk.kv WHERE k = ?"))
-- The process's completion queue exists before the fork.
assert(assert(select_:execute_async { 1 }):wait(10)[1].v == "parent")
local in_flight = assert(select_:execute_async { 1 })

local function child()
  local failures = {}
  local function check(name, ok, detail)
    if not ok then failures[#failures + 1] = name .. ": " .. tostring(detail) end
  end
  local rows, err, code = session:execute("SELECT v FROM fk.kv WHERE k = 1")
  check("old session refused", rows == nil and code == scylla.status.FORKED, err)
  check("the error names fork()", err and err:find("fork()", 1, true) and err:find("init_worker_by_lua", 1, true), err)
  rows, err, code = select_:execute { 1 }
  check("old prepared statement refused", rows == nil and code == scylla.status.FORKED, err)
  local f
  f, err, code = session:execute_async("SELECT v FROM fk.kv WHERE k = 1")
  check("old session refuses async work", f == nil and code == scylla.status.FORKED, err)
  rows, err, code = in_flight:wait(1)
  check("a future from before the fork fails", rows == nil and code == scylla.status.FORKED, err)
  check("poll() is harmless", pcall(scylla.poll))
  check("metrics refused", select(3, session:metrics()) == scylla.status.FORKED)
  -- A new session works, with a new completion queue.
  local fresh, why = scylla.connect { contact_points = { support.base_ip }, worker_threads = 1 }
  check("new session", fresh, why)
  if fresh then
    check("insert", fresh:execute("INSERT INTO fk.kv (k, v) VALUES (2, 'child')"))
    local got = fresh:execute("SELECT v FROM fk.kv WHERE k = 1")
    check("select", got and got[1] and got[1].v == "parent")
    local async = fresh:execute_async("SELECT v FROM fk.kv WHERE k = 2")
    local r = async and async:wait(10)
    check("async in the child", r and r[1] and r[1].v == "child", r)
    check("close", fresh:close())
  end
  -- The parent's handles are collected in the child without harm.
  session, select_, in_flight = nil, nil, nil
  collectgarbage()
  collectgarbage()
  for _, failure in ipairs(failures) do io.stderr:write("child: ", failure, "\n") end
  io.stderr:flush()
  ffi.C._exit(#failures == 0 and 0 or 1)
end

local pid = ffi.C.fork()
assert(pid >= 0, "fork failed")
if pid == 0 then child() end

local status = ffi.new("int[1]")
t.equal("waitpid", ffi.C.waitpid(pid, status, 0), pid)
t.equal("the child's checks passed (exit status)", status[0], 0)
t.test("the parent goes on", function()
  assert(in_flight:wait(10)[1].v == "parent")
  assert(must(session, "SELECT v FROM fk.kv WHERE k = 2")[1].v == "child")
  assert(select_:execute({ 1 })[1].v == "parent")
end)
assert(session:close())
t.finish()
