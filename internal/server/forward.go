package server

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
)

// NewForwarder relays requests of site for a mount served by another worker
// pool to that pool's unix socket. The site, the client's address and the
// listener's port go along in X-Wisp-* headers, which wisp trusts only on
// unix sockets.
func NewForwarder(socket, site string, log *slog.Logger) http.Handler {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConnsPerHost: 64,
		DisableCompression:  true,
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = "wisp-pool"
			pr.Out.Host = pr.In.Host
			pr.Out.Header.Del("X-Forwarded-For")
			fwPort := pr.In.Header["X-Wisp-Server-Port"]
			for k := range pr.Out.Header {
				if len(k) > 7 && k[:7] == "X-Wisp-" {
					delete(pr.Out.Header, k)
				}
			}
			pr.Out.Header.Set("X-Wisp-Site", site)
			if fw := pr.In.Header["X-Wisp-Remote-Addr"]; len(fw) == 1 && isUnix(pr.In) {
				pr.Out.Header.Set("X-Wisp-Remote-Addr", fw[0])
			} else {
				pr.Out.Header.Set("X-Wisp-Remote-Addr", pr.In.RemoteAddr)
			}
			if a, ok := pr.In.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok {
				pr.Out.Header.Set("X-Wisp-Server-Port", strconv.Itoa(a.Port))
			} else if len(fwPort) == 1 {
				pr.Out.Header.Set("X-Wisp-Server-Port", fwPort[0])
			}
		},
		Transport:     tr,
		FlushInterval: -1, // stream as the app produces
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			log.Warn("forward to pool failed", "socket", socket, "uri", r.RequestURI, "err", err)
			w.Header().Set("Retry-After", "1")
			plain(w, http.StatusBadGateway, "502 Bad Gateway: the pool serving this path is not answering")
		},
	}
}
