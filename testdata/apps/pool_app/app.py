"""pool_app: the app of the `wisp serve` worker-pool e2e tests (e2e/pools_test.go).

Paths (anything else is /info):
  /info           JSON: pid, the pool's POOL_VALUE and GODEBUG env vars, SCRIPT_NAME,
                  PATH_INFO, REMOTE_ADDR, SERVER_PORT, wsgi.multiprocess, wsgi.multithread
  /work?ms=N      sleeps N ms, then answers like /info
  /sleep?s=N      sleeps N seconds (a marker file is created in $POOL_MARK_DIR
                  on entry when that is set), then answers "slept N"
  /spin           busy loop in pure Python (interruptible): spin_forever_e2e
  /block          time.sleep(600) (not interruptible): block_in_c_e2e
  /leak?mb=N      keeps N MB (default 5) more in a global list; answers the total
"""
import json
import os
import time
import uuid
from urllib.parse import parse_qs

_kept = []


def _info(environ):
    return {
        "pid": os.getpid(),
        "value": os.environ.get("POOL_VALUE"),
        "godebug": os.environ.get("GODEBUG"),
        "script_name": environ.get("SCRIPT_NAME"),
        "path_info": environ.get("PATH_INFO"),
        "remote_addr": environ.get("REMOTE_ADDR"),
        "server_port": environ.get("SERVER_PORT"),
        "multiprocess": environ.get("wsgi.multiprocess"),
        "multithread": environ.get("wsgi.multithread"),
    }


def spin_forever_e2e():
    n = 0
    while True:
        n += 1


def block_in_c_e2e():
    time.sleep(600)


def _reply(start_response, body, ctype="application/json"):
    start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    # The last segment selects the case, so that a vdir prefix can precede it.
    case = path.rstrip("/").rsplit("/", 1)[-1]
    q = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    if case == "work":
        time.sleep(int(q.get("ms", "0")) / 1000.0)
    elif case == "sleep":
        mark = os.environ.get("POOL_MARK_DIR")
        if mark:
            open(os.path.join(mark, uuid.uuid4().hex), "w").close()
        s = float(q.get("s", "1"))
        time.sleep(s)
        return _reply(start_response, ("slept %s" % q.get("s", "1")).encode(), "text/plain")
    elif case == "spin":
        spin_forever_e2e()
    elif case == "block":
        block_in_c_e2e()
    elif case == "leak":
        mb = int(q.get("mb", "5"))
        _kept.append(b"x" * (mb << 20))
        total = sum(len(b) for b in _kept) >> 20
        return _reply(start_response, ("kept %d MB" % total).encode(), "text/plain")
    return _reply(start_response, json.dumps(_info(environ)).encode())
