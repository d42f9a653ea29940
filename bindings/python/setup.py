"""Build steps pyproject.toml cannot express: the cffi module, and copying
the cdef file (and, when asked, the library) into the package.

SCYLLA_SHARD_BUNDLE_LIBRARY=/path/to/libscylla_shard.so bundles that library
into the package (a self-contained wheel with `pip wheel`)."""

import os
import shutil
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


class BuildPy(build_py):
    def run(self):
        build_py.run(self)
        target = os.path.join(self.build_lib, "scylla_shard")
        import build_ffi
        shutil.copyfile(build_ffi.cdef_path(), os.path.join(target, "scylla_shard_cdef.h"))
        bundle = os.environ.get("SCYLLA_SHARD_BUNDLE_LIBRARY")
        if bundle:
            shutil.copyfile(os.path.realpath(bundle), os.path.join(target, "libscylla_shard.so"))


setup(cmdclass={"build_py": BuildPy}, cffi_modules=["build_ffi.py:ffibuilder"])
