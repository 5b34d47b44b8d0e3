"""direct: streamed responses that the app's thread writes straight to the
client (e2e/direct_test.go). Block i of 64 KiB is filled with the byte i % 251,
so that a block out of order or lost shows.

  /stream?N&CL   N blocks; with a Content-Length if CL is 1, else chunked
  /over?N&DECL   N blocks under a declared Content-Length of DECL bytes
  /hang?N        N blocks (with a Content-Length of N+1 blocks), then a sleep
                 in C code that no timeout interrupts
  /writefile?N   N blocks through write(), then blocks N to N+7 from
                 wsgi.file_wrapper (a file after direct writes)
  /small         a short answer
"""
import tempfile
import time

BLOCK = 65536


def block(i):
    return bytes([i % 251]) * BLOCK


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    q = [int(x) for x in environ.get("QUERY_STRING", "").split("&") if x]
    if path == "/stream":
        n, cl = q
        headers = [("Content-Type", "application/octet-stream")]
        if cl:
            headers.append(("Content-Length", str(n * BLOCK)))
        start_response("200 OK", headers)
        return (block(i) for i in range(n))
    if path == "/over":
        n, decl = q
        start_response("200 OK", [("Content-Length", str(decl))])
        return (block(i) for i in range(n))
    if path == "/hang":
        n = q[0]

        def gen():
            for i in range(n):
                yield block(i)
            time.sleep(8)
            yield block(n)

        start_response("200 OK", [("Content-Length", str((n + 1) * BLOCK))])
        return gen()
    if path == "/writefile":
        n = q[0]
        f = tempfile.TemporaryFile()
        for i in range(n, n + 8):
            f.write(block(i))
        f.seek(0)
        write = start_response("200 OK", [("Content-Length", str((n + 8) * BLOCK))])
        for i in range(n):
            write(block(i))
        return environ["wsgi.file_wrapper"](f, BLOCK)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"small\n"]
