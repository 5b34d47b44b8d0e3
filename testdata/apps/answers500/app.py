"""answers500: imports fine, then answers every request 500 (an install of it
must fail its own check of the new vdir, and be rolled back)."""


def application(environ, start_response):
    start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
    return [b"broken on purpose\n"]
