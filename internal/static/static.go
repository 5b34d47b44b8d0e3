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
package static

import (
	"fmt"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Handler serves root under the URL prefix (the vdir's path, "" or "/" for
// the root), with cacheControl on every answer ("" for none).
func Handler(root, prefix, cacheControl string) (http.Handler, error) {
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, fmt.Errorf("static folder %s: %w", root, err)
	}
	if st, err := os.Stat(real); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("static folder %s: not a folder", root)
	}
	return &handler{root: real, prefix: strings.TrimSuffix(prefix, "/"), cache: cacheControl}, nil
}

type handler struct {
	root, prefix, cache string
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
	full, ok := h.inside(filepath.Join(h.root, filepath.FromSlash(clean)))
	if !ok {
		http.NotFound(w, r)
		return
	}
	st, err := os.Stat(full)
	if err == nil && st.IsDir() {
		if !strings.HasSuffix(r.URL.Path, "/") {
			http.Redirect(w, r, r.URL.Path+"/", http.StatusMovedPermanently)
			return
		}
		if full, ok = h.inside(filepath.Join(full, "index.html")); !ok {
			http.NotFound(w, r)
			return
		}
		st, err = os.Stat(full)
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
	http.ServeContent(w, r, filepath.Base(full), st.ModTime(), f)
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
