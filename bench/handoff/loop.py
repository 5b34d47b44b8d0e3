"""The event-loop side of the hand-off benchmark (bench/handoff/main.go).

run() makes an asyncio or uvloop loop on the calling thread and takes Go's
messages by the mechanism asked for (handoff.h HB_*); each message id is
answered with _hb.done(id), directly ("call") or from a task of its own
("task", as wisp runs each request).
"""

import asyncio
import os

import _hb as C

ARMED, EACH, SEM, CST, PIPE, POLL, CSTG, ARMEDC = range(8)


def new_loop(kind):
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(kind, work, mech, fd):
    loop = new_loop(kind)
    asyncio.set_event_loop(loop)
    done = C.done
    tasks = set()

    async def answer(i):
        done(i)

    def handle(i):
        if i < 0:
            loop.stop()
        elif work == "task":
            t = loop.create_task(answer(i))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
        else:
            done(i)

    if mech in (ARMED, EACH, SEM, PIPE):
        n = 4096 if mech == PIPE else 8

        def wake():
            try:
                os.read(fd, n)
            except BlockingIOError:
                pass
            for i in C.drain():
                handle(i)

        loop.add_reader(fd, wake)
    elif mech == ARMEDC:
        loop.add_reader(fd, C.wake, handle)
    elif mech == POLL:

        def poll():
            for i in C.drain():
                handle(i)
            loop.call_soon(poll)

        loop.call_soon(poll)
    else:
        C.target(loop.call_soon_threadsafe, handle)
    loop.call_soon(C.ready)
    try:
        loop.run_forever()
    finally:
        if not loop.is_running():
            if fd >= 0:
                loop.remove_reader(fd)
            asyncio.set_event_loop(None)
            loop.close()
