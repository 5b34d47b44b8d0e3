package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"mime/multipart"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// postForm posts name=Ann&tag=a&tag=b, with a length or chunked.
func postForm(t *testing.T, w *wisp, path string, chunked bool) (int, map[string]any) {
	t.Helper()
	form := url.Values{"name": {"Ann Ö"}, "tag": {"a", "b&c"}}.Encode()
	req := mustRequest(t, "POST", w.URL+path, strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if chunked {
		req.ContentLength = -1
		req.TransferEncoding = []string{"chunked"}
	}
	resp, body := w.do(t, req)
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Errorf("POST %s: status %d, body %q is not JSON", path, resp.StatusCode, trunc(body))
	}
	return resp.StatusCode, m
}

func checkForm(t *testing.T, w *wisp, path string) {
	t.Helper()
	for _, chunked := range []bool{false, true} {
		status, m := postForm(t, w, path, chunked)
		if status != 200 || m["name"] != "Ann Ö" || !reflect.DeepEqual(m["tags"], []any{"a", "b&c"}) {
			t.Errorf("POST %s form (chunked %v): %d %v; want 200 name \"Ann Ö\" tags [a b&c]", path, chunked, status, m)
		}
	}
}

func checkJSON(t *testing.T, w *wisp, path string) {
	t.Helper()
	req := mustRequest(t, "POST", w.URL+path, strings.NewReader(`{"numbers": [1, 2, 39.5], "s": "é"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, body := w.do(t, req)
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil || resp.StatusCode != 200 || m["sum"] != 42.5 {
		t.Errorf("POST %s JSON: %d %q; want 200 with sum 42.5", path, resp.StatusCode, trunc(body))
	}
}

func checkStatus(t *testing.T, w *wisp, path string, want int) {
	t.Helper()
	if resp, body := w.get(t, path); resp.StatusCode != want {
		t.Errorf("GET %s: %d, want %d; body %q", path, resp.StatusCode, want, trunc(body))
	}
}

func checkBody(t *testing.T, w *wisp, path, want string) {
	t.Helper()
	resp, body := w.get(t, path)
	if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
		t.Errorf("GET %s: %d %q; want 200 containing %q", path, resp.StatusCode, trunc(body), want)
	}
}

func TestFlask(t *testing.T) {
	t.Parallel()
	w := start(t, "--mount", "/mounted="+app("flask/app.py"), app("flask/app.py"))
	checkBody(t, w, "/hello?name=w%C3%AFsp", "Hello, wïsp!")
	checkForm(t, w, "/form")
	checkJSON(t, w, "/json")
	checkStatus(t, w, "/nope", 404)
	checkStatus(t, w, "/form", 405) // GET on a POST route

	t.Run("multipart upload", func(t *testing.T) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		fw, _ := mw.CreateFormFile("file", "data.bin")
		content := bytes.Repeat([]byte("multipart\x00\xff"), 50_000)
		fw.Write(content)
		mw.Close()
		req := mustRequest(t, "POST", w.URL+"/upload", &buf)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, body := w.do(t, req)
		var r struct {
			Filename string `json:"filename"`
			Len      int    `json:"len"`
			SHA256   string `json:"sha256"`
		}
		sum := sha256.Sum256(content)
		if json.Unmarshal(body, &r) != nil || resp.StatusCode != 200 || r.Filename != "data.bin" || r.Len != len(content) || r.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("upload: %d %q; want data.bin, %d bytes, sha %x", resp.StatusCode, trunc(body), len(content), sum)
		}
	})

	t.Run("URLs under a mount", func(t *testing.T) {
		var r struct {
			ScriptName string `json:"script_name"`
			Path       string `json:"path"`
			URL        string `json:"url"`
			RemoteAddr string `json:"remote_addr"`
		}
		w.getJSON(t, "/mounted/env?x=1", &r)
		if r.ScriptName != "/mounted" || r.Path != "/env" || r.URL != w.URL+"/mounted/env?x=1" || r.RemoteAddr != "127.0.0.1" {
			t.Errorf("got %+v; want script_name /mounted, path /env, url %s/mounted/env?x=1, remote_addr 127.0.0.1", r, w.URL)
		}
		checkBody(t, w, "/mounted/hello", "Hello, world!")
	})
}

func TestDjango(t *testing.T) {
	t.Parallel()
	w := start(t, "--mount", "/dj="+app("django/app.py"), app("django/app.py"))
	checkBody(t, w, "/?name=wisp", "<h1>Hello, wisp!</h1><ul><li>0</li><li>1</li><li>2</li></ul>")
	checkForm(t, w, "/form/")
	checkJSON(t, w, "/json/")
	checkStatus(t, w, "/nope/", 404)

	t.Run("APPEND_SLASH redirect", func(t *testing.T) {
		resp, _ := w.get(t, "/form")
		if resp.StatusCode != 301 || resp.Header.Get("Location") != "/form/" {
			t.Errorf("GET /form: %d Location %q; want 301 /form/", resp.StatusCode, resp.Header.Get("Location"))
		}
	})

	t.Run("mounted", func(t *testing.T) {
		var r map[string]string
		w.getJSON(t, "/dj/meta/?a=b", &r)
		want := map[string]string{"path": "/dj/meta/", "path_info": "/meta/", "script_name": "/dj", "full_path": "/dj/meta/?a=b"}
		if !reflect.DeepEqual(r, want) {
			t.Errorf("got %v, want %v", r, want)
		}
	})
}

func TestPasteDeploy(t *testing.T) {
	t.Parallel()
	dir := app("pastedeploy")
	ini := app("pastedeploy/app.ini")
	t.Run("main", func(t *testing.T) {
		t.Parallel()
		w := start(t, "--pythonpath", dir, "config:"+ini)
		checkBody(t, w, "/?name=paste", "Hello, paste!")
		checkJSON(t, w, "/json")
		checkStatus(t, w, "/nope", 404)
		for _, chunked := range []bool{false, true} {
			status, m := postForm(t, w, "/form", chunked)
			if status != 200 || m["name"] != "Ann Ö" || !reflect.DeepEqual(m["tags"], []any{"a", "b&c"}) || m["greeting"] != "Hello" {
				t.Errorf("POST /form (chunked %v): %d %v", chunked, status, m)
			}
		}
		var meta map[string]string
		w.getJSON(t, "/meta", &meta)
		if meta["here"] != dir {
			t.Errorf("%%(here)s = %q, want %q", meta["here"], dir)
		}
	})
	t.Run("named section", func(t *testing.T) {
		t.Parallel()
		w := start(t, "--pythonpath", dir, "config:"+ini+"#other")
		checkBody(t, w, "/?name=paste", "Bonjour, paste!")
	})
	t.Run("composite urlmap", func(t *testing.T) {
		t.Parallel()
		w := start(t, "--pythonpath", dir, "config:"+ini+"#mapped")
		checkBody(t, w, "/?name=x", "Hello, x!")
		var meta map[string]string
		w.getJSON(t, "/other/meta", &meta)
		if meta["script_name"] != "/other" || meta["path_info"] != "/meta" || meta["greeting"] != "Bonjour" {
			t.Errorf("GET /other/meta: %v; want script_name /other, path_info /meta, Bonjour", meta)
		}
	})
	t.Run("relative ini path", func(t *testing.T) {
		t.Parallel()
		w := startOpts(t, runOpts{Dir: dir}, "--pythonpath", dir, "config:app.ini")
		checkBody(t, w, "/?name=rel", "Hello, rel!")
	})
}
