package server

import (
	"bufio"
	"encoding/base64"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"wisp/internal/h1"
	"wisp/internal/trace"
)

// accessLog writes one line per request in the combined log format, buffered
// and flushed every 200 ms so that logging costs no syscall per request.
type accessLog struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

func newAccessLog(w io.Writer) *accessLog {
	a := &accessLog{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go a.flusher()
	return a
}

func (a *accessLog) flusher() {
	defer close(a.done)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			a.mu.Lock()
			a.w.Flush()
			a.mu.Unlock()
		case <-a.stop:
			a.mu.Lock()
			a.w.Flush()
			a.mu.Unlock()
			return
		}
	}
}

func (a *accessLog) close() {
	close(a.stop)
	<-a.done
}

// log appends: host - user [time] "request line" status bytes "referer"
// "user-agent" rid=ID (the combined format, and the request id that
// `wisp trace` tags the request's lines with)
func (a *accessLog) log(r *h1.Request, status int, n int64, start time.Time, rid trace.ID) {
	if status == 0 {
		status = 200
	}
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = strings.Trim(host[:i], "[]")
	}
	user := "-"
	if u := basicUser(r.Header("Authorization")); u != "" {
		user = quoteField(u)
	}
	b := make([]byte, 0, 256)
	b = append(b, host...)
	b = append(b, " - "...)
	b = append(b, user...)
	b = append(b, " ["...)
	b = start.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, "] \""...)
	if r.Method == "" {
		b = append(b, '-') // refused before a request line was read
	} else {
		b = append(b, quoteField(strings.TrimSpace(r.Method+" "+r.Target+" "+r.Proto))...)
	}
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	if n == 0 {
		b = append(b, '-')
	} else {
		b = strconv.AppendInt(b, n, 10)
	}
	b = append(b, " \""...)
	b = append(b, orDash(quoteField(r.Header("Referer")))...)
	b = append(b, "\" \""...)
	b = append(b, orDash(quoteField(r.Header("User-Agent")))...)
	b = append(b, "\" rid="...)
	b = rid.AppendTo(b)
	b = append(b, '\n')
	a.mu.Lock()
	a.w.Write(b)
	a.mu.Unlock()
}

// basicUser returns the user name of an "Authorization: Basic ..." value.
func basicUser(auth string) string {
	if len(auth) < 6 || !strings.EqualFold(auth[:6], "Basic ") {
		return ""
	}
	dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(auth[6:]))
	if err != nil {
		return ""
	}
	u, _, ok := strings.Cut(string(dec), ":")
	if !ok {
		return ""
	}
	return u
}

// quoteField escapes quotes, backslashes and control bytes so that a client
// cannot forge log lines.
func quoteField(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	q := strconv.QuoteToASCII(s)
	return q[1 : len(q)-1]
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
