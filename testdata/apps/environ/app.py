"""environ: reports the WSGI environ as JSON.

Every str value is returned as is (latin-1 "bytes in str" survive JSON as
\\u00XX escapes); any other value is returned as its repr. "types" maps each
key to the name of its value's type. A request body, if any, is read with
read(n) calls and reported by length and sha256.
"""
import hashlib
import json


def _read_body(environ):
    inp = environ["wsgi.input"]
    h = hashlib.sha256()
    n = 0
    cl = environ.get("CONTENT_LENGTH")
    remaining = int(cl) if cl else None
    while remaining is None or remaining > 0:
        want = 65536 if remaining is None else min(65536, remaining)
        data = inp.read(want)
        if not data:
            break
        h.update(data)
        n += len(data)
        if remaining is not None:
            remaining -= len(data)
    return n, h.hexdigest()


def application(environ, start_response):
    values = {}
    types = {}
    for key, value in environ.items():
        types[key] = type(value).__name__
        values[key] = value if isinstance(value, str) else repr(value)
    body_len, body_sha = _read_body(environ)
    data = json.dumps({
        "environ": values,
        "types": types,
        "body_len": body_len,
        "body_sha256": body_sha,
    }).encode("ascii")
    start_response("200 OK", [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(data))),
    ])
    return [data]
