"""badresponse: an app that misuses start_response or the body; PATH_INFO picks how.

Every case except /ok is a PEP 3333 violation the server must turn into a 500.
"""


def _ct():
    return [("Content-Type", "text/plain")]


CASES = {
    "/status-abc": lambda sr: sr("abc", _ct()),
    "/status-99": lambda sr: sr("99 X", _ct()),
    "/status-1000": lambda sr: sr("1000 Too Big", _ct()),
    "/status-bytes": lambda sr: sr(b"200 OK", _ct()),
    "/status-int": lambda sr: sr(200, _ct()),
    "/header-value-int": lambda sr: sr("200 OK", _ct() + [("X-Num", 5)]),
    "/header-name-bytes": lambda sr: sr("200 OK", _ct() + [(b"X-Bytes", "v")]),
    "/header-value-bytes": lambda sr: sr("200 OK", _ct() + [("X-Bytes", b"v")]),
    "/header-non-latin1": lambda sr: sr("200 OK", _ct() + [("X-Euro", "caf\u20ac")]),
    "/header-crlf-value": lambda sr: sr("200 OK", _ct() + [("X-A", "a\r\nX-Injected: 1")]),
    "/header-lf-value": lambda sr: sr("200 OK", _ct() + [("X-A", "a\nX-Injected: 1")]),
    "/header-cr-value": lambda sr: sr("200 OK", _ct() + [("X-A", "a\rX-Injected: 1")]),
    "/header-crlf-name": lambda sr: sr("200 OK", _ct() + [("X-A\r\nX-Injected", "1")]),
    "/header-colon-name": lambda sr: sr("200 OK", _ct() + [("X-Injected: 1\r\nX-A", "1")]),
    "/status-crlf": lambda sr: sr("200 OK\r\nX-Injected: 1", _ct()),
}


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/ok":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
        return [b"ok\n"]
    if path == "/body-str":
        start_response("200 OK", _ct())
        return ["a str is not a bytestring"]
    if path == "/no-start-response":
        return [b"start_response was never called"]
    if path == "/returns-none":
        start_response("200 OK", _ct())
        return None
    case = CASES.get(path)
    if case is None:
        start_response("404 Not Found", _ct())
        return [b"no such case\n"]
    case(start_response)
    return [b"the app believes this is fine\n"]
