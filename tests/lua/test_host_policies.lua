-- Host policies through the LuaJIT binding, against an emulator whose
-- node N listens on BASE_IP+N but advertises 10.255.0.(N+1)
-- (--advertise-base-ip 10.255.0.1), nodes 1 and 3 in dc1, node 2 in dc2
-- (--datacenters dc1,dc2): connect{} options address_translation,
-- host_allow_list / host_deny_list / dc_allow_list / dc_deny_list.
--   luajit tests/lua/test_host_policies.lua BASE_IP
package.path = arg[0]:gsub("[^/]+$", "") .. "?.lua;" .. package.path
local support = require "support"
local t = require "harness"
local scylla = require "scylla_shard"
local must = support.must

local S = scylla.status
local SHARDS = 4

local function translation()
  local map = {}
  for i = 1, 3 do map["10.255.0." .. i] = support.node(i) end
  return map
end

local function node_counter(i, metric)
  local status, body = support.http(i, "GET", "/metrics")
  assert(status == 200, "metrics of node " .. i)
  local total = 0
  for line in body:gmatch("[^\n]+") do
    local name, value = line:match("^([%w_]+)[^ ]* ([%d%.e+]+)$")
    if name == metric then total = total + tonumber(value) end
  end
  return total
end

local function misroutes()
  return support.counter("emulator_misrouted_node_total") + support.counter("emulator_misrouted_shard_total")
end

-- Nodes the session lists, and how many have every shard connected.
local function pools(session)
  local m = assert(session:metrics())
  local full = 0
  for _, n in ipairs(m.nodes) do
    local all = n.nr_shards == SHARDS
    for shard = 0, SHARDS - 1 do
      if (n.connections_per_shard[shard] or 0) < 1 then all = false end
    end
    if all then full = full + 1 end
  end
  return #m.nodes, full, m.nodes
end

local function write_keys(session, first, count)
  local insert = assert(session:prepare("INSERT INTO hpl.kv (k, v) VALUES (?, ?)"))
  for k = first, first + count - 1 do
    must(session, insert, { k, k }, { idempotent = true })
  end
end

local BAD = {
  { { host_deny_list = "10.0.0.1,nohost" }, "host_deny_list" },
  { { host_allow_list = { "10.0.0.1", 7 } }, "host_allow_list" },
  { { dc_allow_list = 3 }, "dc_allow_list" },
  { { address_translation = "10.0.0.1=127.0.0.1" }, "address_translation" },
  { { address_translation = { ["10.0.0.x"] = "127.0.0.1" } }, "address_translation" },
  { { address_translation = { ["10.0.0.1"] = "127.0.0.1:0" } }, "address_translation" },
}
for i, case in ipairs(BAD) do
  local options = case[1]
  options.contact_points = { support.base_ip }
  local session, err, code = scylla.connect(options)
  t.check("connect refuses bad host policy #" .. i, session == nil and code == S.INVALID_ARGUMENT
    and tostring(err):find(case[2], 1, true) ~= nil, tostring(err) .. " " .. tostring(code))
end

t.test("without translation the peers are unreachable", function()
  local session = support.connect { connect_timeout_ms = 500 }
  must(session, "CREATE KEYSPACE hpl WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
  must(session, "CREATE TABLE hpl.kv (k int PRIMARY KEY, v int)")
  write_keys(session, 0, 100)
  local count, _, nodes = pools(session)
  assert(count == 3, "three nodes known: " .. count)
  local advertised = 0
  for _, n in ipairs(nodes) do
    if n.address:find("^10%.255%.0%.") then
      advertised = advertised + 1
      assert(n.connections == 0, n.address .. " has connections")
    end
  end
  assert(advertised == 2, "the peers at their advertised addresses: " .. advertised)
  assert(node_counter(2, "emulator_connections_accepted_total") == 0)
  assert(node_counter(3, "emulator_connections_accepted_total") == 0)
  assert(session:close())
end)

t.test("address_translation reaches every node: full pools, zero misroutes", function()
  local session = support.connect { connect_timeout_ms = 500, address_translation = translation() }
  assert(support.wait_until(20, function() local _, full = pools(session); return full == 3 end),
    "every pool filled")
  local before = misroutes()
  write_keys(session, 1000, 300)
  t.equal("misroutes with translation", misroutes() - before, 0)
  assert(session:close())
end)

t.test("host_deny_list and dc_allow_list keep nodes out", function()
  local accepted3 = node_counter(3, "emulator_connections_accepted_total")
  local requests3 = node_counter(3, "emulator_requests_total")
  local session = support.connect { connect_timeout_ms = 500, address_translation = translation(),
    host_deny_list = { support.node(3) } }
  assert(support.wait_until(20, function() local _, full = pools(session); return full == 2 end))
  write_keys(session, 2000, 100)
  local count = pools(session)
  t.equal("nodes listed with one denied", count, 2)
  t.equal("connections to the denied node", node_counter(3, "emulator_connections_accepted_total"), accepted3)
  t.equal("requests to the denied node", node_counter(3, "emulator_requests_total"), requests3)
  assert(session:close())

  -- dc1 only: nodes 1 and 3.
  local requests2 = node_counter(2, "emulator_requests_total")
  session = support.connect { connect_timeout_ms = 500, address_translation = translation(),
    dc_allow_list = "dc1" }
  write_keys(session, 3000, 100)
  count = pools(session)
  t.equal("nodes of dc1", count, 2)
  t.equal("requests to dc2", node_counter(2, "emulator_requests_total"), requests2)
  assert(session:close())
end)

t.test("a filter that excludes every node fails connect with NO_HOSTS", function()
  local session, err, code = scylla.connect { contact_points = { support.base_ip },
    dc_deny_list = { "dc1", "dc2" } }
  assert(session == nil and code == S.NO_HOSTS, tostring(err))
  assert(tostring(err):find("host filter excludes every node", 1, true), err)
end)

t.finish()
