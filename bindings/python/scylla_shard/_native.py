"""Loads libscylla_shard.so and its cffi declarations.

The library is looked for in this order: the path in $SCYLLA_SHARD_LIBRARY,
a copy inside this package (a wheel built with the library bundled), then
the system loader's path (ld.so.conf, LD_LIBRARY_PATH), by the unversioned
name and then by its soname (what a distribution's runtime package has).

Calls go through the compiled cffi module `_sshard_cffi` (API mode, built at
install time; it declares the functions but does not link the library: the
loaded library provides them). Without it (no C compiler when installed),
or with SCYLLA_SHARD_FFI=abi, the same declarations are parsed at import
and called through libffi (ABI mode, about twice the cost per call).
"""

import ctypes
import ctypes.util
import os

_HERE = os.path.dirname(os.path.abspath(__file__))
LIBRARY_NAME = "libscylla_shard.so"
CDEF_NAME = "scylla_shard_cdef.h"


class LibraryNotFound(ImportError):
    pass


def find_library():
    """The path of the library to load, following the documented order."""
    explicit = os.environ.get("SCYLLA_SHARD_LIBRARY")
    if explicit:
        if not os.path.isfile(explicit):
            raise LibraryNotFound("SCYLLA_SHARD_LIBRARY=%r is not a file" % explicit)
        return explicit
    bundled = os.path.join(_HERE, LIBRARY_NAME)
    if os.path.isfile(bundled):
        return bundled
    # The bare name: the system loader searches LD_LIBRARY_PATH, ld.so.cache...
    # A runtime-only install (a distribution's package) has no unversioned
    # libscylla_shard.so: then the library by its soname, from ld.so.cache.
    return _loadable(LIBRARY_NAME) or ctypes.util.find_library("scylla_shard") or LIBRARY_NAME


def _loadable(name):
    try:
        ctypes.CDLL(name)
    except OSError:
        return None
    return name


def _load():
    path = find_library()
    try:
        # RTLD_GLOBAL: the compiled module's undefined sshard_ symbols resolve
        # against this library, whatever its path.
        handle = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    except OSError as exc:
        raise LibraryNotFound(
            "cannot load %s (%s): set SCYLLA_SHARD_LIBRARY to its path, install a wheel "
            "that bundles it, or put it on the loader's path" % (path, exc)) from None
    mode = os.environ.get("SCYLLA_SHARD_FFI", "api")
    if mode == "api":
        try:
            from scylla_shard._sshard_cffi import ffi, lib
            return ffi, lib, path, "api", handle
        except ImportError:
            pass
    import cffi
    ffi = cffi.FFI()
    cdef = os.path.join(_HERE, CDEF_NAME)
    if not os.path.isfile(cdef):  # running from the repository's source tree
        cdef = os.path.join(_HERE, "..", "..", "..", "include", CDEF_NAME)
    with open(cdef) as f:
        ffi.cdef(f.read())
    lib = ffi.dlopen(path)
    # ABI mode makes each function's accessor on first use, under cffi's
    # lock; a finalizer (__del__ frees handles) running inside that lock
    # during a garbage collection would then deadlock. Make them all now.
    for name in dir(lib):
        getattr(lib, name)
    return ffi, lib, path, "abi", handle


ffi, lib, library_path, ffi_mode, _handle = _load()

if lib.sshard_abi_version() != lib.SSHARD_ABI_VERSION:
    raise ImportError("%s implements C ABI %d, this package was built for %d"
                      % (library_path, lib.sshard_abi_version(), lib.SSHARD_ABI_VERSION))

OK = lib.SSHARD_STATUS_OK


def status_name(status):
    return ffi.string(lib.sshard_status_str(status)).decode()


def last_error_message():
    msg = ffi.new("const char **")
    n = ffi.new("size_t *")
    if lib.sshard_last_error_message(msg, n) != OK or n[0] == 0:
        return ""
    return ffi.unpack(msg[0], n[0]).decode("utf-8", "replace")
