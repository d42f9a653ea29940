"""The worker's driver session, set by gunicorn's post_fork hook
(communicator/deploy/gunicorn.conf.py)."""

session = None
