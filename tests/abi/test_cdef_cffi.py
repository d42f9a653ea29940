"""include/scylla_shard_cdef.h in Python cffi (ABI mode): it parses as it is,
the library's functions are callable through dlopen, the constants are
attributes of the library, and the structs have the C compiler's layout.

Environment (set by `make abi-check`): SSHARD_CDEF, SSHARD_LIBRARY and
SSHARD_LAYOUT (the output of the layout program, "name sizeof" and
"name.field offsetof" lines).
"""
import os

import cffi
import pytest


@pytest.fixture(scope="module")
def api():
    ffi = cffi.FFI()
    with open(os.environ["SSHARD_CDEF"]) as f:
        ffi.cdef(f.read())
    return ffi, ffi.dlopen(os.environ["SSHARD_LIBRARY"])


def test_functions_and_constants(api):
    ffi, lib = api
    assert lib.sshard_abi_version() == lib.SSHARD_ABI_VERSION
    assert lib.SSHARD_STATUS_OK == 0
    assert lib.SSHARD_STATUS_SERVER_INVALID == 0x12200
    assert lib.SSHARD_METRICS_VERSION == 4
    assert ffi.string(lib.sshard_status_str(lib.SSHARD_STATUS_FORKED)) == b"FORKED"
    version = ffi.string(lib.sshard_version()).decode()
    assert version == "%d.%d.%d" % (lib.SSHARD_VERSION_MAJOR, lib.SSHARD_VERSION_MINOR,
                                    lib.SSHARD_VERSION_PATCH)


def test_calls_with_handles(api):
    ffi, lib = api
    config = ffi.new("sshard_config **")
    assert lib.sshard_config_new(config) == lib.SSHARD_STATUS_OK
    host = b"127.0.0.1"
    assert lib.sshard_config_add_contact_point(config[0], host, len(host)) == lib.SSHARD_STATUS_OK
    assert lib.sshard_config_add_contact_point(config[0], ffi.NULL, 3) == \
        lib.SSHARD_STATUS_NULL_ARGUMENT
    assert lib.sshard_config_free(config[0]) == lib.SSHARD_STATUS_OK
    future = ffi.new("const sshard_future **")
    assert lib.sshard_session_connect(ffi.NULL, future) == lib.SSHARD_STATUS_NULL_ARGUMENT


def test_struct_layouts_match_the_c_compiler(api):
    ffi, _ = api
    checked = 0
    with open(os.environ["SSHARD_LAYOUT"]) as f:
        for line in f:
            name, number = line.split()
            struct, _, field = name.partition(".")
            got = ffi.offsetof(struct, field) if field else ffi.sizeof(struct)
            assert got == int(number), name
            checked += 1
    assert checked > 0
