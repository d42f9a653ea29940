-- Loads libscylla_shard through LuaJIT's ffi: declares it from the
-- generated scylla_shard_cdef.h (no preprocessor lines, constants as enums)
-- and checks that the library implements the C ABI those declarations
-- describe.
--
-- Where it looks (the first that exists wins):
--   declarations: $SCYLLA_SHARD_CDEF, then scylla_shard_cdef.h next to the
--     module (beside scylla_shard.lua or in scylla_shard/: an installed
--     copy), then the source tree's include/, then /usr/local/include and
--     /usr/include;
--   library: $SCYLLA_SHARD_LIBRARY, then the system's search path
--     (LD_LIBRARY_PATH, ld.so.cache: libscylla_shard.so), then the source
--     tree's target/c/lib (make c-lib).
local ffi = require "ffi"

-- The C ABI version this binding is written for.
local ABI_VERSION = 1

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- Directory of this file ("" when loaded from the current directory).
local here = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./")
-- bindings/lua/scylla_shard/ -> the repository root.
local source_root = here .. "../../../"

-- The first of the paths (after `preferred`, maybe nil) that exists.
local function first_existing(preferred, candidates)
  if preferred and preferred ~= "" then return exists(preferred) and preferred or nil end
  for _, path in ipairs(candidates) do
    if exists(path) then return path end
  end
end

local env_cdef = os.getenv("SCYLLA_SHARD_CDEF")
local cdef_path = first_existing(env_cdef, {
  here .. "../scylla_shard_cdef.h",
  here .. "scylla_shard_cdef.h",
  source_root .. "include/scylla_shard_cdef.h",
  "/usr/local/include/scylla_shard_cdef.h",
  "/usr/include/scylla_shard_cdef.h",
})
if not cdef_path then
  error(env_cdef and ("scylla_shard: SCYLLA_SHARD_CDEF=" .. env_cdef .. " does not exist")
    or ("scylla_shard: scylla_shard_cdef.h not found: set SCYLLA_SHARD_CDEF to its path "
      .. "(make install puts it in PREFIX/include)"), 2)
end

local f = assert(io.open(cdef_path, "rb"))
local cdef = f:read("*a")
f:close()

-- Declared once per Lua state, even if another module declared it first.
if not pcall(ffi.typeof, "struct sshard_metrics") then
  local ok, err = pcall(ffi.cdef, cdef)
  if not ok then
    error(("scylla_shard: %s does not parse as C declarations: %s"):format(cdef_path, err), 2)
  end
end

local function try_load(name)
  local ok, lib = pcall(ffi.load, name)
  if ok then return lib end
  return nil, lib
end

local lib, library_path, why
local env_library = os.getenv("SCYLLA_SHARD_LIBRARY")
if env_library and env_library ~= "" then
  lib, why = try_load(env_library)
  library_path = env_library
  if not lib then
    error(("scylla_shard: cannot load SCYLLA_SHARD_LIBRARY=%s: %s"):format(env_library, why), 2)
  end
else
  lib, why = try_load("scylla_shard")
  library_path = "libscylla_shard.so"
  local staged = source_root .. "target/c/lib/libscylla_shard.so"
  if not lib and exists(staged) then
    lib, why = try_load(staged)
    library_path = staged
  end
  if not lib then
    error("scylla_shard: libscylla_shard.so not found (" .. tostring(why) .. "): install it "
      .. "(make install) or set SCYLLA_SHARD_LIBRARY to its path", 2)
  end
end

local library_abi = lib.sshard_abi_version()
local declared_abi = lib.SSHARD_ABI_VERSION
if library_abi ~= declared_abi or declared_abi ~= ABI_VERSION then
  error(("scylla_shard: C ABI mismatch: %s implements version %d, %s declares %d and this "
    .. "binding is written for %d; install matching versions of the library, "
    .. "scylla_shard_cdef.h and the Lua module"):format(
      library_path, library_abi, cdef_path, declared_abi, ABI_VERSION), 2)
end

-- Every status by name ("SERVER_SYNTAX_ERROR" = 73728 ...), read from the
-- declarations (LuaJIT cannot list an enum's constants).
local status = {}
for name in cdef:gmatch("SSHARD_STATUS_([%u%d_]+) =") do
  status[name] = lib["SSHARD_STATUS_" .. name]
end

return {
  C = lib,
  ABI_VERSION = ABI_VERSION,
  cdef_path = cdef_path,
  library_path = library_path,
  status = status,
}
