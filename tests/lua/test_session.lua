-- The LuaJIT binding's session API against the emulator: connect{} with
-- every config setting, result shapes, errors as nil, err, code, paging
-- (execute with paging_state, iterate), batches, LWT [applied], request
-- options, routing keys of simple statements (zero misroutes), metrics,
-- schema metadata, close, and a session freed by the garbage collector.
--   luajit tests/lua/test_session.lua BASE_IP
package.path = arg[0]:gsub("[^/]+$", "") .. "?.lua;" .. package.path
local support = require "support"
local t = require "harness"
local scylla = require "scylla_shard"
local must = support.must

local S = scylla.status

t.test("connect{} takes every config setting by name", function()
  local session = assert(scylla.connect {
    contact_points = { support.base_ip, support.node(2) .. ":9042" }, port = 9042,
    shard_aware_port = true, local_port_range = { 40000, 60000 }, connections_per_shard = 1,
    local_dc = "datacenter1", local_rack = "rack1", dc_failover = true, compression = "lz4",
    connect_timeout_ms = 5000, request_timeout_ms = 10000, heartbeat_interval_ms = 30000,
    worker_threads = 2, application_name = "lua-test", application_version = "1.0",
    consistency = "LOCAL_QUORUM", serial_consistency = "LOCAL_SERIAL", page_size = 100,
    prepared_cache_size = 16, tablet_awareness = true, int64 = "number", map = "table",
    max_frame_size = 1048576, client_timestamps = false, schema_agreement_timeout_ms = 5000,
  })
  local rows = must(session, "SELECT release_version FROM system.local")
  assert(rows.type == "ROWS" and #rows == 1)
  local clients = must(session, "SELECT driver_name FROM system.clients")
  assert(#clients > 0)
  assert(session:close())
end)

t.test("credentials reach the server (a cluster without auth accepts them)", function()
  local session = support.connect { username = "u", password = "p" }
  assert(session:close())
end)

local BAD_OPTIONS = {
  { { contact_points = { support.base_ip }, nope = 1 }, "nope" },
  { { contact_points = { support.base_ip }, port = 70000 }, "port" },
  { { contact_points = { support.base_ip }, consistency = "SOME" }, "SOME" },
  { { contact_points = { support.base_ip }, compression = "zip" }, "compression" },
  { { contact_points = { support.base_ip }, username = "u" }, "password" },
  { { contact_points = { support.base_ip }, connections_per_shard = 1000 }, "connections_per_shard" },
  { { contact_points = { support.base_ip }, int64 = "big" }, "int64" },
  { { contact_points = { support.base_ip }, max_frame_size = 100 }, "max_frame_size" },
  { { contact_points = { support.base_ip }, client_timestamps = "yes" }, "client_timestamps" },
  { { contact_points = {} }, "contact_points" },
  { {}, "contact_points" },
}
for i, case in ipairs(BAD_OPTIONS) do
  local session, err, code = scylla.connect(case[1])
  t.check("connect refuses bad option #" .. i, session == nil and code == S.INVALID_ARGUMENT
    and tostring(err):find(case[2], 1, true) ~= nil, err)
end

t.test("a connect that reaches nobody fails with NO_HOSTS and says so", function()
  local session, err, code = scylla.connect { contact_points = { "127.0.0.1" }, port = 1,
    connect_timeout_ms = 1000 }
  assert(session == nil and code == S.NO_HOSTS and err:find("^NO_HOSTS"), err)
end)

local session = support.connect()
must(session, "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")

t.test("result shapes: SCHEMA_CHANGE, SET_KEYSPACE, VOID, ROWS", function()
  local r = must(session, "CREATE TABLE ks.kv (k int PRIMARY KEY, v text)")
  assert(r.type == "SCHEMA_CHANGE" and r.change == "CREATED" and r.target == "TABLE"
    and r.keyspace == "ks" and r.table == "kv" and r.schema_in_agreement == true, r.type)
  r = must(session, "CREATE TABLE ks.wide (p int, c int, v text, PRIMARY KEY (p, c))")
  assert(r.table == "wide")
  r = assert(session:set_keyspace("ks"))
  assert(r == true)
  r = must(session, "USE ks")
  assert(r.type == "SET_KEYSPACE" and r.keyspace == "ks", r.type)
  r = must(session, "INSERT INTO kv (k, v) VALUES (1, 'one')")
  assert(r.type == "VOID" and #r == 0)
  r = must(session, "SELECT k, v FROM kv WHERE k = 1")
  assert(r.type == "ROWS" and #r == 1 and r[1].k == 1 and r[1].v == "one")
  assert(r.meta.has_more_pages == false and r.meta.paging_state == nil)
  r = must(session, "SELECT k, v FROM kv WHERE k = 2")
  assert(r.type == "ROWS" and #r == 0 and #r.meta.columns == 2)
end)

t.test("errors come back as nil, err, code with the server's message and details", function()
  local rows, err, code, details = session:execute("SELEC nothing")
  assert(rows == nil and code == S.SERVER_SYNTAX_ERROR and err:find("^SERVER_SYNTAX_ERROR: ."), err)
  assert(details.server_code == 0x2000 and details.name == "SERVER_SYNTAX_ERROR" and #details.message > 0)
  rows, err, code = session:execute("SELECT * FROM nowhere.nothing")
  assert(rows == nil and code == S.SERVER_INVALID and err:find("nowhere"), err)
  rows, err, code, details = session:execute("CREATE TABLE ks.kv (k int PRIMARY KEY)")
  assert(code == S.SERVER_ALREADY_EXISTS and details.keyspace == "ks" and details.table == "kv", err)
  rows, err, code = session:prepare("SELECT nope FROM kv")
  assert(rows == nil and code == S.SERVER_INVALID, err)
  rows, err, code = session:execute(42)
  assert(rows == nil and code == S.INVALID_ARGUMENT, err)
end)

t.test("paging: page_size, paging_state, has_more_pages", function()
  local insert = assert(session:prepare("INSERT INTO wide (p, c, v) VALUES (?, ?, ?)"))
  for c = 1, 25 do assert(insert:execute { 1, c, "v" .. c }) end
  local q = "SELECT c FROM wide WHERE p = 1"
  local page1 = must(session, q, nil, { page_size = 10 })
  assert(#page1 == 10 and page1[1].c == 1 and page1.meta.has_more_pages, #page1)
  assert(type(page1.meta.paging_state) == "string" and #page1.meta.paging_state > 0)
  local page2 = must(session, q, nil, { page_size = 10, paging_state = page1.meta.paging_state })
  assert(#page2 == 10 and page2[1].c == 11 and page2.meta.has_more_pages)
  local page3 = must(session, q, nil, { page_size = 10, paging_state = page2.meta.paging_state })
  assert(#page3 == 5 and page3[5].c == 25 and not page3.meta.has_more_pages)
end)

t.test("iterate pages through every row, simple and prepared", function()
  for _, query in ipairs { "SELECT c FROM wide WHERE p = ?", assert(session:prepare("SELECT c FROM wide WHERE p = ?")) } do
    local seen, pages = {}, 0
    for rows, err, page in session:iterate(query, { 1 }, { page_size = 7 }) do
      assert(rows, err)
      pages = page
      for _, row in ipairs(rows) do seen[#seen + 1] = row.c end
    end
    assert(pages == 4 and #seen == 25, pages .. " pages, " .. #seen .. " rows")
    for i = 1, 25 do assert(seen[i] == i) end
  end
end)

t.test("iterate surfaces an error as one last iteration", function()
  local iterations, last_err = 0, nil
  for rows, err, page in session:iterate("SELECT c FROM nowhere WHERE p = 1") do
    iterations = iterations + 1
    assert(rows == false and page == 1)
    last_err = err
  end
  assert(iterations == 1 and last_err:find("^SERVER_INVALID"), last_err)
end)

t.test("batches: logged, unlogged, counter; prepared, simple and plain strings", function()
  must(session, "CREATE TABLE counts (k int PRIMARY KEY, n counter)")
  local insert = assert(session:prepare("INSERT INTO kv (k, v) VALUES (?, ?)"))
  local r = assert(session:batch({
    { insert, { 10, "ten" } },
    { "INSERT INTO kv (k, v) VALUES (?, ?)", { 11, "eleven" } },
    "INSERT INTO kv (k, v) VALUES (12, 'twelve')",
  }))
  assert(r.type == "VOID")
  assert(session:batch({ { insert, { 13, "thirteen" } } }, { type = "unlogged" }))
  assert(session:batch({ { "INSERT INTO kv (k, v) VALUES (?, ?)", { 14, "fourteen" } } },
    { logged = false, prepared = true, consistency = "ONE" }))
  local rows = must(session, "SELECT k, v FROM kv WHERE k IN (10, 11, 12, 13, 14)")
  assert(#rows == 5, #rows)
  assert(session:batch({ { "UPDATE counts SET n = n + ? WHERE k = ?", { scylla.counter(3), 1 } },
    { "UPDATE counts SET n = n + 4 WHERE k = 1" } }, { type = "counter" }))
  assert(session:batch({ { "UPDATE counts SET n = n + ? WHERE k = ?", { 1, 1 } } },
    { counter = true, prepared = true }))
  assert(must(session, "SELECT n FROM counts WHERE k = 1")[1].n == 8LL)
  local ok, err, code = session:batch({ { insert, { 15, "x" } }, "INSERT INTO nowhere (k) VALUES (1)" })
  assert(not ok and type(code) == "number" and err, err)
  ok, err, code = session:batch({ { insert, { "not an int", "x" } } })
  assert(not ok and code == S.TYPE_MISMATCH and err:find("statement 1"), err)
  ok, err = session:batch({}, { type = "sometimes" })
  assert(not ok and err:find("batch type"), err)
end)

t.test("lightweight transactions report [applied]", function()
  local lwt = assert(session:prepare("INSERT INTO kv (k, v) VALUES (?, ?) IF NOT EXISTS"))
  assert(lwt.is_lwt == true)
  local r = assert(lwt:execute({ 100, "first" }, { serial_consistency = "SERIAL" }))
  assert(r[1]["[applied]"] == true, tostring(r[1]["[applied]"]))
  r = assert(lwt:execute { 100, "second" })
  assert(r[1]["[applied]"] == false and r[1].v == "first", tostring(r[1]["[applied]"]))
  r = must(session, "UPDATE kv SET v = 'third' WHERE k = 100 IF v = 'first'")
  assert(r[1]["[applied]"] == true)
  assert(must(session, "SELECT v FROM kv WHERE k = 100")[1].v == "third")
  local plain = assert(session:prepare("SELECT v FROM kv WHERE k = ?"))
  assert(plain.is_lwt == false)
end)

t.test("request options: consistency, timestamp, idempotent, timeout, tracing", function()
  must(session, "INSERT INTO kv (k, v) VALUES (200, 'ts')", nil,
    { consistency = "ONE", timestamp = 1234567, idempotent = true, timeout_ms = 5000, tracing = true })
  local r = must(session, "SELECT WRITETIME(v) AS w FROM kv WHERE k = 200", nil, { consistency = scylla.consistency.ONE })
  assert(r[1].w == 1234567LL, tostring(r[1].w))
  local ok, err = session:execute("SELECT * FROM kv", nil, { consistency = "MOST" })
  assert(not ok and err:find("MOST"), err)
  ok, err = session:execute("SELECT * FROM kv", nil, { paging_state = 5 })
  assert(not ok and err:find("paging_state"), err)
  ok, err = session:execute("SELECT * FROM kv", nil, { routing_key = 5 })
  assert(not ok and err:find("routing_key"), err)
end)

t.test("opts.prepared prepares once and reuses the statement", function()
  local q = "SELECT v FROM kv WHERE k = ? AND v = 'one' ALLOW FILTERING"
  assert(must(session, q, { 1 }, { prepared = true })[1].v == "one")
  local before = assert(session:metrics()).requests
  for _ = 1, 5 do assert(must(session, q, { 1 }, { prepared = true })[1].v == "one") end
  local used = assert(session:metrics()).requests - before
  assert(used == 5, used .. " requests for 5 executions of a statement prepared before")
  -- Its marker is typed: a simple statement would send 1 as an int too,
  -- but a text marker refuses a number before anything is sent.
  local ok, err = session:execute("SELECT v FROM kv WHERE k = 1 AND v = ? ALLOW FILTERING", { 1 },
    { prepared = true })
  assert(not ok and err:find("text"), err)
  local params = assert(session:prepare("INSERT INTO kv (k, v) VALUES (?, ?)")):parameters()
  assert(#params == 2 and params[1].name == "k" and params[1].type == "int" and params[2].type == "text")
end)

t.test("simple statements with a routing key reach their replica's shard", function()
  must(session, "CREATE TABLE routed (k int PRIMARY KEY, v int)")
  local misroutes = function()
    return support.counter("emulator_misrouted_node_total") + support.counter("emulator_misrouted_shard_total")
  end
  local before = misroutes()
  local routable = support.counter("emulator_routable_requests_total")
  for k = 1, 200 do
    must(session, "INSERT INTO routed (k, v) VALUES (?, ?)", { k, k },
      { routing_key = { 1 }, routing_keyspace = "ks", routing_table = "routed" })
    local r = must(session, "SELECT v FROM routed WHERE k = ?", { k }, { routing_key = { 1 } })
    assert(r[1].v == k)
  end
  -- The raw form: the key's serialized bytes (an int: 4 bytes big-endian).
  for k = 201, 250 do
    local key = string.char(0, 0, math.floor(k / 256), k % 256)
    must(session, "INSERT INTO routed (k, v) VALUES (?, ?)", { k, k }, { routing_key = key })
  end
  assert(support.counter("emulator_routable_requests_total") - routable >= 450)
  local extra = misroutes() - before
  assert(extra == 0, extra .. " misroutes")
end)

t.test("metrics: shard awareness, a connection per node and shard, request counts", function()
  local m = assert(session:metrics())
  assert(m.shard_aware == true and m.node_count == 3 and m.connections == 12, m.connections)
  assert(m.requests > 0 and #m.nodes == 3 and m.in_flight == 0 and m.errors_client >= 0)
  assert(m.latency.count > 0 and m.latency.p50_us > 0 and m.latency.p99_us >= m.latency.p50_us
    and m.latency.max_us >= m.latency.p99_us, m.latency.p99_us)
  local node_requests = 0
  for _, node in ipairs(m.nodes) do
    assert(node.up and node.nr_shards == 4 and node.connections == 4 and node.address:find(":9042$"), node.address)
    assert(node.datacenter ~= "" and node.rack ~= "", node.datacenter)
    local per_shard = 0
    for shard = 0, 3 do
      assert(node.connections_per_shard[shard] == 1)
      per_shard = per_shard + node.requests_per_shard[shard]
    end
    assert(node.connections_per_shard[4] == nil)
    assert(node.requests == per_shard + node.requests_other, node.requests)
    assert(node.opened_shard_aware + node.opened_regular == 4 and node.opened_shard_aware >= 3,
      node.opened_shard_aware .. " shard-aware, " .. node.opened_regular .. " regular")
    assert(node.host_id:find("^00000000%-0000%-4000%-8000%-"), node.host_id)
    node_requests = node_requests + node.requests
  end
  -- The totals alone, without the node list.
  local totals = assert(session:metrics { nodes = false })
  assert(totals.nodes == nil and totals.connections == 12 and totals.requests >= m.requests)
  -- Requests move the counters of the node and shard that served them.
  assert(session:execute("SELECT v FROM kv WHERE k = 1"))
  local after = assert(session:metrics())
  assert(after.requests == m.requests + 1, after.requests)
  local after_node_requests = 0
  for _, node in ipairs(after.nodes) do after_node_requests = after_node_requests + node.requests end
  assert(after_node_requests == node_requests + 1, after_node_requests - node_requests)
  assert(session:in_flight() == 0)
end)

t.test("metrics in the Prometheus text format", function()
  local text = assert(session:prometheus())
  assert(text:find("# TYPE ", 1, true) and text:sub(-1) == "\n", text:sub(1, 200))
  local m = assert(session:metrics())
  -- Every node appears by its address, and the total of requests matches.
  for _, node in ipairs(m.nodes) do
    assert(text:find(node.address, 1, true), node.address .. " missing")
  end
  local requests
  for line in text:gmatch("[^\n]+") do
    local value = line:match("^scylla_shard_requests_total%s+(%d+)$")
    if value then requests = tonumber(value) end
  end
  assert(requests == m.requests, tostring(requests))
end)

t.test("a closed session refuses requests with CLOSED", function()
  local other = support.connect { keyspace = "ks" }
  assert(must(other, "SELECT v FROM kv WHERE k = 1")[1].v == "one")
  assert(other:close())
  assert(other:close()) -- twice is fine
  local rows, err, code = other:execute("SELECT v FROM kv WHERE k = 1")
  assert(rows == nil and code == S.CLOSED and err:find("CLOSED"), err)
end)

t.test("a session dropped without close is freed: its connections close", function()
  local function current() return support.counter("emulator_connections_current") end
  -- Only this file's session is open (12 shard connections and a control
  -- connection) once the sessions closed before are gone.
  local baseline = 13
  assert(support.wait_until(20, function() return current() == baseline end),
    current() .. " connections before")
  do
    local dropped = support.connect()
    assert(dropped:execute("SELECT * FROM system.local"))
    assert(support.wait_until(10, function() return current() == baseline + 13 end), "13 connections")
  end
  collectgarbage()
  collectgarbage()
  assert(support.wait_until(20, function() return current() == baseline end),
    ("%d connections left, %d before"):format(current(), baseline))
end)

assert(session:close())
t.test("session:schema() describes keyspaces, tables, keys and types", function()
  local session = support.connect()
  must(session, "CREATE KEYSPACE lua_schema WITH replication = {'class': 'NetworkTopologyStrategy', 'replication_factor': 2} AND tablets = {'enabled': false}")
  must(session, "CREATE TYPE lua_schema.point (x int, y int)")
  must(session, "CREATE TABLE lua_schema.events (day text, seq int, at timestamp, tags list<text>, "
    .. "spot frozen<point>, note text static, PRIMARY KEY ((day), seq, at)) WITH CLUSTERING ORDER BY (seq DESC, at ASC)")
  local ks
  -- Schema events reach the library's metadata asynchronously: poll.
  assert(support.wait_until(20, function()
    local snapshot = assert(session:schema())
    ks = snapshot.keyspaces.lua_schema
    return ks and ks.tables.events and ks.types.point
  end), "the new table in the schema within 20 s")
  assert(ks.name == "lua_schema" and ks.uses_tablets == false)
  assert(tostring(ks.replication.class):find("NetworkTopologyStrategy", 1, true),
    "replication class: " .. tostring(ks.replication.class))
  assert(ks.replication.replication_factor == "2" or ks.replication.datacenter1 == "2",
    "replication factor of lua_schema")
  local events = ks.tables.events
  assert(#events.partition_key == 1 and events.partition_key[1].name == "day")
  assert(#events.clustering_key == 2)
  assert(events.clustering_key[1].name == "seq" and events.clustering_key[1].descending == true)
  assert(events.clustering_key[2].name == "at" and events.clustering_key[2].descending == false)
  local by = events.columns_by_name
  assert(by.day.kind == "partition_key" and by.seq.kind == "clustering")
  assert(by.note.kind == "static" and by.tags.kind == "regular")
  assert(by.at.type.name == "timestamp", by.at.type.name)
  assert(by.tags.type.name == "list<text>", by.tags.type.name)
  assert(by.spot.type.fields and #by.spot.type.fields == 2)
  assert(by.spot.type.fields[1].name == "x" and by.spot.type.fields[1].type.name == "int")
  assert(#ks.types.point.fields == 2)
  assert(#events.columns == 6)
  -- Dropped: gone from the next snapshot; the one read before keeps it.
  must(session, "DROP TABLE lua_schema.events")
  assert(support.wait_until(20, function()
    return assert(session:schema()).keyspaces.lua_schema.tables.events == nil
  end), "the dropped table gone from the schema within 20 s")
  assert(ks.tables.events.name == "events")
  session:close()
  local closed = { session:schema() }
  assert(closed[1] == nil and type(closed[2]) == "string", "a closed session's schema is an error")
end)

t.finish()
