"""pool_venv: reports which virtualenv serves it (a module only that venv has)."""
import sys

import venv_marker  # installed into each test venv's site-packages, with different NAMEs


def application(environ, start_response):
    body = ("%s %s" % (venv_marker.NAME, sys.prefix)).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
