package e2e

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// wsClient is a small RFC 6455 client for the tests: it sends masked
// frames and reads the server's, answering pings, so that a test sees the
// server's frames as they are (close codes, fragmentation).
type wsClient struct {
	nc   net.Conn
	br   *bufio.Reader
	Resp *http.Response
	Body []byte // the response body when the handshake was refused
}

const (
	wsText   = 1
	wsBinary = 2
	wsClose  = 8
	wsPing   = 9
	wsPong   = 10
)

// wsDial opens a WebSocket to addr (host:port) at target; extra adds
// request headers ("Name: value" lines). A refused handshake is no error:
// Resp and Body say what the server answered.
func wsDial(addr, target string, extra ...string) (*wsClient, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return wsHandshake(nc, addr, target, extra...)
}

// wsHandshake is wsDial on a connection made already (TLS, say).
func wsHandshake(nc net.Conn, addr, target string, extra ...string) (*wsClient, error) {
	var k [16]byte
	rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", target, addr, key)
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(nc, b.String()); err != nil {
		nc.Close()
		return nil, err
	}
	c := &wsClient{nc: nc, br: bufio.NewReader(nc)}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		nc.Close()
		return nil, err
	}
	c.Resp = resp
	if resp.StatusCode != 101 {
		c.Body, _ = io.ReadAll(resp.Body)
		nc.Close()
		return c, nil
	}
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != base64.StdEncoding.EncodeToString(h[:]) {
		nc.Close()
		return nil, fmt.Errorf("Sec-WebSocket-Accept %q is wrong", got)
	}
	nc.SetDeadline(time.Time{})
	return c, nil
}

// frame sends one masked frame.
func (c *wsClient) frame(fin bool, op byte, p []byte) error {
	b := make([]byte, 0, 14+len(p))
	first := op
	if fin {
		first |= 0x80
	}
	b = append(b, first)
	switch n := len(p); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var mask [4]byte
	rand.Read(mask[:])
	b = append(b, mask[:]...)
	for i, x := range p {
		b = append(b, x^mask[i%4])
	}
	c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.nc.Write(b)
	return err
}

func (c *wsClient) send(op byte, p []byte) error { return c.frame(true, op, p) }
func (c *wsClient) text(s string) error          { return c.send(wsText, []byte(s)) }

// closeWith sends a close frame with code and reason.
func (c *wsClient) closeWith(code int, reason string) error {
	p := binary.BigEndian.AppendUint16(nil, uint16(code))
	return c.send(wsClose, append(p, reason...))
}

// read returns the next message (fragments joined), answering pings; a
// close frame is returned as op wsClose with its payload.
func (c *wsClient) read(timeout time.Duration) (op byte, msg []byte, err error) {
	c.nc.SetReadDeadline(time.Now().Add(timeout))
	for {
		var h [2]byte
		if _, err := io.ReadFull(c.br, h[:]); err != nil {
			return 0, nil, err
		}
		fin, fop := h[0]&0x80 != 0, h[0]&0x0f
		if h[1]&0x80 != 0 {
			return 0, nil, errors.New("the server masked a frame")
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var x [2]byte
			if _, err := io.ReadFull(c.br, x[:]); err != nil {
				return 0, nil, err
			}
			n = uint64(binary.BigEndian.Uint16(x[:]))
		case 127:
			var x [8]byte
			if _, err := io.ReadFull(c.br, x[:]); err != nil {
				return 0, nil, err
			}
			n = binary.BigEndian.Uint64(x[:])
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(c.br, p); err != nil {
			return 0, nil, err
		}
		switch fop {
		case wsPing:
			c.send(wsPong, p)
			continue
		case wsPong:
			continue
		case wsClose:
			return wsClose, p, nil
		case 0:
			msg = append(msg, p...)
		default:
			op, msg = fop, append(msg[:0], p...)
		}
		if fin {
			return op, msg, nil
		}
	}
}

// closeCode reads the code and reason of a close frame's payload.
func closeCode(p []byte) (int, string) {
	if len(p) < 2 {
		return 1005, ""
	}
	return int(binary.BigEndian.Uint16(p)), string(p[2:])
}

// readClose reads until the server's close frame and returns its code and
// reason (1006 if the connection ended without one).
func (c *wsClient) readClose(timeout time.Duration) (int, string) {
	end := time.Now().Add(timeout)
	for time.Now().Before(end) {
		op, p, err := c.read(time.Until(end))
		if err != nil {
			return 1006, err.Error()
		}
		if op == wsClose {
			return closeCode(p)
		}
	}
	return 1006, "timeout"
}

func (c *wsClient) Close() error { return c.nc.Close() }
