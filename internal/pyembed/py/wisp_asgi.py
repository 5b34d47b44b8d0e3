"""wisp_asgi: the event-loop side of wisp's ASGI support (module _wisp_asgi_py).

One asyncio loop per process runs here, on a Python thread of its own that a
locked goroutine owns (wisp_asgi.c's wisp_loop_run calls run()). Go queues
messages for it in C and writes an eventfd only when the loop waits; wake()
takes every queued message at once. Responses go back through _wisp_asgi.emit
and .finish, the pool's bounded completion queue: when its window is full,
send() awaits a RESUME message instead of blocking the loop.

Detection (register) runs on the main thread at import, before any request.
"""

import asyncio
import http
import inspect
import os
import re
import stat
import sys
import traceback
from collections import deque
from urllib.parse import unquote

import _wisp
import _wisp_asgi as C

# message kinds (wisp_py.h WISP_A_*)
NEW, BODY, GONE, CANCEL, RESUME, LIFESPAN, PING, QUIT, WS, MSG = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
MSG_COST = 256  # wisp_py.h WISP_MSG_COST: what a WebSocket message counts beyond its bytes
# outcomes of a request (wisp_py.h WISP_OK ...)
OK, ERR_EARLY, ERR_LATE, CODE_GONE = 0, 1, 2, 3

ASGI = {"version": "3.0", "spec_version": "2.4"}
# what an HTTP scope announces (each scope gets a copy of the outer dict)
HTTP_EXTENSIONS = {"http.response.pathsend": {}, "http.response.trailers": {}}
# the head's last field when trailers follow the body (not a token: no app
# header can be it)
TRAILERS_MARK = b"\x01trailers\0\0"
DISCONNECT = {"type": "http.disconnect"}

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_LINES = {s.value: b"%d %s" % (s.value, s.phrase.encode("latin-1")) for s in http.HTTPStatus}


class ClientDisconnected(OSError):
    """send() on a request whose client went away (ASGI spec 2.4)."""


class _App:
    __slots__ = ("app", "state", "lifespan", "route_path")

    def __init__(self, app):
        self.app = app
        self.state = {}
        self.lifespan = None
        self.route_path = routes_within_root_path(app)


# frameworks that route on scope["path"] as the path below root_path, up to
# the version that reads root_path: (top-level module of the app's class, the
# package whose version counts, the first version that takes the full path)
_ROUTE_BELOW_ROOT = {"starlette": ("starlette", (0, 35)), "fastapi": ("starlette", (0, 35)),
                     "channels": ("channels", (4, 1))}


def routes_within_root_path(app):
    """Whether app routes on scope["path"] taken as the path below
    root_path, as servers gave it before the ASGI spec said that path holds
    root_path, and so would answer 404 at a vdir other than /: Starlette
    before 0.35 (so FastAPI on Debian 12, Starlette 0.26) and Channels before
    4.1 (Debian 12's 4.0) do. Quart, Django and later Starlette and Channels
    take the full path, which wisp gives by default."""
    for cls in type(app).__mro__:
        known = _ROUTE_BELOW_ROOT.get(cls.__module__.split(".", 1)[0])
        if known is None:
            continue
        try:
            pkg = __import__(known[0])
            v = tuple(int(x) for x in pkg.__version__.split(".")[:2])
        except (ImportError, AttributeError, ValueError):
            return False
        return v < known[1]
    return False


_apps = {}


def is_asgi(app):
    """Whether app is an ASGI 3 application: a coroutine function, or an
    object whose __call__ is one, taking (scope, receive, send)."""
    if inspect.isclass(app):
        return False
    f = app if inspect.iscoroutinefunction(app) else getattr(app, "__call__", None)
    if f is None or not inspect.iscoroutinefunction(f):
        return False
    try:
        inspect.signature(app).bind(None, None, None)
    except TypeError:
        raise TypeError(
            "%r is a coroutine function but does not take (scope, receive, send): "
            "not an ASGI 3 application" % (app,)) from None
    except ValueError:
        pass  # no signature to check (a C callable)
    return True


def register(app_id, app, want):
    """Decides the interface of a loaded app (want: auto, asgi, wsgi) and,
    for ASGI, keeps it for the loop. Returns True for ASGI."""
    if want == "wsgi":
        try:
            asgi = is_asgi(app)
        except TypeError:
            asgi = False
        if asgi:
            raise TypeError(
                "%r is an ASGI application (a coroutine function taking (scope, receive, send)), "
                "but interface = \"wsgi\" was set: use interface = \"asgi\" or \"auto\"" % (app,))
        return False
    if want == "asgi":
        if not callable(app):
            raise TypeError("%r is not callable: not an ASGI application" % (app,))
        _apps[app_id] = _App(app)
        return True
    if is_asgi(app):
        _apps[app_id] = _App(app)
        return True
    return False


def encode_head(status, headers):
    """The status line and headers as Go reads them: b"200 OK\\0name\\0value\\0..."."""
    if type(status) is not int or not 100 <= status <= 999:
        raise ValueError("http.response.start: invalid status %r" % (status,))
    line = _LINES.get(status) or b"%d " % status
    h = C.head(line, headers)  # a list or tuple of valid pairs of bytes; else None
    if h is not None:
        return h
    out = [line]
    out.extend(_encode_fields(headers, "http.response.start"))
    out.append(b"")
    return b"\0".join(out)


def _encode_fields(headers, what):
    """The names and values of headers, bytes, checked (what: the message, for the error)."""
    out = []
    for h in headers:
        name, value = h
        if type(name) is not bytes:
            name = bytes(name)
        if type(value) is not bytes:
            value = bytes(value)
        if not _TOKEN.match(name) or _BAD_VALUE.search(value):
            raise ValueError("%s: invalid header %r" % (what, (name, value)))
        out.append(name)
        out.append(value)
    return out


def make_scope(data, state, route_path=False):
    """The HTTP scope from Go's flat form (its fields made by C: wisp_asgi.c
    mod_scope), with the app's state and the extensions."""
    scope = C.scope(data, ASGI)
    path = scope["path"]
    if "%" in path:
        scope["path"] = path = unquote(path)
    if route_path:
        root_path = scope["root_path"]
        if root_path and path.startswith(root_path):
            scope["path"] = path[len(root_path):] or "/"
    scope["state"] = state.copy()
    scope["extensions"] = HTTP_EXTENSIONS.copy()
    return scope


class Request:
    """One HTTP request on the loop: its scope, the body chunks Go posted, and
    where its response stands."""

    __slots__ = ("srv", "job", "gen", "scope", "chunks", "more", "waiter", "resume", "gone", "started", "hdr",
                 "done", "task", "trailers")

    def __init__(self, srv, job, gen, scope, body, more):
        self.srv = srv
        self.job = job
        self.gen = gen
        self.scope = scope
        self.chunks = deque()
        if body or not more:
            self.chunks.append(body)
        self.more = more
        self.waiter = None  # receive() waits for body or a disconnect
        self.resume = None  # send() waits for room
        self.gone = False
        self.started = False
        self.hdr = None  # the encoded head, until it goes with the first body
        self.done = False  # the job is Go's again: never touch it
        self.trailers = None  # http.response.trailers: the fields so far, once the body is complete

    def wake(self):
        for f in (self.waiter, self.resume):
            if f is not None and not f.done():
                f.set_result(None)

    async def receive(self):
        while True:
            if self.chunks:
                b = self.chunks.popleft()
                if b and not self.done:
                    C.consumed(self.job, len(b))
                return {"type": "http.request", "body": b, "more_body": bool(self.chunks) or self.more}
            if self.done or self.gone:
                return DISCONNECT
            f = self.waiter = self.srv.loop.create_future()
            try:
                await f
            finally:
                self.waiter = None

    async def send(self, msg):
        if self.gone:
            raise ClientDisconnected("the client went away")
        t = msg["type"]
        if t == "http.response.body":
            await self.body(msg)
            return
        if t == "http.response.start":
            self.start(msg)
            return
        if t == "http.response.trailers":
            self.add_trailers(msg)
            return
        if t == "http.response.pathsend":
            self.pathsend(msg)
            return
        raise ValueError("unexpected ASGI message %r in an http scope" % (t,))

    def start(self, msg):
        if self.started:
            raise RuntimeError("http.response.start sent twice")
        self.hdr = encode_head(msg["status"], msg.get("headers", ()))
        if msg.get("trailers"):
            # Go keeps the body chunked, whatever its length, for the trailers
            self.hdr += TRAILERS_MARK
            self.trailers = False
        self.started = True

    def add_trailers(self, msg):
        if self.trailers is None:
            raise RuntimeError("http.response.trailers without trailers: True in http.response.start")
        if self.trailers is False:
            raise RuntimeError("http.response.trailers before the last http.response.body")
        self.trailers.extend(_encode_fields(msg.get("headers", ()), "http.response.trailers"))
        if not msg.get("more_trailers", False):
            self.finish(b"\0" + b"\0".join(self.trailers) + b"\0" if self.trailers else b"\0", b"", OK, None)

    def pathsend(self, msg):
        """http.response.pathsend: the body is the file at msg["path"], sent by Go (sendfile)."""
        if not self.started:
            raise RuntimeError("http.response.pathsend sent before http.response.start")
        if self.done or self.trailers is not None:
            raise RuntimeError("http.response.pathsend after the body began, or with trailers")
        path = msg["path"]
        if not os.path.isabs(path):
            raise ValueError("http.response.pathsend: the path %r is not absolute" % (path,))
        # O_NONBLOCK: a FIFO must not block the loop in open(); only a
        # regular file is sent (sendfile ignores the flag for it)
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise ValueError("http.response.pathsend: %r is not a regular file" % (path,))
            n = st.st_size
        except BaseException:
            os.close(fd)
            raise
        hdr, self.hdr = self.hdr, None
        if C.sendfile(self.job, hdr, fd, n) < 0:  # Go owns fd now, even on failure
            self.gone = True
            raise ClientDisconnected("the client went away")
        self.finish(None, b"", OK, None)

    async def emit(self, hdr, body):
        """Hands Go one piece of the response; waits while its window is full."""
        rc = C.emit(self.job, hdr, body)
        if rc == 1:
            f = self.resume = self.srv.loop.create_future()
            try:
                await f
            finally:
                self.resume = None
            if self.gone:
                raise ClientDisconnected("the client went away")
        elif rc < 0:
            self.gone = True
            raise ClientDisconnected("the client went away")

    async def body(self, msg):
        if not self.started:
            raise RuntimeError("http.response.body sent before http.response.start")
        if self.done:
            raise RuntimeError("http.response.body sent after the response was complete")
        body = msg.get("body", b"")
        if type(body) is not bytes:
            body = bytes(body)
        hdr, self.hdr = self.hdr, None
        if not msg.get("more_body", False):
            if self.trailers is False:
                # the body is complete; the trailers end the response
                self.trailers = []
                if hdr is not None or body:
                    await self.emit(hdr, body)
                return
            self.finish(hdr, body, OK, None)
            return
        if not body and hdr is None:
            return
        await self.emit(hdr, body)

    def finish(self, hdr, body, code, err):
        self.done = True
        self.srv.reqs.pop(self.job, None)
        C.finish(self.job, hdr, body, code, err.encode("utf-8", "replace") if err else None)
        self.wake()  # a receive() still waiting (a disconnect listener) gets http.disconnect

    async def run(self, app):
        request_var.set(self)  # the trace tags what this task and its children write (observing, below)
        try:
            await app(self.scope, self.receive, self.send)
        except BaseException as e:
            if self.done:
                if not isinstance(e, (asyncio.CancelledError, ClientDisconnected)):
                    _wisp.log(3, "ASGI app raised after its response was complete: " + traceback.format_exc())
            elif self.gone:
                self.finish(None, b"", CODE_GONE, None)
            else:
                self.finish(None, b"", ERR_LATE if self.started else ERR_EARLY,
                            traceback.format_exc())
            return  # SystemExit included: a request's failure, as in a WSGI app, never the loop's end
        if not self.done:
            self.returned()

    def returned(self):
        """The app returned with its response not finished."""
        if self.gone:
            self.finish(None, b"", CODE_GONE, None)
        elif self.started:
            self.finish(None, b"", ERR_LATE, "ASGI app returned before its response body was complete "
                                              "(the last http.response.body must have more_body False)")
        else:
            self.finish(None, b"", ERR_EARLY, "ASGI app returned without sending a response")


# WebSocket states: the handshake waits for the app; accepted; the app sent
# its close (the client's answer is awaited); a denial response began.
CONNECTING, OPEN, CLOSING, DENYING = 0, 1, 2, 3
WS_EXTENSIONS = {"websocket.http.response": {}}


def websocket_scope(data, state, route_path=False):
    """The WebSocket scope from Go's flat form (make_scope's)."""
    scope = make_scope(data, state, route_path)
    del scope["method"]
    scope["type"] = "websocket"
    scope["scheme"] = "wss" if scope["scheme"] == "https" else "ws"
    protos = []
    for name, value in scope["headers"]:
        if name == b"sec-websocket-protocol":
            protos.extend(p.strip() for p in value.decode("latin-1").split(",") if p.strip())
    scope["subprotocols"] = protos
    scope["extensions"] = WS_EXTENSIONS.copy()
    return scope


class WebSocket(Request):
    """One WebSocket on the loop. Go does the handshake, framing and
    checks; this side moves whole messages. Messages from the client queue
    in chunks as (text, payload); what the app sends goes to Go as emits
    tagged A (accept), T or B (a message), C (close)."""

    __slots__ = ("ws", "connected", "code", "reason")

    def __init__(self, srv, job, gen, scope):
        Request.__init__(self, srv, job, gen, scope, b"", True)
        self.chunks.clear()
        self.ws = CONNECTING
        self.connected = False  # websocket.connect was received
        self.code = 1006
        self.reason = ""

    def disconnect(self):
        return {"type": "websocket.disconnect", "code": self.code, "reason": self.reason}

    async def receive(self):
        if not self.connected:
            self.connected = True
            return {"type": "websocket.connect"}
        while True:
            if self.chunks:
                text, b = self.chunks.popleft()
                if not self.done:
                    C.consumed(self.job, len(b) + MSG_COST)
                if text:
                    return {"type": "websocket.receive", "text": b.decode("utf-8")}
                return {"type": "websocket.receive", "bytes": b}
            if self.done or self.gone:
                return self.disconnect()
            f = self.waiter = self.srv.loop.create_future()
            try:
                await f
            finally:
                self.waiter = None

    async def send(self, msg):
        t = msg["type"]
        if self.done or self.gone:
            if t == "websocket.close":
                return  # closed already: a close in a finally block is no error
            raise ClientDisconnected("the WebSocket is closed (%s)" % t)
        st = self.ws
        if t == "websocket.send":
            if st != OPEN:
                raise RuntimeError("websocket.send before websocket.accept" if st == CONNECTING
                                   else "websocket.send after websocket.close")
            b = msg.get("bytes")
            if b is not None:
                await self.emit(b"B", b if type(b) is bytes else bytes(b))
                return
            text = msg.get("text")
            if text is None:
                raise ValueError("websocket.send without bytes or text")
            await self.emit(b"T", text.encode("utf-8"))
            return
        if t == "websocket.accept":
            if st != CONNECTING:
                raise RuntimeError("websocket.accept sent twice, or after a close or a response")
            sub = msg.get("subprotocol")
            fields = [sub.encode("latin-1") if sub else b""]
            fields.extend(_encode_fields(msg.get("headers", ()), "websocket.accept"))
            self.ws = OPEN
            self.started = True
            await self.emit(b"A" + b"\0".join(fields), b"")
            return
        if t == "websocket.close":
            code = msg.get("code") or 1000
            reason = msg.get("reason") or ""
            if st == CONNECTING:
                # before accept: a 403 (ASGI spec), the connection then ends
                self.ws = CLOSING
                self.finish(encode_head(403, [(b"content-type", b"text/plain; charset=utf-8")]),
                            b"403 Forbidden: the application refused the WebSocket\n", OK, None)
                return
            if st != OPEN:
                raise RuntimeError("websocket.close sent twice, or during a response")
            self.ws = CLOSING
            await self.emit(b"C%d\0%s" % (code, reason.encode("utf-8")), b"")
            return
        if t == "websocket.http.response.start":
            if st != CONNECTING:
                raise RuntimeError("websocket.http.response.start after the handshake was answered")
            self.ws = DENYING
            Request.start(self, msg)
            return
        if t == "websocket.http.response.body":
            if st != DENYING:
                raise RuntimeError("websocket.http.response.body without websocket.http.response.start")
            await self.body(msg)
            return
        raise ValueError("unexpected ASGI message %r in a websocket scope" % (t,))

    def returned(self):
        if self.ws in (OPEN, CLOSING):
            self.finish(None, b"", OK, None)  # Go closes with 1000 if the app did not close
        elif self.ws == DENYING:
            self.finish(None, b"", ERR_LATE, "ASGI app returned before its denial response was complete")
        elif self.gone:
            self.finish(None, b"", CODE_GONE, None)
        else:
            self.finish(None, b"", ERR_EARLY, "ASGI app returned without accepting or closing the WebSocket")


class Lifespan:
    """The lifespan protocol of one app: its task, and where it stands."""

    def __init__(self, loop, app):
        self.loop = loop
        self.app = app
        self.inbox = asyncio.Queue()
        self.reply = None  # the future startup or shutdown waits on
        self.supported = True
        self.task = None

    async def receive(self):
        return await self.inbox.get()

    async def send(self, msg):
        t = msg["type"]
        if self.reply is not None and not self.reply.done():
            if t in ("lifespan.startup.complete", "lifespan.shutdown.complete"):
                self.reply.set_result((True, None))
                return
            if t in ("lifespan.startup.failed", "lifespan.shutdown.failed"):
                self.reply.set_result((False, msg.get("message", "")))
                return
        raise ValueError("unexpected ASGI lifespan message %r" % (t,))

    async def main(self):
        scope = {"type": "lifespan", "asgi": ASGI, "state": self.app.state}
        try:
            await self.app.app(scope, self.receive, self.send)
            outcome = (None, "the app returned from the lifespan protocol")
        except BaseException:
            outcome = (None, traceback.format_exc())
        if self.reply is not None and not self.reply.done():
            self.reply.set_result(outcome)

    async def phase(self, name):
        self.reply = self.loop.create_future()
        if self.task is None:
            self.task = self.loop.create_task(self.main())
        await self.inbox.put({"type": "lifespan." + name})
        return await self.reply

    async def startup(self, mode):
        ok, msg = await self.phase("startup")
        if ok:
            return None
        if ok is False:
            return "lifespan startup failed: " + (msg or "(no message)")
        # the app raised or returned: it does not speak lifespan
        self.supported = False
        if mode == "on":
            return "lifespan startup: " + msg
        _wisp.log(1, "the ASGI app does not support the lifespan protocol; going on without it "
                     "(lifespan = \"off\" skips it): " + msg.strip().splitlines()[-1])
        return None

    async def shutdown(self):
        if not self.supported or self.task is None or self.task.done():
            return None
        ok, msg = await self.phase("shutdown")
        if ok:
            return None
        if ok is False:
            return "lifespan shutdown failed: " + (msg or "(no message)")
        return "lifespan shutdown: " + msg


class Server:
    """The loop's side of every request: the requests by job, and what
    Go's messages do to them."""

    def __init__(self, lp, loop):
        self.lp = lp
        self.loop = loop
        self.reqs = {}
        self.tasks = set()  # strong references: a task runs until its app returns

    def spawn(self, coro):
        t = self.loop.create_task(coro)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)
        return t

    def wake(self, efd):
        try:
            os.read(efd, 8)
        except BlockingIOError:
            pass
        reqs = self.reqs
        for kind, job, gen, app, more, data, body in C.drain(self.lp):
            if kind == NEW or kind == WS:
                try:
                    a = _apps[app]
                    if kind == NEW:
                        r = Request(self, job, gen, make_scope(data, a.state, a.route_path), body, more != 0)
                    else:
                        r = WebSocket(self, job, gen, websocket_scope(data, a.state, a.route_path))
                except Exception:
                    # never lose the rest of the batch: this request gets a 500
                    C.finish(job, None, b"", ERR_EARLY, traceback.format_exc().encode("utf-8", "replace"))
                    continue
                reqs[job] = r
                r.task = self.spawn(r.run(a.app))
                continue
            if kind in (PING, LIFESPAN, QUIT):
                self.control(kind, job, app, more, data)
                continue
            r = reqs.get(job)
            if r is None or r.gen != gen:
                continue  # the request ended meanwhile
            if kind == MSG:
                r.chunks.append((more == 1, body))
                r.wake()
            elif kind == BODY:
                r.more = more != 0
                if body or (not r.more and not r.chunks):
                    r.chunks.append(body)  # an empty last chunk tells the app the body ended
                r.wake()
            elif kind == RESUME:
                r.wake()
            elif kind == GONE:
                r.gone = True
                if type(r) is WebSocket:
                    r.code = app
                    r.reason = data.decode("utf-8", "replace") if data else ""
                r.wake()
            elif kind == CANCEL:
                r.gone = True
                r.wake()
                r.task.cancel()

    def control(self, kind, job, app, more, data):
        if kind == PING:
            C.finish(job, None, b"", OK, None)
        elif kind == LIFESPAN:
            self.spawn(self.lifespan(job, app, more, data.decode()))
        elif kind == QUIT:
            self.loop.stop()

    async def lifespan(self, job, app_id, phase, mode):
        a = _apps[app_id]
        try:
            if phase == 0:
                if a.lifespan is None:
                    a.lifespan = Lifespan(self.loop, a)
                err = await a.lifespan.startup(mode)
            else:
                err = await a.lifespan.shutdown() if a.lifespan is not None else None
        except BaseException:
            err = "lifespan: " + traceback.format_exc()
        C.finish(job, None, b"", OK if err is None else ERR_EARLY, err.encode("utf-8", "replace") if err else None)


def new_loop(kind):
    """An event loop of the kind asked for: auto (uvloop when it imports),
    asyncio or uvloop. Returns the loop and its name."""
    if kind in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError as e:
            if kind == "uvloop":
                raise RuntimeError("loop = \"uvloop\", but uvloop cannot be imported: %s" % e) from None
        else:
            return uvloop.new_event_loop(), "uvloop " + getattr(uvloop, "__version__", "")
    return asyncio.new_event_loop(), "asyncio"


def run(lp, efd, kind):
    """Runs the process's event loop on this thread until a QUIT message."""
    loop, name = new_loop(kind)
    asyncio.set_event_loop(loop)
    srv = Server(lp, loop)
    loop.add_reader(efd, srv.wake, efd)
    _wisp.log(1, "ASGI event loop: %s (Python %s)" % (name.strip(), sys.version.split()[0]))
    try:
        loop.run_forever()
    finally:
        C.stopped(lp)
        loop.remove_reader(efd)
        for t in list(srv.tasks):
            t.cancel()
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


# ---- observing the loop: trace tags, what blocks it, a stuck task's stack ----
#
# request_var holds the Request a task serves: Request.run sets it, and the
# tasks an app starts inherit it, so that the C writer of sys.stdout and
# sys.stderr (wisp_py.c mod_log) tags what a request's coroutines print with
# its request id (current_job). blocked() and task_stack() are called by Go
# from another thread, holding the GIL, while the loop is blocked or a
# request has timed out: they only read.

import contextvars  # noqa: E402 (this section's own import)

request_var = contextvars.ContextVar("wisp_request", default=None)


def current_job():
    """The job (a C pointer) of the ASGI request whose task runs in this
    context, or 0: none, or its response is complete (the job is Go's)."""
    r = request_var.get()
    return r.job if r is not None and not r.done else 0


def _loop_thread():
    """The loop thread's innermost frame and its run() frame, or (None, None)."""
    code = run.__code__
    for frame in sys._current_frames().values():
        f = frame
        while f is not None:
            if f.f_code is code:
                return frame, f
            f = f.f_back
    return None, None


def _request_of(task, frame):
    """The Request task (the running one, or None if unknown) serves:
    through its context (3.12+), or the Request.run frame on the stack."""
    get_context = getattr(task, "get_context", None) if task is not None else None
    if get_context is not None:
        r = get_context().get(request_var)
        if r is not None:
            return r
    code = Request.run.__code__
    while frame is not None:
        if frame.f_code is code:
            return frame.f_locals.get("self")
        frame = frame.f_back
    return None


def _handler(frame, run_frame):
    """The innermost coroutine function on the loop thread's stack (the
    async def that does not yield), with its file and line, or None."""
    f = frame
    while f is not None and f is not run_frame:
        c = f.f_code
        if c.co_flags & inspect.CO_COROUTINE and c is not Request.run.__code__:
            return "%s (%s:%d)" % (getattr(c, "co_qualname", c.co_name), c.co_filename, f.f_lineno)
        f = f.f_back
    return None


def _describe(task, r):
    """The task's coroutine, and the request's method and path."""
    coro = task.get_coro() if task is not None else None
    name = getattr(coro, "__qualname__", None) or repr(coro)
    uri = ""
    if r is not None:
        s = r.scope
        method = s.get("method") or s.get("type", "").upper()  # a WebSocket's scope has no method
        uri = "%s %s" % (method, s.get("raw_path", b"").decode("latin-1"))
        if s.get("query_string"):
            uri += "?" + s["query_string"].decode("latin-1")
    return name, uri


def _stack_below_run(frame, run_frame):
    """The loop thread's stack from its innermost frame down to, not
    including, run() and what is below it."""
    frames = []
    f = frame
    while f is not None and f is not run_frame:
        frames.append(f)
        f = f.f_back
    frames.reverse()
    out = traceback.StackSummary.extract(((f, f.f_lineno) for f in frames), lookup_lines=True)
    return "".join(out.format())


def _await_stack(coro):
    """Where a suspended coroutine stands: its frame and those of what it
    awaits, down the chain (Task.get_stack shows only the first), then the
    awaitable at the end of it."""
    frames = []
    for _ in range(256):
        f = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None) or getattr(coro, "ag_frame", None)
        if f is None:
            break
        frames.append((f, f.f_lineno))
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None) or getattr(coro, "ag_await", None)
    out = "".join(traceback.StackSummary.extract(iter(frames), lookup_lines=True).format())
    if coro is not None:
        out += "  awaiting %s\n" % (repr(coro)[:200],)
    return out


def blocked():
    """What blocks the loop, as "handler\\0uri\\0stack": the coroutine of
    the task running now, the request it serves ("" if none) and the loop
    thread's Python stack."""
    try:
        frame, run_frame = _loop_thread()
        if frame is None:
            return "\0\0(the event loop's thread runs no Python code)"
        if frame is run_frame:
            return "\0\0(the event loop waits for work: nothing blocks it now)"
        loop = run_frame.f_locals.get("loop")
        current = getattr(asyncio.tasks, "_current_tasks", {}).get(loop)
        name, uri = _describe(current, _request_of(current, frame))
        if current is None:
            name = "(no task: a callback of the loop)"
        name = _handler(frame, run_frame) or name
        return "%s\0%s\0%s" % (name, uri, _stack_below_run(frame, run_frame))
    except Exception as e:  # never let diagnosis fail
        return "\0\0(no stack: %r)" % (e,)


def task_stack(job, gen):
    """The coroutine stack of the task serving the request (job, gen), for
    the log of its timeout: where it awaits, or where it runs if it is the
    task that blocks the loop."""
    try:
        frame, run_frame = _loop_thread()
        srv = run_frame.f_locals.get("srv") if run_frame is not None else None
        r = srv.reqs.get(job) if srv is not None else None
        if r is None or r.gen != gen or r.task is None:
            if frame is None or frame is run_frame:
                return "(the request's task is not on the event loop: not started yet, or just ended)"
            name, uri, stack = blocked().split("\0", 2)
            return ("(the event loop has not started this request's task: it is blocked by %s%s, at:\n%s)"
                    % (name or "a callback", " (" + uri + ")" if uri else "", stack))
        task = r.task
        loop = run_frame.f_locals.get("loop")
        if getattr(asyncio.tasks, "_current_tasks", {}).get(loop) is task:
            return "Stack for %r (it is running and blocks the loop):\n%s" % (task, _stack_below_run(frame, run_frame))
        return "Stack for %r (most recent call last):\n%s" % (task, _await_stack(task.get_coro()))
    except Exception as e:  # never let diagnosis fail
        return "(no stack: %r)" % (e,)

