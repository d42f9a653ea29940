-- Many requests in flight from one Lua thread: execute_async returns a
-- future at once; scylla.poll() completes every finished request in one
-- call (here driven by a plain loop; an event loop would watch scylla.fd()).
--   luajit examples/lua/async.lua [HOST] [REQUESTS]
local scylla = require "scylla_shard"
local host, total = arg[1] or "127.0.0.1", tonumber(arg[2]) or 20000

local session = assert(scylla.connect { contact_points = { host } })
assert(session:execute("CREATE KEYSPACE IF NOT EXISTS demo WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"))
assert(session:execute("CREATE TABLE IF NOT EXISTS demo.kv (k int PRIMARY KEY, v text)"))
local insert = assert(session:prepare("INSERT INTO demo.kv (k, v) VALUES (?, ?)"))
local select_ = assert(session:prepare("SELECT v FROM demo.kv WHERE k = ?"))

local window, started, done, errors = 512, 0, 0, 0
local t0 = scylla.now()

-- Keeps `window` requests in flight: each completed insert starts the
-- read of its key, each read checks what it got.
local function start_next()
  if started >= total then return end
  started = started + 1
  local k = started
  assert(insert:execute_async({ k, "value " .. k })):on_complete(function(ok, err)
    if not ok then errors = errors + 1; done = done + 1; start_next() return end
    assert(select_:execute_async { k }):on_complete(function(rows, err2)
      if not rows or rows[1].v ~= "value " .. k then errors = errors + 1 end
      done = done + 1
      start_next()
    end)
  end)
end

for _ = 1, window do start_next() end
while done < total do
  if scylla.poll() == 0 then scylla.wait(0.1) end
end
local elapsed = scylla.now() - t0
print(("%d writes + %d reads in %.2f s (%.0f requests/s), %d errors, shard-aware: %s"):format(
  total, total, elapsed, 2 * total / elapsed, errors, tostring(session:metrics().shard_aware)))
assert(session:close())
os.exit(errors == 0 and 0 or 1)
