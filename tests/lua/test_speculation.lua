-- The LuaJIT binding with speculative execution and execution profiles,
-- against a 3-node emulator whose first node answers 300 ms late
-- (POST /admin/delay):
--   connect{ speculative_execution = ..., execution_profiles = { name = {...} } }
--   and per request { execution_profile = name, speculative_execution = ... }
--   (execute and batch); idempotent reads never wait for the slow node when
--   they speculate, non-idempotent ones never speculate (one attempt each);
--   a profile's consistency, retry policy and load-balancing preferences
--   reach the request; bad options are refused before any request.
--   luajit tests/lua/test_speculation.lua BASE_IP
package.path = arg[0]:gsub("[^/]+$", "") .. "?.lua;" .. package.path
local support = require "support"
local t = require "harness"
local scylla = require "scylla_shard"
local must = support.must

local S = scylla.status
local SLOW_S, READS = 0.3, 30
local READ = "SELECT v FROM spec.kv WHERE k = 1"

local function slow(node, seconds)
  local status = support.http(node, "POST", ("/admin/delay?us=%d"):format(seconds * 1e6))
  assert(status == 200)
end

local function inject_all(path)
  for i = 1, 3 do assert(support.http(i, "POST", path) == 200) end
end

local session = support.connect {
  speculative_execution = false,
  execution_profiles = {
    spec = { speculative_execution = { delay_ms = 20, max_attempts = 2 } },
    strict = { consistency = "THREE", retry_policy = "fallthrough", request_timeout_ms = 20000 },
    nowhere = { local_dc = "no-such-dc", dc_failover = false },
    home = { local_dc = "datacenter1", local_rack = "rack1" },
  },
}
must(session, "CREATE KEYSPACE IF NOT EXISTS spec WITH replication = "
  .. "{'class': 'SimpleStrategy', 'replication_factor': 3}")
must(session, "CREATE TABLE IF NOT EXISTS spec.kv (k int PRIMARY KEY, v text)")
must(session, "INSERT INTO spec.kv (k, v) VALUES (1, 'stored')")

-- The slowest of READS reads with `opts`, in seconds.
local function slowest(opts)
  local worst = 0
  for _ = 1, READS do
    local started = scylla.now()
    local rows = must(session, READ, nil, opts)
    assert(rows[1].v == "stored")
    worst = math.max(worst, scylla.now() - started)
  end
  return worst
end

local function speculated()
  local m = assert(session:metrics { nodes = false })
  return m.speculative_executions, m.speculative_wins
end

t.test("bad speculation and profile options are refused", function()
  for _, bad in ipairs {
    { speculative_execution = { delay_ms = 10, max_attempts = 0 } },
    { speculative_execution = { delay_ms = -1, max_attempts = 2 } },
    { speculative_execution = { percentile = 100, max_attempts = 2 } },
    { speculative_execution = "sometimes" },
    { execution_profiles = { p = { consistency = "NOPE" } } },
    { execution_profiles = { p = { what = 1 } } },
    { execution_profiles = { p = { speculative_execution = { delay_ms = 1, max_attempts = 99 } } } },
  } do
    bad.contact_points = { support.base_ip }
    local s, err, code = scylla.connect(bad)
    t.check("refused: " .. tostring(err), s == nil and code ~= nil, err)
  end
  local rows, err = session:execute(READ, nil, { speculative_execution = { max_attempts = 2 } })
  t.check("a request's bad speculation is refused", rows == nil and err:find("delay_ms"), err)
  rows, err = session:execute(READ, nil, { execution_profile = 7 })
  t.check("a request's bad profile name is refused", rows == nil, err)
end)

t.test("an unknown profile fails the request", function()
  local rows, err, code = session:execute(READ, nil, { execution_profile = "no-such-profile" })
  t.equal("status", code, S.NAME_NOT_FOUND)
  t.check("the message names it", rows == nil and err:find("no-such-profile", 1, true), err)
  rows, err, code = session:batch({ { "INSERT INTO spec.kv (k, v) VALUES (2, 'b')" } },
    { execution_profile = "no-such-profile" })
  t.equal("batch status", code, S.NAME_NOT_FOUND)
end)

t.test("speculation keeps idempotent reads off the slow node", function()
  slow(1, SLOW_S)
  local started0, won0 = speculated()
  t.check("without speculation a read waits", slowest { idempotent = true } >= SLOW_S)
  t.equal("nothing speculated", (speculated()), started0)
  t.check("the profile's speculation", slowest { idempotent = true, execution_profile = "spec" } < SLOW_S)
  local started1, won1 = speculated()
  t.check("speculative executions counted", started1 > started0)
  t.check("wins counted", won1 > won0 and won1 - won0 <= started1 - started0)
  t.check("the request's own policy",
    slowest { idempotent = true, speculative_execution = { delay_ms = 20, max_attempts = 3 } } < SLOW_S)
  local started2 = speculated()
  t.check("the request's own 'none' beats its profile's",
    slowest { idempotent = true, execution_profile = "spec", speculative_execution = false } >= SLOW_S)
  t.equal("no speculation", (speculated()), started2)
  local text = assert(session:prometheus())
  t.check("prometheus", text:find("scylla_shard_speculative_wins_total", 1, true) ~= nil)
  slow(1, 0)
end)

t.test("non-idempotent reads never speculate", function()
  slow(1, SLOW_S)
  local started = speculated()
  local received = support.counter("emulator_routable_requests_total")
  t.check("they wait", slowest { execution_profile = "spec" } >= SLOW_S)
  t.equal("nothing speculated", (speculated()), started)
  t.equal("one attempt each", support.counter("emulator_routable_requests_total") - received, READS)
  slow(1, 0)
end)

t.test("batches speculate through their profile", function()
  slow(1, SLOW_S)
  local started = speculated()
  for _ = 1, READS do
    assert(session:batch({ { "INSERT INTO spec.kv (k, v) VALUES (2, 'b')" } },
      { idempotent = true, execution_profile = "spec" }))
  end
  t.check("speculated", speculated() > started)
  slow(1, 0)
end)

t.test("a profile's level, retry policy and load balancing reach the request", function()
  inject_all("/admin/fail?error=unavailable&required=3&alive=1&consistency=THREE&count=1")
  local before = assert(session:metrics { nodes = false })
  local rows, err, code = session:execute(READ, nil, { execution_profile = "strict" })
  t.equal("UNAVAILABLE at THREE", code, S.SERVER_UNAVAILABLE)
  local m = assert(session:metrics { nodes = false })
  t.equal("fallthrough rethrew it", m.retry_rethrown - before.retry_rethrown, 1)
  rows = must(session, READ, nil, { execution_profile = "strict", consistency = "ONE" })
  t.equal("the request's own level wins", rows[1].v, "stored")
  rows, err, code = session:execute(READ, nil, { execution_profile = "nowhere" })
  t.equal("no node in the profile's datacenter", code, S.NO_HOSTS)
  rows = must(session, READ, nil, { execution_profile = "home" })
  t.equal("the local datacenter serves", rows[1].v, "stored")
end)

session:close()
t.finish()
