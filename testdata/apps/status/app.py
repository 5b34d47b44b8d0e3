"""A WSGI app that answers with the status line its query names: /?418 gives
"418 I'm a teapot", /?599 "599 Custom Thing" (the forwarding tests)."""

LINES = {"418": "418 I'm a teapot", "599": "599 Custom Thing"}


def application(environ, start_response):
    status = LINES.get(environ.get("QUERY_STRING", ""), "200 OK")
    start_response(status, [("Content-Type", "text/plain")])
    return [status.encode() + b"\n"]
