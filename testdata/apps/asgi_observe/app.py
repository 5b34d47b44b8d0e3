"""asgi_observe: an ASGI app for e2e/asgi_observe_test.go (trace, loop lag,
a blocked loop, a timed-out task).

/talk/<n>: prints, logs (the logging module, on stderr), starts a child task
that prints, awaiting between them, so that requests overlap on the loop.
/block: an async def that blocks the loop in time.sleep($BLOCK_SECONDS, 3).
/slow: an async def that awaits for 30 s (for request_timeout).
/hello: answers at once.
"""
import asyncio
import logging
import os
import sys
import time

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
log = logging.getLogger("observe")


async def respond(send, body, status=200):
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


async def child(path):
    await asyncio.sleep(0.05)
    print("child: %s" % path)


async def talk(path, send):
    print("print: %s step 1" % path)
    await asyncio.sleep(0.1)
    log.info("logging: %s", path)
    task = asyncio.create_task(child(path))
    await asyncio.sleep(0.1)
    await task
    sys.stderr.write("stderr: %s\n" % path)
    print("print:", path, "step 3")
    await respond(send, b"talked\n")


async def blocking_handler(send):
    time.sleep(float(os.environ.get("BLOCK_SECONDS", "3")))
    await respond(send, b"blocked\n")


async def slow_handler(send):
    await asyncio.sleep(30)
    await respond(send, b"slow\n")


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                print("lifespan startup print")
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if path.startswith("/talk/"):
        return await talk(path, send)
    if path == "/block":
        return await blocking_handler(send)
    if path == "/slow":
        return await slow_handler(send)
    await respond(send, b"hello\n")
