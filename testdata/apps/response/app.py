"""response: how the server frames response bodies; PATH_INFO picks the case."""
import time

CT = ("Content-Type", "text/plain")


def _slow_first():
    yield b"first;"
    time.sleep(3)
    yield b"second"


def _big():
    # 50 blocks of 8192 bytes; block i is filled with chr(ord('A') + i % 26).
    for i in range(50):
        yield bytes([65 + i % 26]) * 8192


def _empty_blocks():
    yield b""
    yield b"abc"
    yield b""
    yield b"def"
    yield b""


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/short-body":
        # Declares 100 bytes, sends 10.
        start_response("200 OK", [CT, ("Content-Length", "100")])
        return [b"0123456789"]
    if path == "/long-body":
        # Declares 5 bytes, sends 11.
        start_response("200 OK", [CT, ("Content-Length", "5")])
        return [b"hello", b" world"]
    if path == "/big-stream":
        start_response("200 OK", [CT])
        return _big()
    if path == "/small":
        start_response("200 OK", [CT])
        return [b"tiny"]
    if path == "/slow-first":
        start_response("200 OK", [CT])
        return _slow_first()
    if path == "/empty-blocks":
        start_response("200 OK", [CT])
        return _empty_blocks()
    if path == "/empty":
        start_response("200 OK", [CT, ("Content-Length", "0")])
        return []
    if path == "/204":
        start_response("204 No Content", [("X-Case", "204")])
        return [b"this body must not be sent"]
    if path == "/304":
        start_response("304 Not Modified", [("X-Case", "304"), ("ETag", '"e2e"')])
        return [b"this body must not be sent"]
    if path == "/head-target":
        start_response("200 OK", [CT, ("Content-Length", "11"), ("X-Custom", "yes")])
        return [b"hello world"]
    if path == "/head-stream":
        start_response("200 OK", [CT, ("X-Custom", "stream")])
        return _big()
    if path == "/multi-header":
        start_response("200 OK", [CT, ("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/"),
                                  ("X-Order", "one"), ("X-Order", "two"), ("Content-Length", "2")])
        return [b"ok"]
    if path == "/latin1-header":
        start_response("200 OK", [CT, ("X-Latin", "caf\u00e9"), ("Content-Length", "2")])
        return [b"ok"]
    start_response("404 Not Found", [CT])
    return [b"no such case\n"]
