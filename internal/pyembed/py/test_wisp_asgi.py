"""Tests for wisp_asgi.py (run: /usr/bin/python3 -m pytest -q in this directory).

Fake ``_wisp`` and ``_wisp_asgi`` modules stand in for the C side: the fake
``_wisp_asgi`` records the hand-offs (emit, finish, consumed) and answers emit
with what the test sets, so the request and lifespan logic runs on a plain
asyncio loop.
"""

import asyncio
import os
import sys
import types

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import asgi_fake  # noqa: E402

LOG = []
CALLS = []
_fake_wisp = sys.modules.setdefault("_wisp", types.ModuleType("_wisp"))
if not hasattr(_fake_wisp, "log"):
    _fake_wisp.log = lambda level, msg: LOG.append((level, msg))
_fake_c = types.ModuleType("_wisp_asgi")
_fake_c.window_full = False
_fake_c.emit = lambda job, hdr, body: CALLS.append(("emit", job, hdr, body)) or (1 if _fake_c.window_full else 0)
_fake_c.finish = lambda job, hdr, body, code, err: CALLS.append(("finish", job, hdr, body, code, err))
_fake_c.consumed = lambda job, n: CALLS.append(("consumed", job, n))
_fake_c.scope, _fake_c.head = asgi_fake.scope, asgi_fake.head
sys.modules["_wisp_asgi"] = _fake_c

import wisp_asgi as wa  # noqa: E402


def flat(*fields, headers=()):
    out = b""
    for f in fields:
        out += f + b"\0"
    for n, v in headers:
        out += n + b"\0" + v + b"\0"
    return out


SCOPE = flat(b"1.1", b"GET", b"http", b"/a/caf%C3%A9%20x", b"q=1", b"/a", b"127.0.0.1", b"5000",
             b"127.0.0.1", b"8000", headers=[(b"host", b"x"), (b"x-a", b"1"), (b"x-a", b"2")])


def test_make_scope():
    s = wa.make_scope(SCOPE, {"k": "v"})
    assert s["type"] == "http" and s["http_version"] == "1.1" and s["method"] == "GET"
    assert s["path"] == "/a/café x" and s["raw_path"] == b"/a/caf%C3%A9%20x"
    assert s["query_string"] == b"q=1" and s["root_path"] == "/a"
    assert s["headers"] == [(b"host", b"x"), (b"x-a", b"1"), (b"x-a", b"2")]
    assert s["client"] == ("127.0.0.1", 5000) and s["server"] == ("127.0.0.1", 8000)
    assert s["state"] == {"k": "v"}


def test_make_scope_unix_socket():
    s = wa.make_scope(flat(b"1.1", b"GET", b"http", b"/", b"", b"", b"", b"", b"/run/w.sock", b""), {})
    assert s["client"] is None and s["server"] == ("/run/w.sock", None) and s["headers"] == []


def test_state_is_a_copy():
    state = {"n": 1}
    s = wa.make_scope(SCOPE, state)
    s["state"]["n"] = 2
    assert state["n"] == 1


async def asgi3(scope, receive, send):
    pass


class Asgi3:
    async def __call__(self, scope, receive, send):
        pass


def wsgi(environ, start_response):
    return []


async def two(environ, start_response):
    pass


def test_detection():
    assert wa.is_asgi(asgi3) and wa.is_asgi(Asgi3())
    assert not wa.is_asgi(wsgi) and not wa.is_asgi(Asgi3)
    with pytest.raises(TypeError, match="does not take"):
        wa.is_asgi(two)


def test_register():
    assert wa.register(1, asgi3, "auto") is True
    assert wa.register(2, wsgi, "auto") is False
    assert wa.register(3, wsgi, "asgi") is True  # asked for: trusted
    with pytest.raises(TypeError, match="is an ASGI application"):
        wa.register(4, asgi3, "wsgi")


def test_encode_head():
    assert wa.encode_head(200, [(b"content-type", b"text/plain")]) == b"200 OK\0content-type\0text/plain\0"
    assert wa.encode_head(299, []) == b"299 \0"
    for bad in [(99, []), ("200", []), (200, [(b"bad name", b"x")]), (200, [(b"x", b"a\r\nb")])]:
        with pytest.raises(ValueError):
            wa.encode_head(*bad)


def run_request(app, body=b"", more=False, msgs=()):
    """Runs app as the loop's Server would, feeding msgs (kind, body, more) after it started."""
    CALLS.clear()

    async def main():
        loop = asyncio.get_running_loop()
        srv = wa.Server(0, loop)
        r = wa.Request(srv, 7, 1, wa.make_scope(SCOPE, {}), body, more)
        srv.reqs[7] = r
        task = r.task = loop.create_task(r.run(app))
        for kind, b, m in msgs:
            await asyncio.sleep(0)
            if kind == wa.BODY:
                r.more = m
                if b or (not m and not r.chunks):
                    r.chunks.append(b)
            elif kind == wa.GONE:
                r.gone = True
            elif kind == wa.RESUME:
                pass
            r.wake()
        await asyncio.wait_for(task, 5)
        return r

    return asyncio.run(main())


def test_hello_is_one_hand_off():
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"a", b"b")]})
        await send({"type": "http.response.body", "body": b"hi"})

    run_request(app)
    assert CALLS == [("finish", 7, b"200 OK\0a\0b\0", b"hi", wa.OK, None)]


def test_body_streams_with_more_body():
    got = []

    async def app(scope, receive, send):
        while True:
            m = await receive()
            got.append((m["body"], m["more_body"]))
            if not m["more_body"]:
                break
        await send({"type": "http.response.start", "status": 204})
        await send({"type": "http.response.body"})

    run_request(app, body=b"a", more=True, msgs=[(wa.BODY, b"b", True), (wa.BODY, b"", False)])
    assert got == [(b"a", True), (b"b", True), (b"", False)]
    assert ("consumed", 7, 1) in CALLS and ("consumed", 7, 1) in CALLS[1:]


def test_disconnect_reaches_receive_and_send_raises():
    seen = []

    async def app(scope, receive, send):
        assert (await receive())["type"] == "http.request"
        seen.append((await receive())["type"])
        await send({"type": "http.response.start", "status": 200})

    run_request(app, msgs=[(wa.GONE, b"", False)])
    assert seen == ["http.disconnect"]
    assert CALLS[-1][0] == "finish" and CALLS[-1][4] == wa.CODE_GONE


def test_send_waits_when_the_window_is_full():
    order = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"1", "more_body": True})
        order.append("resumed")
        await send({"type": "http.response.body", "body": b"2"})

    _fake_c.window_full = True
    try:
        run_request(app, msgs=[(wa.RESUME, b"", False)])
    finally:
        _fake_c.window_full = False
    assert order == ["resumed"]
    assert [c[0] for c in CALLS] == ["emit", "finish"] and CALLS[0][2].startswith(b"200 OK")


def test_errors():
    async def early(scope, receive, send):
        raise RuntimeError("early")

    run_request(early)
    assert CALLS[-1][4] == wa.ERR_EARLY and b"early" in CALLS[-1][5]

    async def late(scope, receive, send):
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"x", "more_body": True})
        raise RuntimeError("late")

    run_request(late)
    assert CALLS[-1][4] == wa.ERR_LATE and b"late" in CALLS[-1][5]

    async def silent(scope, receive, send):
        pass

    run_request(silent)
    assert CALLS[-1][4] == wa.ERR_EARLY and b"without sending a response" in CALLS[-1][5]


def test_lifespan():
    async def app(scope, receive, send):
        assert scope["type"] == "lifespan"
        await receive()
        scope["state"]["db"] = "up"
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.failed", "message": "db stuck"})

    async def main():
        a = wa._App(app)
        ls = wa.Lifespan(asyncio.get_running_loop(), a)
        assert await ls.startup("on") is None and a.state == {"db": "up"}
        assert await ls.shutdown() == "lifespan shutdown failed: db stuck"

    asyncio.run(main())


def test_lifespan_unsupported():
    async def app(scope, receive, send):
        assert scope["type"] == "http"

    async def main():
        for mode, want in (("auto", None), ("on", "lifespan startup")):
            ls = wa.Lifespan(asyncio.get_running_loop(), wa._App(app))
            err = await ls.startup(mode)
            assert (err is None) if want is None else err.startswith(want)

    asyncio.run(main())


def test_a_bad_message_does_not_lose_the_batch():
    msgs = [(wa.NEW, 1, 1, 999, 0, SCOPE, b""), (wa.PING, 2, 1, 0, 0, None, None)]
    _fake_c.drain = lambda lp: msgs
    CALLS.clear()

    async def main():
        r, w = os.pipe()
        os.set_blocking(r, False)
        try:
            wa.Server(0, asyncio.get_running_loop()).wake(r)
        finally:
            os.close(r)
            os.close(w)

    asyncio.run(main())
    assert [(c[0], c[1], c[4]) for c in CALLS] == [("finish", 1, wa.ERR_EARLY), ("finish", 2, wa.OK)]
