"""The drivers under test: one adapter each.

An adapter says how to start the driver's benchmark client (a program that
follows the client contract of benches/README.md) and when it can run.
Adding a driver is adding one `Adapter(...)` to `adapters()`; the
orchestrator treats every adapter alike.
"""

import os
import shutil
import sys
from dataclasses import dataclass, field

# The driver every figure is compared with.
REFERENCE = "scylla-rust"

# Drivers the issue names that have no benchmark client yet, and what each
# waits for. They are listed in the output so a reader sees the gap.
PENDING = []


def communicator_socket(root):
    """Where the harness's communicator daemon listens."""
    return os.path.join(root, "target", "bench-communicator", "cql.sock")


def communicator_binary(root):
    return os.path.join(root, "target", "release", "scylla-communicator")


@dataclass
class Adapter:
    name: str
    label: str
    argv: list
    # Files that must exist for the adapter to run, and what to say if not.
    requires: list = field(default_factory=list)
    missing_note: str = ""
    env: dict = field(default_factory=dict)
    # Instruction counts under callgrind (compiled clients, and LuaJIT's:
    # its VM and traces are the binding's cost; CPython's counts would
    # measure the interpreter).
    callgrind: bool = False
    # Which cases it runs: a predicate on a Case (None: every case, the
    # connection storm included).
    only: object = None
    # Goes through the communicator daemon (the harness starts it).
    communicator: bool = False

    def missing(self):
        return [p for p in self.requires if not os.path.exists(p)]

    def available(self):
        return not self.missing()

    def note(self, root=None):
        missing = [os.path.relpath(p, root) if root else p for p in self.missing()]
        if not missing:
            return ""
        return "%s (missing: %s)" % (self.missing_note or "not built", ", ".join(missing))

    def runs(self, case):
        return self.only is None or self.only(case)

    def environment(self):
        env = dict(os.environ)
        env.update(self.env)
        return env


def adapters(root, python=None):
    """Every driver the harness knows, in table order (reference first)."""
    python = python or sys.executable
    release = os.path.join(root, "target", "release")
    peer = os.path.join(release, "scylla-peer")
    sshard_rust = os.path.join(release, "sshard-rust")
    floor = os.path.join(release, "sshard-floor")
    c_lib_dir = os.path.join(root, "target", "c", "lib")
    c_bench = os.path.join(root, "target", "c", "examples", "bench")
    python_client = os.path.join(root, "benches", "clients", "python_driver.py")
    sshard_python = os.path.join(root, "benches", "clients", "sshard_python.py")
    acsylla_client = os.path.join(root, "benches", "clients", "acsylla_client.py")
    library = os.path.join(release, "libscylla_shard.so")
    # The Python binding's figures are compared on the case its targets name.
    mixed_c256 = lambda case: case.workload == "mixed" and case.throughput and not case.tablets  # noqa: E731
    luajit_client = os.path.join(root, "benches", "clients", "sshard_luajit.lua")
    luajit = shutil.which("luajit") or "/usr/bin/luajit"
    return [
        Adapter(
            name="scylla-rust",
            label="Rust scylla 1.9.0 (reference)",
            argv=[peer, "bench"],
            requires=[peer],
            missing_note="build it: cargo build --release -p scylla-peer",
            callgrind=True,
        ),
        Adapter(
            name="sshard-c",
            label="libscylla_shard, C API",
            argv=[c_bench],
            requires=[os.path.join(release, "libscylla_shard.so"), c_bench],
            missing_note="C client not built: `make bench` builds examples/c/bench.c "
                         "into target/c/examples/bench",
            env={"LD_LIBRARY_PATH": c_lib_dir},
            callgrind=True,
        ),
        Adapter(
            name="sshard-c-communicator",
            label="libscylla_shard from C through the communicator (CPU: client + daemon)",
            argv=[c_bench, "--communicator", communicator_socket(root)],
            requires=[os.path.join(release, "libscylla_shard.so"), c_bench,
                      communicator_binary(root)],
            missing_note="build it: cargo build --release -p scylla-communicator",
            env={"LD_LIBRARY_PATH": c_lib_dir},
            communicator=True,
            # Requests (its added latency); the worker storm is its own case.
            only=lambda case: case.workload in ("insert", "select", "mixed"),
        ),
        Adapter(
            name="sshard-rust",
            label="libscylla_shard, Rust core API (not the C API)",
            argv=[sshard_rust],
            requires=[sshard_rust],
            missing_note="build it: cargo build --release -p sshard-rust",
            callgrind=True,
        ),
        Adapter(
            name="sshard-floor",
            label="no driver: raw shard-aware sockets, pre-encoded requests (the floor)",
            argv=[floor],
            requires=[floor],
            missing_note="build it: cargo build --release -p sshard-floor",
            callgrind=True,
            # Measures requests only: no storm, no start-up case.
            only=lambda case: case.workload in ("insert", "select", "mixed"),
        ),
        Adapter(
            name="sshard-luajit",
            label="libscylla_shard, LuaJIT binding (bindings/lua)",
            argv=[luajit, luajit_client],
            requires=[luajit, luajit_client, os.path.join(c_lib_dir, "libscylla_shard.so")],
            missing_note="install luajit2 and stage the library: make lua-deps c-lib",
            env={"SCYLLA_SHARD_LIBRARY": os.path.join(c_lib_dir, "libscylla_shard.so"),
                 "SCYLLA_SHARD_CDEF": os.path.join(root, "include", "scylla_shard_cdef.h")},
            callgrind=True,
        ),
        Adapter(
            name="python-driver",
            label="Python scylla-driver (libev)",
            argv=[python, python_client],
            requires=[python_client],
        ),
        Adapter(
            name="python-driver-asyncio",
            label="Python scylla-driver (asyncio)",
            argv=[python, python_client, "--reactor", "asyncio"],
            requires=[python_client],
            # The baseline of the Python binding's target: throughput only.
            only=mixed_c256,
        ),
        Adapter(
            name="sshard-python",
            label="libscylla_shard, Python binding (scylla_shard, threaded)",
            argv=[python, sshard_python],
            requires=[sshard_python, library],
            missing_note="build the library: make build",
            # The library just built, whatever copy the installed package bundles.
            env={"SCYLLA_SHARD_LIBRARY": library},
        ),
        Adapter(
            name="sshard-python-asyncio",
            label="libscylla_shard, Python binding (scylla_shard.aio)",
            argv=[python, sshard_python, "--asyncio"],
            requires=[sshard_python, library],
            missing_note="build the library: make build",
            env={"SCYLLA_SHARD_LIBRARY": library},
            only=mixed_c256,
        ),
        Adapter(
            name="acsylla",
            label="acsylla 1.2.0 (asyncio over a C++ driver core)",
            argv=[python, acsylla_client],
            requires=[acsylla_client],
            only=mixed_c256,
        ),
    ]
