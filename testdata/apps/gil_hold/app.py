"""gil_hold: a request that holds the GIL inside C code (e2e/stuck_gil_test.go).

Paths:
  /hold?s=S&mark=DIR  creates a file named after the pid in DIR (when given),
                      then runs one regex match that backtracks for about S
                      seconds (re's C code holds the GIL all along: no other
                      Python thread runs meanwhile), sized by timing a small
                      match first; answers "held T pid P" (T: seconds held)
  /sleep?s=S&mark=DIR creates the marker file as /hold does, then sleeps S
                      seconds with the GIL released (the thread is busy, the
                      interpreter answers); answers "slept pid P"
  anything else       answers "ok pid P" at once
"""
import math
import os
import re
import time
from urllib.parse import parse_qs

_PATTERN = re.compile(r"(a*)*b")  # each more "a" doubles the time of a failed match
_PROBE_N = 21


def _hold(seconds):
    t0 = time.monotonic()
    _PATTERN.match("a" * _PROBE_N)
    probe = max(time.monotonic() - t0, 1e-4)
    n = _PROBE_N + max(0, round(math.log2(max(seconds - probe, 0.01) / probe)))
    _PATTERN.match("a" * n)
    return time.monotonic() - t0


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    q = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    mark = q.get("mark")
    if mark and path in ("/hold", "/sleep"):
        open(os.path.join(mark, str(os.getpid())), "w").close()
    if path == "/hold":
        held = _hold(float(q.get("s", "6")))
        body = ("held %.2f pid %d" % (held, os.getpid())).encode()
    elif path == "/sleep":
        time.sleep(float(q.get("s", "6")))
        body = ("slept pid %d" % os.getpid()).encode()
    else:
        body = ("ok pid %d" % os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
