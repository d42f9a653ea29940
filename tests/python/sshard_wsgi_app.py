"""A WSGI app for the gunicorn and uWSGI tests (test_sshard_fork.py): each
request queries the emulator through scylla_shard and answers with the
worker's pid and what it read.

* SSHARD_APP_MODE=post_fork: every worker connects its own Cluster in
  gunicorn's post_fork hook (sshard_gunicorn_conf.py), the documented
  pattern.
* SSHARD_APP_MODE=uwsgi_postfork: the same under uWSGI, through
  `uwsgidecorators.postfork` (uWSGI loads the app in the master, then forks).
* SSHARD_APP_MODE=preload: the master connects at import (gunicorn
  --preload, uWSGI's default) and the workers use that session: each request
  must get the binding's ForkedError, never a hang or a crash.
"""

import json
import os
import time

import scylla_shard

CONTACT = os.environ.get("SSHARD_APP_CONTACT", "127.0.0.1")
PORT = int(os.environ.get("SSHARD_APP_PORT", "9042"))
MODE = os.environ.get("SSHARD_APP_MODE", "post_fork")

cluster = None
session = None


def connect():
    global cluster, session
    cluster = scylla_shard.Cluster([CONTACT], port=PORT)
    session = cluster.connect()


if MODE == "preload":
    connect()  # in the master, before the workers are forked
elif MODE == "uwsgi_postfork":
    from uwsgidecorators import postfork  # only importable inside uWSGI
    postfork(connect)


def app(environ, start_response):
    delay = float(environ.get("QUERY_STRING", "").partition("sleep=")[2] or 0)
    try:
        row = session.execute("SELECT key, cluster_name FROM system.local").one()
        if delay:
            time.sleep(delay)
        status, body = "200 OK", {"pid": os.getpid(), "cluster_name": row.cluster_name,
                                  "shard_aware": cluster.is_shard_aware()}
    except Exception as exc:
        status, body = "500 Internal Server Error", {
            "pid": os.getpid(), "error": type(exc).__name__, "message": str(exc)}
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(data)))])
    return [data]
