"""wsgi_modules: answers whether wisp loaded its ASGI glue (and with it
asyncio) into this WSGI-only process: "asgi-glue=0" is what it must say."""
import sys


def application(environ, start_response):
    body = b"asgi-glue=%d" % ("_wisp_asgi_py" in sys.modules)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
