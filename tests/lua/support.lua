-- What the binding's tests share: the module on package.path, the
-- emulated cluster's address (argv[1]: its first node), a connect helper,
-- the emulator's counters over HTTP (ffi sockets, no dependency), and a
-- deadline-bounded wait for a condition.
local here = arg[0]:gsub("[^/]+$", "")
package.path = here .. "?.lua;" .. here .. "../../bindings/lua/?.lua;" .. package.path

local ffi = require "ffi"
local scylla = require "scylla_shard"

local support = { base_ip = arg[1] or "127.0.0.1" }

-- Address of node i (1-based) of the emulated cluster.
function support.node(i)
  local a, b, c, d = support.base_ip:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  return ("%s.%s.%s.%d"):format(a, b, c, tonumber(d) + i - 1)
end

function support.connect(extra)
  local options = { contact_points = { support.base_ip }, request_timeout_ms = 20000,
    worker_threads = 2 }
  for k, v in pairs(extra or {}) do options[k] = v end
  return assert(scylla.connect(options))
end

-- Runs CQL and fails the calling test on error.
function support.must(session, query, args, opts)
  local rows, err = session:execute(query, args, opts)
  if not rows then error(query .. ": " .. tostring(err), 2) end
  return rows
end

pcall(ffi.cdef, [[
  struct sshard_test_sockaddr_in { uint16_t family; uint16_t port; uint32_t addr; uint8_t zero[8]; };
  int socket(int domain, int type, int protocol);
  int connect(int fd, const void *addr, uint32_t len);
  long write(int fd, const void *buf, size_t n);
  long read(int fd, void *buf, size_t n);
  int close(int fd);
  uint32_t inet_addr(const char *cp);
  uint16_t htons(uint16_t v);
]])

-- One HTTP/1.0 request to node i's metrics/admin port: status, body.
function support.http(i, method, path)
  local C = ffi.C
  local fd = C.socket(2, 1, 0)
  assert(fd >= 0, "socket() failed")
  local sa = ffi.new("struct sshard_test_sockaddr_in")
  sa.family, sa.port, sa.addr = 2, C.htons(9180), C.inet_addr(support.node(i))
  if C.connect(fd, sa, ffi.sizeof(sa)) ~= 0 then
    C.close(fd)
    error("cannot reach the emulator's metrics port on " .. support.node(i))
  end
  local request = ("%s %s HTTP/1.0\r\nHost: x\r\n\r\n"):format(method, path)
  C.write(fd, request, #request)
  local parts, buf = {}, ffi.new("char[65536]")
  while true do
    local n = tonumber(C.read(fd, buf, 65536))
    if n <= 0 then break end
    parts[#parts + 1] = ffi.string(buf, n)
  end
  C.close(fd)
  local response = table.concat(parts)
  return tonumber(response:match("^HTTP/%S+ (%d+)")), response:match("\r\n\r\n(.*)$") or ""
end

-- Sum of a counter (every label set) over the cluster's `nodes` nodes.
function support.counter(metric, nodes)
  local total = 0
  for i = 1, nodes or 3 do
    local status, body = support.http(i, "GET", "/metrics")
    assert(status == 200, "metrics of node " .. i .. ": " .. tostring(status))
    for line in body:gmatch("[^\n]+") do
      local name, value = line:match("^([%w_]+)[^ ]* ([%d%.e+]+)$")
      if name == metric then total = total + tonumber(value) end
    end
  end
  return total
end

-- Waits until fn() is true, at most `seconds`; returns whether it became so.
function support.wait_until(seconds, fn)
  local deadline = scylla.now() + seconds
  while true do
    if fn() then return true end
    if scylla.now() >= deadline then return false end
    pcall(ffi.cdef, "int usleep(unsigned int usec);")
    ffi.C.usleep(10000)
  end
end

-- Resident memory of this process in bytes.
function support.rss()
  local f = assert(io.open("/proc/self/statm"))
  local _, resident = f:read("*n", "*n")
  f:close()
  return resident * 4096
end

return support
