-- A session's metrics as Lua tables, read from the C API's snapshot
-- (sshard_session_get_metrics_snapshot): the totals, every node with its
-- shards, and the Prometheus text. The library computes every figure; this
-- module only copies them out.
local ffi = require "ffi"
local L = require "scylla_shard.lib"
local codec = require "scylla_shard.codec"

local C = L.C
local OK = L.status.OK
local ffi_string, tonumber = ffi.string, tonumber

local metrics = {}

local totals_type = ffi.typeof("sshard_metrics")
local node_type = ffi.typeof("sshard_node_metrics")
local totals_size, node_size = ffi.sizeof(totals_type), ffi.sizeof(node_type)
local out_snapshot = ffi.new("const sshard_metrics_snapshot *[1]")
local out_count = ffi.new("size_t[1]")
local out_text = ffi.new("const char *[1]")
local totals_buf, node_buf = totals_type(), node_type()

-- The 64-bit counters of the totals, copied as numbers (exact below 2^53).
local TOTAL_COUNTERS = {
  "connections", "requests", "errors", "retries", "timeouts", "tablet_tables", "tablets",
  "tablet_payloads", "prepared_cached", "in_flight", "speculative_executions",
  "errors_server_timeout", "errors_unavailable", "errors_overloaded", "errors_server_other",
  "errors_connection", "errors_no_host", "errors_client",
  "retry_same_target", "retry_next_target", "retry_downgraded", "retry_ignored", "retry_rethrown",
  "speculative_wins",
}
local NODE_COUNTERS = {
  "connections", "requests", "requests_other", "errors", "opened_shard_aware", "opened_regular",
  "shard_aware_fallbacks", "nat_detections",
}

-- { count, mean_us, p50_us, p95_us, p99_us, p999_us, max_us } in microseconds.
local function latency_of(l)
  return { count = tonumber(l.count), mean_us = tonumber(l.mean_us), p50_us = tonumber(l.p50_us),
    p95_us = tonumber(l.p95_us), p99_us = tonumber(l.p99_us), p999_us = tonumber(l.p999_us),
    max_us = tonumber(l.max_us) }
end

local function totals_of(m)
  local out = { shard_aware = m.shard_aware, node_count = m.node_count, version = m.version,
    latency = latency_of(m.latency) }
  for _, name in ipairs(TOTAL_COUNTERS) do out[name] = tonumber(m[name]) end
  return out
end

-- One node: connections_per_shard and requests_per_shard are keyed by
-- shard number (0 .. nr_shards - 1), as the server numbers its shards.
local function node_of(n)
  local node = {
    address = ffi_string(n.address, n.address_len),
    datacenter = ffi_string(n.datacenter, n.datacenter_len),
    rack = ffi_string(n.rack, n.rack_len),
    host_id = codec.uuid_to_string(n.host_id),
    up = n.up, shard_aware_port_in_use = n.shard_aware_port_in_use, nr_shards = n.nr_shards,
    connections_per_shard = {}, requests_per_shard = {}, latency = latency_of(n.latency),
  }
  for _, name in ipairs(NODE_COUNTERS) do node[name] = tonumber(n[name]) end
  for shard = 0, n.shard_count - 1 do
    node.connections_per_shard[shard] = n.connections_per_shard[shard]
    node.requests_per_shard[shard] = tonumber(n.requests_per_shard[shard])
  end
  return node
end

-- Totals only (one call, no snapshot): the table of `read` without nodes.
function metrics.totals(cs)
  local s = C.sshard_session_get_metrics(cs, totals_buf, totals_size)
  if s ~= OK then return nil, s end
  return totals_of(totals_buf)
end

-- Reads one snapshot of session `cs` through `reader(snapshot)`, then
-- frees it. Returns what the reader returns, or nil and the status.
local function with_snapshot(cs, reader)
  local s = C.sshard_session_get_metrics_snapshot(cs, out_snapshot)
  if s ~= OK then return nil, s end
  local snapshot = out_snapshot[0]
  local ok, out, status = pcall(reader, snapshot)
  C.sshard_metrics_snapshot_free(snapshot)
  if not ok then error(out, 0) end
  return out, status
end

local function read_snapshot(snapshot)
  local s = C.sshard_metrics_snapshot_totals(snapshot, totals_buf, totals_size)
  if s ~= OK then return nil, s end
  local out = totals_of(totals_buf)
  s = C.sshard_metrics_snapshot_node_count(snapshot, out_count)
  if s ~= OK then return nil, s end
  local nodes = {}
  for i = 0, tonumber(out_count[0]) - 1 do
    s = C.sshard_metrics_snapshot_node(snapshot, i, node_buf, node_size)
    if s ~= OK then return nil, s end
    nodes[i + 1] = node_of(node_buf)
  end
  out.nodes = nodes
  return out
end

-- Totals and nodes, all from one moment.
function metrics.read(cs)
  return with_snapshot(cs, read_snapshot)
end

local function prometheus_of(snapshot)
  local s = C.sshard_metrics_snapshot_prometheus(snapshot, out_text, out_count)
  if s ~= OK then return nil, s end
  return ffi_string(out_text[0], out_count[0])
end

-- The Prometheus text exposition (format 0.0.4) of the session now.
function metrics.prometheus(cs)
  return with_snapshot(cs, prometheus_of)
end

return metrics
