package e2e

// The dashboard as a person uses it, in headless Chromium at a phone's and a
// desktop's size (e2e/dashboard_check.py --layout does the measuring).

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// layoutSize is what dashboard_check.py --layout saw at one window size.
type layoutSize struct {
	InnerWidth  float64 `json:"inner_width"`
	InnerHeight float64 `json:"inner_height"`
	ScrollWidth float64 `json:"scroll_width"`
	Cells       map[string]map[string]string
	Buttons     []struct {
		Pool, Verb                              string
		Left, Right, Top, Bottom, Width, Height float64
		Hit                                     bool
	}
	Tables []struct {
		ID                string
		Heads             []string
		Rows              int
		ScrollWidth       float64 `json:"scroll_width"`
		ClientWidth       float64 `json:"client_width"`
		ParentScrollWidth float64 `json:"parent_scroll_width"`
		ParentClientWidth float64 `json:"parent_client_width"`
		Right             float64
		ParentRight       float64 `json:"parent_right"`
	}
	KeptConnected bool `json:"kept_connected"`
	Screenshot    string
}

// At 390x844 and 1280x800, with two pools, a site whose bindings and app
// paths are long, and traffic (some of it failing): every recycle, stop and
// start button lies inside the viewport once scrolled to vertically, and a
// click at its centre lands on it; the page never scrolls sideways and no
// table is clipped; each pool shows its request rate, p50, p99 and errors;
// a button is the same element after the page's refreshes. Stop asks first:
// one click leaves the pool running, a second stops it, and start starts it
// again. /favicon.ico is an icon, not a 404.
func TestDashboardLayout(t *testing.T) {
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromedriver"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s is not installed (Debian's chromium and chromium-driver)", p)
		}
	}
	if exec.Command(python, "-c", "import selenium").Run() != nil {
		t.Skip("python3-selenium is not installed")
	}
	admin := "127.0.0.1:" + pickPort(t)
	s := serve(t, `
[server]
access_log = "off"
control_socket = "@DIR@/wisp.sock"
admin = "`+admin+`"

[pools.default]
python = "@PY@"
processes = 2

[pools.reports]
python = "@PY@"
processes = 1

[[sites]]
name = "main-site-with-a-long-name"
bindings = ["127.0.0.1:@PORT0@", "127.0.0.1:@PORT1@"]
[[sites.vdirs]]
path = "/"
app = "@APPS@/dashboard/app.py"
pool = "default"
[[sites.vdirs]]
path = "/reports/quarterly/archive"
app = "@APPS@/dashboard/app.py"
pool = "reports"
`)
	base := "http://" + admin

	// /favicon.ico
	resp, err := http.Get(base + "/favicon.ico")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "image/") {
		t.Errorf("GET /favicon.ico: %d %q, want 200 and an image", resp.StatusCode, ct)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	for _, path := range []string{"/", "/slow?ms=30", "/fail", "/reports/quarterly/archive/", "/reports/quarterly/archive/slow?ms=5"} {
		wg.Add(1)
		go func() { // some traffic for every pool, errors included
			defer wg.Done()
			for i := 0; i < 1500; i++ {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
					get(s.Client, s.URL+path)
				}
			}
		}()
	}

	shots := t.TempDir()
	if d := os.Getenv("WISP_DASHBOARD_SHOTS"); d != "" {
		shots = d // to keep them (docs/dashboard.png is dashboard-1280.png)
	}
	cmd := exec.Command(python, filepath.Join(repoRoot, "e2e", "dashboard_check.py"), "--layout", base+"/", "default,reports", shots)
	out, err := cmd.CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var res struct {
		Sizes               map[string]layoutSize
		StateBefore         string `json:"state_before"`
		StopAsks            string `json:"stop_asks"`
		StateAfterOneClick  string `json:"state_after_one_click"`
		StateAfterTwoClicks string `json:"state_after_two_clicks"`
		StateAfterStart     string `json:"state_after_start"`
		After               struct {
			InnerWidth  float64 `json:"inner_width"`
			ScrollWidth float64 `json:"scroll_width"`
			Tables      []struct {
				ID                string
				Rows              int
				ScrollWidth       float64 `json:"scroll_width"`
				ClientWidth       float64 `json:"client_width"`
				ParentScrollWidth float64 `json:"parent_scroll_width"`
				ParentClientWidth float64 `json:"parent_client_width"`
			}
			Error string
		}
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "{") {
			if jerr := json.Unmarshal([]byte(lines[i]), &res); jerr != nil {
				t.Fatalf("%v\n%s", jerr, out)
			}
			break
		}
	}
	if err != nil {
		t.Errorf("dashboard_check.py --layout: %v\n%s", err, tail(string(out), 4<<10))
	}
	for _, size := range []string{"390", "1280"} {
		m, ok := res.Sizes[size]
		if !ok {
			t.Errorf("%s px: not measured", size)
			continue
		}
		t.Logf("%s px: screenshot %s", size, m.Screenshot)
		if want := map[string]float64{"390": 390, "1280": 1280}[size]; m.InnerWidth != want {
			t.Errorf("%s px: the viewport is %v px wide", size, m.InnerWidth)
		}
		if m.ScrollWidth > m.InnerWidth {
			t.Errorf("%s px: the page scrolls sideways (scrollWidth %v > innerWidth %v)", size, m.ScrollWidth, m.InnerWidth)
		}
		seen := map[string]bool{}
		for _, b := range m.Buttons {
			seen[b.Pool+" "+b.Verb] = true
			if b.Left < 0 || b.Top < 0 || b.Right > m.InnerWidth || b.Bottom > m.InnerHeight || b.Width == 0 || b.Height == 0 {
				t.Errorf("%s px: the %s button of pool %s is outside the viewport: %+v", size, b.Verb, b.Pool, b)
			} else if !b.Hit {
				t.Errorf("%s px: a click on the %s button of pool %s lands elsewhere (covered or clipped): %+v", size, b.Verb, b.Pool, b)
			}
		}
		for _, p := range []string{"default", "reports"} {
			for _, v := range []string{"recycle", "stop", "start"} {
				if !seen[p+" "+v] {
					t.Errorf("%s px: pool %s has no %s button", size, p, v)
				}
			}
			c := m.Cells[p]
			for _, k := range []string{"rate", "p50", "p99", "errors"} {
				if v := c[k]; v == "" || v == "-" || v == "–" {
					t.Errorf("%s px: pool %s shows no %s (%q); its cells: %v", size, p, k, v, c)
				}
			}
		}
		if c := m.Cells["default"]; c["errors"] != "" && strings.Trim(c["errors"], "0.") == "" {
			t.Errorf("%s px: pool default shows errors %q, though /fail fails 4 times a second", size, c["errors"])
		}
		tables := map[string]bool{}
		for _, tb := range m.Tables {
			tables[tb.ID] = true
			if tb.ScrollWidth > tb.ClientWidth || tb.ParentScrollWidth > tb.ParentClientWidth || tb.Right > tb.ParentRight+1 {
				t.Errorf("%s px: table %s is clipped: %+v", size, tb.ID, tb)
			}
			for _, h := range tb.Heads {
				if strings.Contains(h, " / ") {
					t.Errorf("%s px: table %s has a column of two things, %q", size, tb.ID, h)
				}
			}
		}
		for _, id := range []string{"pools", "workers", "sites"} {
			if !tables[id] {
				t.Errorf("%s px: no table %s (%v)", size, id, tables)
			}
		}
		if !m.KeptConnected {
			t.Errorf("%s px: the recycle button was replaced by the page's refresh (a click could land on a button that is gone)", size)
		}
	}
	if res.StateBefore != "running" || !strings.Contains(strings.ToLower(res.StopAsks), "confirm") || res.StateAfterOneClick != "running" {
		t.Errorf("stop asks first: before %q, the button after one click %q, the pool then %q; want running, a confirmation, running",
			res.StateBefore, res.StopAsks, res.StateAfterOneClick)
	}
	if res.StateAfterTwoClicks != "stopped" || res.StateAfterStart != "running" {
		t.Errorf("stop confirmed, then start: %q, %q; want stopped, running", res.StateAfterTwoClicks, res.StateAfterStart)
	}
	a := res.After
	if a.InnerWidth != 390 || a.ScrollWidth > a.InnerWidth || a.Error != "" {
		t.Errorf("390 px after stop and start: scrollWidth %v, innerWidth %v, error %q", a.ScrollWidth, a.InnerWidth, a.Error)
	}
	exited := 0
	for _, tb := range a.Tables {
		if tb.ScrollWidth > tb.ClientWidth || tb.ParentScrollWidth > tb.ParentClientWidth {
			t.Errorf("390 px after stop and start: table %s is clipped: %+v", tb.ID, tb)
		}
		if tb.ID == "exited" {
			exited = tb.Rows
		}
	}
	if exited < 2 {
		t.Errorf("390 px after stop and start: %d exited workers listed, want the pool's 2", exited)
	}
}

// An in-process server (wisp run, no pools): /api/status gives its traffic
// as "process", which the page shows as one row: requests, 5xx answers and
// the duration histogram, one count per bucket bound and +Inf.
func TestDashboardStatusInProcess(t *testing.T) {
	admin := "127.0.0.1:" + pickPort(t)
	w := start(t, app("dashboard/app.py"), "--admin", admin)
	for _, p := range []string{"/", "/slow?ms=20", "/fail", "/fail", "/"} {
		get(w.Client, w.URL+p)
	}
	var st struct {
		Pools   []json.RawMessage
		Buckets []float64
		Process *struct {
			Requests, Errors uint64
			Duration         struct{ Counts []uint64 }
		}
	}
	if !eventually(5*time.Second, func() bool {
		resp, err := w.Client.Get("http://" + admin + "/api/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&st) == nil && st.Process != nil && st.Process.Requests >= 5
	}) {
		t.Fatalf("/api/status: %+v, want the process's 5 requests", st)
	}
	var n uint64
	for _, c := range st.Process.Duration.Counts {
		n += c
	}
	if len(st.Pools) != 0 || st.Process.Errors != 2 || len(st.Buckets) == 0 || len(st.Process.Duration.Counts) != len(st.Buckets)+1 || n != st.Process.Requests {
		t.Errorf("/api/status: pools %d, process %+v, buckets %v; want no pools, 2 errors, a count per bucket and +Inf adding up to the requests",
			len(st.Pools), *st.Process, st.Buckets)
	}
}
