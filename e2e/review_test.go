package e2e

import (
	"net/http"
	"os"
	"testing"
	"time"
)

// TestExcInfoValues: sys.exc_info() outside an except block is no exc_info
// (a second start_response is then an error: the started response is cut),
// a bogus exc_info is a TypeError (500); the server survives both.
func TestExcInfoValues(t *testing.T) {
	t.Parallel()
	w := start(t, app("review/app.py"))
	c := dialRaw(t, w.Addr)
	c.send("GET /excinfo-none HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _, err := c.response("GET"); err == nil && resp.StatusCode == 200 && resp.ContentLength >= 0 {
		t.Errorf("/excinfo-none: a complete-looking response (%v); want the connection cut", resp.ContentLength)
	}
	resp, _ := w.get(t, "/excinfo-bogus")
	if resp.StatusCode != 500 {
		t.Errorf("/excinfo-bogus: %d, want 500", resp.StatusCode)
	}
	if resp, body := w.get(t, "/ok"); resp.StatusCode != 200 || string(body) != "echo /ok" {
		t.Fatalf("after the bad exc_info calls: %d %q", resp.StatusCode, body)
	}
}

// TestTimeoutAfterResponseStarted: a request that times out after its
// status line went out is cut, and the requests that follow on the same
// thread get their own responses (its job is not reused while it runs).
func TestTimeoutAfterResponseStarted(t *testing.T) {
	t.Parallel()
	w := start(t, "--threads", "1", "--timeout", "1s", app("review/app.py"))
	c := dialRaw(t, w.Addr)
	c.send("GET /late-spin HTTP/1.1\r\nHost: x\r\n\r\n")
	if closed, _ := c.closedWithin(10 * time.Second); !closed {
		t.Fatalf("the timed-out, already started response was not cut")
	}
	for i := 0; i < 20; i++ {
		path := "/n" + string(rune('a'+i))
		resp, body := w.get(t, path)
		if resp.StatusCode != 200 || string(body) != "echo "+path {
			t.Fatalf("request %s after the timeout: %d %q", path, resp.StatusCode, body)
		}
	}
}

// TestHeadEmptyBodyHasNoZeroLength: a HEAD whose app produced no bytes does
// not claim Content-Length: 0 (it says nothing of the GET's length).
func TestHeadEmptyBodyHasNoZeroLength(t *testing.T) {
	t.Parallel()
	w := start(t, app("review/app.py"))
	req, _ := http.NewRequest("HEAD", w.URL+"/empty", nil)
	resp, _ := w.do(t, req)
	if cl := resp.Header.Get("Content-Length"); cl == "0" {
		t.Errorf("HEAD /empty: Content-Length %q, want none", cl)
	}
}

// TestFileWrapperGetsLength: a file_wrapper response without Content-Length
// gets the file's length (so it goes out with sendfile, not chunked).
func TestFileWrapperGetsLength(t *testing.T) {
	t.Parallel()
	w := start(t, app("review/app.py"))
	resp, body := w.get(t, "/file-nolen")
	want, err := os.ReadFile(app("review/app.py"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || string(body) != string(want) {
		t.Fatalf("/file-nolen: %d, %d bytes, want the %d bytes of the file", resp.StatusCode, len(body), len(want))
	}
	if resp.ContentLength != int64(len(want)) || len(resp.TransferEncoding) > 0 {
		t.Errorf("/file-nolen: Content-Length %d, Transfer-Encoding %v; want %d and no chunking",
			resp.ContentLength, resp.TransferEncoding, len(want))
	}
}
