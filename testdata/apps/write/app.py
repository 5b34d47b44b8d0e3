"""write: the legacy write() callable returned by start_response."""


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    ct = ("Content-Type", "text/plain")
    if path == "/basic":
        write = start_response("200 OK", [ct])
        write(b"hello ")
        write(b"world")
        return [b"!"]
    if path == "/with-length":
        write = start_response("200 OK", [ct, ("Content-Length", "12")])
        write(b"hello world!")
        return []
    if path == "/big":
        # 100 blocks of 10000 bytes, block i filled with chr(ord('a') + i % 26).
        write = start_response("200 OK", [ct])
        for i in range(100):
            write(bytes([97 + i % 26]) * 10000)
        return []
    if path == "/then-iter":
        write = start_response("200 OK", [ct])
        write(b"a")
        write(b"")
        return iter([b"b", b"", b"c"])
    start_response("404 Not Found", [ct])
    return [b"no such case\n"]
