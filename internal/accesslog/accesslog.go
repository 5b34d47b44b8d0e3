// Package accesslog writes wisp's access logs, one line per request, in the
// formats people use:
//
//   - combined: Apache/nginx's combined format, and the request id (rid=);
//   - w3c: IIS's W3C Extended format, with its #Software/#Version/#Date/
//     #Fields header at the start of each file (and after each reopen), for
//     users coming from IIS;
//   - json: one object per line (time, request id, site, vdir, pool, worker
//     pid, method, uri, status, bytes, duration, remote address, user agent).
//
// Logging never blocks a request: entries go into a bounded queue that one
// goroutine formats and writes (buffered, flushed every 200 ms); when the
// queue is full (a disk or a pipe that does not keep up), the entry is
// dropped and counted (Dropped).
package accesslog

import (
	"bufio"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"wisp/internal/logfile"
	"wisp/internal/trace"
)

// Formats are the accepted format names.
var Formats = []string{"combined", "w3c", "json"}

// CheckFormat refuses an unknown format name.
func CheckFormat(f string) error {
	for _, ok := range Formats {
		if f == ok {
			return nil
		}
	}
	return fmt.Errorf("access log format %q: want combined, w3c or json", f)
}

// Entry is one request, as the server saw it. Its strings may point into
// the request's memory: the logger copies what it keeps.
type Entry struct {
	Start     time.Time
	Duration  time.Duration
	Remote    string // "ip:port" of the peer (or the client, from a trusted proxy)
	Method    string // "" for a request refused before its request line
	Target    string
	Proto     string
	Status    int
	Bytes     int64
	Referer   string
	UserAgent string
	Auth      string // the Authorization header (for the user name of Basic)
	RequestID trace.ID
	Site      string
	Vdir      string
	Local     net.Addr // the address the client connected to (W3C's s-ip, s-port)
}

// Logger is one access log.
type Logger struct {
	format  string
	pool    string
	pid     int
	q       chan Entry
	w       *bufio.Writer
	out     io.Writer
	reopen  func() error
	mu      sync.Mutex // guards w between the writer goroutine and Reopen
	dropped atomic.Uint64
	done    chan struct{}
	stop    chan struct{}
	closed  atomic.Bool
	file    *logfile.File // the file Open opened, closed with the logger
}

// queueSize bounds the entries waiting to be written.
const queueSize = 8192

// New makes a logger writing format to out; reopen (may be nil) opens its
// file again (SIGUSR1). pool names the pool in JSON lines ("" in-process).
func New(out io.Writer, format, pool string, reopen func() error) (*Logger, error) {
	if format == "" {
		format = "combined"
	}
	if err := CheckFormat(format); err != nil {
		return nil, err
	}
	l := &Logger{format: format, pool: pool, pid: os.Getpid(), q: make(chan Entry, queueSize),
		w: bufio.NewWriterSize(out, 64<<10), out: out, reopen: reopen, done: make(chan struct{}), stop: make(chan struct{})}
	l.header()
	go l.run()
	return l, nil
}

// Log queues e; it never waits. A full queue drops it (counted).
func (l *Logger) Log(e Entry) {
	if l == nil || l.closed.Load() {
		return
	}
	if e.Status == 0 {
		e.Status = 200 // a response that wrote no status line went out as 200
	}
	select {
	case l.q <- e:
	default:
		l.dropped.Add(1)
	}
}

// Dropped is how many entries were dropped because the log did not keep up.
func (l *Logger) Dropped() uint64 {
	if l == nil {
		return 0
	}
	return l.dropped.Load()
}

// Reopen opens the file again (logrotate moved it) and, for w3c, writes
// the header at the start of the new file.
func (l *Logger) Reopen() error {
	if l == nil || l.reopen == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w.Flush()
	if err := l.reopen(); err != nil {
		return err
	}
	l.headerLocked()
	return nil
}

// Close writes what is queued and stops.
func (l *Logger) Close() {
	if l == nil || l.closed.Swap(true) {
		return
	}
	close(l.stop) // the queue stays open: a Log racing Close only fills it
	<-l.done
	if l.file != nil {
		l.file.Close()
	}
}

func (l *Logger) header() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.headerLocked()
}

func (l *Logger) headerLocked() {
	if l.format != "w3c" {
		return
	}
	fmt.Fprintf(l.w, "#Software: wisp\n#Version: 1.0\n#Date: %s\n#Fields: %s\n",
		time.Now().UTC().Format("2006-01-02 15:04:05"), strings.Join(w3cFields, " "))
}

func (l *Logger) run() {
	defer close(l.done)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	var buf []byte
	for {
		select {
		case e := <-l.q:
			buf = l.write(buf, &e)
		case <-l.stop:
			for {
				select {
				case e := <-l.q:
					buf = l.write(buf, &e)
					continue
				default:
				}
				break
			}
			l.mu.Lock()
			l.w.Flush()
			l.mu.Unlock()
			return
		case <-t.C:
			l.mu.Lock()
			l.w.Flush()
			l.mu.Unlock()
		}
	}
}

func (l *Logger) write(buf []byte, e *Entry) []byte {
	buf = l.format1(buf[:0], e)
	l.mu.Lock()
	l.w.Write(buf)
	l.mu.Unlock()
	return buf
}

func (l *Logger) format1(b []byte, e *Entry) []byte {
	switch l.format {
	case "w3c":
		return l.w3c(b, e)
	case "json":
		return l.json(b, e)
	}
	return combined(b, e)
}

// combined: host - user [time] "request line" status bytes "referer" "user-agent" rid=ID
func combined(b []byte, e *Entry) []byte {
	status := e.Status
	b = append(b, hostOf(e.Remote)...)
	b = append(b, " - "...)
	if u := basicUser(e.Auth); u != "" {
		b = append(b, quoteField(u)...)
	} else {
		b = append(b, '-')
	}
	b = append(b, " ["...)
	b = e.Start.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, "] \""...)
	if e.Method == "" {
		b = append(b, '-') // refused before a request line was read
	} else {
		b = append(b, quoteField(strings.TrimSpace(e.Method+" "+e.Target+" "+e.Proto))...)
	}
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	if e.Bytes == 0 {
		b = append(b, '-')
	} else {
		b = strconv.AppendInt(b, e.Bytes, 10)
	}
	b = append(b, " \""...)
	b = append(b, orDash(quoteField(e.Referer))...)
	b = append(b, "\" \""...)
	b = append(b, orDash(quoteField(e.UserAgent))...)
	b = append(b, "\" rid="...)
	b = e.RequestID.AppendTo(b)
	return append(b, '\n')
}

// w3cFields are the W3C Extended fields wisp writes, IIS's default set and
// the request id.
var w3cFields = []string{"date", "time", "s-sitename", "s-ip", "cs-method", "cs-uri-stem", "cs-uri-query", "s-port",
	"cs-username", "c-ip", "cs(User-Agent)", "cs(Referer)", "sc-status", "sc-bytes", "time-taken", "x-request-id"}

func (l *Logger) w3c(b []byte, e *Entry) []byte {
	t := e.Start.UTC()
	b = t.AppendFormat(b, "2006-01-02 15:04:05")
	stem, query, _ := strings.Cut(e.Target, "?")
	status := e.Status
	user := basicUser(e.Auth)
	sip, sport := "", ""
	if a, ok := e.Local.(*net.TCPAddr); ok {
		sip, sport = a.IP.String(), strconv.Itoa(a.Port)
	}
	for _, v := range []string{e.Site, sip, e.Method, stem, query, sport, user, hostOf(e.Remote), e.UserAgent, e.Referer} {
		b = append(b, ' ')
		b = appendW3C(b, v)
	}
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, e.Bytes, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, e.Duration.Milliseconds(), 10)
	b = append(b, ' ')
	b = e.RequestID.AppendTo(b)
	return append(b, '\n')
}

// appendW3C writes a W3C field: "-" when empty, spaces as "+" (IIS's
// convention), control bytes escaped.
func appendW3C(b []byte, v string) []byte {
	if v == "" {
		return append(b, '-')
	}
	v = quoteField(v)
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' {
			b = append(b, '+')
		} else {
			b = append(b, v[i])
		}
	}
	return b
}

type jsonLine struct {
	Time      string  `json:"time"`
	RequestID string  `json:"request_id"`
	Site      string  `json:"site,omitempty"`
	Vdir      string  `json:"vdir,omitempty"`
	Pool      string  `json:"pool,omitempty"`
	PID       int     `json:"pid"`
	Method    string  `json:"method"`
	URI       string  `json:"uri"`
	Proto     string  `json:"proto,omitempty"`
	Status    int     `json:"status"`
	Bytes     int64   `json:"bytes"`
	Duration  float64 `json:"duration_ms"`
	Remote    string  `json:"remote_addr"`
	UserAgent string  `json:"user_agent,omitempty"`
	Referer   string  `json:"referer,omitempty"`
}

func (l *Logger) json(b []byte, e *Entry) []byte {
	status := e.Status
	line := jsonLine{Time: e.Start.UTC().Format(time.RFC3339Nano), RequestID: e.RequestID.String(), Site: e.Site, Vdir: e.Vdir,
		Pool: l.pool, PID: l.pid, Method: e.Method, URI: e.Target, Proto: e.Proto, Status: status, Bytes: e.Bytes,
		Duration: float64(e.Duration.Microseconds()) / 1000, Remote: hostOf(e.Remote), UserAgent: e.UserAgent, Referer: e.Referer}
	j, err := json.Marshal(line)
	if err != nil {
		return b
	}
	b = append(b, j...)
	return append(b, '\n')
}

// hostOf is the address of "ip:port", "[v6]:port", a bare IP, or a unix
// socket peer ("@" or a path), as it is.
func hostOf(remote string) string {
	if strings.HasPrefix(remote, "[") {
		if i := strings.IndexByte(remote, ']'); i > 0 {
			return remote[1:i]
		}
	}
	if strings.Count(remote, ":") == 1 {
		return remote[:strings.IndexByte(remote, ':')]
	}
	return remote
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

// Open opens an access log as the flags and the configuration name it: "-"
// is stdout, "off" or "" none (a nil Logger, which logs nothing), anything
// else a file appended to and reopened on Reopen.
func Open(spec, format, pool string, stdout io.Writer) (*Logger, error) {
	switch spec {
	case "off", "":
		if err := CheckFormat(cmp.Or(format, "combined")); err != nil {
			return nil, err
		}
		return nil, nil
	case "-":
		return New(stdout, format, pool, nil)
	}
	f, err := logfile.Open(spec)
	if err != nil {
		return nil, fmt.Errorf("access log: %w", err)
	}
	l, err := New(f, format, pool, f.Reopen)
	if err != nil {
		f.Close()
		return nil, err
	}
	l.file = f
	return l, nil
}

// Set is the access logs of a process: one per distinct path and format,
// shared by the sites that name the same.
type Set struct {
	mu     sync.Mutex
	stdout io.Writer
	pool   string
	logs   map[[2]string]*Logger
}

// NewSet makes an empty set; pool names the pool in JSON lines.
func NewSet(pool string, stdout io.Writer) *Set {
	return &Set{stdout: stdout, pool: pool, logs: map[[2]string]*Logger{}}
}

// Get returns the logger of spec and format, opening it the first time.
func (s *Set) Get(spec, format string) (*Logger, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [2]string{spec, cmp.Or(format, "combined")}
	if l, ok := s.logs[k]; ok {
		return l, nil
	}
	l, err := Open(spec, format, s.pool, s.stdout)
	if err != nil {
		return nil, err
	}
	s.logs[k] = l
	return l, nil
}

// Reopen reopens every file (SIGUSR1).
func (s *Set) Reopen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first error
	for _, l := range s.logs {
		if err := l.Reopen(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Close writes what is queued and closes every file.
func (s *Set) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.logs {
		l.Close()
	}
}

// Dropped is the entries all the set's logs dropped.
func (s *Set) Dropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n uint64
	for _, l := range s.logs {
		n += l.Dropped()
	}
	return n
}
