-- resty.scylla_shard: the scylla_shard API for OpenResty / nginx-lua,
-- non-blocking. A call that waits (execute, prepare, batch, iterate,
-- future:wait...) yields the request's light thread until its result
-- arrives; the nginx worker never blocks.
--
--   init_worker_by_lua_block {
--     session = require("resty.scylla_shard").connect { contact_points = { "127.0.0.1" } }
--   }
--   content_by_lua_block {
--     local rows, err = session:execute("SELECT v FROM ks.t WHERE k = ?", { 1 })
--   }
--
-- How a light thread is woken: nginx cosockets cannot wait on the
-- completion queue's eventfd, so the queue also listens on a Unix-domain
-- socket (sshard_queue_notify_socket) and writes a byte to it whenever
-- completions start waiting. Each worker runs one timer that holds a
-- cosocket connected to that socket: on a byte it drains the queue and
-- posts the semaphore of every light thread whose request completed.
--
-- Sessions are made per worker (init_worker_by_lua*, or lazily in a
-- request). connect() in init_worker_by_lua* returns at once; the first
-- request waits for the connection. A session made in init_by_lua* belongs
-- to the nginx master: workers are refused it (FORKED) with a clear error.
local ffi = require "ffi"
local semaphore = require "ngx.semaphore"
local base = require "scylla_shard"
local L = require "scylla_shard.lib"

local C, S = L.C, L.status
local ngx = ngx
local log, ERR, WARN, NOTICE = ngx.log, ngx.ERR, ngx.WARN, ngx.NOTICE

local _M = setmetatable({ _VERSION = base._VERSION }, { __index = base })

local KIND_CONNECT = C.SSHARD_FUTURE_KIND_CONNECT

-- Phases where a light thread may yield (cosockets and semaphores work).
local YIELDABLE = { rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true, preread = true }

local function can_wait()
  local phase = ngx.get_phase()
  if YIELDABLE[phase] then return true end
  return nil, ("WRONG_STATE: cannot wait for a result in the %s phase (nginx cannot yield there "
    .. "and waiting would block the worker): use execute_async(), or a content, access or "
    .. "timer phase (ngx.timer.at)"):format(phase), S.WRONG_STATE
end

-- The reader's read timeout: bytes wake it, so this only bounds how long
-- an idle read lasts before it is simply started again.
local READ_TIMEOUT_MS = 2147483647
-- Period of the reader's housekeeping: a drain (a bound on any lost
-- wake-up) and the check for the worker's exit.
local TICK_S = 1
-- Longest wait for a connect.
local CONNECT_WAIT_S = 60

local worker = {
  pid = nil,        -- the worker whose reader runs (nil: none)
  path = nil,       -- the notify socket
  path_pid = nil,
  exiting = false,
  sessions = setmetatable({}, { __mode = "k" }),
  notify_dir = nil,
  serial = 0,
}

-- Completions handled before the reader lets nginx's event loop run: the
-- light threads they wake resume in between, and other connections (a
-- health check...) wait for at most one batch, not for everything that
-- came back at once.
local BATCH = 64

local function poll(max)
  local ok, n = pcall(base.poll, max)
  if ok then return n end
  log(ERR, "scylla_shard: completing requests: ", n)
  return 0
end

-- Completes every waiting future, a batch at a time (the queue is empty
-- afterwards, so the next completion writes a byte again).
local function drain()
  while poll(BATCH) == BATCH do ngx.sleep(0) end
end

local function log_library()
  for _, record in ipairs(base.read_log(100)) do
    local level = (record.level == "error" and ERR) or (record.level == "warn" and WARN) or NOTICE
    log(level, "scylla_shard: ", record.text)
  end
end

local function open_sessions()
  local n = 0
  for session in pairs(worker.sessions) do
    if session._cs and not session._closed then n = n + 1 end
  end
  return n
end

-- Closes a session through the queue (its completion wakes the reader);
-- requests in flight finish first, as the library's close drains.
local function close_in_background(session)
  local cs = session._cs
  session._closed = true
  local out = ffi.new("const sshard_future *[1]")
  if cs and C.sshard_session_close(cs, out) == S.OK then
    base._track(out[0], C.SSHARD_FUTURE_KIND_CLOSE, session)
  end
end

local function close_sessions()
  for session in pairs(worker.sessions) do
    if session._cs and not session._closed then close_in_background(session) end
  end
end

local start_reader

-- The worker's reader, a timer: one light thread reads the notify socket
-- and drains the queue on every byte; the timer's own thread wakes every
-- TICK_S for housekeeping and, when the worker exits, closes the sessions
-- and returns once their completions are in (a running timer holds an
-- exiting worker).
local function reader(premature, path)
  if premature then
    worker.pid = nil
    return
  end
  local sock = ngx.socket.tcp()
  local ok, err = sock:connect("unix:" .. path)
  if not ok then
    log(ERR, "scylla_shard: cannot connect to the completion socket ", path, ": ", err)
    worker.pid = nil
    return
  end
  sock:settimeout(READ_TIMEOUT_MS)
  local listening = true
  local listener = ngx.thread.spawn(function()
    while true do
      local data, read_err = sock:receiveany(256)
      if not data and read_err ~= "timeout" then
        log(ERR, "scylla_shard: completion socket closed: ", read_err)
        listening = false
        return
      end
      drain()
    end
  end)
  -- Completions that came before the connection: no byte announces them.
  drain()
  while listening do
    ngx.sleep(TICK_S)
    drain()
    log_library()
    if ngx.worker.exiting() then
      worker.exiting = true
      close_sessions() -- again each tick: a connect may have completed since
      if open_sessions() == 0 and base.outstanding() == 0 then break end
    end
  end
  if listening then ngx.thread.kill(listener) end
  sock:close()
  worker.pid = nil
  if not worker.exiting then start_reader() end
end

-- Starts this worker's reader once (again after a fork).
function start_reader()
  local pid = ngx.worker.pid()
  if worker.pid == pid then return true end
  if worker.exiting then return nil, "CLOSED: the nginx worker is exiting", S.CLOSED end
  local q, err, code = base._queue()
  if not q then return nil, err, code end
  if worker.path_pid ~= pid then
    worker.serial = worker.serial + 1
    local dir = worker.notify_dir or os.getenv("TMPDIR") or "/tmp"
    local path = ("%s/sshard-%d-%d.sock"):format(dir, pid, worker.serial)
    os.remove(path) -- a dead process's of the same pid
    local s = C.sshard_queue_notify_socket(q, path, #path)
    if s ~= S.OK then return base._call_failure(s) end
    worker.path, worker.path_pid = path, pid
  end
  local ok, timer_err = ngx.timer.at(0, reader, worker.path)
  if not ok then
    return nil, "RUNTIME: cannot start the completion reader: " .. tostring(timer_err), S.RUNTIME
  end
  worker.pid = pid
  base.set_log_buffer(1000)
  return true
end

-- Waits (yielding) until `fut` completes or `timeout_s` passes.
local function wait_future(fut, timeout_s)
  if fut.done then return true end
  poll(BATCH)
  if fut.done then return true end
  local ok, err, code = can_wait()
  if not ok then return nil, err, code end
  ok, err, code = start_reader()
  if not ok then return nil, err, code end
  local sema = fut._waker
  if not sema then
    sema = semaphore.new(0)
    fut._waker = sema
  end
  fut._waiting = (fut._waiting or 0) + 1
  sema:wait(timeout_s or 3600)
  fut._waiting = fut._waiting - 1
  return true
end

-- Submitted C future -> outcome, yielding meanwhile.
local function await(session, cf, kind, prepared, opts, keep)
  local fut, err, code = base._track(cf, kind, session, prepared, opts, keep)
  if not fut then return nil, err, code end
  local ok
  ok, err, code = wait_future(fut, session._wait_limit)
  if not ok then return nil, err, code end
  if not fut.done then
    return nil, ("TIMEOUT: no completion within %g s"):format(session._wait_limit), S.TIMEOUT
  end
  return fut:result()
end

-- A lazy session's connection, waited for by its first user.
local function finish_connect(session)
  local fut = session._connecting
  if not fut then return nil, "CLOSED: the session is closed", S.CLOSED end
  local ok, err, code = wait_future(fut, CONNECT_WAIT_S)
  if not ok then return nil, err, code end
  if not fut.done then
    return nil, ("TIMEOUT: not connected within %d s"):format(CONNECT_WAIT_S), S.TIMEOUT
  end
  local connected
  connected, err, code = fut:result()
  if not connected then return nil, err, code end
  if not session._cs and not session._closed then
    session._cs = connected._cs
    session._connection = connected -- owns the handle
  end
  session._connecting = nil
  return session._cs
end

local RESTY_OPTIONS = { notify_dir = true }

local function resty_session(session, options)
  session._await = await
  session._future_waiter = wait_future
  session._can_wait = can_wait
  session._finish_connect = finish_connect
  session._wait_limit = ((options.request_timeout_ms or 12000) + 5000) / 1000
  worker.sessions[session] = true
  return session
end

-- Connects; the same options as scylla_shard.connect, plus `notify_dir`
-- (where the worker's completion socket goes; default $TMPDIR or /tmp).
-- In init_worker_by_lua* it returns at once (requests wait for the
-- connection); in a request or timer it yields until connected.
function _M.connect(options)
  if type(options) ~= "table" then return base.connect(options) end
  local plain = {}
  for k, v in pairs(options) do
    if RESTY_OPTIONS[k] then worker[k] = v else plain[k] = v end
  end
  local phase = ngx.get_phase()
  if phase == "init" then
    log(WARN, "scylla_shard: connect() in init_by_lua* runs in the nginx master: workers cannot "
      .. "use that session (fork); connect in init_worker_by_lua* instead")
    local session, err, code = base.connect(plain)
    if not session then return nil, err, code end
    return resty_session(session, plain)
  end
  local cf, settings, code = base._submit_connect(plain)
  if not cf then return nil, settings, code end
  local ok, err, code2 = start_reader()
  if not ok then
    C.sshard_future_free(cf)
    return nil, err, code2
  end
  local fut
  fut, err, code2 = base._track(cf, KIND_CONNECT, settings)
  if not fut then return nil, err, code2 end
  local session = resty_session(base._wrap_session(nil, settings), plain)
  session._connecting = fut
  -- Adopted as soon as the reader completes the connect (a worker that
  -- serves no request still closes it when it exits).
  fut:on_complete(function(connected)
    if connected and not session._cs then
      session._cs, session._connection = connected._cs, connected
      if session._closed then close_in_background(session) end
    end
  end)
  if YIELDABLE[phase] then
    local cs
    cs, err, code2 = finish_connect(session)
    if not cs then return nil, err, code2 end
  end
  return session
end

-- Whether this worker's completion reader runs (for health checks).
function _M.reader_running()
  return worker.pid ~= nil and worker.pid == ngx.worker.pid()
end

return _M
