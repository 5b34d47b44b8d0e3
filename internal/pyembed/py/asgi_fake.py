"""The parts of the C module _wisp_asgi that the tests of wisp_asgi.py give
it in Python (they run without the C side): scope() and head()."""


def scope(data, asgi):
    """The fields of the scope from Go's flat form, as _wisp_asgi.scope
    (wisp_asgi.c mod_scope) makes them: fields ended by NUL (http_version,
    method, scheme, raw_path, query_string, root_path, client host and port,
    server host and port), then header names and values; path is raw_path as
    latin-1, not unquoted."""
    p = data.split(b"\0")
    h = p[10:-1]
    return {
        "type": "http",
        "asgi": asgi,
        "http_version": p[0].decode("latin-1"),
        "method": p[1].decode("latin-1"),
        "scheme": p[2].decode("latin-1"),
        "path": p[3].decode("latin-1"),
        "raw_path": p[3],
        "query_string": p[4],
        "root_path": p[5].decode("utf-8", "replace"),
        "headers": list(zip(h[0::2], h[1::2])),
        "client": (p[6].decode("latin-1"), int(p[7])) if p[7] else None,
        "server": (p[8].decode("latin-1"), int(p[9]) if p[9] else None) if p[8] else None,
    }


def head(line, headers):
    """As _wisp_asgi.head when it declines: wisp_asgi.py encodes the head itself."""
    return None
