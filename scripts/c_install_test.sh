#!/usr/bin/env bash
# `make install` into a scratch prefix, then build the basic example
# against the installed copy with `pkg-config --cflags --libs scylla_shard`
# (and statically with --static), check the soname links, and run the
# dynamic build against an emulated cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
EMULATOR=${SCYLLA_EMULATOR:-target/release/scylla-emulator}
PREFIX=$(mktemp -d)
WORK=$(mktemp -d)
EMU_PID=
cleanup() {
    [ -n "$EMU_PID" ] && { kill "$EMU_PID" 2>/dev/null; wait "$EMU_PID" 2>/dev/null; }
    rm -rf "$PREFIX" "$WORK"
}
trap cleanup EXIT

make --no-print-directory install PREFIX="$PREFIX" >/dev/null
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
soname=$(scripts/soname.sh target/release/libscylla_shard.so)
for f in lib/libscylla_shard.so "lib/$soname" "lib/libscylla_shard.so.$version" \
         lib/libscylla_shard.a include/scylla_shard.h include/scylla_shard_cdef.h \
         lib/pkgconfig/scylla_shard.pc; do
    [ -e "$PREFIX/$f" ] || { echo "install: missing $f"; exit 1; }
done
[ -L "$PREFIX/lib/libscylla_shard.so" ] && [ -L "$PREFIX/lib/$soname" ] \
    || { echo "install: the .so names are not symlinks"; exit 1; }

export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig"
[ "$(pkg-config --modversion scylla_shard)" = "$version" ] || { echo "pkg-config: wrong version"; exit 1; }
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror examples/c/basic.c $(pkg-config --cflags --libs scylla_shard) \
    -o "$WORK/basic"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror examples/c/basic.c \
    $(pkg-config --cflags scylla_shard) "$PREFIX/lib/libscylla_shard.a" \
    $(pkg-config --static --libs-only-l scylla_shard | sed 's/-lscylla_shard//') -o "$WORK/basic_static"
readelf -d "$WORK/basic" | grep -q "NEEDED.*\\[$soname\\]" \
    || { echo "the example does not need $soname"; exit 1; }
if readelf -d "$WORK/basic_static" | grep -q 'NEEDED.*libscylla_shard'; then
    echo "the static build still needs the shared library"; exit 1
fi

BASE_IP="127.1.$(( ($$ % 100) + 120 )).1"
LOG="$WORK/emulator.log"
"$EMULATOR" --nodes 3 --shards 4 --base-ip "$BASE_IP" >"$LOG" 2>&1 &
EMU_PID=$!
for _ in $(seq 300); do grep -q READY "$LOG" && break; sleep 0.1; done
grep -q READY "$LOG" || { echo "emulator did not start"; cat "$LOG"; exit 1; }
LD_LIBRARY_PATH="$PREFIX/lib" timeout 120 "$WORK/basic" "$BASE_IP" >/dev/null
timeout 120 "$WORK/basic_static" "$BASE_IP" >/dev/null
make --no-print-directory uninstall PREFIX="$PREFIX" >/dev/null
left=$(find "$PREFIX" -type f -o -type l)
[ -z "$left" ] || { echo "uninstall left: $left"; exit 1; }
echo "install ok: $PREFIX layout, pkg-config (shared and static) builds ran, uninstall removed every file"
