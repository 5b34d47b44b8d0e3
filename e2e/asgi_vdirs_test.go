package e2e

import (
	"strings"
	"testing"
)

// Real frameworks at vdirs other than /, side by side in one site: Django
// Channels at /site (its HTTP pages and its chat WebSocket) and FastAPI at
// /api (a route and a WebSocket route). Debian's Channels 4.0 and
// Starlette 0.26 route on the path below root_path; wisp gives them that
// path, and root_path is the vdir.
func TestRealAppsAtVdirs(t *testing.T) {
	w := startOpts(t, runOpts{Dir: app("asgi_real/channels_chat")},
		"--mount", "/site=chatsite.asgi:application",
		"--mount", "/api="+app("asgi_real/fastapi_app/app.py")+":app")
	var idx struct{ App, Path string }
	w.getJSON(t, "/site/chat/", &idx)
	if idx.App != "chat" {
		t.Errorf("GET /site/chat/: %+v", idx)
	}
	origin := map[string]string{"Origin": w.URL}
	a := mustDialRealWS(t, w.Addr, "/site/ws/chat/lobby/", origin)
	b := mustDialRealWS(t, w.Addr, "/site/ws/chat/lobby/", origin)
	a.sendText(t, `{"message": "at a vdir", "sender": "a"}`)
	for _, c := range []*realWS{a, b} {
		if m := readRealChat(t, c, "a room member"); m != (realChatMessage{"at a vdir", "a"}) {
			t.Errorf("got %+v", m)
		}
	}
	a.closeAndWait(t, 1000)
	b.closeAndWait(t, 1000)

	resp, body := w.get(t, "/api/")
	if resp.StatusCode != 200 || !strings.Contains(string(body), "{") {
		t.Errorf("GET /api/: %d %s", resp.StatusCode, trunc(body))
	}
	ws := mustDialRealWS(t, w.Addr, "/api/ws/kitchen", nil)
	ws.sendText(t, "hello")
	if got := ws.readText(t); got != "kitchen: hello" {
		t.Errorf("FastAPI WebSocket at /api: %q", got)
	}
	ws.sendText(t, "bye")
	if code, reason := ws.readClose(t); code != 4001 || reason != "bye from kitchen" {
		t.Errorf("close %d %q", code, reason)
	}
}
