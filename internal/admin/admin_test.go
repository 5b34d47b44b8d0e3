package admin

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

type fakeSource struct{ unready []string }

func (f *fakeSource) Health() Report { return NewReport(nil) }
func (f *fakeSource) Ready() Report  { return NewReport(f.unready) }

func (f *fakeSource) Metrics() http.Handler   { return nil }
func (f *fakeSource) Dashboard() http.Handler { return nil }

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		addr, token, want string
	}{
		{"127.0.0.1:9100", "", ""},
		{"[::1]:9100", "", ""},
		{"localhost:9100", "", ""},
		{"0.0.0.0:9100", "", "not loopback"},
		{"10.1.2.3:9100", "", "not loopback"},
		{"0.0.0.0:9100", "s3cret", ""},
		{"9100", "", "want host:port"},
	} {
		err := Check(c.addr, c.token)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("Check(%q, %q) = %v, want %q", c.addr, c.token, err, c.want)
		}
	}
}

// /readyz is 503 with the reasons while not ready; a token is required when
// set.
func TestEndpoints(t *testing.T) {
	src := &fakeSource{}
	s, err := Listen("127.0.0.1:0", "tok", src, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	do := func(path, token string) (int, Report) {
		req, _ := http.NewRequest("GET", "http://"+s.Addr()+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r Report
		json.NewDecoder(resp.Body).Decode(&r)
		return resp.StatusCode, r
	}
	if code, _ := do("/healthz", ""); code != 401 {
		t.Errorf("no token: %d, want 401", code)
	}
	if code, _ := do("/healthz", "wrong"); code != 401 {
		t.Errorf("wrong token: %d, want 401", code)
	}
	if code, r := do("/readyz", "tok"); code != 200 || !r.OK || r.Status != "ok" {
		t.Errorf("ready: %d %+v", code, r)
	}
	src.unready = []string{"draining: the server is shutting down"}
	if code, r := do("/readyz", "tok"); code != 503 || r.OK || len(r.Reasons) != 1 || r.Status != "unavailable" {
		t.Errorf("draining: %d %+v", code, r)
	}
	if code, _ := do("/healthz", "tok"); code != 200 {
		t.Errorf("healthz while draining: %d, want 200", code)
	}
}
