"""embed: probes of how wisp embeds CPython.

GET /asyncexc   the number of asynchronous exceptions wisp has raised
GET /loop?N     times N calls of a trivial function (scripts/evalloop.sh)
GET /spin       spins until the request timeout's TimeoutError stops it
GET /partial    writes "e2e-partial-line" to wsgi.errors with no newline
GET /print      print()s "e2e-print-partial" to stdout with no newline
GET /exit?CODE  calls os._exit(CODE)
"""
import os
import sys
import time

import _wisp


def _f():
    pass


def loop(n):
    f = _f
    t = time.perf_counter()
    for _ in range(n):
        f()
    return time.perf_counter() - t


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    q = environ.get("QUERY_STRING", "")
    if path == "/asyncexc":
        body = str(_wisp.async_exc_calls())
    elif path == "/loop":
        body = "%.6f" % min(loop(int(q or "1000000")) for _ in range(5))
    elif path == "/spin":
        while True:
            pass
    elif path == "/partial":
        environ["wsgi.errors"].write("e2e-partial-line")
        body = "written"
    elif path == "/print":
        print("e2e-print-partial", end="")
        body = "printed"
    elif path == "/exit":
        os._exit(int(q or "1"))
    else:
        body = "ok"
    b = body.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(b)))])
    return [b]
