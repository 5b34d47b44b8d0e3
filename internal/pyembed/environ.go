package pyembed

import "encoding/binary"

// envKeys are the environ keys C interns once; an Environ refers to them by
// index. Index 0 means "the key follows inline".
var envKeys = []string{"",
	"REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE", "CONTENT_LENGTH",
	"SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR", "REMOTE_PORT", "REQUEST_URI",
	"RAW_URI", "wsgi.url_scheme", "HTTPS",
	"HTTP_HOST", "HTTP_USER_AGENT", "HTTP_ACCEPT", "HTTP_ACCEPT_ENCODING", "HTTP_ACCEPT_LANGUAGE",
	"HTTP_CONNECTION", "HTTP_COOKIE", "HTTP_REFERER", "HTTP_CACHE_CONTROL", "HTTP_ORIGIN",
	"HTTP_AUTHORIZATION", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_REQUESTED_WITH",
	"HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE", "HTTP_UPGRADE_INSECURE_REQUESTS",
	"HTTP_SEC_FETCH_MODE", "HTTP_SEC_FETCH_SITE", "HTTP_SEC_FETCH_DEST", "HTTP_PRAGMA",
	"HTTP_EXPECT", "HTTP_RANGE", "HTTP_X_REAL_IP",
}

var envKeyID = func() map[string]byte {
	m := make(map[string]byte, len(envKeys))
	for i, k := range envKeys[1:] {
		m[k] = byte(i + 1)
	}
	return m
}()

// Environ is a request's CGI/WSGI variables in the flat, pointer-free form
// wisp_run_job reads. Keys and values are bytes that Python decodes as latin-1
// (PEP 3333 "bytes in str"). The zero value is empty and ready to use.
type Environ struct {
	buf []byte
}

// Reset empties e, keeping its memory.
func (e *Environ) Reset() { e.buf = e.buf[:0] }

// Add appends one variable.
func (e *Environ) Add(key, value string) {
	if id, ok := envKeyID[key]; ok {
		e.buf = append(e.buf, id)
	} else {
		e.buf = append(e.buf, 0)
		e.buf = binary.NativeEndian.AppendUint32(e.buf, uint32(len(key)))
		e.buf = append(e.buf, key...)
	}
	e.buf = binary.NativeEndian.AppendUint32(e.buf, uint32(len(value)))
	e.buf = append(e.buf, value...)
}

// AddHeader appends an HTTP_* variable built from a header name such as
// "X-Forwarded-For", without allocating for the common names.
func (e *Environ) AddHeader(name, value string) {
	var kb [64]byte
	k := kb[:0]
	if len(name)+5 > len(kb) {
		k = make([]byte, 0, len(name)+5)
	}
	k = append(k, "HTTP_"...)
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '-':
			c = '_'
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		}
		k = append(k, c)
	}
	if id, ok := envKeyID[string(k)]; ok {
		e.buf = append(e.buf, id)
	} else {
		e.buf = append(e.buf, 0)
		e.buf = binary.NativeEndian.AppendUint32(e.buf, uint32(len(k)))
		e.buf = append(e.buf, k...)
	}
	e.buf = binary.NativeEndian.AppendUint32(e.buf, uint32(len(value)))
	e.buf = append(e.buf, value...)
}
