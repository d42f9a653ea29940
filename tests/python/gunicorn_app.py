"""A WSGI application for the pre-fork test: each request queries through
its worker's session to the communicator. GET /put?k=K&v=V writes,
GET /get?k=K reads; the answer names the worker's pid."""

import json
import os
from urllib.parse import parse_qs

import app_session

_prepared = {}


def _statement(query):
    if query not in _prepared:
        _prepared[query] = app_session.session.prepare(query)
    return _prepared[query]


def app(environ, start_response):
    args = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    path = environ.get("PATH_INFO", "")
    body = {"pid": os.getpid()}
    try:
        if path == "/put":
            app_session.session.execute(_statement("INSERT INTO web.kv (k, v) VALUES (?, ?)"),
                                        (int(args["k"]), int(args["v"])))
        elif path == "/get":
            row = app_session.session.execute(_statement("SELECT v FROM web.kv WHERE k = ?"),
                                              (int(args["k"]),)).one()
            body["v"] = row.v if row else None
        else:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
    except Exception as e:  # the error goes to the client, with its type
        start_response("500 Internal Server Error", [("Content-Type", "application/json")])
        return [json.dumps({"error": "%s: %s" % (type(e).__name__, e)}).encode()]
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]
