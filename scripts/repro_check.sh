#!/usr/bin/env bash
# Reproducible builds: builds the library again from a copy of the sources
# in another directory and checks it is the same file as this tree's build
# (`make lib` must have run here). The Makefile remaps the build paths.
#   scripts/repro_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
copy=$(mktemp -d /tmp/sshard-repro.XXXXXX)
trap 'rm -rf "$copy"' EXIT
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$copy"
# The same crates and source date; a target directory of its own.
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)
export SOURCE_DATE_EPOCH
(cd "$copy" && make --no-print-directory lib >/dev/null 2>&1) || { echo "repro-check: the copy did not build"; exit 1; }
for f in libscylla_shard.so libscylla_shard.a; do
    if ! cmp -s "target/release/$f" "$copy/target/release/$f"; then
        echo "repro-check: $f differs between $PWD and $copy"
        exit 1
    fi
done
echo "repro-check ok: libscylla_shard.so and .a identical when built in $PWD and in $copy"
