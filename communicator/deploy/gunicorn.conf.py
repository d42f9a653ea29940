# gunicorn with 8 pre-forked workers, each with its own driver session to
# the local communicator (created after the fork: drivers are not
# fork-safe), so the cluster sees nodes x shards + 1 connections from this
# machine whatever the number of workers.
#   gunicorn -c gunicorn.conf.py app:app
# The application reads the session from `app_session.session` (any
# module the workers share; here the config file sets it up).
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "8"))
worker_class = "sync"
COMMUNICATOR_SOCKET = os.environ.get("SCYLLA_COMMUNICATOR_SOCKET",
                                     "/run/scylla-communicator/cql.sock")


def post_fork(server, worker):
    from cassandra.cluster import Cluster
    from cassandra.connection import UnixSocketEndPoint
    from cassandra.policies import RoundRobinPolicy

    import app_session

    # The daemon is the whole cluster: one host, routed behind it.
    cluster = Cluster([UnixSocketEndPoint(COMMUNICATOR_SOCKET)],
                      load_balancing_policy=RoundRobinPolicy(), protocol_version=4)
    app_session.session = cluster.connect()


def worker_exit(server, worker):
    import app_session

    if app_session.session is not None:
        app_session.session.cluster.shutdown()
