"""Fixtures for the driver-conformance tests against scylla-emulator.

* `emulator_factory(nodes, shards, *flags)` starts the binary named by
  $SCYLLA_EMULATOR (default /work/main/target/release/scylla-emulator) on its
  own 127.0.N.1 block, waits (bounded) for READY and for the metrics
  endpoints, and always stops it (SIGTERM, then SIGKILL) at teardown. A test
  during which the emulator died fails at teardown with its stderr.
* `cluster_factory(emulator, **kwargs)` builds a real `cassandra.cluster.Cluster`
  pointed at node 0 and always shuts it down before the emulator stops.
* A failed test's report carries the emulator's command line and stderr tail.
"""

import os

import pytest

from communicator_harness import DEFAULT_COMMUNICATOR, Communicator, CommunicatorError
from emulator_harness import DEFAULT_EMULATOR, DEFAULT_PEER, Emulator, EmulatorError


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running conformance test")


@pytest.fixture(scope="session")
def emulator_binary():
    path = os.environ.get("SCYLLA_EMULATOR", DEFAULT_EMULATOR)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail("scylla-emulator binary not found at %r: build it with "
                    "`cargo build --release -p scylla-emulator` or set SCYLLA_EMULATOR" % path,
                    pytrace=False)
    return path


@pytest.fixture(scope="session")
def peer_binary():
    path = os.environ.get("SCYLLA_PEER", DEFAULT_PEER)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail("scylla-peer binary not found at %r: build it with "
                    "`cargo build --release -p scylla-peer` or set SCYLLA_PEER" % path,
                    pytrace=False)
    return path


@pytest.fixture
def emulator_factory(request, emulator_binary, tmp_path):
    started = []
    request.node._emulators = started

    def start(nodes=3, shards=4, *flags, ready_timeout=30.0, **ports):
        emu = Emulator(emulator_binary, nodes, shards, args=[str(f) for f in flags],
                       log_dir=str(tmp_path), **ports)
        started.append(emu)
        try:
            emu.start(timeout=ready_timeout)
        except EmulatorError as e:
            pytest.fail(str(e), pytrace=False)
        return emu

    yield start

    died = []
    for emu in reversed(started):
        rc = emu.stop()
        if rc is not None and emu.ready_ok:
            died.append("emulator exited by itself with status %s during the test\n%s"
                        % (rc, emu.describe()))
    if died:
        pytest.fail("\n\n".join(died), pytrace=False)


@pytest.fixture(scope="session")
def communicator_binary():
    path = os.environ.get("SCYLLA_COMMUNICATOR", DEFAULT_COMMUNICATOR)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail("scylla-communicator binary not found at %r: build it with "
                    "`cargo build --release -p scylla-communicator` or set SCYLLA_COMMUNICATOR"
                    % path, pytrace=False)
    return path


@pytest.fixture
def communicator_factory(request, communicator_binary, emulator_factory, tmp_path):
    """`communicator_factory(emulator, *flags)`: a daemon in front of the
    emulator, stopped (by its pid) before the emulator."""
    started = []

    def start(emu, *flags):
        comm = Communicator(communicator_binary, emu, str(tmp_path), args=[str(f) for f in flags])
        started.append(comm)
        try:
            comm.start()
        except CommunicatorError as e:
            pytest.fail(str(e), pytrace=False)
        return comm

    yield start

    died = []
    for comm in reversed(started):
        text = comm.describe()
        if comm.stop() is not None:
            died.append("the communicator exited by itself during the test\n" + text)
    if died:
        pytest.fail("\n\n".join(died), pytrace=False)


@pytest.fixture
def cluster_factory(emulator_factory):
    """Depends on emulator_factory so clusters shut down before emulators stop."""
    from cassandra.cluster import Cluster

    clusters = []

    def make(emu, contact_nodes=(0,), **kwargs):
        kwargs.setdefault("port", emu.port)
        kwargs.setdefault("connect_timeout", 10)
        cluster = Cluster(contact_points=[emu.ip(i) for i in contact_nodes], **kwargs)
        clusters.append(cluster)
        return cluster

    yield make

    for c in clusters:
        try:
            c.shutdown()
        except Exception:
            pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for emu in getattr(item, "_emulators", []):
            try:
                report.sections.append(("emulator %s" % emu.base_ip, emu.describe()))
            except Exception:
                pass
