"""Tests for the observing section of wisp_asgi.py (run: /usr/bin/python3 -m
pytest -q in this directory): the request a task's output belongs to, and
the stacks the log shows for a timed-out task.

The C side is faked as in test_wisp_asgi.py (whichever test module loads first
installs the fakes; both record the same calls).
"""

import asyncio
import os
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import asgi_fake  # noqa: E402

_fake_wisp = sys.modules.setdefault("_wisp", types.ModuleType("_wisp"))
if not hasattr(_fake_wisp, "log"):
    _fake_wisp.log = lambda level, msg: None
if "_wisp_asgi" not in sys.modules:
    _fake_c = types.ModuleType("_wisp_asgi")
    _fake_c.emit = lambda job, hdr, body: 0
    _fake_c.finish = lambda job, hdr, body, code, err: None
    _fake_c.consumed = lambda job, n: None
    _fake_c.scope, _fake_c.head = asgi_fake.scope, asgi_fake.head
    sys.modules["_wisp_asgi"] = _fake_c

import wisp_asgi as wa  # noqa: E402

SCOPE = b"1.1\0GET\0http\0/talk\0q=1\0\0127.0.0.1\0" + b"5000\0127.0.0.1\08000\0"


def test_current_job_follows_the_request_and_its_children():
    seen = {}

    async def child():
        await asyncio.sleep(0)
        seen["child"] = wa.current_job()

    async def app(scope, receive, send):
        seen["handler"] = wa.current_job()
        await asyncio.gather(child(), asyncio.sleep(0.01))
        seen["after await"] = wa.current_job()
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"ok"})
        seen["after the response"] = wa.current_job()
        later.append(asyncio.get_running_loop().create_task(background()))

    async def background():
        await asyncio.sleep(0.01)
        seen["background, after the response"] = wa.current_job()

    later = []

    async def main():
        loop = asyncio.get_running_loop()
        srv = wa.Server(0, loop)
        reqs = []
        for job in (11, 12):  # two requests overlap on the loop
            r = wa.Request(srv, job, 1, wa.make_scope(SCOPE, {}), b"", False)
            srv.reqs[job] = r
            reqs.append(r)
        await asyncio.gather(*(loop.create_task(r.run(app)) for r in reqs))
        await asyncio.gather(*later)
        seen["loop"] = wa.current_job()

    asyncio.run(main())
    # the second request ran last: each value is its job, not the other's
    assert seen == {"handler": 12, "child": 12, "after await": 12, "after the response": 0,
                    "background, after the response": 0, "loop": 0}


def test_await_stack_shows_the_whole_chain():
    async def inner():
        await asyncio.sleep(30)

    async def handler():
        await inner()

    async def main():
        t = asyncio.get_running_loop().create_task(handler())
        await asyncio.sleep(0.01)
        text = wa._await_stack(t.get_coro())
        t.cancel()
        return text

    text = asyncio.run(main())
    assert "in handler" in text and "await inner()" in text
    assert "in inner" in text and "await asyncio.sleep(30)" in text
    assert "in sleep" in text and "awaiting <" in text


def test_blocked_without_a_loop():
    assert wa.blocked() == "\0\0(the event loop's thread runs no Python code)"
    assert wa.task_stack(11, 1).startswith("(the request's task is not on the event loop")
