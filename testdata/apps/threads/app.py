"""threads: starts a non-daemon thread that never ends, at import time.

Py_FinalizeEx would wait for it forever: wisp must bound its shutdown.
"""
import threading
import time


def _forever():
    while True:
        time.sleep(0.1)


threading.Thread(target=_forever, name="e2e-forever", daemon=False).start()


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"ok\n"]
