package server

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"wisp/internal/h1"
	"wisp/internal/trace"
)

// Request ids tag a request's line in the access log and everything its app
// writes in `wisp trace`. A client's (or a proxy's) X-Request-Id is kept
// when it is a sane token (1 to 64 of A-Z a-z 0-9 . _ : -); otherwise wisp
// makes one: 16 hex digits, a random per-process base plus a counter, so
// that ids do not repeat across workers and restarts.

var ridBase, ridSeq = func() (uint64, *atomic.Uint64) {
	var b [8]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:]), new(atomic.Uint64)
}()

func requestID(r *h1.Request) string {
	if id := r.Header("X-Request-Id"); validRequestID(id) {
		return id
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], ridBase+ridSeq.Add(1))
	return hex.EncodeToString(b[:])
}

func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// traceRequest publishes a request's line: method, target, status, bytes
// and duration.
func (s *Server) traceRequest(r *h1.Request, w *h1.Response, start time.Time, rid string) {
	m, _ := s.route(h1.UnescapePath(r.Path))
	site, vdir := "", ""
	if m != nil {
		site, vdir = m.site, m.prefix
		if vdir == "" {
			vdir = "/"
		}
	}
	status := w.Status()
	if status == 0 {
		status = 200
	}
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte(' ')
	b.WriteString(quoteField(r.Target))
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(status))
	b.WriteByte(' ')
	b.WriteString(strconv.FormatInt(w.Written(), 10))
	b.WriteString("B ")
	b.WriteString(time.Since(start).Round(10 * time.Microsecond).String())
	s.cfg.Trace.Publish(trace.Line{Time: start, Site: site, Vdir: vdir, Request: rid, Stream: "request", Text: b.String()})
}
