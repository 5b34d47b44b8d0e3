"""printer: writes to every stream an app has, for `wisp trace`: print
(sys.stdout), sys.stderr, the logging module (a stream handler on stderr,
configured at import) and wsgi.errors; each line names the request's path."""
import logging
import sys

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
log = logging.getLogger("printer")
print("printer imported")


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    print("print:", path)
    sys.stderr.write("stderr: %s\n" % path)
    log.info("logging: %s", path)
    environ["wsgi.errors"].write("wsgi.errors: %s\n" % path)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"printed\n"]
