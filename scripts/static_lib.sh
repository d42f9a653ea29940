#!/usr/bin/env bash
# Makes the installable static library from cargo's: every object linked into
# one relocatable object whose only global symbols are the C API's
# (`sshard_*`), so the library's Rust code, its std and its allocator
# (mimalloc's mi_* functions) never clash with the application's own.
#   scripts/static_lib.sh target/release/libscylla_shard.a OUT.a
set -euo pipefail
in=$1 out=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
nm -g --defined-only "$in" 2>/dev/null | awk 'NF == 3 && $3 ~ /^sshard_/ {print $3}' | sort -u > "$work/keep"
[ -s "$work/keep" ] || { echo "static_lib: no sshard_ symbols in $in" >&2; exit 1; }
ld -r --whole-archive "$in" -o "$work/all.o"
# The embedded LLVM bitcode (.llvmbc) goes too: nothing links with it, and
# it makes the linker plugins that ar loads abort.
objcopy --keep-global-symbols="$work/keep" --remove-section=.llvmbc --remove-section=.llvmcmd \
    "$work/all.o" "$work/scylla_shard.o"
rm -f "$out"
ar rcs "$out" "$work/scylla_shard.o"
