"""ASGI WebSocket app for e2e/attack_ws_test.go: misbehaving apps, one per
last path segment:
  /echo       accepts and echoes every message
  /slowaccept waits 3 s, then accepts and echoes
  /denyNNN    refuses with websocket.http.response of status NNN
  /sleepy     accepts and never calls receive() again (sleeps up to 60 s)
  /twice      accepts twice; reports the second send's outcome as a text message
  /afterclose accepts, closes 1000, then sends a text message; the outcome is marked
  /spew       accepts and sends N messages of SIZE bytes ("N SIZE" first), marking the count sent
  /raisemid   accepts, sends one message, raises
  /block      accepts, then blocks the loop with time.sleep(3)
HTTP: /pathsend?/abs/path sends that file with http.response.pathsend;
/trailers?name=HEXVALUE sends a body and that trailer (and x-ok: 1);
/statusNNN answers status NNN with a body that looks like a request.
Marks go to $WS_MARK.
"""
import asyncio
import os
import time


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
        case = scope["path"].rsplit("/", 1)[-1]
        if case == "pathsend":
            # the file named by the query string, sent with http.response.pathsend
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/octet-stream")]})
            await send({"type": "http.response.pathsend", "path": scope["query_string"].decode()})
            return
        if case.startswith("status"):
            # answers with the status in the path (status101, status100, ...) and a body
            await send({"type": "http.response.start", "status": int(case[6:]), "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"GET /ws/x HTTP/1.1\r\nHost: smuggled\r\n\r\n"})
            return
        if case == "trailers":
            # a body, then trailers whose name and value come from the query string (name=value)
            name, _, value = scope["query_string"].decode().partition("=")
            await send({"type": "http.response.start", "status": 200, "trailers": True,
                        "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"body\n"})
            try:
                await send({"type": "http.response.trailers", "headers": [(name.encode(), bytes.fromhex(value)), (b"x-ok", b"1")]})
            except ValueError:
                await send({"type": "http.response.trailers", "headers": [(b"x-refused", b"1")]})
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"plain http\n"})
        return
    case = scope["path"].rsplit("/", 1)[-1]
    msg = await receive()
    assert msg["type"] == "websocket.connect", msg
    if case.startswith("deny"):
        # a denial response with the status in the path (deny101, deny200, ...)
        await send({"type": "websocket.http.response.start", "status": int(case[4:]),
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "websocket.http.response.body", "body": b"denied"})
        return
    if case == "slowaccept":
        await asyncio.sleep(3)
    await send({"type": "websocket.accept"})
    if case == "sleepy":
        await asyncio.sleep(60)
        return
    if case == "twice":
        try:
            await send({"type": "websocket.accept"})
            out = "second accept: no error"
        except Exception as e:
            out = "second accept: %s: %s" % (type(e).__name__, e)
        mark(out)
        await send({"type": "websocket.send", "text": out})
        await receive()
        return
    if case == "afterclose":
        await send({"type": "websocket.close", "code": 1000})
        try:
            await send({"type": "websocket.send", "text": "after close"})
            mark("send after close: no error")
        except Exception as e:
            mark("send after close: %s" % type(e).__name__)
        return
    if case == "spew":
        msg = await receive()
        n, size = map(int, msg["text"].split())
        sent = 0
        try:
            for i in range(n):
                await send({"type": "websocket.send", "bytes": b"x" * size})
                sent += 1
        except Exception as e:
            mark("spew stopped after %d: %s" % (sent, type(e).__name__))
            return
        mark("spew sent all %d" % sent)
        return
    if case == "raisemid":
        await send({"type": "websocket.send", "text": "one"})
        raise RuntimeError("raised midway")
    if case == "block":
        time.sleep(3)
    while True:
        msg = await receive()
        if msg["type"] == "websocket.disconnect":
            mark("disconnect %s" % msg["code"])
            return
        if msg.get("text") is not None:
            await send({"type": "websocket.send", "text": msg["text"]})
        else:
            await send({"type": "websocket.send", "bytes": msg["bytes"]})
