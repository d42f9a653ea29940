"""gunicorn configuration of the scylla_shard fork test: the post_fork
pattern (a Cluster per worker, made after the fork)."""

import os


def post_fork(server, worker):
    if os.environ.get("SSHARD_APP_MODE", "post_fork") == "post_fork":
        import sshard_wsgi_app
        sshard_wsgi_app.connect()


def worker_exit(server, worker):
    import sshard_wsgi_app
    if sshard_wsgi_app.cluster is not None and os.environ.get("SSHARD_APP_MODE") != "preload":
        sshard_wsgi_app.cluster.shutdown()
