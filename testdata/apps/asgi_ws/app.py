"""A raw ASGI 3 WebSocket app for wisp's WebSocket tests (e2e/asgi_ws_test.go).

The last path segment names the case:
  /echo      accepts (with the first subprotocol offered, if any), echoes every
             message as it came (text as text, bytes as bytes); "close:CODE:REASON"
             closes with that code and reason; "scope" answers the scope as JSON
  /deny      closes before accepting (a 403)
  /teapot    answers with a response of its own (websocket.http.response)
  /raise     accepts, then raises on the first message
  /noaccept  returns without accepting
  /flood     accepts and sends N binary messages of SIZE bytes, each starting with its
             number in 8 digits (from the first message "N SIZE"), then closes 1000
  /disconnect accepts, waits for the disconnect and writes its code and reason to $WS_MARK
"""
import json
import os


def mark(line):
    path = os.environ.get("WS_MARK")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            await send({"type": msg["type"] + ".complete"})
            if msg["type"] == "lifespan.shutdown":
                return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"plain http\n"})
        return
    assert scope["type"] == "websocket", scope["type"]
    case = "/" + scope["path"].rsplit("/", 1)[-1]
    msg = await receive()
    assert msg["type"] == "websocket.connect", msg
    if case == "/deny":
        await send({"type": "websocket.close", "code": 1008})
        return
    if case == "/teapot":
        await send({"type": "websocket.http.response.start", "status": 418,
                    "headers": [(b"content-type", b"text/plain"), (b"x-why", b"teapot")]})
        await send({"type": "websocket.http.response.body", "body": b"I'm a teapot", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"!\n"})
        return
    if case == "/noaccept":
        return
    subs = scope.get("subprotocols") or []
    accept = {"type": "websocket.accept", "headers": [(b"x-accepted", b"yes")]}
    if subs:
        accept["subprotocol"] = subs[0]
    await send(accept)
    if case == "/raise":
        await receive()
        raise RuntimeError("boom in a websocket")
    if case == "/flood":
        msg = await receive()
        n, size = map(int, msg["text"].split())
        for i in range(n):
            await send({"type": "websocket.send", "bytes": (b"%08d" % i).ljust(size, b"x")})
        await send({"type": "websocket.close", "code": 1000})
        return
    if case == "/disconnect":
        while True:
            msg = await receive()
            if msg["type"] == "websocket.disconnect":
                mark("disconnect %s %s" % (msg["code"], msg.get("reason", "")))
                return
    while True:
        msg = await receive()
        if msg["type"] == "websocket.disconnect":
            mark("disconnect %s %s" % (msg["code"], msg.get("reason", "")))
            return
        text = msg.get("text")
        if text is not None:
            if text.startswith("close:"):
                _, code, reason = text.split(":", 2)
                await send({"type": "websocket.close", "code": int(code), "reason": reason})
                continue
            if text == "scope":
                s = {k: v for k, v in scope.items() if k not in ("state",)}
                s["raw_path"] = s["raw_path"].decode("latin-1")
                s["query_string"] = s["query_string"].decode("latin-1")
                s["headers"] = [[n.decode("latin-1"), v.decode("latin-1")] for n, v in s["headers"]]
                await send({"type": "websocket.send", "text": json.dumps(s, default=str)})
                continue
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": msg["bytes"]})
