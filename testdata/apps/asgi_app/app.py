"""A raw ASGI 3 app for wisp's ASGI tests (e2e/asgi_test.go), one route per case.

Lifespan: startup and shutdown append a line ("startup PID" / "shutdown PID") to
the file $ASGI_MARK names, and put "greeting" in the state; with
$ASGI_FAIL_STARTUP set, startup fails with that message.
"""
import asyncio
import hashlib
import json
import os

released = asyncio.Event()  # /release lets /stream send its second chunk
progress = {"sent": 0}  # bytes /flood has handed to send() so far


def mark(line):
    path = os.environ.get("ASGI_MARK")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


async def lifespan(scope, receive, send):
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            fail = os.environ.get("ASGI_FAIL_STARTUP")
            if fail:
                await send({"type": "lifespan.startup.failed", "message": fail})
                return
            scope["state"]["greeting"] = "hello from lifespan"
            mark("startup %d" % os.getpid())
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            mark("shutdown %d" % os.getpid())
            await send({"type": "lifespan.shutdown.complete"})
            return


async def respond(send, body, status=200, ctype=b"text/plain"):
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", ctype)]})
    await send({"type": "http.response.body", "body": body})


async def segv_in_coroutine_e2e():
    await asyncio.sleep(0)
    import ctypes
    return ctypes.string_at(0)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(scope, receive, send)
    path = "/" + scope["path"].rsplit("/", 1)[-1]  # the last segment names the route, wherever it is mounted
    if path == "/segv":  # a segfault in a coroutine: the crash report shows the coroutine's frames
        await segv_in_coroutine_e2e()
    if path == "/trailers":  # two body pieces, then trailers in two messages
        assert "http.response.trailers" in scope["extensions"], scope["extensions"]
        await send({"type": "http.response.start", "status": 200, "trailers": True,
                    "headers": [(b"content-type", b"text/plain"), (b"trailer", b"x-checksum, x-count")]})
        await send({"type": "http.response.body", "body": b"part one,", "more_body": True})
        await send({"type": "http.response.body", "body": b" part two"})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc123")], "more_trailers": True})
        await send({"type": "http.response.trailers", "headers": [(b"x-count", b"2")]})
        return
    if path == "/pathsend":  # the file named by the query, sent by the server
        assert "http.response.pathsend" in scope["extensions"], scope["extensions"]
        name = scope["query_string"].decode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/octet-stream")]})
        await send({"type": "http.response.pathsend", "path": name})
        return
    if path == "/scope":
        msg = await receive()
        s = dict(scope)
        s["raw_path"] = s["raw_path"].decode("latin-1")
        s["query_string"] = s["query_string"].decode("latin-1")
        s["headers"] = [[n.decode("latin-1"), v.decode("latin-1")] for n, v in s["headers"]]
        s["pid"] = os.getpid()
        s["first_message"] = {"type": msg["type"], "more_body": msg["more_body"], "body": msg["body"].decode()}
        return await respond(send, json.dumps(s, default=str).encode(), ctype=b"application/json")
    if path == "/body":
        sizes, more, h = [], [], hashlib.sha256()
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                return  # the client went away (or the body was refused)
            sizes.append(len(msg["body"]))
            more.append(msg["more_body"])
            h.update(msg["body"])
            if not msg["more_body"]:
                break
        out = {"sizes": sizes, "more": more, "total": sum(sizes), "sha256": h.hexdigest()}
        return await respond(send, json.dumps(out).encode(), ctype=b"application/json")
    if path == "/stream":
        released.clear()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"first chunk\n", "more_body": True})
        await asyncio.wait_for(released.wait(), 20)
        await send({"type": "http.response.body", "body": b"second chunk\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    if path == "/release":
        released.set()
        return await respond(send, b"released")
    if path == "/disconnect":
        while (await receive())["type"] == "http.request":
            pass  # the body, then a wait for the next message: http.disconnect
        mark("disconnected")
        return
    if path == "/slow":
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            mark("cancelled")
            raise
        return await respond(send, b"too late")
    if path == "/raise-late":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        await asyncio.sleep(0.3)  # the partial body is on the wire (else wisp may still answer a clean 500)
        raise RuntimeError("boom after the response started")
    if path == "/raise-early":
        raise RuntimeError("boom before the response")
    if path == "/flood":
        n = int(scope["query_string"].decode() or "1024")
        chunk = b"x" * 65536
        progress["sent"] = 0
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream"),
                                (b"content-length", str(n * len(chunk)).encode())]})
        for i in range(n):
            await send({"type": "http.response.body", "body": chunk, "more_body": i < n - 1})
            progress["sent"] += len(chunk)
        return
    if path == "/pattern":  # chunks of sizes around what wisp copies or hands over as views, then one big body
        sizes = [1, 16383, 16384, 16385, 65536, 200000, 0, 3]
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/octet-stream")]})
        for i, n in enumerate(sizes):
            # a new object each time, dropped at once: a view freed too soon
            # would show another chunk's bytes
            await send({"type": "http.response.body", "body": bytes([i + 65]) * n, "more_body": True})
        await send({"type": "http.response.body", "body": bytes(range(256)) * 4096})  # 1 MiB, the last
        return
    if path == "/shapes":  # headers as the spec allows them: any iterable of pairs, bytes-like values
        shape = scope["query_string"].decode()
        pairs = [(b"x-one", b"1"), (b"x-two", b"two\tparts")]
        headers = {"tuple": tuple(pairs), "lists": [list(p) for p in pairs], "gen": (p for p in pairs),
                   "bytearray": [(bytearray(n), bytearray(v)) for n, v in pairs]}[shape]
        await send({"type": "http.response.start", "status": 299, "headers": headers})
        await send({"type": "http.response.body", "body": shape.encode()})
        return
    if path == "/bad-header":  # a header no server may send: send() raises, the client gets 500
        bad = {"name": (b"x bad", b"v"), "value": (b"x-bad", b"a\r\nb"), "empty": (b"", b"v"),
               "nul": (b"x-bad", b"a\0b")}[scope["query_string"].decode()]
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-ok", b"1"), bad]})
        return
    if path == "/progress":
        return await respond(send, str(progress["sent"]).encode())
    return await respond(send, b"Hello, ASGI!")
