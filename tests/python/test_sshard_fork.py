"""Fork: a session made before os.fork() fails clearly in the child (the
binding's ForkedError, and FORKED from the library underneath), a Cluster
made in the child works, and gunicorn and uWSGI with 4 pre-forked workers
serve requests that query the emulator, with the post_fork pattern and,
with a session the master made, give the clear error instead of hanging."""

import concurrent.futures
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

import scylla_shard
from scylla_shard import Cluster, ForkedError
from scylla_shard._native import lib

from emulator_harness import wait_until
from sshard_support import library_env, start_emulator

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def emu(emulator_binary, tmp_path_factory):
    e = start_emulator(emulator_binary, tmp_path_factory.mktemp("emu"), 2, 2)
    yield e
    e.stop()


def _wait_child(pid, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError("forked child did not finish within %ss" % timeout)


def _in_child(fn):
    """Runs fn() in a forked child; returns what it wrote (a JSON value)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            out = fn()
        except BaseException as exc:  # reported to the parent
            out, code = {"crash": repr(exc)}, 1
        os.write(w, json.dumps(out).encode())
        os._exit(code)
    os.close(w)
    try:
        chunks = []
        while True:
            ready, _, _ = select.select([r], [], [], 10)
            assert ready, "no answer from the child"
            chunk = os.read(r, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(r)
        code = _wait_child(pid)
    out = json.loads(b"".join(chunks))
    assert code == 0, out
    return out


def test_session_from_before_fork_fails_clearly_and_new_cluster_works(emu):
    cluster = Cluster([emu.ip(0)], port=emu.port)
    session = cluster.connect()
    assert session.execute("SELECT key FROM system.local").one().key == "local"
    prepared = session.prepare("SELECT key FROM system.local WHERE key = ?")

    def child():
        out = {}
        for name, call in (("execute", lambda: session.execute("SELECT key FROM system.local")),
                           ("execute_async", lambda: session.execute_async(prepared, ("local",))),
                           ("prepare", lambda: session.prepare("SELECT * FROM system.local")),
                           ("connect", lambda: cluster.connect())):
            try:
                call()
                out[name] = "no error"
            except ForkedError as exc:
                out[name] = str(exc)
        # The library underneath says FORKED too.
        b = scylla_shard._native.ffi.new("bool *")
        out["c_status"] = lib.sshard_session_is_shard_aware(session._handle, b)
        fresh = Cluster([emu.ip(1)], port=emu.port)
        out["fresh"] = fresh.connect().execute("SELECT key FROM system.local").one().key
        fresh.shutdown()
        cluster.shutdown()  # a no-op in the child: the parent's objects are left alone
        return out

    out = _in_child(child)
    assert "crash" not in out, out
    for name in ("execute", "execute_async", "prepare", "connect"):
        assert "before os.fork()" in out[name] and "post_fork" in out[name], out
    assert out["c_status"] == lib.SSHARD_STATUS_FORKED
    assert out["fresh"] == "local"
    # The parent's session is untouched by the child.
    assert session.execute(prepared, ("local",)).one().key == "local"
    cluster.shutdown()


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _get(url, timeout=10):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


class PreForkServer:
    """gunicorn or uWSGI serving sshard_wsgi_app with `workers` workers."""

    def __init__(self, emu, server, mode, tmp_path, workers=4):
        self.port = _free_port()
        env = library_env()
        env.update(SSHARD_APP_CONTACT=emu.ip(0), SSHARD_APP_PORT=str(emu.port),
                   SSHARD_APP_MODE=mode, PYTHONPATH=HERE)
        binary = os.path.join(os.path.dirname(sys.executable), server)
        bind = "127.0.0.1:%d" % self.port
        if server == "gunicorn":
            argv = [binary, "-w", str(workers), "-b", bind,
                    "-c", os.path.join(HERE, "sshard_gunicorn_conf.py"), "--chdir", HERE,
                    "--graceful-timeout", "5", "--timeout", "30"]
            if mode == "preload":
                argv.append("--preload")
            argv.append("sshard_wsgi_app:app")
        else:  # uWSGI loads the app in the master, then forks its workers
            argv = [binary, "--master", "--processes", str(workers), "--http-socket", bind,
                    "--chdir", HERE, "--module", "sshard_wsgi_app:app", "--need-app",
                    "--enable-threads", "--die-on-term", "--disable-logging"]
        self.log = open(os.path.join(str(tmp_path), "%s-%s.log" % (server, mode)), "wb")
        self.proc = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.url = "http://127.0.0.1:%d/" % self.port

    def wait_ready(self):
        def up():
            assert self.proc.poll() is None, "server exited: %s\n%s" % (
                self.proc.returncode, open(self.log.name).read()[-3000:])
            try:
                return _get(self.url, timeout=2)
            except (ConnectionError, urllib.error.URLError, socket.timeout):
                return None
        return wait_until(up, 60, what="the server to answer on %s" % self.url)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def _spread_requests(url, want_workers, timeout=60):
    """Concurrent slow requests until `want_workers` distinct workers answered."""
    seen = {}
    deadline = time.monotonic() + timeout
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        while len(seen) < want_workers and time.monotonic() < deadline:
            for status, body in pool.map(lambda _: _get(url + "?sleep=0.2"), range(8)):
                seen.setdefault(body["pid"], []).append((status, body))
    return seen


@pytest.mark.parametrize("server,mode", [("gunicorn", "post_fork"),
                                         ("uwsgi", "uwsgi_postfork")])
def test_four_workers_connecting_after_fork(emu, tmp_path, server, mode):
    server = PreForkServer(emu, server, mode, tmp_path)
    try:
        server.wait_ready()
        seen = _spread_requests(server.url, 4)
        assert len(seen) == 4, "answers from workers %r" % sorted(seen)
        for answers in seen.values():
            for status, body in answers:
                assert status == 200, body
                assert body["cluster_name"] == "emulated cluster" and body["shard_aware"]
        assert server.proc.pid not in seen  # the master serves nothing
    finally:
        server.stop()
    assert server.proc.returncode == 0, open(server.log.name).read()[-3000:]


@pytest.mark.parametrize("server", ["gunicorn", "uwsgi"])
def test_session_made_by_the_master_gives_clear_error(emu, tmp_path, server):
    server = PreForkServer(emu, server, "preload", tmp_path)
    try:
        status, body = server.wait_ready()
        assert status == 500, body
        assert body["error"] == "ForkedError" and "post_fork" in body["message"], body
        seen = _spread_requests(server.url, 2, timeout=30)
        assert all(status == 500 and body["error"] == "ForkedError"
                   for answers in seen.values() for status, body in answers), seen
    finally:
        server.stop()
