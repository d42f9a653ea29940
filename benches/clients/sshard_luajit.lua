-- sshard-luajit: the benchmark client of this library's LuaJIT binding
-- (bindings/lua), following the client contract of benches/README.md with
-- the semantics of examples/c/bench.c: request number i (shared by the
-- warm-up and the measured phase) uses key i % keys, value
-- ("%016x"):format(k) four times and the run's tag; for `mixed` it is an
-- INSERT when i is even. The deadline is checked before a number is taken.
--
-- One Lua thread: a window of --concurrency requests in flight through
-- execute_async; scylla.wait completes a batch of them per FFI call and
-- hands back the completed futures. Latency from issue to the completion's
-- arrival; every SELECT row checked; the newest distinct inserted keys
-- read back afterwards. Prints one JSON line.
--
--   luajit benches/clients/sshard_luajit.lua --contact HOST:PORT --workload insert|select|mixed|connect|schema
--          [--concurrency 1] [--duration 5] [--warmup 2] [--requests N --warmup-requests N]
--          [--keys 10000] [--keyspace bench] [--table kv] [--tag 1] [--verify-max 1000]
--          [--expect-nodes N] [--pool-timeout 30] [--replication CLAUSE] [--sync]
local here = arg[0]:gsub("[^/]+$", "")
package.path = here .. "../../bindings/lua/?.lua;" .. package.path

local ffi = require "ffi"
local DRIVER = "sshard-luajit"
local READBACK_CONCURRENCY = 32
local PHASE_SLACK_S = 60
local WAIT_SLICE_S = 0.1

---------------------------------------------------------------- output

local function json_string(s)
  if s == nil then return "null" end
  return '"' .. tostring(s):gsub('[%c"\\]', function(c)
    local named = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
    return named[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

local function json_number(v)
  if v ~= v or v == math.huge or v == -math.huge then v = 0 end
  local s = ("%.9g"):format(v)
  if not s:find("[%.eE]") then s = s .. ".0" end
  return s
end

local function emit(line)
  io.stdout:write(line, "\n")
  io.stdout:flush()
end

local function die(fmt, ...)
  local message = fmt:format(...)
  emit(('{"event": "error", "driver": "%s", "message": %s}'):format(DRIVER, json_string(message)))
  io.stderr:write(DRIVER, ": ", message, "\n")
  os.exit(1)
end

local ok_load, scylla = pcall(require, "scylla_shard")
if not ok_load then die("loading the binding: %s", tostring(scylla)) end

---------------------------------------------------------------- options

local opts = {
  contact = "127.0.0.1:9042", workload = "mixed", concurrency = 1, duration = 5.0, warmup = 2.0,
  requests = nil, warmup_requests = 0, keys = 10000, keyspace = "bench", table = "kv", tag = 1,
  verify_max = 1000, expect_nodes = nil, pool_timeout = 30.0,
  replication = "{'class': 'SimpleStrategy', 'replication_factor': 1}", sync = false,
}
local WORKLOADS = { insert = true, select = true, mixed = true, connect = true, schema = true }

local function usage(why)
  io.stderr:write("usage: sshard_luajit.lua --contact HOST:PORT --workload insert|select|mixed|connect|schema\n",
    "       [--concurrency 1] [--duration 5] [--warmup 2] [--requests N --warmup-requests N]\n",
    "       [--keys 10000] [--keyspace bench] [--table kv] [--tag 1] [--verify-max 1000]\n",
    "       [--expect-nodes N] [--pool-timeout 30] [--replication CLAUSE] [--sync]\n",
    "sshard_luajit.lua: error: ", why, "\n")
  os.exit(2)
end

local function whole(name, v)
  local n = tonumber(v)
  if not n or n < 0 or n ~= math.floor(n) then usage(name) end
  return n
end

local function real(name, v)
  local n = tonumber(v)
  if not n or n ~= n then usage(name) end
  return n
end

do
  local i = 1
  while i <= #arg do
    local a = arg[i]
    local name, value = a:match("^(%-%-[%w-]+)=(.*)$")
    name = name or a
    if name == "--sync" then
      opts.sync = true
    else
      if name:sub(1, 2) ~= "--" then usage(a) end
      if not value then
        i = i + 1
        value = arg[i]
        if value == nil then usage(name) end
      end
      if name == "--contact" then opts.contact = value
      elseif name == "--workload" then
        if not WORKLOADS[value] then usage("--workload: insert|select|mixed|connect|schema") end
        opts.workload = value
      elseif name == "--concurrency" then opts.concurrency = whole(name, value)
      elseif name == "--duration" then opts.duration = real(name, value)
      elseif name == "--warmup" then opts.warmup = math.max(0, real(name, value))
      elseif name == "--requests" then opts.requests = whole(name, value)
      elseif name == "--warmup-requests" then opts.warmup_requests = whole(name, value)
      elseif name == "--keys" then opts.keys = whole(name, value)
      elseif name == "--keyspace" then opts.keyspace = value
      elseif name == "--table" then opts.table = value
      elseif name == "--tag" then
        opts.tag = tonumber(value)
        if not opts.tag or opts.tag ~= math.floor(opts.tag) then usage(name) end
      elseif name == "--verify-max" then opts.verify_max = whole(name, value)
      elseif name == "--expect-nodes" then opts.expect_nodes = whole(name, value)
      elseif name == "--pool-timeout" then opts.pool_timeout = math.max(0, real(name, value))
      elseif name == "--replication" then opts.replication = value
      else usage(name) end
    end
    i = i + 1
  end
  if opts.concurrency == 0 or opts.keys == 0 then usage("--concurrency and --keys must be positive") end
  if not opts.requests and opts.duration <= 0 then usage("--duration must be positive (or give --requests)") end
end

---------------------------------------------------------------- time and CPU

ffi.cdef [[
  struct sshard_bench_rusage { long utime_s, utime_us, stime_s, stime_us; long other[14]; };
  int getrusage(int who, struct sshard_bench_rusage *usage);
]]
local rusage = ffi.new("struct sshard_bench_rusage")
local function cpu_now()
  ffi.C.getrusage(0, rusage)
  return tonumber(rusage.utime_s) + tonumber(rusage.utime_us) / 1e6,
    tonumber(rusage.stime_s) + tonumber(rusage.stime_us) / 1e6
end
local now = scylla.now

---------------------------------------------------------------- the session

local host, port = opts.contact:match("^(.*):(%d+)$")
if not host then host, port = opts.contact, 9042 end
port = tonumber(port)
if port < 1 or port > 65535 then usage("--contact port") end

local started = now()
local session, err = scylla.connect { contact_points = { host }, port = port, compression = "none",
  consistency = "LOCAL_ONE", application_name = DRIVER,
  request_timeout_ms = 12000, connect_timeout_ms = 5000,
  -- One Lua thread submits and waits: it runs the I/O itself.
  caller_driven_io = true,
  -- bigint columns (tag) as numbers, as the C client reads an int64_t:
  -- no int64 cdata boxed per row.
  int64 = "number" }
if not session then die("connect failed: %s", err) end

local function pools_full()
  local m = session:metrics()
  if not m or m.node_count == 0 then return false end
  if opts.expect_nodes and m.node_count ~= opts.expect_nodes then return false end
  if m.node_count > #m.nodes then return false end
  for _, node in ipairs(m.nodes) do
    if not node.up or node.nr_shards == 0 then return false end
    for shard = 0, math.min(node.nr_shards, 64) - 1 do
      if (node.connections_per_shard[shard] or 0) < 1 then return false end
    end
  end
  return true
end

local function driver_connections()
  local m = session:metrics()
  if not m then return 0 end
  local total = 0
  for _, node in ipairs(m.nodes) do
    if node.nr_shards == 0 then
      total = total + node.connections
    else
      for shard = 0, math.min(node.nr_shards, 64) - 1 do total = total + (node.connections_per_shard[shard] or 0) end
    end
  end
  return total
end

pcall(ffi.cdef, "int usleep(unsigned int usec);")
local function wait_pools()
  local deadline = now() + opts.pool_timeout
  while true do
    if pools_full() then return true end
    if now() >= deadline then return false end
    ffi.C.usleep(20000)
  end
end

local function checkpoint(at)
  if not opts.sync then return end
  emit(('{"event": "ready", "at": "%s"}'):format(at))
  io.stdin:read("*l") -- a line (or EOF) is the go-ahead
end

local function must(query)
  local ok, e = session:execute(query)
  if not ok then die("%s failed: %s", query, e) end
end

---------------------------------------------------------------- phases

local payloads = {}
local insert_stmt, select_stmt

-- Latencies go to a growing double array (no table to resize and
-- traverse in the GC) and are sorted by a loop the JIT compiles
-- (table.sort compares through the C API, the bulk of the client's own
-- instructions otherwise), as the C client does with qsort.
local doubles = ffi.typeof("double[?]")

local function new_latencies()
  return { values = doubles(1024), n = 0, capacity = 1024 }
end

local function add_latency(l, v)
  local n = l.n
  if n == l.capacity then
    local bigger = doubles(n * 2)
    ffi.copy(bigger, l.values, n * ffi.sizeof("double"))
    l.values, l.capacity = bigger, n * 2
  end
  l.values[n] = v
  l.n = n + 1
end

-- Sorts a[0..n-1] (latencies: doubles >= 0, whose bit patterns order as
-- unsigned integers) ascending by an LSD radix sort, a byte per pass:
-- loops without data-dependent branches, which the JIT compiles once (a
-- comparison sort's branches make it compile side trace after side trace).
local bit = require "bit"
local function sort_doubles(a, n)
  if n < 2 then return end
  local src = ffi.cast("uint64_t *", a)
  local scratch = ffi.new("uint64_t[?]", n)
  local dst = scratch
  local count = ffi.new("int32_t[256]")
  for shift = 0, 56, 8 do
    ffi.fill(count, ffi.sizeof(count))
    for i = 0, n - 1 do
      local d = tonumber(bit.band(bit.rshift(src[i], shift), 255))
      count[d] = count[d] + 1
    end
    local sum = 0
    for d = 0, 255 do
      local c = count[d]
      count[d] = sum
      sum = sum + c
    end
    for i = 0, n - 1 do
      local v = src[i]
      local d = tonumber(bit.band(bit.rshift(v, shift), 255))
      dst[count[d]] = v
      count[d] = count[d] + 1
    end
    src, dst = dst, src
  end
  -- Eight passes: the sorted keys are back in `a`.
end

local function new_stats()
  return { latencies = new_latencies(), requests = 0, errors = 0, checked = 0, mismatches = 0 }
end

local function record_error(s, what)
  s.errors = s.errors + 1
  s.first_error = s.first_error or what
end

local function record_check(s, key, row, check_tag)
  s.checked = s.checked + 1
  local want = payloads[key]
  if row and row.v == want and (not check_tag or row.tag == opts.tag) then return end
  s.mismatches = s.mismatches + 1
  if not s.first_mismatch then
    if row then
      s.first_mismatch = ("key %d: read ('%s', %s), expected ('%s', %s)"):format(key,
        tostring(row.v):sub(1, 200), tostring(row.tag), want, check_tag and tostring(opts.tag) or "None")
    else
      s.first_mismatch = ("key %d: read None, expected ('%s', %s)"):format(key, want,
        check_tag and tostring(opts.tag) or "None")
    end
  end
end

local function is_insert(i)
  return opts.workload == "insert" or (opts.workload == "mixed" and i % 2 == 0)
end

-- A source of requests: numbered (until a deadline or a number) or a list
-- of keys to read back.
local function numbered(counter, deadline, stop_before)
  return function()
    if deadline then
      if now() >= deadline then return nil end
    elseif counter.next >= stop_before then
      return nil
    end
    local i = counter.next
    counter.next = i + 1
    return is_insert(i), i % opts.keys, false
  end
end

local function listed(keys)
  local pos = 0
  return function()
    pos = pos + 1
    local k = keys[pos]
    if k == nil then return nil end
    return false, k, true
  end
end

-- Keeps `concurrency` requests in flight until the source runs dry, then
-- drains.
local function run_phase(take, concurrency, timeout_s)
  local s = new_stats()
  local latencies = s.latencies
  -- What each slot's request is (the C client's job structs): a future
  -- carries only its slot.
  local started, keys, inserts, check_tags = {}, {}, {}, {}
  local in_flight, exhausted = 0, false
  local deadline = now() + timeout_s
  local completed = {}
  local held = {} -- the future of each slot (a future nobody holds is abandoned)
  local args = {}
  for slot = 1, concurrency do args[slot] = { 0, "", 0 } end
  local free, nfree = {}, concurrency
  for slot = 1, concurrency do free[slot] = concurrency - slot + 1 end
  while true do
    while not exhausted and in_flight < concurrency do
      local insert, key, check_tag = take()
      if insert == nil then
        exhausted = true
        break
      end
      local slot = free[nfree]
      nfree = nfree - 1
      local a = args[slot]
      a[1] = key
      local fut, e
      local t0 = now()
      if insert then
        a[2], a[3] = payloads[key], opts.tag
        fut, e = insert_stmt:execute_async(a)
      else
        a[2], a[3] = nil, nil
        fut, e = select_stmt:execute_async(a)
      end
      if not fut then
        add_latency(latencies, now() - t0)
        s.requests = s.requests + 1
        record_error(s, e)
        nfree = nfree + 1
        free[nfree] = slot
      else
        fut.slot = slot
        started[slot], keys[slot], inserts[slot], check_tags[slot] = t0, key, insert, check_tag
        held[slot] = fut
        in_flight = in_flight + 1
      end
    end
    if in_flight == 0 and exhausted then break end
    if in_flight > 0 then
      if now() >= deadline then die("phase did not finish within %d s", timeout_s) end
      local _, k = scylla.wait(WAIT_SLICE_S, completed)
      local done = now()
      for j = 1, k do
        local fut = completed[j]
        completed[j] = nil
        local slot = fut.slot
        add_latency(latencies, done - started[slot])
        s.requests = s.requests + 1
        local rows, e = fut:result()
        if not rows then
          record_error(s, e)
        elseif not inserts[slot] then
          record_check(s, keys[slot], rows[1], check_tags[slot])
        end
        held[slot] = nil
        nfree = nfree + 1
        free[nfree] = slot
        in_flight = in_flight - 1
      end
    end
  end
  return s
end

-- The newest distinct inserted keys among request numbers [start, stop).
local function inserted_keys(start, stop)
  local out, seen, nseen = {}, {}, 0
  for i = stop - 1, start, -1 do
    if #out >= opts.verify_max or nseen >= opts.keys then break end
    local k = i % opts.keys
    if is_insert(i) and not seen[k] then
      seen[k] = true
      nseen = nseen + 1
      out[#out + 1] = k
    end
  end
  return out
end

local function nearest_rank(sorted, n, p)
  if n == 0 then return 0 end
  local rank = math.max(1, math.min(n, math.ceil(p * n)))
  return sorted[rank - 1]
end

local function latency_json(latencies)
  local a, n = latencies.values, latencies.n
  sort_doubles(a, n)
  local sum = 0
  for i = 0, n - 1 do sum = sum + a[i] end
  local us = function(p) return json_number(nearest_rank(a, n, p) * 1e6) end
  return ('"latency_us": {"p50": %s, "p90": %s, "p99": %s, "p999": %s, "max": %s, "mean": %s}, '):format(
    us(0.5), us(0.9), us(0.99), us(0.999), json_number((n > 0 and a[n - 1] or 0) * 1e6),
    json_number(n > 0 and sum / n * 1e6 or 0))
end

local function measure(parts)
  local counter = { next = 0 }
  local c = opts.concurrency
  local warm = new_stats()
  if opts.requests then
    warm = run_phase(numbered(counter, nil, opts.warmup_requests), c, PHASE_SLACK_S + 3600)
  elseif opts.warmup > 0 then
    warm = run_phase(numbered(counter, now() + opts.warmup), c, opts.warmup + PHASE_SLACK_S)
  end
  checkpoint("measure")
  local start = counter.next
  collectgarbage()
  local user0, sys0 = cpu_now()
  local t0 = now()
  local stats
  if opts.requests then
    stats = run_phase(numbered(counter, nil, start + opts.requests), c, PHASE_SLACK_S + 3600)
  else
    stats = run_phase(numbered(counter, t0 + opts.duration), c, opts.duration + PHASE_SLACK_S)
  end
  local elapsed = now() - t0
  local user1, sys1 = cpu_now()
  local keys = inserted_keys(start, counter.next)
  local back = run_phase(listed(keys), math.max(1, math.min(READBACK_CONCURRENCY, #keys)), PHASE_SLACK_S)
  parts[#parts + 1] = ('"requests": %d, "errors": %d, "first_error": %s, "elapsed_s": %s, "rps": %s, '
    .. '"cpu_s": {"user": %s, "sys": %s}, "checked": %d, "mismatches": %d, "first_mismatch": %s, '
    .. '"readback": {"checked": %d, "mismatches": %d, "errors": %d, "first_failure": %s}, '
    .. '"warmup": {"requests": %d, "errors": %d}, '):format(
    stats.requests, stats.errors, json_string(stats.first_error), json_number(elapsed),
    json_number(elapsed > 0 and stats.requests / elapsed or 0), json_number(user1 - user0),
    json_number(sys1 - sys0), stats.checked, stats.mismatches, json_string(stats.first_mismatch),
    back.checked, back.mismatches, back.errors, json_string(back.first_mismatch or back.first_error),
    warm.requests, warm.errors)
  parts[#parts + 1] = latency_json(stats.latencies)
end

---------------------------------------------------------------- main

local full = wait_pools()
local connect_s = now() - started
local parts = { "{" }
if opts.workload == "schema" then
  must(("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = %s"):format(opts.keyspace, opts.replication))
  must(("CREATE TABLE IF NOT EXISTS %s.%s (k bigint PRIMARY KEY, v text, tag bigint)"):format(opts.keyspace, opts.table))
elseif opts.workload == "connect" then
  checkpoint("pools")
else
  local e
  insert_stmt, e = session:prepare(("INSERT INTO %s.%s (k, v, tag) VALUES (?, ?, ?)"):format(opts.keyspace, opts.table))
  if not insert_stmt then die("prepare failed: %s", e) end
  select_stmt, e = session:prepare(("SELECT v, tag FROM %s.%s WHERE k = ?"):format(opts.keyspace, opts.table))
  if not select_stmt then die("prepare failed: %s", e) end
  for k = 0, opts.keys - 1 do payloads[k] = ("%016x"):format(k):rep(4) end
  measure(parts)
end
local connections = driver_connections()
session:close()
local user, sys = cpu_now()
parts[#parts + 1] = ('"event": "result", "driver": "%s", "workload": "%s", "concurrency": %d, "keyspace": %s, '
  .. '"connect_s": %s, "pools_full": %s, "driver_connections": %d, "process_cpu_s": {"user": %s, "sys": %s}}'):format(
  DRIVER, opts.workload, opts.concurrency, json_string(opts.keyspace), json_number(connect_s),
  tostring(full), connections, json_number(user), json_number(sys))
emit(table.concat(parts))
