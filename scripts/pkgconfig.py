#!/usr/bin/env python3
"""Writes scylla_shard.pc on stdout, its directories relative to ${prefix}
where they are under it, as packagers expect:

    scripts/pkgconfig.py --prefix /usr --libdir /usr/lib/x86_64-linux-gnu \\
        --includedir /usr/include --version 0.1.0
"""
import argparse


def relative(path, prefix):
    prefix = prefix.rstrip("/")
    if path == prefix:
        return "${prefix}"
    if path.startswith(prefix + "/"):
        return "${prefix}" + path[len(prefix):]
    return path


def main():
    p = argparse.ArgumentParser()
    for name in ("prefix", "libdir", "includedir", "version"):
        p.add_argument("--" + name, required=True)
    a = p.parse_args()
    print("\n".join([
        "prefix=%s" % a.prefix,
        "exec_prefix=${prefix}",
        "libdir=%s" % relative(a.libdir, a.prefix).replace("${prefix}", "${exec_prefix}", 1),
        "includedir=%s" % relative(a.includedir, a.prefix),
        "",
        "Name: scylla_shard",
        "Description: Shard-aware, tablet-aware ScyllaDB / Cassandra driver (C API)",
        "Version: %s" % a.version,
        "Libs: -L${libdir} -lscylla_shard",
        "Libs.private: -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc",
        "Cflags: -I${includedir}",
    ]))


if __name__ == "__main__":
    main()
