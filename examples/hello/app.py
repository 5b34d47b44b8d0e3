"""The smallest WSGI app: `make run` serves it on http://127.0.0.1:8000/."""


def application(environ, start_response):
    body = b"Hello from wisp!\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
