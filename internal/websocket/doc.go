// Package websocket is wisp's WebSocket protocol: the opening handshake (RFC
// 6455 over HTTP/1.1, RFC 8441 over HTTP/2), framing, masking, UTF-8 checks,
// ping/pong, permessage-deflate (RFC 7692), the message size limit and the
// close handshake. It is pure Go, and the ASGI glue only moves whole
// messages in and out of it: Python never sees a frame.
//
// The handshake is kept apart from the connection, so that the same Conn
// serves a hijacked HTTP/1.1 connection and an HTTP/2 stream:
//
//	// HTTP/1.1: the h1 handler saw IsUpgrade(fields).
//	hs, err := websocket.CheckHandshake(r.Method, fields) // *HandshakeError: answer err.Status
//	d := websocket.NegotiateDeflate(hs.Extensions, settings) // nil: no compression
//	f, err := websocket.ResponseHeaders(hs, appChosenProtocol, d)
//	nc.Write(websocket.AppendResponse(nil, f))               // 101 Switching Protocols
//	c := websocket.NewConn(nc, br, websocket.Options{Deflate: d})
//
//	// HTTP/2 (extended CONNECT): the same, with CheckConnect, a 200
//	// response carrying ResponseHeaders (no Sec-WebSocket-Accept: there
//	// is no key), and the stream as the transport.
//	c := websocket.NewConn(stream, nil, websocket.Options{Deflate: d})
//
// fields yields the request's header fields, name and value, in order; for
// an h1.Request:
//
//	fields := func(yield func(string, string) bool) {
//		for _, f := range r.Fields {
//			if !yield(f.Name, f.Value) {
//				return
//			}
//		}
//	}
//
// br is the connection's bufio.Reader, which may hold bytes the client sent
// right after its request. Then one goroutine reads:
//
//	buf := make([]byte, 0, 4096)
//	for {
//		op, msg, err := c.ReadMessage(buf) // *CloseError at the end
//		...
//		buf = msg // reuse the grown buffer
//	}
//
// and any goroutine writes: WriteMessage queues a message, Flush sends what
// is queued (several messages in one write), WriteClose starts the close
// handshake, Ping pings, StartKeepAlive pings on a timer and fails a connection
// whose pongs stop.
//
// Every received frame is checked as RFC 6455 says, and a bad one fails the
// connection with the code the RFC gives: an unmasked frame, RSV bits
// without the extension that defines them, a reserved opcode, a control
// frame that is fragmented or over 125 bytes, a continuation without a
// start or a new message inside a fragmented one, a 64-bit length with its
// top bit set, an invalid close code (1002); text that is not UTF-8, checked
// as each frame arrives so that a message fails at its first bad fragment
// (a compressed message: once inflated, at its last frame), a close reason
// that is not, or compressed data that does not inflate (1007); a message
// over the size limit,
// checked on each frame header before its payload is read, and while
// inflating a compressed message so that a zip bomb cannot grow memory past
// the limit (1009).
//
// permessage-deflate is accepted with or without context takeover either
// way; an offer of server_max_window_bits below 15 is declined, since
// compress/flate cannot compress with a smaller window.
//
// The codec is wisp's own rather than a library's: gorilla/websocket and
// coder/websocket handshake only through net/http's ResponseWriter and
// Hijacker and offer no frame-level API on a bare stream, and gobwas/ws,
// which has one, keeps its UTF-8 and size settings in package-level
// variables and leaves bounded inflation and the close and fragmentation
// rules to the caller. What is left, framing and its checks, is small, and
// is fuzzed (fuzz_test.go) and tested against the Autobahn testsuite's
// cases (autobahn_test.go).
package websocket
