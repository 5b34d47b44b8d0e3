"""slow: GET /sleep?SECONDS[&KEY] logs "e2e-slow-start KEY" to wsgi.errors, sleeps, answers "done"."""
import time


def application(environ, start_response):
    q = environ.get("QUERY_STRING", "")
    seconds, _, key = q.partition("&")
    err = environ["wsgi.errors"]
    err.write("e2e-slow-start %s\n" % key)
    err.flush()
    time.sleep(float(seconds or "0"))
    body = b"done " + key.encode("latin-1")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
