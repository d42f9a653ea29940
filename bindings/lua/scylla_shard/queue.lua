-- The completion queue and futures. Every asynchronous request is handed to
-- one queue per process (sshard_future_set_queue, a token per request);
-- Lua drains it in batches, one FFI call per batch (poll, or wait that
-- blocks first), so the library never calls into Lua.
--
-- Futures are keyed by token in a weak table: a future nobody holds is
-- collected, and its completion is freed unread when it comes. A future
-- with an on_complete callback is held until it completes. A queue made
-- before fork() is replaced in the child; its futures fail with FORKED.
local ffi = require "ffi"
local L = require "scylla_shard.lib"
local errors = require "scylla_shard.errors"
local results = require "scylla_shard.results"

local C, S = L.C, L.status
local tonumber, setmetatable, pairs, pcall, error = tonumber, setmetatable, pairs, pcall, error
local OK, PENDING, FORKED = S.OK, S.PENDING, S.FORKED
local outcome = results.outcome

local queue = {}

pcall(ffi.cdef, "int getpid(void);")
if not pcall(ffi.typeof, "struct timespec") then
  ffi.cdef "struct timespec { long tv_sec; long tv_nsec; };"
end
pcall(ffi.cdef, "int clock_gettime(int clk_id, struct timespec *tp);")
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("struct timespec")

-- Monotonic seconds.
function queue.now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) * 1e-9
end
local now = queue.now

function queue.getpid()
  return ffi.C.getpid()
end

local out_queue = ffi.new("const sshard_queue *[1]")
local out_count = ffi.new("size_t[1]")
local out_fd = ffi.new("int32_t[1]")

local Q = {
  ptr = nil,
  pid = nil,
  pending = setmetatable({}, { __mode = "v" }),
  held = {},       -- futures with a callback, until they complete
  outstanding = 0, -- events still to come (for held futures or not)
  next_token = 1,
  events = nil,
  capacity = 0,
}

local Future = {}
Future.__index = Future
queue.Future = Future

-- After a fork(): the parent's queue is left to the library (which leaks
-- it) and its futures fail.
local function reset()
  if Q.ptr then ffi.gc(Q.ptr, nil) end
  local orphans, pid = Q.pending, Q.pid
  Q.ptr, Q.pid, Q.outstanding, Q.held = nil, nil, 0, {}
  Q.pending = setmetatable({}, { __mode = "v" })
  for _, fut in pairs(orphans) do
    fut.done = true
    fut._rows, fut._err, fut._code = errors.call(FORKED, "the request was made in process " .. tostring(pid))
  end
end

-- The process's queue (made on first use).
function queue.get()
  local q = Q.ptr
  if q then return q end
  local s = C.sshard_queue_new(out_queue)
  if s ~= OK then return errors.call(s) end
  q = ffi.gc(out_queue[0], C.sshard_queue_free)
  Q.ptr, Q.pid = q, queue.getpid()
  return q
end

local function event_buffer(n)
  if n > Q.capacity then
    local capacity = Q.capacity > 0 and Q.capacity or 256
    while capacity < n do capacity = capacity * 2 end
    Q.events = ffi.new("sshard_event[?]", capacity)
    Q.capacity = capacity
  end
  return Q.events
end

-- Hands a submitted C future (the caller's reference, released here) to
-- the queue: returns a Future, or nil, err, code.
function queue.track(cf, kind, session, prepared, opts, keep)
  local q, err, code = queue.get()
  if not q then
    C.sshard_future_free(cf)
    return nil, err, code
  end
  local token = Q.next_token
  Q.next_token = token + 1
  local s = C.sshard_future_set_queue(cf, q, token)
  if s == FORKED then -- our queue was made before a fork(): make this process's
    reset()
    q, err, code = queue.get()
    s = q and C.sshard_future_set_queue(cf, q, token) or code
  end
  C.sshard_future_free(cf) -- the event carries its own reference
  if s ~= OK then return errors.call(s) end
  -- Every field up front: the table is made once at its final size.
  local fut = setmetatable({ done = false, data = false, _token = token, _kind = kind,
    _session = session, _prepared = prepared or false, _opts = opts or false, _keep = keep or false,
    _rows = false, _err = false, _code = false, _details = false, _result = false,
    _waker = false, _waiting = false, _callback = false }, Future)
  Q.pending[token] = fut
  Q.outstanding = Q.outstanding + 1
  return fut
end

-- Completes the futures of `n` polled events: the outcome of each future
-- still held is read at once and its C future freed (so is the event of a
-- collected one). Completed futures go to into[1..k] when `into` is given.
-- Wakers and callbacks run after every event is recorded (a failing
-- callback loses none); the first callback error is raised then.
local function dispatch(events, n, into)
  Q.outstanding = Q.outstanding - n
  local pending, held = Q.pending, Q.held
  local notify
  local k = 0
  for i = 0, n - 1 do
    local ev = events[i]
    local token = tonumber(ev.token)
    local fut = pending[token]
    if fut then
      pending[token] = nil
      held[token] = nil
      fut._rows, fut._err, fut._code, fut._details, fut._result = outcome(ev.future, ev.status,
        fut._kind, fut._session, fut._prepared, fut._opts, fut._keep)
      fut.done = true
      if into then
        k = k + 1
        into[k] = fut
      end
      if fut._waker or fut._callback then
        notify = notify or {}
        notify[#notify + 1] = fut
      end
    end
    C.sshard_future_free(ev.future)
  end
  if notify then
    local first_error
    for i = 1, #notify do
      local fut = notify[i]
      local waker, callback = fut._waker, fut._callback
      if waker then waker:post(fut._waiting or 1) end
      if callback then
        local ok, err = pcall(callback, fut:result())
        if not ok and not first_error then first_error = err end
      end
    end
    if first_error then error(first_error, 0) end
  end
  return n, k
end

-- Completes every future whose request has finished, up to `max` (default:
-- all that are waiting), in one FFI call. Returns how many completed; with
-- a table `into`, the completed futures still referenced go to into[1..k]
-- and k comes second.
function queue.poll(max, into)
  local q = Q.ptr
  if not q then return 0, 0 end
  max = max or (Q.outstanding > 0 and Q.outstanding or 1)
  local events = event_buffer(max)
  local s = C.sshard_queue_poll(q, events, max, out_count)
  if s ~= OK then
    if s == FORKED then reset() return 0, 0 end
    error(select(2, errors.call(s)), 2)
  end
  return dispatch(events, tonumber(out_count[0]), into)
end

-- Blocks until a request completes or `timeout_s` passes (nil: no limit),
-- then completes what is waiting; returns n, k as poll does, or nil, err,
-- code.
function queue.wait(timeout_s, into)
  local q = Q.ptr
  if not q then return 0, 0 end
  local max = Q.outstanding > 0 and Q.outstanding or 1
  local events = event_buffer(max)
  local us = timeout_s and math.floor(timeout_s * 1e6) or -1
  local s = C.sshard_queue_wait(q, events, max, us, out_count)
  if s ~= OK then
    if s == FORKED then reset() return 0, 0 end
    return errors.call(s)
  end
  return dispatch(events, tonumber(out_count[0]), into)
end

-- The queue's eventfd, readable while completions wait.
function queue.fd()
  local q, err, code = queue.get()
  if not q then return nil, err, code end
  local s = C.sshard_queue_fd(q, out_fd)
  if s ~= OK then return errors.call(s) end
  return out_fd[0]
end

-- Requests whose completion has not been polled yet (abandoned ones too).
function queue.outstanding()
  return Q.outstanding
end

---------------------------------------------------------------- futures

-- The blocking wait of plain LuaJIT: drains the queue until `fut` is done
-- or `timeout_s` passes.
function queue.blocking_wait(fut, timeout_s)
  local deadline = timeout_s and now() + timeout_s
  while not fut.done do
    local left = deadline and deadline - now()
    if left and left <= 0 then break end
    local n, err, code = queue.wait(left)
    if not n then return nil, err, code end
  end
  return true
end
local blocking_wait = queue.blocking_wait

-- Waits at most `timeout_s` seconds (nil: until done) and returns the
-- outcome, or nil, "PENDING: ...", scylla.status.PENDING if it is not done
-- by then (the future stays usable). Under OpenResty it yields instead.
function Future:wait(timeout_s)
  if not self.done then
    local session = self._session
    local waiter = session and session._future_waiter or blocking_wait
    local ok, err, code = waiter(self, timeout_s)
    if not ok then return nil, err, code end
    if not self.done then
      return nil, "PENDING: the request has not completed within " .. tostring(timeout_s) .. " s", PENDING
    end
  end
  return self._rows, self._err, self._code, self._details, self._result
end

-- Whether the request has completed (polls the queue first; never blocks).
function Future:ready()
  if not self.done then queue.poll() end
  return self.done
end

-- The outcome of a completed future (rows, a session or a statement, or
-- nil, err, code, details); nil, "PENDING: ...", PENDING before.
function Future:result()
  if not self.done then return nil, "PENDING: the request has not completed", PENDING end
  return self._rows, self._err, self._code, self._details, self._result
end

-- Runs fn(outcome...) when the future completes (from the poll or wait
-- that completes it; at once if it has). The future is held until then.
function Future:on_complete(fn)
  if self.done then
    fn(self._rows, self._err, self._code, self._details, self._result)
  else
    self._callback = fn
    Q.held[self._token] = self
  end
  return self
end

return queue
