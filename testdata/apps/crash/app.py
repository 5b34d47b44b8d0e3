"""crash: application exceptions, before and after the headers went out."""
import time

CT = ("Content-Type", "text/plain")


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    marker = environ.get("QUERY_STRING", "")
    if path == "/ok":
        start_response("200 OK", [CT, ("Content-Length", "3")])
        return [b"ok\n"]
    if path == "/raise":
        raise RuntimeError("e2e-boom-" + marker)
    if path == "/raise-after-start":
        start_response("200 OK", [CT])
        raise RuntimeError("e2e-boom-" + marker)
    if path == "/raise-in-iter":
        def body():
            raise RuntimeError("e2e-boom-" + marker)
            yield b"never"
        start_response("200 OK", [CT])
        return body()
    if path == "/raise-midstream":
        def body():
            yield b"first-block;" * 100
            time.sleep(0.2)
            raise RuntimeError("e2e-boom-" + marker)
        start_response("200 OK", [CT])
        return body()
    if path == "/raise-midstream-length":
        def body():
            yield b"x" * 1000
            time.sleep(0.2)
            raise RuntimeError("e2e-boom-" + marker)
        start_response("200 OK", [CT, ("Content-Length", "100000")])
        return body()
    if path == "/sys-exit":
        raise SystemExit(3)
    if path == "/keyboard-interrupt":
        raise KeyboardInterrupt("e2e-boom-" + marker)
    start_response("404 Not Found", [CT])
    return [b"no such case\n"]
