package h1

import (
	"net"
	"strings"
)

// Field is one request header line, its name as the client spelled it and its
// value without surrounding whitespace.
type Field struct {
	Name, Value string
}

// Request is one parsed request. Its strings share one allocation (the copy of
// the header section); the handler may keep them, but not the Request.
type Request struct {
	Method string
	Target string // the request-target as received (REQUEST_URI)
	Proto  string // "HTTP/1.0" or "HTTP/1.1" (a later 1.x is served as 1.1)
	Minor  int    // 0 or 1
	Path   string // the target's path, still percent-encoded ("*" for OPTIONS *)
	Query  string // the target's query, raw, without '?'
	Host   string // the absolute-form target's authority, else the Host header
	Fields []Field

	// ContentLength is the declared body length, -1 for a chunked body.
	ContentLength int64
	Chunked       bool
	Body          *Body // never nil; reads EOF at once for a request without body

	RemoteAddr string   // "ip:port" of the client ("@" or a path for unix sockets)
	Local      net.Addr // the address the client connected to

	// TLS is set for a request that came over TLS, and ServerName is then
	// the name the client asked for by SNI ("" if none).
	TLS        bool
	ServerName string

	// Trusted is set by a handler for a request from a peer that is wisp
	// itself (a pool's internal socket): its X-Wisp-* headers carry the
	// client's address and port. Never set for a listener clients reach.
	Trusted bool

	close     bool // the client asked to close after this exchange
	keepAlive bool // an HTTP/1.0 client asked to keep the connection
	expect100 bool
	c         *conn
}

// Header returns the first value of the named header (any case), or "".
func (r *Request) Header(name string) string {
	for i := range r.Fields {
		if strings.EqualFold(r.Fields[i].Name, name) {
			return r.Fields[i].Value
		}
	}
	return ""
}

// Gone returns a channel closed when the client goes away (its connection
// reads EOF or fails) while the handler runs. It watches the connection from
// the first call on, so a handler calls it only once it has waited a while:
// until then, a vanished client is noticed only when a write fails. It returns
// nil (never closed) if the request body has not been read to its end.
func (r *Request) Gone() <-chan struct{} { return r.c.watch() }

// protoError is a request that cannot be served: the status and a short
// reason for the client.
type protoError struct {
	status int
	msg    string
}

func (e *protoError) Error() string { return e.msg }

func bad(msg string) *protoError { return &protoError{400, msg} }

// tchar reports the token characters of RFC 9110 5.6.2.
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return
}()

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tchar[s[i]] {
			return false
		}
	}
	return true
}

// validValue reports whether a field value has no control characters but
// HTAB (RFC 9110 5.5: field-vchar, SP, HTAB, obs-text).
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// validHost reports whether a Host value (or an absolute-form target's
// authority) is uri-host [":" port] (RFC 9110 7.2, 4.2.4): an IP-literal in
// brackets or a reg-name, and a port of digits only. An empty value is
// valid (RFC 9110 7.2). Bytes above 0x7f are let through in a reg-name
// (raw UTF-8 names), as before.
func validHost(s string) bool {
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return false
		}
		host, port = s[1:end], s[end+1:]
		if host == "" {
			return false
		}
		if port != "" {
			if port[0] != ':' {
				return false
			}
			port = port[1:]
		}
		// IPv6address or IPvFuture: hex digits, '.', ':' and, for IPvFuture,
		// unreserved and sub-delims
		for i := 0; i < len(host); i++ {
			if c := host[i]; !(hostChar(c) || c == ':') {
				return false
			}
		}
	} else {
		if i := strings.IndexByte(s, ':'); i >= 0 {
			host, port = s[:i], s[i+1:]
		}
		for i := 0; i < len(host); i++ {
			if !hostChar(host[i]) && host[i] < 0x80 {
				return false
			}
		}
	}
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return false
		}
	}
	return true
}

// hostChar reports whether c is an unreserved or sub-delims character, or
// '%' (of pct-encoded) (RFC 3986 3.2.2).
func hostChar(c byte) bool {
	return tchar[c] && c != '|' && c != '`' && c != '^' && c != '#' || c == '(' || c == ')' || c == ',' ||
		c == ';' || c == '='
}

// trimOWS strips spaces and tabs at both ends.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// parseHead parses a request head (request line and header lines, each ended
// by LF or CRLF, without the final empty line) into r, per RFC 9112. It
// refuses whatever could be read two ways: obs-fold, whitespace before a
// colon, bare CR, conflicting or malformed Content-Length, Transfer-Encoding
// with Content-Length or in HTTP/1.0, codings other than chunked.
func parseHead(head string, r *Request, maxBody int64) *protoError {
	line, rest := nextLine(head)
	// request-line = method SP request-target SP HTTP-version
	sp1 := strings.IndexByte(line, ' ')
	if sp1 <= 0 {
		return bad("malformed request line")
	}
	sp2 := strings.IndexByte(line[sp1+1:], ' ')
	if sp2 <= 0 {
		return bad("malformed request line")
	}
	sp2 += sp1 + 1
	r.Method, r.Target = line[:sp1], line[sp1+1:sp2]
	version := line[sp2+1:]
	if !isToken(r.Method) {
		return bad("malformed request method")
	}
	for i := 0; i < len(r.Target); i++ {
		if c := r.Target[i]; c <= ' ' || c == 0x7f {
			return bad("malformed request target")
		}
	}
	if len(version) != 8 || version[:5] != "HTTP/" || version[6] != '.' ||
		version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9' {
		return bad("malformed HTTP version")
	}
	if version[5] != '1' {
		return &protoError{505, "HTTP version not supported: this server speaks HTTP/1.0 and HTTP/1.1"}
	}
	r.Minor = min(int(version[7]-'0'), 1)
	r.Proto = "HTTP/1.1"
	if r.Minor == 0 {
		r.Proto = "HTTP/1.0"
	}

	hosts := 0
	var clSeen bool
	var cl int64
	var te []string
	for rest != "" {
		line, rest = nextLine(rest)
		if line == "" {
			return bad("malformed header line")
		}
		if line[0] == ' ' || line[0] == '\t' {
			return bad("obsolete line folding in the headers")
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 {
			return bad("malformed header line")
		}
		name := line[:colon]
		if !isToken(name) {
			return bad("malformed header name")
		}
		value := trimOWS(line[colon+1:])
		if !validValue(value) {
			return bad("control character in a header value")
		}
		r.Fields = append(r.Fields, Field{name, value})
		switch len(name) {
		case 4:
			if strings.EqualFold(name, "Host") {
				hosts++
				r.Host = value
			}
		case 6:
			if strings.EqualFold(name, "Expect") {
				if !strings.EqualFold(value, "100-continue") {
					return &protoError{417, "unsupported expectation " + value}
				}
				r.expect100 = r.Minor == 1
			}
		case 10:
			if strings.EqualFold(name, "Connection") {
				for _, t := range strings.Split(value, ",") {
					t = trimOWS(t)
					if strings.EqualFold(t, "close") {
						r.close = true
					} else if strings.EqualFold(t, "keep-alive") {
						r.keepAlive = true
					}
				}
			}
		case 14:
			if strings.EqualFold(name, "Content-Length") {
				for _, v := range strings.Split(value, ",") {
					n, ok := parseLength(trimOWS(v))
					if !ok {
						return bad("malformed Content-Length")
					}
					if clSeen && n != cl {
						return bad("conflicting Content-Length values")
					}
					clSeen, cl = true, n
				}
			}
		case 17:
			if strings.EqualFold(name, "Transfer-Encoding") {
				for _, v := range strings.Split(value, ",") {
					te = append(te, trimOWS(v))
				}
			}
		}
	}

	if r.Minor == 1 && hosts == 0 {
		return bad("missing Host header")
	}
	if hosts > 1 {
		return bad("more than one Host header")
	}
	if !validHost(r.Host) {
		return bad("malformed Host header")
	}
	if perr := r.splitTarget(); perr != nil {
		return perr
	}

	switch {
	case te != nil:
		if r.Minor == 0 {
			return bad("Transfer-Encoding in an HTTP/1.0 request")
		}
		if clSeen {
			return bad("both Transfer-Encoding and Content-Length")
		}
		if !strings.EqualFold(te[len(te)-1], "chunked") {
			return bad("the request body's final transfer coding is not chunked")
		}
		if len(te) > 1 {
			return &protoError{501, "transfer coding not supported: only chunked is"}
		}
		r.Chunked, r.ContentLength = true, -1
	case clSeen:
		if maxBody > 0 && cl > maxBody {
			return &protoError{413, "the body exceeds the limit"}
		}
		r.ContentLength = cl
	default:
		r.ContentLength = 0
	}
	if r.Minor == 0 {
		r.close = !r.keepAlive
	}
	return nil
}

// splitTarget checks the request-target's form (RFC 9112 3.2) and splits it
// into path and query; an absolute-form target's authority becomes the Host.
func (r *Request) splitTarget() *protoError {
	t := r.Target
	switch {
	case r.Method == "CONNECT": // a tunnel (RFC 9110 9.3.6), whatever the target's form
		// 501, not 405: no resource of this server supports it, and a 405
		// would have to list the methods that are allowed (RFC 9110 15.5.6),
		// which only the app knows
		return &protoError{501, "CONNECT is not supported"}
	case t[0] == '/':
	case t == "*":
		if r.Method != "OPTIONS" {
			return bad("asterisk-form target outside OPTIONS")
		}
		r.Path = "*"
		return nil
	case len(t) > 7 && strings.EqualFold(t[:7], "http://"), len(t) > 8 && strings.EqualFold(t[:8], "https://"):
		t = t[strings.IndexByte(t, '/')+2:]
		end := strings.IndexAny(t, "/?")
		if end < 0 {
			end = len(t)
		}
		auth := t[:end]
		if auth == "" || strings.IndexByte(auth, '@') >= 0 || !validHost(auth) {
			return bad("malformed authority in the request target")
		}
		r.Host = auth
		t = t[end:]
		if t == "" || t[0] == '?' {
			r.Path = "/"
			if t != "" {
				r.Query = t[1:]
			}
			return nil
		}
	default:
		return bad("malformed request target")
	}
	if q := strings.IndexByte(t, '?'); q >= 0 {
		r.Path, r.Query = t[:q], t[q+1:]
	} else {
		r.Path = t
	}
	return nil
}

// parseLength parses a Content-Length value: 1*DIGIT, at most 18 digits.
func parseLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// nextLine splits off the first line of s; its LF or CRLF is dropped.
func nextLine(s string) (line, rest string) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		line = s
	} else {
		line, rest = s[:i], s[i+1:]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// UnescapePath decodes %XX sequences into raw bytes (Python then reads them as
// latin-1: PEP 3333's "bytes in str"). Malformed escapes stay as they are, as
// urllib.parse.unquote leaves them.
func UnescapePath(p string) string {
	i := strings.IndexByte(p, '%')
	if i < 0 {
		return p
	}
	b := make([]byte, 0, len(p))
	b = append(b, p[:i]...)
	for ; i < len(p); i++ {
		c := p[i]
		if c == '%' && i+2 < len(p) && unhex(p[i+1]) >= 0 && unhex(p[i+2]) >= 0 {
			b = append(b, byte(unhex(p[i+1])<<4|unhex(p[i+2])))
			i += 2
			continue
		}
		b = append(b, c)
	}
	return string(b)
}
