"""filewrap: wsgi.file_wrapper with a real file and with file-like objects.

/file?path=P[&seek=N][&length=M][&nolength=1][&key=K]: serves the file P (opened
  as a real file with fileno()), from offset N, declaring Content-Length M
  (default: the rest of the file) unless nolength is set.
/bytesio?size=S[&key=K]: serves S pattern bytes from a BytesIO subclass.
/readonly?size=S[&key=K]: serves S pattern bytes from an object with only read()
  and close().
/closed?key=K: {"count": N} close() calls seen on K's file-like object.
Pattern byte i is (i * 7 + 3) % 256.
"""
import io
import json
import os
import threading
from urllib.parse import parse_qs

_LOCK = threading.Lock()
_CLOSED = {}


def _record_close(key):
    if key:
        with _LOCK:
            _CLOSED[key] = _CLOSED.get(key, 0) + 1


def pattern(size):
    return bytes((i * 7 + 3) % 256 for i in range(256)) * (size // 256) + \
        bytes((i * 7 + 3) % 256 for i in range(size % 256))


class TrackedFile(io.BufferedReader):
    key = ""

    def close(self):
        if not self.closed:
            _record_close(self.key)
        super().close()


class TrackedBytesIO(io.BytesIO):
    key = ""

    def close(self):
        if not self.closed:
            _record_close(self.key)
        super().close()


class ReadOnly:
    """Has read() and close() only: no fileno, no seek, no iteration."""

    def __init__(self, data, key):
        self._data = data
        self._pos = 0
        self._key = key

    def read(self, n=-1):
        if n is None or n < 0:
            n = len(self._data) - self._pos
        out = self._data[self._pos:self._pos + n]
        self._pos += len(out)
        return out

    def close(self):
        _record_close(self._key)


def application(environ, start_response):
    q = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    path = environ.get("PATH_INFO", "")
    wrapper = environ["wsgi.file_wrapper"]
    key = q.get("key", "")
    headers = [("Content-Type", "application/octet-stream")]
    if path == "/file":
        f = TrackedFile(io.FileIO(q["path"], "rb"))
        f.key = key
        size = os.fstat(f.fileno()).st_size
        seek = int(q.get("seek", "0"))
        if seek:
            f.seek(seek)
        length = int(q.get("length", str(size - seek)))
        if not q.get("nolength"):
            headers.append(("Content-Length", str(length)))
        start_response("200 OK", headers)
        return wrapper(f, 8192)
    if path == "/bytesio":
        size = int(q["size"])
        b = TrackedBytesIO(pattern(size))
        b.key = key
        if not q.get("nolength"):
            headers.append(("Content-Length", str(size)))
        start_response("200 OK", headers)
        return wrapper(b, 4096)
    if path == "/readonly":
        size = int(q["size"])
        if not q.get("nolength"):
            headers.append(("Content-Length", str(size)))
        start_response("200 OK", headers)
        return wrapper(ReadOnly(pattern(size), key), 4096)
    if path == "/closed":
        with _LOCK:
            data = json.dumps({"count": _CLOSED.get(key, 0)}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no such case\n"]
