"""An independent WebSocket client (wsproto, sans-io) against wisp's Conn.

Usage: wsproto_client.py PORT MODE, MODE one of plain, deflate,
deflate-nocontext, deflate-window9. It connects, checks the handshake,
sends text and binary messages of many sizes (whole and fragmented),
compressed when the server accepts permessage-deflate, checks each echo,
pings, closes with 1000, and exits 0 if all went as it should.
"""

import socket
import sys

from wsproto import ConnectionType, WSConnection
from wsproto.events import (AcceptConnection, BytesMessage, CloseConnection,
                            Ping, Pong, RejectConnection, Request, TextMessage)
from wsproto.extensions import PerMessageDeflate


def main():
    port, mode = int(sys.argv[1]), sys.argv[2]
    exts = {
        "plain": [],
        "deflate": [PerMessageDeflate()],
        "deflate-nocontext": [PerMessageDeflate(client_no_context_takeover=True,
                                                server_no_context_takeover=True)],
        "deflate-window9": [PerMessageDeflate(client_max_window_bits=9)],
    }[mode]
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    ws = WSConnection(ConnectionType.CLIENT)
    pending = []

    def next_event():
        for _ in range(100000):
            if pending:
                return pending.pop(0)
            pending.extend(ws.events())
            if pending:
                continue
            data = sock.recv(65536)
            ws.receive_data(data or None)
            if not data:
                pending.extend(ws.events())
                return pending.pop(0) if pending else None
        raise SystemExit("too many reads")

    def message():
        parts = []
        for _ in range(100000):
            ev = next_event()
            if not isinstance(ev, (TextMessage, BytesMessage)):
                raise SystemExit("want a message, got %r" % (ev,))
            parts.append(ev.data)
            if ev.message_finished:
                return ("" if isinstance(ev, TextMessage) else b"").join(parts)
        raise SystemExit("message never finished")

    sock.sendall(ws.send(Request(host="127.0.0.1", target="/ws", extensions=exts,
                                 subprotocols=["chat", "other"])))
    ev = next_event()
    if not isinstance(ev, AcceptConnection):
        raise SystemExit("handshake: %r" % (ev,))
    if ev.subprotocol != "chat":
        raise SystemExit("subprotocol %r" % (ev.subprotocol,))
    names = [e.name for e in ev.extensions]
    if (mode != "plain") != ("permessage-deflate" in names):
        raise SystemExit("extensions %r in mode %s" % (names, mode))

    words = "wisp asgi κόσμε websocket frame deflate 0123456789 \n".split(" ")
    for n in [0, 1, 64, 125, 126, 127, 1000, 65535, 65536, 200000]:
        text = "".join(words[(i * 7) % len(words)] + " " for i in range(n))[:n]
        data = bytes((i * 31 + i // 7) % 256 for i in range(n))
        for msg in (text, data):
            cls = TextMessage if isinstance(msg, str) else BytesMessage
            sock.sendall(ws.send(cls(data=msg)))
            if message() != msg:
                raise SystemExit("echo of %d differs" % n)
            half = len(msg) // 2
            sock.sendall(ws.send(cls(data=msg[:half], message_finished=False)))
            sock.sendall(ws.send(cls(data=msg[half:], message_finished=True)))
            if message() != msg:
                raise SystemExit("echo of fragmented %d differs" % n)

    sock.sendall(ws.send(Ping(payload=b"are you there")))
    ev = next_event()
    if not isinstance(ev, Pong) or ev.payload != b"are you there":
        raise SystemExit("pong: %r" % (ev,))

    sock.sendall(ws.send(CloseConnection(code=1000, reason="done")))
    ev = next_event()
    if not isinstance(ev, CloseConnection) or ev.code != 1000:
        raise SystemExit("close: %r" % (ev,))
    if sock.recv(1) != b"":
        raise SystemExit("the server did not close the connection")
    print("ok")


if __name__ == "__main__":
    main()
