#!/usr/bin/env bash
# Installs the packages make deb built (target/deb/*.deb) on this machine,
# builds a C program against /usr with pkg-config and runs it against an
# emulated cluster, loads the library from LuaJIT through the installed
# cdef file, then purges the packages and checks nothing is left behind.
#   scripts/deb_test.sh    (root: dpkg -i)
set -euo pipefail
cd "$(dirname "$0")/.."
EMULATOR=${SCYLLA_EMULATOR:-target/release/scylla-emulator}
WORK=$(mktemp -d)
EMU_PID=
packages=(libscylla-shard-dev libscylla-shard0.1)
cleanup() {
    [ -n "$EMU_PID" ] && { kill "$EMU_PID" 2>/dev/null; wait "$EMU_PID" 2>/dev/null; }
    dpkg --purge "${packages[@]}" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

dpkg -i target/deb/*.deb >/dev/null
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

dpkg --purge "${packages[@]}" >/dev/null
while read -r f; do
    case "$f" in /.|/|/usr|/usr/lib|/usr/include|/usr/share|/usr/share/doc|/usr/lib/*-linux-gnu|/usr/lib/*-linux-gnu/pkgconfig) continue ;; esac
    if [ -e "$f" ] || [ -L "$f" ]; then echo "deb-test: $f is left after purge"; exit 1; fi
done < "$WORK/files"
echo "deb-test ok: installed, built with pkg-config against /usr, ran against the emulator, loaded from LuaJIT, purged clean"
