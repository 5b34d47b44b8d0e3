"""A Starlette app as a user writes it for `uvicorn app:app`, run unchanged
with `wisp run app:app` (e2e/asgi_apps_test.go TestRealStarlette*).

Routes with a path parameter, a middleware that stamps every response, a
lifespan that yields state (copied into each request's scope), an upload
read with request.stream(), a StreamingResponse, and a WebSocketEndpoint
that echoes.
"""
import contextlib
import hashlib
import os
import time

from starlette.applications import Starlette
from starlette.endpoints import WebSocketEndpoint
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute


@contextlib.asynccontextmanager
async def lifespan(app):
    yield {"started_at": time.time(), "pid": os.getpid(), "greeting": "hello from the lifespan"}


class StampMiddleware(BaseHTTPMiddleware):
    async def dispatch(self, request, call_next):
        began = time.perf_counter()
        response = await call_next(request)
        response.headers["X-Served-By"] = "starlette"
        response.headers["X-Elapsed-Ms"] = "%.3f" % ((time.perf_counter() - began) * 1000)
        return response


async def homepage(request):
    return JSONResponse({"greeting": request.state.greeting, "pid": request.state.pid})


async def hello(request):
    return PlainTextResponse(f"hello, {request.path_params['name']}")


async def upload(request):
    digest = hashlib.sha256()
    size = chunks = 0
    async for chunk in request.stream():
        digest.update(chunk)
        size += len(chunk)
        chunks += 1 if chunk else 0
    return JSONResponse({"size": size, "chunks": chunks, "sha256": digest.hexdigest()})


async def ticks(request):
    n = int(request.query_params.get("n", "3"))

    async def gen():
        for i in range(n):
            yield f"tick {i}\n".encode()

    return StreamingResponse(gen(), media_type="text/plain")


class Echo(WebSocketEndpoint):
    encoding = "text"

    async def on_connect(self, websocket):
        await websocket.accept()
        await websocket.send_text("welcome")

    async def on_receive(self, websocket, data):
        await websocket.send_text(f"echo: {data}")


app = Starlette(
    routes=[
        Route("/", homepage),
        Route("/hello/{name}", hello),
        Route("/upload", upload, methods=["POST"]),
        Route("/ticks", ticks),
        WebSocketRoute("/ws", Echo),
    ],
    middleware=[Middleware(StampMiddleware)],
    lifespan=lifespan,
)
