"""A WSGI app beside the ASGI one: answers its path and method."""


def application(environ, start_response):
    body = ("wsgi %s %s\n" % (environ["REQUEST_METHOD"], environ["PATH_INFO"])).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
