package websocket

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxMessageSize is the message size limit when Options leaves it
// unset: 16 MiB, uvicorn's --ws-max-size default.
const DefaultMaxMessageSize = 16 << 20

// DefaultCloseTimeout is how long a Conn waits for the peer once it has
// sent a close frame, when Options leaves it unset.
const DefaultCloseTimeout = 2 * time.Second

// Options configure a Conn. The zero value is a valid configuration.
type Options struct {
	// MaxMessageSize is the largest message the Conn accepts, in bytes,
	// after decompression; a larger one fails the connection with 1009 as
	// soon as a frame header (or the decompressor) passes the limit. 0
	// means DefaultMaxMessageSize.
	MaxMessageSize int64
	// Deflate is the permessage-deflate agreement (NegotiateDeflate); nil
	// means no compression, and a frame with RSV1 set is then an error.
	Deflate *Deflate
	// FlatePool, if set, lends a compressor to each message a connection
	// sends when Deflate has ServerNoContextTakeover, rather than the
	// connection keeping its own (about 1.2 MB) for its whole life.
	FlatePool *FlatePool
	// CompressMin is the size below which a message is sent uncompressed
	// even with Deflate set; 0 compresses every message.
	CompressMin int
	// ReadBufferSize is the size of the bufio.Reader NewConn makes when it
	// is given none; 0 means 4096.
	ReadBufferSize int
	// WriteBufferSize is the size of the write buffer; 0 means 4096.
	WriteBufferSize int
	// CloseTimeout bounds the close handshake when the transport has
	// deadlines (a net.Conn): the wait for the peer's close after
	// WriteClose, and for the peer to go after the Conn failed the
	// connection. 0 means DefaultCloseTimeout.
	CloseTimeout time.Duration
}

// Conn is the server side of one WebSocket connection, framing messages
// over any byte stream: a hijacked HTTP/1.1 connection or an HTTP/2 stream.
//
// One goroutine reads (ReadMessage), and it also answers pings and the
// peer's close. Writes (WriteMessage, Flush, Ping, WriteClose) may come
// from any goroutine; they are serialised.
type Conn struct {
	rw           io.ReadWriter
	br           *bufio.Reader
	max          int64
	closeTimeout time.Duration

	// Read side: used only by the goroutine that calls ReadMessage.
	ctl  [maxControlPayload]byte
	comp []byte // a compressed message's payload as it arrives
	inf  *inflater
	rerr error // sticky: what ended reading

	pong    chan struct{}              // a pong arrived (StartKeepAlive looks for it)
	aborted atomic.Pointer[CloseError] // set when StartKeepAlive failed the connection
	stop    sync.Once                  // closes the transport once

	// Write side: c.wmu must be held.
	wmu         sync.Mutex
	bw          *bufio.Writer
	hdr         [maxHeaderLen]byte
	def         *deflater
	compressMin int
	closeSent   bool
	werr        error
}

// NewConn returns the server side of a WebSocket over rw, once the handshake
// is done. br, if not nil, reads rw's stream and may hold bytes already read
// past the handshake (a hijacked HTTP/1.1 connection's reader); nil makes
// one. If rw is an io.Closer, the Conn closes it when the connection ends;
// if it has read/write deadlines (a net.Conn), the Conn uses them to bound
// the close handshake, and CloseWrite (a *net.TCPConn) to close gracefully.
func NewConn(rw io.ReadWriter, br *bufio.Reader, opts Options) *Conn {
	if br == nil {
		br = bufio.NewReaderSize(rw, orDefault(opts.ReadBufferSize, 4096))
	}
	c := &Conn{
		rw:           rw,
		br:           br,
		max:          opts.MaxMessageSize,
		closeTimeout: opts.CloseTimeout,
		bw:           bufio.NewWriterSize(rw, orDefault(opts.WriteBufferSize, 4096)),
		pong:         make(chan struct{}, 1),
		compressMin:  opts.CompressMin,
	}
	if c.max <= 0 {
		c.max = DefaultMaxMessageSize
	}
	if c.closeTimeout <= 0 {
		c.closeTimeout = DefaultCloseTimeout
	}
	if d := opts.Deflate; d != nil {
		c.inf = &inflater{fresh: d.ClientNoContextTakeover}
		c.def = &deflater{level: d.Level, fresh: d.ServerNoContextTakeover, pool: opts.FlatePool}
	}
	return c
}

// orDefault returns v, or def if v is not positive.
func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// ReadMessage reads the next data message, whole, into dst[:0] (growing it
// as the message arrives, so that dst can be reused from message to
// message), and returns its opcode (OpText or OpBinary) and payload. It
// answers pings, and checks each frame as RFC 6455 and 7692 say; a frame
// that breaks a rule fails the connection: the Conn sends a close frame with
// the code (1002, 1007 or 1009), closes the transport, and returns a
// *CloseError with that code. A close frame from the peer is echoed, the
// transport closed, and a *CloseError with Remote set returned. Once it has
// returned an error, ReadMessage returns the same error.
func (c *Conn) ReadMessage(dst []byte) (Opcode, []byte, error) {
	dst = dst[:0]
	if c.rerr != nil {
		return 0, dst, c.rerr
	}
	var (
		op         Opcode // the message's opcode once its first frame is in
		compressed bool
		size       int64
		u          utf8Checker
	)
	c.comp = c.comp[:0]
	for {
		h, err := readHeader(c.br)
		if err != nil {
			if err == errHeaderLength {
				return 0, dst, c.fail(CloseProtocolError, "payload length with the high bit set")
			}
			return 0, dst, c.ioErr(err)
		}
		if !h.masked {
			return 0, dst, c.fail(CloseProtocolError, "unmasked client frame")
		}
		if h.rsv&(bitRsv2|bitRsv3) != 0 || h.rsv&bitRsv1 != 0 && (c.inf == nil || h.op != OpText && h.op != OpBinary) {
			return 0, dst, c.fail(CloseProtocolError, "reserved bits set")
		}
		if h.op.control() {
			if err := c.control(h); err != nil {
				return 0, dst, err
			}
			continue
		}
		switch h.op {
		case OpContinuation:
			if op == 0 {
				return 0, dst, c.fail(CloseProtocolError, "continuation frame outside a fragmented message")
			}
		case OpText, OpBinary:
			if op != 0 {
				return 0, dst, c.fail(CloseProtocolError, "new message inside a fragmented one")
			}
			op, compressed = h.op, h.rsv&bitRsv1 != 0
		default:
			return 0, dst, c.fail(CloseProtocolError, "reserved opcode "+strconv.Itoa(int(h.op)))
		}
		size += h.length
		if size > c.max {
			return 0, dst, c.fail(CloseMessageTooBig, "message over "+strconv.FormatInt(c.max, 10)+" bytes")
		}
		if compressed {
			c.comp, err = c.readPayload(c.comp, h, nil)
		} else if op == OpText {
			dst, err = c.readPayload(dst, h, &u)
		} else {
			dst, err = c.readPayload(dst, h, nil)
		}
		if err == errInvalidUTF8 {
			return 0, dst, c.fail(CloseInvalidPayload, "invalid UTF-8 in a text message")
		}
		if err != nil {
			return 0, dst, c.ioErr(err)
		}
		if !h.fin {
			continue
		}
		if compressed {
			dst, err = c.inf.inflate(dst, c.comp, c.max)
			if cap(c.comp) > 1<<20 {
				c.comp = nil // keep no big buffer between messages
			}
			if err == errTooBig {
				return 0, dst, c.fail(CloseMessageTooBig, "message over "+strconv.FormatInt(c.max, 10)+" bytes")
			}
			if err != nil {
				return 0, dst, c.fail(CloseInvalidPayload, "invalid compressed data")
			}
			if op == OpText && !u.feed(dst) {
				return 0, dst, c.fail(CloseInvalidPayload, "invalid UTF-8 in a text message")
			}
		}
		if op == OpText && !u.complete() {
			return 0, dst, c.fail(CloseInvalidPayload, "invalid UTF-8 in a text message")
		}
		return op, dst, nil
	}
}

// errInvalidUTF8 is a text payload that cannot be UTF-8.
var errInvalidUTF8 = errors.New("invalid UTF-8")

// readPayload appends h's payload, unmasked, to dst. It grows dst only as
// bytes arrive, so a header that claims a large payload costs nothing until
// the payload comes, and it checks UTF-8 (if u is set) on each read, so a
// text frame is refused as soon as a bad byte arrives.
func (c *Conn) readPayload(dst []byte, h header, u *utf8Checker) ([]byte, error) {
	remaining := h.length
	pos := 0
	for remaining > 0 {
		if len(dst) == cap(dst) {
			dst = slices.Grow(dst, int(min(remaining, max(int64(len(dst)), 4096))))
		}
		n := int(min(remaining, int64(cap(dst)-len(dst))))
		k, err := c.br.Read(dst[len(dst) : len(dst)+n])
		chunk := dst[len(dst) : len(dst)+k]
		pos = mask(h.key, pos, chunk)
		dst = dst[:len(dst)+k]
		remaining -= int64(k)
		if u != nil && !u.feed(chunk) {
			return dst, errInvalidUTF8
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return dst, err
		}
	}
	return dst, nil
}

// control handles a control frame: a ping is answered, a pong noted, a close
// answered and returned as the end of reading.
func (c *Conn) control(h header) error {
	if h.op != OpPing && h.op != OpPong && h.op != OpClose {
		return c.fail(CloseProtocolError, "reserved opcode "+strconv.Itoa(int(h.op)))
	}
	if !h.fin {
		return c.fail(CloseProtocolError, "fragmented control frame")
	}
	if h.length > maxControlPayload {
		return c.fail(CloseProtocolError, "control frame over 125 bytes")
	}
	p := c.ctl[:h.length]
	if _, err := io.ReadFull(c.br, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return c.ioErr(err)
	}
	mask(h.key, 0, p)
	switch h.op {
	case OpPing:
		c.wmu.Lock()
		if !c.closeSent {
			c.writeFrame(OpPong, 0, p)
			c.flush()
		}
		err := c.werr
		c.wmu.Unlock()
		if err != nil {
			return c.ioErr(err)
		}
	case OpPong:
		select {
		case c.pong <- struct{}{}:
		default:
		}
	case OpClose:
		return c.closeReceived(p)
	}
	return nil
}

// WriteMessage queues a whole data message (OpText or OpBinary) in the
// write buffer, compressed if permessage-deflate is on; Flush sends what is
// queued, so several messages go out in one write. The caller must not
// send text that is not UTF-8.
func (c *Conn) WriteMessage(op Opcode, p []byte) error {
	if op != OpText && op != OpBinary {
		return fmt.Errorf("websocket: write: %v is not a data opcode", op)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return ErrCloseSent
	}
	var rsv byte
	if c.def != nil && len(p) >= c.compressMin {
		var err error
		if p, err = c.def.compress(p); err != nil {
			return fmt.Errorf("websocket: compress: %w", err)
		}
		rsv = bitRsv1
	}
	c.writeFrame(op, rsv, p)
	if c.def != nil && cap(c.def.out.b) > 1<<20 {
		c.def.out.b = nil // keep no big buffer between messages
	}
	return c.werr
}

// Flush writes the queued messages to the transport.
func (c *Conn) Flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.flush()
	return c.werr
}

// Ping sends a ping with payload p (at most 125 bytes) at once.
func (c *Conn) Ping(p []byte) error {
	if len(p) > maxControlPayload {
		return errors.New("websocket: ping payload over 125 bytes")
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return ErrCloseSent
	}
	c.writeFrame(OpPing, 0, p)
	c.flush()
	return c.werr
}

// writeFrame queues one whole frame, unless a write failed before.
// c.wmu must be held.
func (c *Conn) writeFrame(op Opcode, rsv byte, p []byte) {
	if c.werr != nil {
		return
	}
	if _, err := c.bw.Write(appendHeader(c.hdr[:0], true, rsv, op, len(p))); err != nil {
		c.werr = fmt.Errorf("websocket: write: %w", err)
		return
	}
	if _, err := c.bw.Write(p); err != nil {
		c.werr = fmt.Errorf("websocket: write: %w", err)
	}
}

// flush writes the buffer out, unless a write failed before. c.wmu must be
// held.
func (c *Conn) flush() {
	if c.werr != nil {
		return
	}
	if err := c.bw.Flush(); err != nil {
		c.werr = fmt.Errorf("websocket: write: %w", err)
	}
}
