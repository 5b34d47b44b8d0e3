"""errors: writes a marker (taken from the query string) to wsgi.errors."""


def application(environ, start_response):
    marker = environ.get("QUERY_STRING", "")
    err = environ["wsgi.errors"]
    err.write("e2e-errors-write %s\n" % marker)
    err.writelines(["e2e-errors-writelines-1 %s\n" % marker,
                    "e2e-errors-writelines-2 %s\n" % marker])
    err.flush()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"ok\n"]
