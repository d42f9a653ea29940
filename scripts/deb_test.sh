#!/usr/bin/env bash
# Installs the packages make deb built (target/deb/*.deb) on this machine,
# builds a C program against /usr with pkg-config and runs it against an
# emulated cluster, loads the library from LuaJIT through the installed
# cdef file, queries the cluster through the installed Lua and Python
# bindings (system luajit and python3, nothing from the source tree), runs
# the installed communicator daemon with its installed configuration and
# queries through it, then purges the packages and checks nothing is left
# behind.
#   scripts/deb_test.sh    (root: dpkg -i)
set -euo pipefail
cd "$(dirname "$0")/.."
EMULATOR=${SCYLLA_EMULATOR:-target/release/scylla-emulator}
WORK=$(mktemp -d)
EMU_PID=
COMM_PID=
packages=(scylla-communicator python3-scylla-shard lua-scylla-shard libscylla-shard-dev libscylla-shard0.1)
stop() { [ -n "$1" ] && { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; } || true; }
cleanup() {
    stop "$COMM_PID"
    stop "$EMU_PID"
    dpkg --purge "${packages[@]}" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# apt installs what the bindings depend on (python3-cffi-backend) too.
apt-get install -y -qq --no-install-recommends "$PWD"/target/deb/*.deb >/dev/null
for p in "${packages[@]}"; do dpkg -L "$p"; done | sort -u > "$WORK/files"

# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror examples/c/basic.c $(pkg-config --cflags --libs scylla_shard) -o "$WORK/basic"
[ "$(pkg-config --variable=libdir scylla_shard)" = "/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)" ] \
    || { echo "deb-test: pkg-config libdir is $(pkg-config --variable=libdir scylla_shard)"; exit 1; }
BASE_IP="127.1.$(( ($$ % 100) + 140 )).1"
"$EMULATOR" --nodes 3 --shards 4 --base-ip "$BASE_IP" >"$WORK/emulator.log" 2>&1 &
EMU_PID=$!
for _ in $(seq 300); do grep -q READY "$WORK/emulator.log" && break; sleep 0.1; done
grep -q READY "$WORK/emulator.log" || { echo "deb-test: emulator did not start"; exit 1; }
timeout 120 "$WORK/basic" "$BASE_IP" >/dev/null
ldd "$WORK/basic" | grep -Eq "libscylla_shard\.so\.[0-9.]+ => (/usr)?/lib/[^ ]*-linux-gnu/" \
    || { echo "deb-test: the program does not use the installed library"; exit 1; }

cat > "$WORK/load.lua" <<'LUA'
local ffi = require "ffi"
local f = assert(io.open("/usr/include/scylla_shard_cdef.h"))
ffi.cdef(f:read("*a"))
f:close()
local lib = ffi.load("scylla_shard")
assert(lib.sshard_abi_version() == lib.SSHARD_ABI_VERSION, "ABI version")
print(ffi.string(lib.sshard_version()))
LUA
luajit "$WORK/load.lua" >/dev/null

# The communicator as its package installs it: its user, its units (valid
# for systemd), its manual, and the daemon serving with the installed
# configuration (the cluster and the sockets given on the command line).
getent passwd scylla-communicator >/dev/null || { echo "deb-test: no scylla-communicator user"; exit 1; }
units=(/lib/systemd/system/scylla-communicator.service /lib/systemd/system/scylla-communicator.socket
       /lib/systemd/system/scylla-communicator-json.socket)
systemd-analyze verify "${units[@]}" \
    || { echo "deb-test: systemd-analyze rejects the communicator's units"; exit 1; }
man -w scylla-communicator | grep -q "^/usr/share/man/man8/scylla-communicator.8" \
    || { echo "deb-test: no manual page for scylla-communicator"; exit 1; }
COMM_TCP="${BASE_IP%.1}.200:9042"
/usr/bin/scylla-communicator --config /etc/scylla-communicator/communicator.toml \
    --cluster-contact-points "$BASE_IP" --cluster-password unused --listen-unix "$WORK/cql.sock" \
    --listen-json-unix "$WORK/json.sock" --listen-tcp "$COMM_TCP" --listen-metrics "${BASE_IP%.1}.200:9181" \
    2>"$WORK/communicator.log" &
COMM_PID=$!
for _ in $(seq 300); do grep -q "scylla-communicator: ready" "$WORK/communicator.log" && break; sleep 0.1; done
grep -q "scylla-communicator: ready" "$WORK/communicator.log" \
    || { cat "$WORK/communicator.log"; echo "deb-test: the installed communicator did not start"; exit 1; }

# The bindings as a user of the packages gets them: no variable points into
# the source tree, the modules come from the system's paths, and the library
# is found by its soname (the unversioned .so belongs to the -dev package).
soname=$(scripts/soname.sh "/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/libscylla_shard.so")
clean_env=(env -u LUA_PATH -u LUA_CPATH -u PYTHONPATH -u SCYLLA_SHARD_LIBRARY -u SCYLLA_SHARD_CDEF
           -u LD_LIBRARY_PATH)
dpkg --purge libscylla-shard-dev >/dev/null
(cd "$WORK" && "${clean_env[@]}" luajit - "$BASE_IP" "$soname" "$WORK/cql.sock" <<'LUA'
local scylla = require "scylla_shard"
local lib = require "scylla_shard.lib"
assert(lib.library_path == arg[2], "library loaded as " .. lib.library_path)
assert(lib.cdef_path:find("^/usr/share/lua/5.1/"), "declarations from " .. lib.cdef_path)
assert(package.searchpath("resty.scylla_shard", package.path):find("^/usr/share/lua/5.1/"))
local session = assert(scylla.connect { contact_points = { arg[1] } })
local rows = assert(session:execute("SELECT release_version FROM system.local"))
assert(#rows == 1 and rows[1].release_version, "system.local")
session:close()
-- Through the installed communicator's Unix socket.
local through = assert(scylla.connect { communicator = arg[3] })
assert(through:execute("CREATE KEYSPACE IF NOT EXISTS deb_test WITH replication = "
    .. "{'class': 'NetworkTopologyStrategy', 'replication_factor': 3}"))
assert(through:execute("CREATE TABLE IF NOT EXISTS deb_test.kv (k int PRIMARY KEY, v text)"))
local insert = assert(through:prepare("INSERT INTO deb_test.kv (k, v) VALUES (?, ?)"))
assert(insert:execute({ 1, "through the communicator" }))
through:close()
LUA
) || { echo "deb-test: the installed Lua binding failed"; exit 1; }
(cd "$WORK" && "${clean_env[@]}" /usr/bin/python3 - "$BASE_IP" "$soname" "$COMM_TCP" <<'PY'
import sys
import scylla_shard
from scylla_shard import _native, Cluster
assert scylla_shard.__file__.startswith("/usr/lib/python3/dist-packages/"), scylla_shard.__file__
assert _native.library_path == sys.argv[2], _native.library_path
assert _native.ffi_mode == "api", _native.ffi_mode
with Cluster([sys.argv[1]]) as cluster:
    row = cluster.connect().execute("SELECT release_version FROM system.local").one()
    assert row.release_version, row
# Through the communicator's TCP listener: to a client it is one node.
host, port = sys.argv[3].rsplit(":", 1)
with Cluster([host], port=int(port)) as cluster:
    row = cluster.connect().execute("SELECT v FROM deb_test.kv WHERE k = 1").one()
    assert row.v == "through the communicator", row
PY
) || { echo "deb-test: the installed Python binding failed"; exit 1; }

stop "$COMM_PID"; COMM_PID=
dpkg --purge scylla-communicator python3-scylla-shard lua-scylla-shard libscylla-shard0.1 >/dev/null
while read -r f; do
    case "$f" in /.|/|/etc|/lib|/usr|/usr/bin|/usr/lib|/usr/include|/usr/share|/usr/share/doc|/usr/share/man|/usr/share/man/man8|/usr/lib/*-linux-gnu|/usr/lib/*-linux-gnu/pkgconfig) continue ;; esac
    # Directories other packages share (/usr/lib/python3/dist-packages...) stay.
    if [ -d "$f" ] && [ ! -L "$f" ] && [ -n "$(dpkg -S "$f" 2>/dev/null)" ]; then continue; fi
    if [ -e "$f" ] || [ -L "$f" ]; then echo "deb-test: $f is left after purge"; exit 1; fi
done < "$WORK/files"
# Nor what the interpreters made at run time (byte-compiled files).
for d in /usr/lib/python3/dist-packages/scylla_shard /usr/share/lua/5.1/scylla_shard; do
    [ ! -e "$d" ] || { echo "deb-test: $d is left after purge"; exit 1; }
done
echo "deb-test ok: installed, built with pkg-config against /usr, ran against the emulator, loaded from LuaJIT, queried through the installed Lua and Python bindings and the installed communicator, purged clean"
