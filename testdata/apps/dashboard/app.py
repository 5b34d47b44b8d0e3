"""dashboard: the app of the dashboard's browser test (e2e/dashboard_layout_test.go).

Paths: /fail raises (wisp answers 500, an error on the dashboard); /slow?ms=N
sleeps N ms; anything else answers "ok" at once.
"""
import time
from urllib.parse import parse_qs


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path.endswith("/fail"):
        raise RuntimeError("e2e-dashboard-failure")
    if path.endswith("/slow"):
        q = parse_qs(environ.get("QUERY_STRING", ""))
        time.sleep(int(q.get("ms", ["0"])[0]) / 1000.0)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"ok\n"]
