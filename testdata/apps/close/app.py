"""close: response iterables that record every close() call.

The key is the query string; GET /closed?KEY reports {"count": N} (how many
times close() was called on the iterable served for KEY) and {"served": N}.
The iterable is a plain class with close() (no generator, no __del__), so only
an explicit close() by the server counts.
"""
import json
import threading
import time

_LOCK = threading.Lock()
_CLOSED = {}
_SERVED = {}


class Body:
    def __init__(self, key, chunks, delay=0.0, raise_at=None):
        self.key = key
        self.chunks = chunks  # a list, or an int: that many 64 KiB blocks
        self.delay = delay
        self.raise_at = raise_at
        self.i = 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.raise_at is not None and self.i == self.raise_at:
            raise RuntimeError("e2e close-app raising at block %d" % self.i)
        n = self.chunks if isinstance(self.chunks, int) else len(self.chunks)
        if self.i >= n:
            raise StopIteration
        if self.delay:
            time.sleep(self.delay)
        block = b"x" * 65536 if isinstance(self.chunks, int) else self.chunks[self.i]
        self.i += 1
        with _LOCK:
            _SERVED[self.key] = _SERVED.get(self.key, 0) + 1
        return block

    def close(self):
        with _LOCK:
            _CLOSED[self.key] = _CLOSED.get(self.key, 0) + 1


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    key = environ.get("QUERY_STRING", "")
    ct = ("Content-Type", "text/plain")
    if path == "/closed":
        with _LOCK:
            data = json.dumps({"count": _CLOSED.get(key, 0), "served": _SERVED.get(key, 0)}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]
    if path == "/normal":
        start_response("200 OK", [ct, ("Content-Length", "2")])
        return Body(key, [b"a", b"b"])
    if path == "/nolength":
        start_response("200 OK", [ct])
        return Body(key, [b"a", b"b"])
    if path == "/stream":
        # Up to 64 MiB, 64 KiB every 10 ms: the client goes away long before.
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return Body(key, 1024, delay=0.01)
    if path == "/raise-midstream":
        start_response("200 OK", [ct])
        return Body(key, [b"a" * 1000, b"b", b"c"], raise_at=1)
    if path == "/raise-first":
        start_response("200 OK", [ct])
        return Body(key, [b"a"], raise_at=0)
    if path == "/no-content":
        start_response("204 No Content", [])
        return Body(key, [b"this must not be sent"])
    if path == "/late":
        # The client has gone by the time the app returns.
        time.sleep(1.0)
        start_response("200 OK", [ct])
        return Body(key, [b"too late"])
    start_response("404 Not Found", [ct])
    return [b"no such case\n"]
