"""pep3333: start_response's details.

GET /kw-replace  start_response(..., exc_info=sys.exc_info()) by keyword before
                 any body: the new status (503) wins
GET /kw-none     start_response(status, headers, exc_info=None)
GET /kw-bad      start_response(status, headers, bogus=1): TypeError, reported
"""
import sys


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    ct = ("Content-Type", "text/plain")
    if path == "/kw-replace":
        start_response("200 OK", [ct])
        try:
            raise ValueError("e2e kw-replace")
        except ValueError:
            start_response("503 Service Unavailable", [ct, ("X-Second", "1")], exc_info=sys.exc_info())
        return [b"replaced\n"]
    if path == "/kw-none":
        start_response("200 OK", [ct], exc_info=None)
        return [b"kw-none\n"]
    if path == "/kw-bad":
        try:
            start_response("200 OK", [ct], bogus=1)
        except TypeError as e:
            body = ("TypeError: %s\n" % e).encode()
            start_response("200 OK", [ct])
            return [body]
        start_response("200 OK", [ct])
        return [b"accepted bogus\n"]
    start_response("200 OK", [ct])
    return [b"ok\n"]
