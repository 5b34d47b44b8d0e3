"""A raw ASGI app: hello, plus a route that echoes its scope as JSON."""
import json


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"].endswith("/scope"):
        msg = await receive()
        s = dict(scope)
        s["raw_path"] = s["raw_path"].decode("latin-1")
        s["query_string"] = s["query_string"].decode("latin-1")
        s["headers"] = [[n.decode("latin-1"), v.decode("latin-1")] for n, v in s["headers"]]
        s["first_message"] = {"type": msg["type"], "more_body": msg["more_body"], "body": msg["body"].decode()}
        body = json.dumps(s, default=str).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"Hello, ASGI!"})
