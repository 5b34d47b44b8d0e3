package e2e

import (
	"strings"
	"testing"
)

// TestStartResponseExcInfoKeyword: PEP 3333 names start_response's third
// parameter exc_info; giving it by keyword works like giving it by position,
// and any other keyword is a TypeError the app can catch.
func TestStartResponseExcInfoKeyword(t *testing.T) {
	t.Parallel()
	w := start(t, app("pep3333/app.py"))
	resp, body := w.get(t, "/kw-replace")
	if resp.StatusCode != 503 || resp.Header.Get("X-Second") != "1" || string(body) != "replaced\n" {
		t.Errorf("/kw-replace: status %d, X-Second %q, body %q; want 503, 1, replaced", resp.StatusCode, resp.Header.Get("X-Second"), trunc(body))
	}
	resp, body = w.get(t, "/kw-none")
	if resp.StatusCode != 200 || string(body) != "kw-none\n" {
		t.Errorf("/kw-none: status %d, body %q", resp.StatusCode, trunc(body))
	}
	resp, body = w.get(t, "/kw-bad")
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "TypeError:") {
		t.Errorf("/kw-bad: status %d, body %q; want a TypeError", resp.StatusCode, trunc(body))
	}
}
