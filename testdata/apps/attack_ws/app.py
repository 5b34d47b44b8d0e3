"""ASGI app for e2e/attack_ws_test.go; the last path segment names the case.

WebSocket:
  /echo       accepts and echoes every message
  /sleepy     accepts and never calls receive() again (sleeps up to 60 s)
  /spew       accepts and sends N binary messages of SIZE bytes (from the first
              message, "N SIZE"), until send() fails
  /denyNNN    refuses with websocket.http.response of status NNN
HTTP:
  /pathsend?/abs/path  sends that file with http.response.pathsend
  anything else        "plain http"
"""
import asyncio


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            await send({"type": msg["type"] + ".complete"})
            if msg["type"] == "lifespan.shutdown":
                return
    case = scope["path"].rsplit("/", 1)[-1]
    if scope["type"] == "http":
        if case == "pathsend":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/octet-stream")]})
            await send({"type": "http.response.pathsend", "path": scope["query_string"].decode()})
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"plain http\n"})
        return
    msg = await receive()
    assert msg["type"] == "websocket.connect", msg
    if case.startswith("deny"):
        await send({"type": "websocket.http.response.start", "status": int(case[4:]),
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "websocket.http.response.body", "body": b"denied"})
        return
    await send({"type": "websocket.accept"})
    if case == "sleepy":
        await asyncio.sleep(60)
        return
    if case == "spew":
        msg = await receive()
        n, size = map(int, msg["text"].split())
        for _ in range(n):
            await send({"type": "websocket.send", "bytes": b"x" * size})
        return
    while True:
        msg = await receive()
        if msg["type"] == "websocket.disconnect":
            return
        if msg.get("text") is not None:
            await send({"type": "websocket.send", "text": msg["text"]})
        else:
            await send({"type": "websocket.send", "bytes": msg["bytes"]})
