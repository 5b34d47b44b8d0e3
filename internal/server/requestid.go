package server

import (
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"sync/atomic"
	"time"

	"wisp/internal/accesslog"
	"wisp/internal/h1"
	"wisp/internal/trace"
)

// Request ids tag a request's line in the access log and everything its app
// writes in `wisp trace`. A client's (or a proxy's) X-Request-Id is kept
// when it is a sane token (1 to 64 of A-Z a-z 0-9 . _ : -); otherwise wisp
// makes one: 16 hex digits, a random per-process base plus a counter, so
// that ids do not repeat across workers and restarts. It is written out
// only when read (trace.ID).

var ridBase, ridSeq = func() (uint64, *atomic.Uint64) {
	var b [8]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:]) | 1, new(atomic.Uint64)
}()

// GivenRequestID is the request id r arrived with, "" if none: the one the
// accepting worker gave a request forwarded from another pool, else the
// client's (or its proxy's) X-Request-Id. Crash reports name it.
func GivenRequestID(r *h1.Request) string {
	if r.Trusted {
		if id := r.Header(hdrRequestID); validRequestID(id) {
			return id
		}
	}
	if id := r.Header("X-Request-Id"); validRequestID(id) {
		return id
	}
	return ""
}

// requestID is r's id: the one it arrived with (GivenRequestID), else a new one.
func requestID(r *h1.Request) trace.ID {
	if id := GivenRequestID(r); id != "" {
		return trace.IDOf(id)
	}
	return trace.NewID(ridBase + ridSeq.Add(1))
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

// traceRequest publishes a request's line.
func (s *Server) traceRequest(r *h1.Request, m *mount, status int, n int64, start time.Time, dur time.Duration, rid trace.ID) {
	site, vdir := "", ""
	if m != nil {
		site, vdir = m.site, cmp.Or(m.prefix, "/")
	}
	s.cfg.Trace.Request(start, site, vdir, rid, r.Method, r.Target, status, n, dur)
}

// logAccess queues a request's access log entry (formatted off the request
// path).
func (s *Server) logAccess(r *h1.Request, m *mount, status int, n int64, start time.Time, dur time.Duration, rid trace.ID) {
	e := accesslog.Entry{Start: start, Duration: dur, Remote: r.RemoteAddr, Method: r.Method, Target: r.Target,
		Proto: r.Proto, Status: status, Bytes: n, Referer: r.Header("Referer"), UserAgent: r.Header("User-Agent"),
		Auth: r.Header("Authorization"), RequestID: rid, Local: r.Local}
	if m != nil {
		e.Site, e.Vdir = m.site, cmp.Or(m.prefix, "/")
	}
	s.access.Log(e)
}
