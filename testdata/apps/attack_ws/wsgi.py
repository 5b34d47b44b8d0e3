"""A WSGI app for the site's own pool in e2e/attack_ws_test.go: answers its
method and path."""


def application(environ, start_response):
    body = ("wsgi %s %s\n" % (environ["REQUEST_METHOD"], environ["PATH_INFO"])).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
