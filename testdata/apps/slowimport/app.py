"""slowimport: takes a second to import, then creates the file named by
$SLOWIMPORT_MARK (not a WISP_* name: wisp keeps those from apps): a test
can tell whether the server said it was ready (sd_notify READY=1) before or
after the app imported."""
import os
import time

time.sleep(1.0)
_mark = os.environ.get("SLOWIMPORT_MARK")
if _mark:
    with open(_mark, "w") as f:
        f.write(str(os.getpid()))


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"imported\n"]
