"""review: edge cases found in review (exc_info values, late timeouts, HEAD)."""
import sys
import time


def application(environ, start_response):
    if environ["PATH_INFO"] == "/file-nolen":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](open(__file__, "rb"))
    return _gen(environ, start_response)


def _gen(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/excinfo-none":
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"first"
        # outside an except block: (None, None, None) is "no exc_info"
        start_response("500 Oops", [("Content-Type", "text/plain")], sys.exc_info())
        yield b"never"
    elif path == "/excinfo-bogus":
        start_response("200 OK", [("Content-Type", "text/plain")], (1, 2, 3))
        yield b"never"
    elif path == "/late-spin":
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"started"
        n = 0
        while True:
            n += 1
    elif path == "/empty":
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b""
    else:
        body = ("echo " + path).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        yield body
