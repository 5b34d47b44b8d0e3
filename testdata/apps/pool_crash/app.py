"""pool_crash: a worker that dies (e2e/pools_faults_test.go).

Paths:
  /ok        answers "ok"
  /exit      os._exit(7) in the middle of the request
  /segv      reads address 0 through ctypes (SIGSEGV) in segv_in_app_e2e
With CRASH_AFTER=S in the environment the process exits S seconds after the
import, serving or not (a pool that cannot stay up).
"""
import ctypes
import os
import threading
import time

if os.environ.get("CRASH_AFTER"):
    def _die():
        time.sleep(float(os.environ["CRASH_AFTER"]))
        os._exit(9)
    threading.Thread(target=_die, daemon=True).start()


def segv_in_app_e2e():
    return ctypes.string_at(0)


def handler_frame_e2e(path):
    if path == "/exit":
        os._exit(7)
    if path == "/segv":
        segv_in_app_e2e()


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    handler_frame_e2e(path)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"ok\n"]
