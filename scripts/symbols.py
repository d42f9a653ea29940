#!/usr/bin/env python3
"""Keeps debian/libscylla-shard<soname version>.symbols, the committed list of the C API's
exported symbols (dpkg-gensymbols format): adds the symbols the library
exports and the list lacks, with the version given, and keeps every line
already there (a symbol is never removed without a new soname; see
docs/ABI.md). `make c-symbols` fails when the list and the library differ.

    scripts/symbols.py LIB.so SYMBOLS_FILE VERSION SONAME
"""
import subprocess
import sys
from pathlib import Path


def exported(lib):
    out = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True,
                         check=True).stdout
    return sorted({line.split()[-1] for line in out.splitlines() if line.split()[-1].startswith("sshard_")})


def main():
    lib, path, version, soname = sys.argv[1:5]
    path = Path(path)
    known = {}
    if path.exists():
        for line in path.read_text().splitlines()[1:]:
            name, _, since = line.strip().partition("@Base ")
            if name:
                known[name] = since
    for name in exported(lib):
        known.setdefault(name, version)
    package = "libscylla-shard" + soname.split(".so.", 1)[1]
    lines = ["%s %s #MINVER#" % (soname, package)]
    lines += [" %s@Base %s" % (name, known[name]) for name in sorted(known)]
    path.write_text("\n".join(lines) + "\n")
    print("%s: %d symbols" % (path, len(known)))


if __name__ == "__main__":
    main()
