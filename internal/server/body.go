package server

import (
	"errors"
	"io"
	"os"
	"strconv"

	"wisp/internal/h1"
)

// readBody reads the request body before the app is called (a slow client must
// never hold a Python thread): in memory up to MemBody if the memory budget
// has room for it, in an unlinked temp file otherwise, never more than
// MaxBody. It returns a status and message when the request must be refused.
func (s *Server) readBody(r *h1.Request, j *job, maxBody int64) (int, string) {
	if r.ContentLength == 0 {
		return 0, ""
	}
	if r.ContentLength > maxBody {
		return tooLarge(maxBody)
	}
	if r.ContentLength > s.cfg.MaxSpill {
		return 413, "413 Content Too Large: the body exceeds the server's space for request bodies (" + strconv.FormatInt(s.cfg.MaxSpill, 10) + " bytes)"
	}
	body := r.Body
	body.Limit(maxBody)
	// In memory, a body takes budget for the bytes that arrived, not for what
	// it announced: a client that trickles its body holds only what it sent.
	// The first piece waits its turn (first come, first served) for room; a
	// piece that finds none at once sends the body to a temp file.
	var mem []byte
	if r.ContentLength <= s.cfg.MemBody {
		first := min(s.cfg.MemBody, bodyPiece)
		if r.ContentLength > 0 {
			first = min(r.ContentLength, bodyPiece)
		}
		if s.bodies.acquire(first, s.cfg.BodyWait) {
			j.bodyMem = first
			mem = make([]byte, 0, first)
			for {
				if r.ContentLength > 0 && int64(len(mem)) == r.ContentLength {
					j.body = mem
					return 0, ""
				}
				if len(mem) == cap(mem) {
					limit := s.cfg.MemBody + 1 // unknown length: one byte more tells it does not fit
					if r.ContentLength > 0 {
						limit = r.ContentLength
					}
					more := min(int64(cap(mem)), limit-int64(cap(mem)), 4*bodyPiece)
					if more <= 0 || !s.bodies.acquire(more, 0) {
						break // no room: spill
					}
					j.bodyMem += more
					mem = append(mem[:cap(mem)], make([]byte, more)...)[:len(mem)]
				}
				n, err := body.Read(mem[len(mem):cap(mem)])
				mem = mem[:len(mem)+n]
				if err == io.EOF {
					if r.ContentLength > 0 {
						return s.bodyError(io.ErrUnexpectedEOF, maxBody)
					}
					j.body = mem
					return 0, ""
				}
				if err != nil {
					return s.bodyError(err, maxBody)
				}
			}
			s.bodies.release(j.bodyMem) // it goes to a file after all
			j.bodyMem = 0
		}
	}
	return s.spillBody(r, j, mem, maxBody)
}

// bodyPiece is the first room a body in memory takes (and by how much it
// grows, up to 4 pieces at a time).
const bodyPiece = 64 << 10

// spillBody writes the body (head: the part already read) to a temp file,
// within the server's total space for spilled bodies (MaxSpill): a body of
// known length takes its whole size up front, one of unknown length takes
// room as it arrives; without room the client gets 503 and Retry-After.
func (s *Server) spillBody(r *h1.Request, j *job, head []byte, maxBody int64) (int, string) {
	full := func() (int, string) {
		s.log.Warn("the space for request bodies on disk is full: answered 503", "path", r.Path,
			"max_spill", s.cfg.MaxSpill)
		return 503, "503 Service Unavailable: the server's space for request bodies is full; retry later"
	}
	if r.ContentLength > 0 {
		if !s.spill.take(r.ContentLength) {
			return full()
		}
		j.spilled = r.ContentLength
	}
	f, err := os.CreateTemp("", "wisp-body-*")
	if err != nil {
		s.log.Error("cannot spill request body", "err", err)
		return 500, "500 Internal Server Error"
	}
	os.Remove(f.Name())
	s.cfg.Metrics.Spilled()
	j.bodyFile = f
	var dst io.Writer = f
	if r.ContentLength < 0 {
		sw := &spillWriter{s: s, j: j, f: f, id: s.spillOrder.enter()}
		defer s.spillOrder.leave(sw.id)
		dst = sw
	}
	if _, err := dst.Write(head); err != nil {
		if errors.Is(err, errSpillFull) {
			return full()
		}
		return 500, "500 Internal Server Error"
	}
	if _, err := io.Copy(dst, r.Body); err != nil {
		if errors.Is(err, errSpillFull) {
			return full()
		}
		if _, ok := err.(*os.PathError); ok {
			s.log.Error("cannot spill request body", "err", err)
			return 500, "500 Internal Server Error"
		}
		return s.bodyError(err, maxBody)
	}
	return 0, ""
}

// errSpillFull: the server's space for spilled bodies is used up.
var errSpillFull = errors.New("the space for spilled request bodies is full")

// spillWriter writes a body of unknown length to its file, taking room in
// the spill space ahead of the bytes, just what they need (a piece rounded
// up would let two bodies that together fit the space exactly not fit).
// When the space is full, the youngest such body gives up and gives its
// room back at once; older ones wait for it (see spillOrder).
type spillWriter struct {
	s  *Server
	j  *job
	f  *os.File
	n  int64  // bytes written
	id uint64 // in s.spillOrder
}

func (w *spillWriter) Write(p []byte) (int, error) {
	if need := w.n + int64(len(p)) - w.j.spilled; need > 0 {
		if !w.s.spill.takeInOrder(&w.s.spillOrder, w.id, need) {
			// refused: what it holds goes back now, before it leaves the
			// order (an older body waiting for it looks in that order)
			w.s.spill.release(w.j.spilled)
			w.j.spilled = 0
			return 0, errSpillFull
		}
		w.j.spilled += need
	}
	n, err := w.f.Write(p)
	w.n += int64(n)
	return n, err
}

// tooLarge is the answer to a body over the limit.
func tooLarge(limit int64) (int, string) {
	return 413, "413 Content Too Large: the body exceeds the limit of " + strconv.FormatInt(limit, 10) + " bytes"
}

func (s *Server) bodyError(err error, maxBody int64) (int, string) {
	switch h1.BodyError(err) {
	case 413:
		return tooLarge(maxBody)
	case 408:
		return 408, "408 Request Timeout: the body did not arrive in time"
	}
	return 400, "400 Bad Request: incomplete or malformed request body"
}
