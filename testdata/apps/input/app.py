"""input: exercises every wsgi.input method; PATH_INFO selects the sequence.

The response is JSON: {"parts": [...latin-1 decoded results...], "types": [...]}.
"""
import hashlib
import json


def _sequence(path, inp):
    if path == "/read-n":
        return [inp.read(3), inp.read(4), inp.read(1 << 20), inp.read(5)]
    if path == "/read-all":
        return [inp.read(), inp.read()]
    if path == "/read-minus-one":
        return [inp.read(-1), inp.read(-1)]
    if path == "/readline":
        return [inp.readline(), inp.readline(2), inp.readline(), inp.readline(-1),
                inp.readline(), inp.readline()]
    if path == "/readlines":
        return inp.readlines()
    if path == "/iter":
        return [line for line in inp]
    if path == "/mixed":
        first = inp.readline()
        two = inp.read(2)
        return [first, two] + list(inp)
    raise LookupError(path)


def application(environ, start_response):
    inp = environ["wsgi.input"]
    path = environ.get("PATH_INFO", "")
    if path == "/count":
        # Iterates a (large) body line by line: counts lines, hashes everything.
        h = hashlib.sha256()
        lines = 0
        total = 0
        for line in inp:
            lines += 1
            total += len(line)
            h.update(line)
        result = {"lines": lines, "len": total, "sha256": h.hexdigest()}
    else:
        try:
            parts = _sequence(path, inp)
        except LookupError:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"no such sequence\n"]
        result = {
            "parts": [p.decode("latin-1") if isinstance(p, bytes) else repr(p) for p in parts],
            "types": [type(p).__name__ for p in parts],
        }
    data = json.dumps(result).encode("ascii")
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(data)))])
    return [data]
