-- Asynchronous requests of the LuaJIT binding against the emulator:
-- 10,000 concurrent requests through execute_async + scylla.poll, poll
-- batches, the queue's descriptor, future:wait with a timeout and
-- future:ready, completion callbacks, and abandoned futures (collected,
-- their completions freed: memory stays flat).
--   luajit tests/lua/test_async.lua BASE_IP
package.path = arg[0]:gsub("[^/]+$", "") .. "?.lua;" .. package.path
local support = require "support"
local t = require "harness"
local scylla = require "scylla_shard"
local ffi = require "ffi"
local must = support.must

local session = support.connect()
must(session, "CREATE KEYSPACE ak WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
assert(session:set_keyspace("ak"))
must(session, "CREATE TABLE kv (k int PRIMARY KEY, v text)")
local insert = assert(session:prepare("INSERT INTO kv (k, v) VALUES (?, ?)"))
local select_ = assert(session:prepare("SELECT v FROM kv WHERE k = ?"))

local N = 10000

-- Polls until every future is done (bounded).
local function drain(futures, seconds)
  local deadline = scylla.now() + seconds
  local polls = 0
  while true do
    local pending = 0
    for _, f in ipairs(futures) do if not f.done then pending = pending + 1 end end
    if pending == 0 then return polls end
    if scylla.now() > deadline then error(pending .. " futures still pending") end
    if scylla.poll() == 0 then ffi.C.usleep(200) end
    polls = polls + 1
  end
end
pcall(ffi.cdef, "int usleep(unsigned int usec);")

t.test("10,000 concurrent inserts, then 10,000 concurrent selects, all correct", function()
  local futures = {}
  for k = 1, N do futures[k] = assert(insert:execute_async { k, "v" .. k }) end
  assert(session:in_flight() > 0)
  local polls = drain(futures, 60)
  for k = 1, N do
    local r, err = futures[k]:result()
    assert(r and r.type == "VOID", err)
  end
  assert(polls < N, polls .. " polls for " .. N .. " completions: poll completes batches")
  futures = {}
  for k = 1, N do futures[k] = assert(select_:execute_async { k }) end
  drain(futures, 60)
  for k = 1, N do
    local rows, err = futures[k]:wait()
    assert(rows, err)
    assert(#rows == 1 and rows[1].v == "v" .. k, k)
  end
  assert(scylla.outstanding() == 0 and session:in_flight() == 0)
end)

t.test("poll(max) completes at most max futures per call", function()
  local futures = {}
  for k = 1, 50 do futures[k] = assert(select_:execute_async { k }) end
  assert(support.wait_until(10, function() return session:in_flight() == 0 end))
  local first = scylla.poll(10)
  assert(first == 10, first)
  local rest = scylla.poll()
  assert(rest == 40, rest)
  for k = 1, 50 do assert(futures[k].done) end
end)

pcall(ffi.cdef, [[
  struct sshard_test_pollfd { int fd; short events; short revents; };
  int poll(struct sshard_test_pollfd *fds, unsigned long nfds, int timeout);
]])
local function readable(fd, timeout_ms)
  local p = ffi.new("struct sshard_test_pollfd[1]")
  p[0].fd, p[0].events = fd, 1
  return ffi.C.poll(p, 1, timeout_ms) == 1
end

t.test("scylla.fd() is readable exactly while completions wait", function()
  local fd = assert(scylla.fd())
  assert(type(fd) == "number" and fd >= 0)
  assert(scylla.fd() == fd)
  assert(not readable(fd, 0))
  local f = assert(select_:execute_async { 1 })
  assert(readable(fd, 10000), "the descriptor did not become readable")
  assert(not f.done)
  assert(scylla.poll() == 1 and f.done)
  assert(not readable(fd, 0))
  assert(f:result()[1].v == "v1")
end)

local function set_delay(us)
  for i = 1, 3 do
    local status = support.http(i, "POST", "/admin/delay?us=" .. us)
    assert(status == 200, status)
  end
end

t.test("future:wait(timeout) and future:ready() with a slow cluster", function()
  set_delay(300000)
  local f = assert(select_:execute_async { 2 })
  assert(f:ready() == false)
  local rows, err, code = f:wait(0.05)
  assert(rows == nil and code == scylla.status.PENDING and err:find("PENDING"), err)
  rows, err = f:wait(10)
  assert(rows and rows[1].v == "v2", err)
  assert(f:ready() == true)
  set_delay(0)
end)

t.test("on_complete callbacks run from poll; a failing one loses no completion", function()
  local got = {}
  local a = assert(select_:execute_async { 3 }):on_complete(function(rows) got.a = rows[1].v end)
  local b = assert(session:execute_async("SELEC x")):on_complete(function(rows, err, code)
    got.b = code
    error("callback failure")
  end)
  local c = assert(select_:execute_async { 4 }):on_complete(function(rows) got.c = rows[1].v end)
  assert(support.wait_until(10, function() return session:in_flight() == 0 end))
  local ok, err = pcall(scylla.poll)
  assert(not ok and tostring(err):find("callback failure"), err)
  assert(a.done and b.done and c.done)
  assert(got.a == "v3" and got.b == scylla.status.SERVER_SYNTAX_ERROR and got.c == "v4")
  local late
  a:on_complete(function(rows) late = rows[1].v end)
  assert(late == "v3")
end)

t.test("async prepare, batch and failures", function()
  local f = assert(session:batch_async({ { insert, { N + 1, "b" } } }))
  local r, err = f:wait(10)
  assert(r and r.type == "VOID", err)
  f = assert(session:execute_async("SELECT v FROM kv WHERE k = ?", { N + 1 }))
  r = assert(f:wait(10))
  assert(r[1].v == "b")
  local rows, e, code = assert(session:execute_async("SELECT * FROM nothing")):wait(10)
  assert(rows == nil and code == scylla.status.SERVER_INVALID, e)
end)

t.test("abandoned futures are collected and their results freed", function()
  must(session, "CREATE TABLE big (k int PRIMARY KEY, v text)")
  local payload = ("x"):rep(4096)
  local big_insert = assert(session:prepare("INSERT INTO big (k, v) VALUES (?, ?)"))
  for k = 1, 100 do assert(big_insert:execute { k, payload }) end
  local big_select = assert(session:prepare("SELECT v FROM big WHERE k = ?"))
  local function round(n)
    for i = 1, n do assert(big_select:execute_async { i % 100 + 1 }) end
    assert(support.wait_until(60, function()
      scylla.poll()
      return scylla.outstanding() == 0
    end), scylla.outstanding() .. " completions never came")
    collectgarbage()
  end
  round(2000) -- warm-up: allocator arenas, the event buffer
  local before = support.rss()
  for _ = 1, 10 do round(2000) end
  local growth = support.rss() - before
  -- 20,000 results of 4 KiB would be 80 MiB if they were kept.
  assert(growth < 16 * 1024 * 1024, ("resident memory grew by %.1f MiB"):format(growth / 1048576))
  -- A future collected while its request was in flight.
  set_delay(100000)
  do assert(big_select:execute_async { 1 }) end
  collectgarbage()
  collectgarbage()
  set_delay(0)
  assert(support.wait_until(10, function()
    scylla.poll()
    return scylla.outstanding() == 0
  end))
end)

assert(session:close())
t.finish()
