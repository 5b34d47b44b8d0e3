package server

import (
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"

	"wisp/internal/pyembed"
)

// environ fills e with the request's CGI variables (PEP 3333); the wsgi.*
// constants and wsgi.input are added on the Python side.
func (s *Server) environ(e *pyembed.Environ, r *http.Request, scriptName, pathInfo, query string, bodyLen int64, bodyFile *os.File) {
	e.Add("REQUEST_METHOD", r.Method)
	e.Add("SCRIPT_NAME", scriptName)
	e.Add("PATH_INFO", pathInfo)
	e.Add("QUERY_STRING", query)
	e.Add("REQUEST_URI", r.RequestURI)
	e.Add("RAW_URI", r.RequestURI)
	e.Add("SERVER_PROTOCOL", r.Proto)
	if ct := r.Header["Content-Type"]; len(ct) > 0 {
		e.Add("CONTENT_TYPE", ct[0])
	}
	if bodyFile != nil {
		if st, err := bodyFile.Stat(); err == nil {
			bodyLen = st.Size()
		}
	}
	if bodyLen > 0 || len(r.Header["Content-Length"]) > 0 || len(r.TransferEncoding) > 0 {
		e.Add("CONTENT_LENGTH", strconv.FormatInt(bodyLen, 10))
	}
	var port, name string
	local, _ := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr)
	if local != nil {
		port = strconv.Itoa(local.Port)
	} else if fw := r.Header["X-Wisp-Server-Port"]; len(fw) == 1 {
		port = fw[0] // a request forwarded from another pool
	}
	if r.Host != "" {
		e.Add("HTTP_HOST", r.Host)
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			name = strings.Trim(h, "[]")
		} else {
			name = r.Host
		}
	} else if local != nil {
		name = local.IP.String()
	}
	e.Add("SERVER_NAME", name)
	e.Add("SERVER_PORT", port)
	remote := r.RemoteAddr
	if fw := r.Header["X-Wisp-Remote-Addr"]; len(fw) == 1 && isUnix(r) {
		remote = fw[0] // trusted: only another pool's worker reaches a unix socket
	}
	if i := strings.LastIndexByte(remote, ':'); i >= 0 {
		e.Add("REMOTE_ADDR", strings.Trim(remote[:i], "[]"))
		e.Add("REMOTE_PORT", remote[i+1:])
	} else {
		e.Add("REMOTE_ADDR", remote)
	}
	if r.TLS != nil {
		e.Add("wsgi.url_scheme", "https")
		e.Add("HTTPS", "on")
	}
	for name, vv := range r.Header {
		if name == "Content-Type" || name == "Content-Length" || strings.IndexByte(name, '_') >= 0 ||
			strings.HasPrefix(name, "X-Wisp-") {
			// CONTENT_* are set above; a name with '_' would collide with its
			// '-' twin in HTTP_* (header spoofing), so it is dropped, as nginx
			// and gunicorn do.
			continue
		}
		v := vv[0]
		if len(vv) > 1 {
			sep := ","
			if name == "Cookie" {
				sep = "; "
			}
			v = strings.Join(vv, sep)
		}
		e.AddHeader(name, v)
	}
}

// splitURI returns the raw (still escaped) path and the raw query of r.
func splitURI(r *http.Request) (string, string) {
	uri := r.RequestURI
	if uri == "*" {
		return "*", ""
	}
	if !strings.HasPrefix(uri, "/") {
		// absolute-form (http://host/path?q): take what net/http parsed
		return r.URL.EscapedPath(), r.URL.RawQuery
	}
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		return uri[:i], uri[i+1:]
	}
	return uri, ""
}

// unescapePath decodes %XX sequences into raw bytes (Python then reads them as
// latin-1: PEP 3333's "bytes in str"). Malformed escapes stay as they are, as
// urllib.parse.unquote leaves them.
func unescapePath(p string) string {
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

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// isUnix reports whether r came over a unix socket (forwarded by a worker of
// another pool).
func isUnix(r *http.Request) bool {
	_, ok := r.Context().Value(http.LocalAddrContextKey).(*net.UnixAddr)
	return ok
}
