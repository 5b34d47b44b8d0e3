"""excinfo: start_response called twice, with and without exc_info."""
import json
import sys
import threading
import time

_LOCK = threading.Lock()
_STATE = {}


def _record(key, value):
    with _LOCK:
        _STATE[key] = value


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    key = environ.get("QUERY_STRING", "")
    ct = ("Content-Type", "text/plain")

    if path == "/double":
        # A second call without exc_info is a fatal error (PEP 3333).
        start_response("200 OK", [ct])
        try:
            start_response("201 Created", [ct])
        except Exception:
            _record(key, "raised")
            raise
        _record(key, "returned")
        return [b"double start_response accepted\n"]

    if path == "/replace":
        # exc_info before any body was sent: the new status and headers win.
        start_response("200 OK", [ct, ("X-First", "1")])
        try:
            raise ValueError("e2e replace-me")
        except ValueError:
            start_response("503 Service Unavailable", [ct, ("X-Second", "1")], sys.exc_info())
        return [b"replaced\n"]

    if path == "/after-headers":
        # exc_info after the first body block was yielded: start_response must
        # re-raise, and the server must abort the response.
        def body():
            yield b"first-block\n"
            time.sleep(0.3)
            try:
                raise ValueError("e2e after-headers " + key)
            except ValueError:
                try:
                    start_response("500 Internal Server Error", [ct], sys.exc_info())
                except ValueError:
                    _record(key, "reraised")
                    raise
                _record(key, "returned")
            yield b"after start_response with exc_info\n"

        start_response("200 OK", [ct])
        return body()

    if path == "/after-write":
        # Same, with the first block sent by write().
        write = start_response("200 OK", [ct])
        write(b"first-block\n")
        time.sleep(0.3)
        try:
            raise ValueError("e2e after-write " + key)
        except ValueError:
            try:
                start_response("500 Internal Server Error", [ct], sys.exc_info())
            except ValueError:
                _record(key, "reraised")
                raise
            _record(key, "returned")
        return [b"after start_response with exc_info\n"]

    if path == "/state":
        with _LOCK:
            data = json.dumps({"state": _STATE.get(key)}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [data]

    start_response("404 Not Found", [ct])
    return [b"no such case\n"]
