-- The OpenResty application of tests/lua/test_openresty.py: one session per
-- nginx worker (connected in init_worker_by_lua*), prepared statements per
-- worker, and the locations the test drives.
local scylla = require "resty.scylla_shard"

local app = {}
local session
local statements = {}

local function contact()
  return os.getenv("SSHARD_TEST_CONTACT") or "127.0.0.1"
end

function app.init_worker()
  local err
  session, err = scylla.connect { contact_points = { contact() }, worker_threads = 1,
    request_timeout_ms = 10000, application_name = "openresty-test" }
  if not session then ngx.log(ngx.ERR, "scylla_shard connect: ", err) end
end

-- The same through the communicator (SSHARD_TEST_COMMUNICATOR: its socket):
-- one connection per worker, to the daemon.
function app.init_worker_communicator()
  local err
  session, err = scylla.connect { communicator = os.getenv("SSHARD_TEST_COMMUNICATOR"),
    worker_threads = 1, request_timeout_ms = 10000, application_name = "openresty-test" }
  if not session then ngx.log(ngx.ERR, "scylla_shard connect (communicator): ", err) end
end

-- A session made in init_by_lua* (the master): workers must be refused it.
function app.init_master()
  local err
  app.master_session, err = scylla.connect { contact_points = { contact() }, worker_threads = 1 }
  if not app.master_session then ngx.log(ngx.ERR, "master connect: ", err) end
end

local function fail(status, err)
  ngx.status = status
  ngx.print(tostring(err))
  return ngx.exit(status)
end

local function prepared(name, cql)
  local stmt = statements[name]
  if stmt then return stmt end
  local err
  stmt, err = session:prepare(cql)
  if not stmt then return nil, err end
  statements[name] = stmt
  return stmt
end

function app.setup()
  for _, cql in ipairs {
    "CREATE KEYSPACE IF NOT EXISTS ot WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
    "CREATE TABLE IF NOT EXISTS ot.kv (k int PRIMARY KEY, v text)",
    "CREATE TABLE IF NOT EXISTS ot.wide (p int, c int, PRIMARY KEY (p, c))",
  } do
    local ok, err = session:execute(cql)
    if not ok then return fail(500, err) end
  end
  ngx.print("ok")
end

function app.put()
  local stmt, err = prepared("put", "INSERT INTO ot.kv (k, v) VALUES (?, ?)")
  if not stmt then return fail(500, err) end
  local ok
  ok, err = stmt:execute { tonumber(ngx.var.arg_k), ngx.var.arg_v }
  if not ok then return fail(500, err) end
  ngx.print("ok")
end

function app.get()
  local stmt, err = prepared("get", "SELECT v FROM ot.kv WHERE k = ?")
  if not stmt then return fail(500, err) end
  local rows, code
  rows, err, code = stmt:execute { tonumber(ngx.var.arg_k) }
  if not rows then return fail(500, err .. " (" .. tostring(code) .. ")") end
  if not rows[1] then return fail(404, "no row") end
  local v = rows[1].v
  ngx.header.content_length = #v
  ngx.print(v)
end

-- The rest of the API from a request: each check yields, none blocks.
function app.suite()
  local failures = {}
  local function check(name, ok, detail)
    if not ok then failures[#failures + 1] = name .. ": " .. tostring(detail) end
  end
  local insert = assert(prepared("wide", "INSERT INTO ot.wide (p, c) VALUES (?, ?)"))
  local batch = {}
  for c = 1, 30 do batch[c] = { insert, { ngx.worker.pid(), c } } end
  local ok, err = session:batch(batch, { type = "unlogged" })
  check("batch", ok, err)
  local n, pages = 0, 0
  for rows, e, page in session:iterate("SELECT c FROM ot.wide WHERE p = ?", { ngx.worker.pid() }, { page_size = 7 }) do
    check("page", rows, e)
    if not rows then break end
    n, pages = n + #rows, page
  end
  check("iterate", n == 30 and pages == 5, n .. " rows in " .. pages .. " pages")
  local futures = {}
  for c = 1, 20 do futures[c] = session:execute_async("SELECT c FROM ot.wide WHERE p = ? AND c = ?", { ngx.worker.pid(), c }) end
  for c = 1, 20 do
    local rows, e = futures[c]:wait(5)
    check("async " .. c, rows and rows[1] and rows[1].c == c, e)
  end
  local rows, e, code = session:execute("SELEC oops")
  check("error", rows == nil and code == scylla.status.SERVER_SYNTAX_ERROR and e:find("SERVER_SYNTAX_ERROR"), e)
  local m = session:metrics()
  check("shard aware", m and m.shard_aware and m.connections == 12, m and m.connections)
  check("nodes", m and #m.nodes == 3 and m.nodes[1].connections == 4, m and #m.nodes)
  local text = session:prometheus()
  check("prometheus", text and text:find("scylla_shard_requests_total", 1, true), text)
  check("reader", scylla.reader_running())
  if #failures > 0 then return fail(500, table.concat(failures, "\n")) end
  ngx.print("ok")
end

function app.master()
  local rows, err, code = app.master_session:execute("SELECT * FROM system.local")
  if rows then return fail(500, "a worker used the master's session") end
  ngx.print(tostring(code), " ", err)
end

-- From header_filter_by_lua*: waiting is refused there, with a reason.
function app.header_phase()
  local rows, err = session:execute("SELECT * FROM system.local")
  ngx.header["X-Scylla-Error"] = rows and "none" or err
end

return app
