package websocket

import (
	"crypto/sha1"
	"encoding/base64"
	"iter"
	"strings"
)

// Field is one header field of a handshake response.
type Field struct {
	Name, Value string
}

// Extension is one offer of a Sec-WebSocket-Extensions header.
type Extension struct {
	Name   string
	Params []Param
}

// Param is one parameter of an extension offer; a quoted value is unquoted.
type Param struct {
	Name     string
	Value    string
	HasValue bool
}

// Handshake is what a valid opening handshake asks for.
type Handshake struct {
	// Key is the Sec-WebSocket-Key of an HTTP/1.1 handshake; "" for
	// HTTP/2 (RFC 8441 has none).
	Key string
	// Protocols are the subprotocols the client offers, in its order.
	Protocols []string
	// Extensions are the extensions the client offers, in its order.
	Extensions []Extension
}

// Offers reports whether the client offered the subprotocol p.
func (h *Handshake) Offers(p string) bool {
	for _, q := range h.Protocols {
		if q == p {
			return true
		}
	}
	return false
}

// HandshakeError is an opening handshake the server refuses: the status to
// answer with (400, or 426 with "Sec-WebSocket-Version: 13" for another
// version) and why.
type HandshakeError struct {
	Status int
	Msg    string
}

func (e *HandshakeError) Error() string { return "websocket: handshake: " + e.Msg }

func badHandshake(msg string) *HandshakeError { return &HandshakeError{Status: 400, Msg: msg} }

// IsUpgrade reports whether an HTTP/1.1 request asks to upgrade to WebSocket:
// an Upgrade header naming websocket and a Connection header with the upgrade
// option (RFC 9110 7.8: a sender of Upgrade sends both). The request then goes
// to CheckHandshake rather than to an HTTP app. Without the Connection option
// the Upgrade field is ignored and the request is served as HTTP, as uvicorn
// (llhttp, h11) does.
func IsUpgrade(fields iter.Seq2[string, string]) bool {
	var upgrade, connection bool
	for name, value := range fields {
		switch {
		case strings.EqualFold(name, "Upgrade"):
			upgrade = upgrade || hasToken(value, "websocket", true)
		case strings.EqualFold(name, "Connection"):
			connection = connection || hasToken(value, "upgrade", false)
		}
	}
	return upgrade && connection
}

// CheckHandshake validates the opening handshake of an HTTP/1.1 request (RFC
// 6455 4.2.1): method GET, "Upgrade: websocket", a Connection header with the
// upgrade token, "Sec-WebSocket-Version: 13" and a Sec-WebSocket-Key that
// is the base64 of 16 bytes. fields yields the request's header fields
// (name, value), in order; names match in any case.
func CheckHandshake(method string, fields iter.Seq2[string, string]) (*Handshake, error) {
	if method != "GET" {
		return nil, badHandshake("method " + method + ", not GET")
	}
	var upgrade, connection, keys int
	h := &Handshake{}
	for name, value := range fields {
		switch {
		case strings.EqualFold(name, "Upgrade"):
			if hasToken(value, "websocket", true) {
				upgrade++
			}
		case strings.EqualFold(name, "Connection"):
			if hasToken(value, "upgrade", false) {
				connection++
			}
		case strings.EqualFold(name, "Sec-WebSocket-Key"):
			keys++
			h.Key = value
		}
	}
	if upgrade == 0 {
		return nil, badHandshake("no Upgrade: websocket")
	}
	if connection == 0 {
		return nil, badHandshake("no Connection: upgrade")
	}
	if keys != 1 {
		return nil, badHandshake("not one Sec-WebSocket-Key")
	}
	if k, err := base64.StdEncoding.DecodeString(h.Key); err != nil || len(k) != 16 {
		return nil, badHandshake("Sec-WebSocket-Key is not the base64 of 16 bytes")
	}
	if err := h.common(fields); err != nil {
		return nil, err
	}
	return h, nil
}

// CheckConnect validates the extended CONNECT that opens a WebSocket over an
// HTTP/2 stream (RFC 8441 section 4): method CONNECT, :protocol websocket
// and "Sec-WebSocket-Version: 13". There is no key, nor Upgrade or
// Connection header. fields are the regular header fields.
func CheckConnect(method, protocol string, fields iter.Seq2[string, string]) (*Handshake, error) {
	if method != "CONNECT" {
		return nil, badHandshake("method " + method + ", not CONNECT")
	}
	if protocol != "websocket" {
		return nil, badHandshake(":protocol " + protocol + ", not websocket")
	}
	h := &Handshake{}
	if err := h.common(fields); err != nil {
		return nil, err
	}
	return h, nil
}

// common checks the version and gathers the subprotocols and extensions.
func (h *Handshake) common(fields iter.Seq2[string, string]) error {
	versions := 0
	version := ""
	for name, value := range fields {
		switch {
		case strings.EqualFold(name, "Sec-WebSocket-Version"):
			versions++
			version = value
		case strings.EqualFold(name, "Sec-WebSocket-Protocol"):
			for p := range strings.SplitSeq(value, ",") {
				p = strings.TrimSpace(p)
				if p == "" {
					continue
				}
				if !isToken(p) {
					return badHandshake("Sec-WebSocket-Protocol " + quote(p) + " is not a token")
				}
				h.Protocols = append(h.Protocols, p)
			}
		case strings.EqualFold(name, "Sec-WebSocket-Extensions"):
			ext, ok := parseExtensions(h.Extensions, value)
			if !ok {
				return badHandshake("malformed Sec-WebSocket-Extensions")
			}
			h.Extensions = ext
		}
	}
	if versions != 1 || version != "13" {
		return &HandshakeError{Status: 426, Msg: "Sec-WebSocket-Version is not 13"}
	}
	return nil
}

// acceptGUID is the constant of RFC 6455 1.3.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKey returns the Sec-WebSocket-Accept value for a Sec-WebSocket-Key.
func AcceptKey(key string) string {
	s := sha1.New()
	s.Write([]byte(key))
	s.Write([]byte(acceptGUID))
	var sum [sha1.Size]byte
	return base64.StdEncoding.EncodeToString(s.Sum(sum[:0]))
}

// ResponseHeaders returns the header fields of the response that accepts
// the handshake h: for HTTP/1.1 (h.Key set) Upgrade, Connection and
// Sec-WebSocket-Accept, the status being 101; for HTTP/2 none of those, the
// status being 200. Then the subprotocol the app chose ("" for none), which
// must be one the client offered, and the permessage-deflate agreement
// (nil for none).
func ResponseHeaders(h *Handshake, protocol string, d *Deflate) ([]Field, error) {
	if protocol != "" && !h.Offers(protocol) {
		return nil, &HandshakeError{Status: 500, Msg: "subprotocol " + quote(protocol) + " was not offered"}
	}
	f := make([]Field, 0, 5)
	if h.Key != "" {
		f = append(f,
			Field{"Upgrade", "websocket"},
			Field{"Connection", "Upgrade"},
			Field{"Sec-WebSocket-Accept", AcceptKey(h.Key)})
	}
	if protocol != "" {
		f = append(f, Field{"Sec-WebSocket-Protocol", protocol})
	}
	if d != nil {
		f = append(f, Field{"Sec-WebSocket-Extensions", d.String()})
	}
	return f, nil
}

// AppendResponse appends to b the whole HTTP/1.1 response that accepts the
// handshake, "101 Switching Protocols" and fields (from ResponseHeaders, and
// any the caller adds), for a server that writes it on the raw connection.
func AppendResponse(b []byte, fields []Field) []byte {
	b = append(b, "HTTP/1.1 101 Switching Protocols\r\n"...)
	for _, f := range fields {
		b = append(b, f.Name...)
		b = append(b, ": "...)
		b = append(b, f.Value...)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
}

// hasToken reports whether the comma-separated list v holds tok (any case).
// With product set, a token's "/version" is ignored (Upgrade: websocket/13).
func hasToken(v, tok string, product bool) bool {
	for t := range strings.SplitSeq(v, ",") {
		t = strings.TrimSpace(t)
		if product {
			if i := strings.IndexByte(t, '/'); i >= 0 {
				t = t[:i]
			}
		}
		if strings.EqualFold(t, tok) {
			return true
		}
	}
	return false
}

// isTchar reports the token characters of RFC 9110 5.6.2.
func isTchar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return false
		}
	}
	return true
}

// quote quotes s for an error message, cut to 64 bytes.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return "\"" + strings.ToValidUTF8(s, "?") + "\""
}

// parseExtensions appends to ext the offers of one Sec-WebSocket-Extensions
// value (RFC 6455 9.1):
//
//	extension-list = 1#extension
//	extension      = token *( ";" param )
//	param          = token [ "=" (token | quoted-string) ]
//
// A quoted value must itself be a token (RFC 6455 9.1); empty list elements
// are skipped.
func parseExtensions(ext []Extension, v string) ([]Extension, bool) {
	p := extParser{s: v}
	for {
		p.space()
		if p.done() {
			return ext, true
		}
		if p.peek() == ',' {
			p.i++
			continue
		}
		name := p.token()
		if name == "" {
			return ext, false
		}
		e := Extension{Name: name}
		for {
			p.space()
			if p.done() || p.peek() == ',' {
				break
			}
			if p.peek() != ';' {
				return ext, false
			}
			p.i++
			p.space()
			pn := p.token()
			if pn == "" {
				return ext, false
			}
			prm := Param{Name: pn}
			p.space()
			if !p.done() && p.peek() == '=' {
				p.i++
				p.space()
				var val string
				if !p.done() && p.peek() == '"' {
					var ok bool
					if val, ok = p.quoted(); !ok {
						return ext, false
					}
				} else {
					val = p.token()
				}
				if !isToken(val) {
					return ext, false
				}
				prm.Value, prm.HasValue = val, true
			}
			e.Params = append(e.Params, prm)
		}
		ext = append(ext, e)
	}
}

// extParser is a cursor over a Sec-WebSocket-Extensions value.
type extParser struct {
	s string
	i int
}

func (p *extParser) done() bool { return p.i >= len(p.s) }
func (p *extParser) peek() byte { return p.s[p.i] }

func (p *extParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *extParser) token() string {
	j := p.i
	for p.i < len(p.s) && isTchar(p.s[p.i]) {
		p.i++
	}
	return p.s[j:p.i]
}

// quoted reads a quoted-string (the cursor on its opening quote) and returns
// it unquoted.
func (p *extParser) quoted() (string, bool) {
	p.i++
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch c {
		case '"':
			return b.String(), true
		case '\\':
			if p.i == len(p.s) {
				return "", false
			}
			b.WriteByte(p.s[p.i])
			p.i++
		default:
			b.WriteByte(c)
		}
	}
	return "", false
}
