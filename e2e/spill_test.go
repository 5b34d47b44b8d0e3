package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Request bodies spilled to temp files have a total bound (--max-spill): a
// body that can never fit is 413; one that does not fit while others hold the
// space is 503 with Retry-After; the space comes back when they end. Chunked
// bodies take the space as they arrive. Before, spills had no bound at all.
func TestSpillSpaceBounded(t *testing.T) {
	w := start(t, "--threads", "1", "--mem-body", "1024", "--max-spill", "1000000", app("upload/app.py"))
	post := func(n int, chunked bool) (int, string) {
		var body io.Reader = bytes.NewReader(bytes.Repeat([]byte("x"), n))
		if chunked {
			body = io.MultiReader(body) // no length: chunked
		}
		req, _ := http.NewRequest("POST", w.URL+"/", body)
		resp, err := w.Client.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Retry-After") + " " + string(b)
	}
	if code, _ := post(300000, false); code != 200 {
		t.Fatalf("a 300000-byte upload within the space: %d", code)
	}
	// Announced only: the answer comes from the headers, and a client still
	// sending 2 MB would race the server's close (a write error, not a 413).
	if resp, body := rawRequest(t, w.Addr, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n"); resp == nil ||
		resp.StatusCode != 413 || !strings.Contains(body, "space for request bodies") {
		t.Errorf("a body larger than the whole space: %v %q, want 413", resp, body)
	}
	// A client that announces 800000 bytes and stalls holds 800000 of the space.
	c, err := net.Dial("tcp", w.Addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 800000\r\n\r\n%s", strings.Repeat("y", 5000))
	time.Sleep(300 * time.Millisecond)
	code, msg := post(300000, false)
	if code != 503 || !strings.HasPrefix(msg, "5 ") || !strings.Contains(msg, "space for request bodies is full") {
		t.Errorf("with the space held: %d %q, want 503 with Retry-After", code, msg)
	}
	if code, _ := post(300000, true); code != 503 {
		t.Errorf("a chunked body with the space held: %d, want 503", code)
	}
	c.Close() // its space comes back
	if !eventually(5*time.Second, func() bool { code, _ := post(300000, false); return code == 200 }) {
		t.Errorf("the space did not come back after the stalled client left")
	}
	if code, _ := post(300000, true); code != 200 {
		t.Errorf("a chunked 300000-byte upload: %d", code)
	}
	if !strings.Contains(w.Stderr(), "the space for request bodies on disk is full") {
		t.Errorf("no log line for the full spill space")
	}
}

// rawRequest sends req as it is and reads one response.
func rawRequest(t *testing.T, addr, req string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c, req)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Errorf("reading the response: %v", err)
		return nil, ""
	}
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}
