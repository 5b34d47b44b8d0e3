package websocket

import (
	"encoding/binary"
	"errors"
	"io"
	"sync"
)

// ServerStream carries the bytes a server sends on a WebSocket that is
// relayed as a byte stream (a proxy between the client and the server
// that runs the app), keeping track of where its frames begin and end, so
// that the relay can close the client's side with a close frame of its own
// between two frames, rather than cut the connection (a reset to the
// client) when it stops. Write passes the stream on to W; CloseAt sends the
// close frame at the next frame boundary, after which Write fails.
type ServerStream struct {
	W io.Writer
	// Head is set when something else goes to W first (the relay's HTTP
	// response head): no close is written before Begin.
	Head bool

	mu      sync.Mutex
	hdr     [maxHeaderLen]byte
	hn      int    // header bytes gathered of the frame under way
	left    uint64 // payload bytes of that frame still to come
	pending []byte // a close frame waiting for the frame under way to end
	closed  bool
}

// ErrRelayClosed is returned by ServerStream.Write once the relay's close
// frame went out.
var ErrRelayClosed = errors.New("websocket: the relay closed the connection")

// Write passes p on, and the close frame CloseAt asked for as soon as a
// frame ends; what follows it is not written (ErrRelayClosed).
func (s *ServerStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrRelayClosed
	}
	if s.pending == nil {
		s.track(p)
		return s.W.Write(p)
	}
	// a close waits: write up to the end of the frame under way, then it
	n := s.untilBoundary(p)
	if n > 0 {
		if k, err := s.W.Write(p[:n]); err != nil {
			return k, err
		}
		s.track(p[:n])
	}
	if s.hn == 0 && s.left == 0 {
		s.closed = true
		if _, err := s.W.Write(s.pending); err != nil {
			return n, err
		}
		return n, ErrRelayClosed
	}
	return n, nil
}

// Begin says that the frames begin (Head is through): a close asked for
// meanwhile goes out now.
func (s *ServerStream) Begin() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Head = false
	if s.pending != nil && !s.closed {
		s.closed = true
		_, err := s.W.Write(s.pending)
		return err
	}
	return nil
}

// CloseAt sends a close frame with code and reason to the client at the next
// frame boundary of the server's stream (at once if it is between frames).
func (s *ServerStream) CloseAt(code int, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.pending != nil {
		return nil
	}
	var b [maxControlPayload]byte
	payload := closePayload(b[:0], code, reason)
	s.pending = append(appendHeader(nil, true, 0, OpClose, len(payload)), payload...)
	if s.Head {
		return nil // written at Begin
	}
	if s.hn == 0 && s.left == 0 {
		s.closed = true
		_, err := s.W.Write(s.pending)
		return err
	}
	return nil
}

// untilBoundary returns how many bytes of p end the frame under way (all
// of p if it does not end in p). It changes no state.
func (s *ServerStream) untilBoundary(p []byte) int {
	hn, left, hdr := s.hn, s.left, s.hdr
	for i := 0; i < len(p); {
		if left > 0 {
			k := min(uint64(len(p)-i), left)
			left -= k
			i += int(k)
			if left == 0 {
				return i
			}
			continue
		}
		hdr[hn] = p[i]
		hn++
		i++
		if need := headerLen(hdr[:hn]); need > 0 && hn == need {
			left, hn = payloadLen(hdr[:hn]), 0
			if left == 0 {
				return i
			}
		}
	}
	return len(p)
}

// track advances the frame state over p, which was written.
func (s *ServerStream) track(p []byte) {
	for i := 0; i < len(p); {
		if s.left > 0 {
			k := min(uint64(len(p)-i), s.left)
			s.left -= k
			i += int(k)
			continue
		}
		s.hdr[s.hn] = p[i]
		s.hn++
		i++
		if need := headerLen(s.hdr[:s.hn]); need > 0 && s.hn == need {
			s.left, s.hn = payloadLen(s.hdr[:s.hn]), 0
		}
	}
}

// headerLen is the length of the frame header that starts with h, once its
// second byte is known (0 before).
func headerLen(h []byte) int {
	if len(h) < 2 {
		return 0
	}
	n := 2
	switch h[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if h[1]&0x80 != 0 {
		n += 4
	}
	return n
}

// payloadLen is the payload length a whole header gives.
func payloadLen(h []byte) uint64 {
	switch n := h[1] & 0x7f; n {
	case 126:
		return uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		return binary.BigEndian.Uint64(h[2:10])
	default:
		return uint64(n)
	}
}
