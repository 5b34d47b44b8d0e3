"""pep3333: start_response's details.

GET /kw-replace  start_response(..., exc_info=sys.exc_info()) by keyword before
                 any body: the new status (503) wins
GET /kw-none     start_response(status, headers, exc_info=None)
GET /kw-bad      start_response(status, headers, bogus=1): TypeError, reported
GET /hop?NAME    sends the hop-by-hop header NAME: a fatal error (500)
GET /hop-caught?NAME  catches start_response's error and answers "caught: ..."
GET /bad-length?V    Set-Cookie, Content-Type and Content-Length V (invalid)
GET /two-lengths     Set-Cookie and two Content-Lengths
GET /gzip?PATH   wsgi.file_wrapper(gzip.open(PATH)): the decompressed bytes
GET /bz2?PATH, /lzma?PATH  the same with bz2 and lzma
"""
import bz2
import gzip
import lzma
import sys


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    q = environ.get("QUERY_STRING", "")
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
    if path == "/hop":
        start_response("200 OK", [ct, (q, "x")])
        return [b"hop header accepted\n"]
    if path == "/hop-caught":
        try:
            start_response("200 OK", [ct, (q, "x")])
        except Exception as e:
            body = ("caught: %s\n" % e).encode()
            start_response("200 OK", [ct])
            return [body]
        return [b"hop header accepted\n"]
    if path in ("/gzip", "/bz2", "/lzma"):
        opener = {"/gzip": gzip.open, "/bz2": bz2.open, "/lzma": lzma.open}[path]
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](opener(q, "rb"), 4096)
    if path == "/bad-length":
        start_response("200 OK", [("Set-Cookie", "e2e=secret"), ct, ("Content-Type", "text/html"),
                                  ("Content-Length", q or "abc")])
        return [b"body\n"]
    if path == "/two-lengths":
        start_response("200 OK", [("Set-Cookie", "e2e=secret"), ct, ("Content-Length", "5"),
                                  ("Content-Length", "5")])
        return [b"body\n"]
    start_response("200 OK", [ct])
    return [b"ok\n"]
