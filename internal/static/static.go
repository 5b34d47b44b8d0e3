// Package static serves a folder as a site's virtual directory
// (`[[sites.vdirs]] static = "folder"`, `wisp run --static /static=folder`):
// by Go, never by a Python thread.
//
// What it does: ETag and Last-Modified with conditional requests (304),
// Range requests (206, multi-range), a precompressed sibling (file.br,
// file.gz) when the client accepts it, and Cache-Control as the vdir asks.
// A folder is served by its index.html; there are no listings.
//
// Escapes are refused: the request's path is decoded and cleaned first, so
// "..", "%2e%2e" and "%2f" cannot leave the folder; a symlink is followed
// only when it points inside the folder (a symlink out of it is answered
// 404, as if the file were not there).
//
// What it does not serve (404, so as not to tell whether it exists): a path
// segment that starts with '.' (.env, .git/config), except .well-known/ at
// the folder's root, unless Options.AllowDotfiles; a file asked for as a
// folder (file.txt/). A folder asked for without its '/' is redirected to
// the cleaned path with a '/', an absolute path of this host: never
// "//host", whatever the request's path holds. A Range header with more
// than MaxRanges ranges, overlapping ranges, or ranges that add up to more
// than the file is ignored: the whole file is sent (200), as nginx does
// past max_ranges.
package static

import (
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// MaxRanges is the most ranges a request may ask for at once; a Range
// header with more is ignored and the whole file sent (200). Multi-range
// answers are for the odd PDF reader, not for thousands of parts.
const MaxRanges = 16

// Options are a static vdir's settings.
type Options struct {
	// CacheControl is the Cache-Control of every answer ("" for none).
	CacheControl string
	// AllowDotfiles serves path segments that start with '.' (the vdir's
	// dotfiles = "allow"). False, the default: they are answered 404,
	// except .well-known/ at the folder's root.
	AllowDotfiles bool
}

// Handler serves root under the URL prefix (the vdir's path, "" or "/" for
// the root).
func Handler(root, prefix string, o Options) (http.Handler, error) {
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, fmt.Errorf("static folder %s: %w", root, err)
	}
	if st, err := os.Stat(real); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("static folder %s: not a folder", root)
	}
	return &handler{root: real, prefix: strings.TrimSuffix(prefix, "/"), cache: o.CacheControl, dotfiles: o.AllowDotfiles}, nil
}

type handler struct {
	root, prefix, cache string
	dotfiles            bool
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	rel := strings.TrimPrefix(r.URL.Path, h.prefix)
	if strings.ContainsRune(rel, 0) || strings.Contains(rel, "\\") {
		http.Error(w, "400 Bad Request", http.StatusBadRequest)
		return
	}
	clean := path.Clean("/" + rel) // no ".." survives, whatever its encoding
	if !h.dotfiles && hidden(clean) {
		http.NotFound(w, r)
		return
	}
	full, ok := h.inside(filepath.Join(h.root, filepath.FromSlash(clean)))
	if !ok {
		http.NotFound(w, r)
		return
	}
	// asFolder: the request names a folder ("dir/", "dir/.", "dir/..").
	asFolder := strings.HasSuffix(rel, "/") || strings.HasSuffix(rel, "/.") || strings.HasSuffix(rel, "/..") || rel == "." || rel == ".."
	st, err := os.Stat(full)
	if err == nil && st.IsDir() {
		if !asFolder {
			// Built from the cleaned path, not the request's: "//evil.com"
			// or "//evil.com/%2e%2e" must not become a Location that
			// leaves this host.
			loc := path.Clean(h.prefix + clean)
			if loc != "/" {
				loc += "/"
			}
			loc = (&url.URL{Path: loc}).EscapedPath()
			if r.URL.RawQuery != "" {
				loc += "?" + r.URL.RawQuery
			}
			w.Header().Set("Location", loc)
			w.WriteHeader(http.StatusMovedPermanently)
			return
		}
		if full, ok = h.inside(filepath.Join(full, "index.html")); !ok {
			http.NotFound(w, r)
			return
		}
		st, err = os.Stat(full)
	} else if asFolder {
		http.NotFound(w, r) // a file asked for as a folder (file.txt/)
		return
	}
	if err != nil || !st.Mode().IsRegular() {
		http.NotFound(w, r) // no listings: a folder without index.html is not served
		return
	}
	ctype := mime.TypeByExtension(filepath.Ext(full))
	serve, encoding := full, ""
	if ctype != "" {
		for _, enc := range []struct{ name, ext string }{{"br", ".br"}, {"gzip", ".gz"}} {
			if !accepts(r.Header.Get("Accept-Encoding"), enc.name) {
				continue
			}
			if p, ok := h.inside(full + enc.ext); ok {
				if cst, err := os.Stat(p); err == nil && cst.Mode().IsRegular() {
					serve, encoding, st = p, enc.name, cst
					break
				}
			}
		}
		w.Header().Set("Vary", "Accept-Encoding")
	}
	f, err := os.Open(serve)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	if ctype != "" {
		w.Header().Set("Content-Type", ctype)
	}
	if encoding != "" {
		w.Header().Set("Content-Encoding", encoding)
	}
	if h.cache != "" {
		w.Header().Set("Cache-Control", h.cache)
	}
	w.Header().Set("ETag", fmt.Sprintf(`"%x-%x%s"`, st.Size(), st.ModTime().UnixNano(), encoding))
	if rg := r.Header.Get("Range"); rg != "" && !sane(rg, st.Size()) {
		r = r.Clone(r.Context())
		r.Header.Del("Range")
	}
	http.ServeContent(w, r, filepath.Base(full), st.ModTime(), f)
}

// hidden reports whether a cleaned path has a segment that starts with '.',
// other than .well-known as its first.
func hidden(clean string) bool {
	for i, seg := range strings.Split(strings.TrimPrefix(clean, "/"), "/") {
		if strings.HasPrefix(seg, ".") && !(i == 0 && seg == ".well-known") {
			return true
		}
	}
	return false
}

// sane reports whether a Range header may be answered as it asks: at most
// MaxRanges ranges, none overlapping another, adding up to no more than
// the file's size. A header that does not parse is left to
// http.ServeContent (416, or ignored).
func sane(header string, size int64) bool {
	spec, ok := strings.CutPrefix(header, "bytes=")
	if !ok {
		return true
	}
	parts := strings.Split(spec, ",")
	if len(parts) > MaxRanges {
		return false
	}
	type span struct{ start, end int64 } // [start, end)
	var spans []span
	var total int64
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		first, last, ok := strings.Cut(p, "-")
		if !ok {
			return true
		}
		first, last = strings.TrimSpace(first), strings.TrimSpace(last)
		var s span
		if first == "" { // suffix: the last N bytes
			n, err := strconv.ParseInt(last, 10, 64)
			if err != nil || n < 0 {
				return true
			}
			s = span{max(size-n, 0), size}
		} else {
			a, err := strconv.ParseInt(first, 10, 64)
			if err != nil || a < 0 {
				return true
			}
			if a >= size {
				continue // unsatisfiable: ServeContent skips it
			}
			s = span{a, size}
			if last != "" {
				b, err := strconv.ParseInt(last, 10, 64)
				if err != nil || b < a {
					return true
				}
				s.end = min(b+1, size)
			}
		}
		spans = append(spans, s)
		total += s.end - s.start
	}
	if total > size {
		return false
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	for i := 1; i < len(spans); i++ {
		if spans[i].start < spans[i-1].end {
			return false
		}
	}
	return true
}

// inside resolves p's symlinks and reports whether it stays in the folder
// (a path that does not exist yet counts as inside when its folder is).
func (h *handler) inside(p string) (string, bool) {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		if os.IsNotExist(err) {
			return p, strings.HasPrefix(p, h.root+string(filepath.Separator)) || p == h.root
		}
		return "", false
	}
	return real, real == h.root || strings.HasPrefix(real, h.root+string(filepath.Separator))
}

// accepts reports whether an Accept-Encoding value allows coding (q > 0).
func accepts(header, coding string) bool {
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(name), coding) {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}
