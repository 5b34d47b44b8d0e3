"""signals: installs Python handlers for SIGTERM and SIGINT at import time.

wisp owns signals: SIGTERM must still shut the server down gracefully. The
response says whether Python accepted the handlers ("installed") or refused
them because the import did not run on the main thread ("refused").
"""
import signal


def _swallow(signum, frame):
    pass


try:
    signal.signal(signal.SIGTERM, _swallow)
    signal.signal(signal.SIGINT, _swallow)
    STATE = b"installed"
except ValueError:
    STATE = b"refused"


def application(environ, start_response):
    body = b"ok " + STATE + b"\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
