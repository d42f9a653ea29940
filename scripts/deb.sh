#!/usr/bin/env bash
# Builds the Debian packages into target/deb/ (make deb): a copy of the
# sources whose workspace is the library and the communicator, their crates
# vendored (`cargo vendor`, from the local cache when it has them), then
# dpkg-buildpackage with no network (CARGO_NET_OFFLINE in debian/rules),
# then lintian on the result (errors and warnings fail, overrides say why).
#   scripts/deb.sh                 the packages
#   scripts/deb.sh --source-only   the vendored source tree only (make vendor)
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
out=target/deb
src="$out/libscylla-shard-$version"
rm -rf "$out"
mkdir -p "$src"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$src"
# The library and the communicator: the emulator and the benchmarks are not
# packaged and their crates are not vendored.
sed -i 's/^members = \[.*\]/members = [".", "communicator"]/; s/^default-members = \[.*\]/default-members = [".", "communicator"]/' "$src/Cargo.toml"
(cd "$src" && { cargo vendor --offline --versioned-dirs vendor >/dev/null 2>&1 \
                 || cargo vendor --versioned-dirs vendor >/dev/null; })
python3 scripts/vendor_licences.py "$src/vendor" debian/copyright
mkdir -p "$src/.cargo"
cat > "$src/.cargo/config.toml" <<'CONFIG'
[source.crates-io]
replace-with = "vendored-sources"

[source.vendored-sources]
directory = "vendor"
CONFIG
if [ "${1:-}" = "--source-only" ]; then
    echo "$src: the sources with their crates vendored; dpkg-buildpackage -us -uc -b builds them offline"
    exit 0
fi
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
(cd "$src" && dpkg-buildpackage -us -uc -b >../build.log 2>&1) \
    || { tail -40 "$out/build.log"; echo "deb: dpkg-buildpackage failed (log: $out/build.log)"; exit 1; }
lintian --fail-on error,warning --info "$out"/*.changes
ls "$out"/*.deb
