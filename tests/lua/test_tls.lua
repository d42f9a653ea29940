-- The LuaJIT binding over TLS and with retry policies, against an emulator
-- with TLS listeners (9142, shard-aware 19142) that requires client
-- certificates from its test CA (certificates generated for this run by
-- scripts/lua_tests.sh with `scylla-emulator --tls-generate`):
--   connect{ ssl = {...} } with the CA and client certificate from files
--   and from memory, shard-aware on the TLS ports; bad settings refused
--   before any connection with the library's status; handshake failures
--   (unknown CA, wrong server name, no client certificate) with theirs;
--   retry_policy in connect{} and per request, decisions in metrics.
--   luajit tests/lua/test_tls.lua BASE_IP CERT_DIR
package.path = arg[0]:gsub("[^/]+$", "") .. "?.lua;" .. package.path
local support = require "support"
local t = require "harness"
local scylla = require "scylla_shard"
local must = support.must

local S = scylla.status
local dir = assert(arg[2], "usage: test_tls.lua BASE_IP CERT_DIR")
local function path(name) return dir .. "/" .. name end
local function read(name)
  local f = assert(io.open(path(name), "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

local function tls_options(ssl, extra)
  local options = { contact_points = { support.base_ip }, port = 9142, worker_threads = 2,
    connect_timeout_ms = 5000, request_timeout_ms = 20000, ssl = ssl }
  for k, v in pairs(extra or {}) do options[k] = v end
  return options
end

local function mutual(extra)
  local ssl = { ca_file = path("ca.pem"), cert_file = path("client.pem"),
    key_file = path("client-key.pem"), verify = { "peer_cert", "peer_identity" } }
  for k, v in pairs(extra or {}) do ssl[k] = v end
  return ssl
end

-- Connections accepted on `port`, summed over every node and shard.
local function accepted(port)
  local total = 0
  for i = 1, 3 do
    local status, body = support.http(i, "GET", "/metrics")
    assert(status == 200)
    for value in body:gmatch('emulator_connections_accepted_total{port="' .. port .. '",[^}]*} (%d+)') do
      total = total + tonumber(value)
    end
  end
  return total
end

t.test("a mutual-TLS session is shard-aware on the TLS ports only", function()
  local plain = accepted(9042) + accepted(19042)
  local shard_aware = accepted(19142)
  local session = assert(scylla.connect(tls_options(mutual())))
  must(session, "CREATE KEYSPACE IF NOT EXISTS tls WITH replication = "
    .. "{'class': 'SimpleStrategy', 'replication_factor': 1}")
  must(session, "CREATE TABLE IF NOT EXISTS tls.kv (k int PRIMARY KEY, v text)")
  for k = 1, 50 do must(session, "INSERT INTO tls.kv (k, v) VALUES (?, 'over tls')", { k }) end
  local rows = must(session, "SELECT v FROM tls.kv WHERE k = ?", { 7 })
  t.equal("row over TLS", rows[1] and rows[1].v, "over tls")
  assert(support.wait_until(20, function()
    local m = assert(session:metrics())
    if #m.nodes ~= 3 then return false end
    for _, node in ipairs(m.nodes) do
      if node.nr_shards ~= 4 then return false end
      for shard = 0, 3 do if node.connections_per_shard[shard] ~= 1 then return false end end
    end
    return true
  end), "pools never filled")
  local m = assert(session:metrics())
  t.check("shard aware under TLS", m.shard_aware)
  for i, node in ipairs(m.nodes) do
    t.equal("node " .. i .. " shard-aware connections", node.opened_shard_aware, 3)
    t.equal("node " .. i .. " regular connections", node.opened_regular, 1)
    t.check("node " .. i .. " shard-aware port in use", node.shard_aware_port_in_use)
  end
  assert(session:close())
  t.equal("nothing on the plain ports", accepted(9042) + accepted(19042), plain)
  t.equal("shard-aware TLS port", accepted(19142) - shard_aware, 9)
end)

t.test("certificates given in memory, the name the certificate holds", function()
  local session = assert(scylla.connect(tls_options {
    ca = read("ca.pem"), cert = read("client.pem"), key = read("client-key.pem"),
    verify = "peer_identity_dns", server_name = "scylla.test", system_trust = true,
  }))
  must(session, "SELECT release_version FROM system.local")
  assert(session:close())
end)

local BAD = {
  { { ca = "not a certificate" }, S.SSL_INVALID_CERT, "no CERTIFICATE" },
  { { ca_file = "/nonexistent/ca.pem" }, S.INVALID_ARGUMENT, "/nonexistent/ca.pem" },
  { { ca_file = path("ca.pem"), cert_file = path("client.pem") }, S.SSL_INVALID_PRIVATE_KEY,
    "without its private key" },
  { { ca_file = path("ca.pem"), key = "-----BEGIN NOTHING-----\n" }, S.SSL_INVALID_PRIVATE_KEY, "private key" },
  { {}, S.SSL_INVALID_CERT, "no trusted certificate" },
  { { ca_file = path("ca.pem"), server_name = "not a name!" }, S.INVALID_ARGUMENT, "server name" },
  { { ca_file = path("ca.pem"), verify = "always" }, S.INVALID_ARGUMENT, "verify" },
  { { ca_file = path("ca.pem"), nope = 1 }, S.INVALID_ARGUMENT, "nope" },
  { { ca_file = 7 }, S.INVALID_ARGUMENT, "ca_file" },
  { "yes", S.INVALID_ARGUMENT, "ssl" },
}
for i, case in ipairs(BAD) do
  t.test("bad ssl settings #" .. i .. " refused before connecting", function()
    local session, err, code = scylla.connect(tls_options(case[1]))
    assert(session == nil, "connected")
    t.equal("status of bad ssl #" .. i, code, case[2])
    t.check("message of bad ssl #" .. i .. " (" .. tostring(err) .. ")", err:find(case[3], 1, true) ~= nil)
  end)
end

local FAILURES = {
  { { ca_file = path("other-ca.pem"), cert_file = path("client.pem"), key_file = path("client-key.pem") },
    S.SSL_INVALID_PEER_CERT, "UnknownIssuer" },
  { mutual { server_name = "wrong.test" }, S.SSL_IDENTITY_MISMATCH, "not valid for name" },
  { { ca_file = path("ca.pem") }, S.SSL_PROTOCOL_ERROR, "requires a client certificate" },
}
for i, case in ipairs(FAILURES) do
  t.test("handshake failure #" .. i .. " has its own status", function()
    local session, err, code = scylla.connect(tls_options(case[1]))
    assert(session == nil, "connected")
    t.equal("status of handshake failure #" .. i, code, case[2])
    t.check("message of handshake failure #" .. i .. " (" .. tostring(err) .. ")",
      err:find(case[3], 1, true) ~= nil)
  end)
end

-- The next `count` QUORUM requests on every node fail as `fault` says.
local function inject(fault, count)
  for i = 1, 3 do
    local status = support.http(i, "POST", ("/admin/fail?%s&consistency=QUORUM&count=%d"):format(fault, count))
    assert(status == 200, "admin/fail: " .. tostring(status))
  end
end

t.test("retry policies from connect{} and per request, decisions in metrics", function()
  local session = assert(scylla.connect(tls_options(mutual(), { retry_policy = "fallthrough" })))
  must(session, "INSERT INTO tls.kv (k, v) VALUES (1, 'stored')")
  local read = "SELECT v FROM tls.kv WHERE k = 1"
  local before = assert(session:metrics())
  inject("error=read_timeout&received=1&block_for=2", 1)
  local rows, err, code = session:execute(read, nil, { consistency = "QUORUM", idempotent = true })
  t.equal("fallthrough returns the timeout (" .. tostring(err) .. ")", code, S.SERVER_READ_TIMEOUT)
  inject("error=read_timeout&received=1&block_for=2", 2)
  rows = must(session, read, nil, { consistency = "QUORUM", idempotent = true,
    retry_policy = "downgrading_consistency" })
  t.equal("downgraded read", rows[1] and rows[1].v, "stored")
  local m = assert(session:metrics())
  t.equal("rethrown", m.retry_rethrown - before.retry_rethrown, 1)
  t.equal("downgraded", m.retry_downgraded - before.retry_downgraded, 1)
  inject("error=write_timeout&received=1&block_for=2&write_type=UNLOGGED_BATCH", 2)
  assert(session:batch({ { "INSERT INTO tls.kv (k, v) VALUES (2, 'b')" } },
    { type = "unlogged", consistency = "QUORUM", idempotent = true, retry_policy = "downgrading_consistency" }))
  t.equal("downgraded batch", assert(session:metrics()).retry_downgraded - before.retry_downgraded, 2)
  local _, why, status = session:execute(read, nil, { retry_policy = "sometimes" })
  t.equal("unknown policy refused (" .. tostring(why) .. ")", status, S.INVALID_ARGUMENT)
  local s2, why2, status2 = scylla.connect(tls_options(mutual(), { retry_policy = 3 }))
  t.check("unknown config policy refused (" .. tostring(why2) .. ")", s2 == nil and status2 == S.INVALID_ARGUMENT)
  assert(session:close())
end)

t.finish()
