#!/usr/bin/env bash
# Prints the soname of a shared library (build.rs sets it: the one place the
# soname rule lives), e.g. `libscylla_shard.so.0.1`.
#   scripts/soname.sh target/release/libscylla_shard.so
set -euo pipefail
readelf -d "$1" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p'
