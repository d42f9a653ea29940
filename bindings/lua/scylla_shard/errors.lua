-- Failures as the binding returns them: nil, "NAME: message", status
-- (and, for a failed request, a table of the server's details).
local ffi = require "ffi"
local L = require "scylla_shard.lib"
local values = require "scylla_shard.values"

local C, S = L.C, L.status
local ffi_string = ffi.string
local OK, FORKED = S.OK, S.FORKED

local errors = {}

local out_text = ffi.new("const char *[1]")
local out_len = ffi.new("size_t[1]")
local out_error = ffi.new("const sshard_error *[1]")
local out_i32 = ffi.new("int32_t[1]")
local out_u16 = ffi.new("uint16_t[1]")
local out_bool = ffi.new("bool[1]")

function errors.status_name(status)
  return ffi_string(C.sshard_status_str(status))
end
local status_name = errors.status_name

local FORK_HINT = " (a session, statement or future made before fork() cannot be used in the child: "
  .. "make a new session in this process; under OpenResty, in init_worker_by_lua*, not init_by_lua*)"

-- The message of the last failed call on this thread.
local function last_message()
  if C.sshard_last_error_message(out_text, out_len) == OK then
    return ffi_string(out_text[0], out_len[0])
  end
  return ""
end

-- nil, "NAME: message", status for a call that failed synchronously
-- (message: the library's when not given).
function errors.call(status, message)
  message = message or last_message()
  if status == FORKED then message = message .. FORK_HINT end
  return nil, status_name(status) .. (message ~= "" and (": " .. message) or ""), status
end

function errors.invalid(message)
  return nil, "INVALID_ARGUMENT: " .. message, S.INVALID_ARGUMENT
end

-- A refused argument: the Lua side's reason, else the library's message.
function errors.bind(status, what)
  local message = values.take_why() or last_message()
  return errors.call(status, what .. ": " .. message)
end

local function text_of(e, getter)
  if getter(e, out_text, out_len) == OK then return ffi_string(out_text[0], out_len[0]) end
end

local function number_of(e, getter, out)
  if getter(e, out) == OK then return out[0] end
end

-- The failure of a completed C future: nil, "NAME: server message",
-- status, and the details the error carries.
function errors.future(cf, status)
  local message = ""
  local details = { status = status, name = status_name(status) }
  if C.sshard_future_get_error(cf, out_error) == OK then
    local e = out_error[0]
    message = text_of(e, C.sshard_error_message) or ""
    details.server_code = number_of(e, C.sshard_error_server_code, out_i32)
    details.consistency = number_of(e, C.sshard_error_consistency, out_u16)
    details.received = number_of(e, C.sshard_error_received, out_i32)
    details.required = number_of(e, C.sshard_error_required, out_i32)
    details.failures = number_of(e, C.sshard_error_num_failures, out_i32)
    details.data_present = number_of(e, C.sshard_error_data_present, out_bool)
    details.write_type = text_of(e, C.sshard_error_write_type)
    details.keyspace = text_of(e, C.sshard_error_keyspace)
    details.table = text_of(e, C.sshard_error_table)
    details["function"] = text_of(e, C.sshard_error_function)
  end
  if status == FORKED then message = message .. FORK_HINT end
  details.message = message
  return nil, details.name .. (message ~= "" and (": " .. message) or ""), status, details
end

return errors
