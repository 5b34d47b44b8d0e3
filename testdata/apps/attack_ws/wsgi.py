"""A WSGI app beside the ASGI one: answers its path and method; /101
answers "101 Switching Protocols" with Upgrade: websocket (which a WSGI
app cannot do) and a body."""


def application(environ, start_response):
    if environ["PATH_INFO"] == "/101":
        start_response("101 Switching Protocols", [("Upgrade", "websocket"), ("Connection", "Upgrade")])
        return [b"raw bytes after a WSGI 101\n"]
    body = ("wsgi %s %s\n" % (environ["REQUEST_METHOD"], environ["PATH_INFO"])).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
