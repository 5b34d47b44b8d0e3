"""download: GET /?SIZE[&cl] streams SIZE bytes in 64 KiB blocks from a generator.

Block i is BASE[i % 251 : i % 251 + 65536] with BASE = bytes(range(251)) repeated;
the last block is cut to fit. With "&cl" a Content-Length is declared.
"""
BASE = bytes(range(251)) * 263
BLOCK = 65536


def _blocks(size):
    i = 0
    sent = 0
    while sent < size:
        off = i % 251
        n = min(BLOCK, size - sent)
        yield BASE[off:off + n]
        sent += n
        i += 1


def application(environ, start_response):
    q = environ.get("QUERY_STRING", "")
    size_s, _, flag = q.partition("&")
    size = int(size_s)
    headers = [("Content-Type", "application/octet-stream")]
    if flag == "cl":
        headers.append(("Content-Length", str(size)))
    start_response("200 OK", headers)
    return _blocks(size)
