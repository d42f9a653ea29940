"""cffi API-mode build of scylla_shard._sshard_cffi from the generated
include/scylla_shard_cdef.h (run by setup.py through cffi_modules).

The module declares the library's functions and does not link it: at import
scylla_shard._native loads libscylla_shard.so (RTLD_GLOBAL) from wherever it
is found, and the module's references resolve to it."""

import os

import cffi

HERE = os.path.dirname(os.path.abspath(__file__))


def cdef_path():
    for candidate in (os.path.join(HERE, "scylla_shard", "scylla_shard_cdef.h"),
                      os.path.join(HERE, "..", "..", "include", "scylla_shard_cdef.h")):
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError("scylla_shard_cdef.h not found (build from the repository, "
                            "or from an sdist that contains it)")


with open(cdef_path()) as f:
    CDEF = f.read()

ffibuilder = cffi.FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "scylla_shard._sshard_cffi",
    "#include <stdbool.h>\n#include <stddef.h>\n#include <stdint.h>\n" + CDEF,
    # Undefined sshard_ symbols are resolved from the library loaded first.
    extra_link_args=["-Wl,--allow-shlib-undefined"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
