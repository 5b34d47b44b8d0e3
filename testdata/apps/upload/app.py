"""upload: reads the request body in 64 KiB blocks and returns its length and sha256.

Reads CONTENT_LENGTH bytes when it is set, else until read() returns b"".
"""
import hashlib
import json

CHUNK = 64 * 1024


def application(environ, start_response):
    inp = environ["wsgi.input"]
    cl = environ.get("CONTENT_LENGTH", "")
    remaining = int(cl) if cl else None
    h = hashlib.sha256()
    n = 0
    while remaining is None or remaining > 0:
        data = inp.read(CHUNK if remaining is None else min(CHUNK, remaining))
        if not data:
            break
        h.update(data)
        n += len(data)
        if remaining is not None:
            remaining -= len(data)
    body = json.dumps({
        "len": n,
        "sha256": h.hexdigest(),
        "content_length": cl,
        "input_terminated": repr(environ.get("wsgi.input_terminated")),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
