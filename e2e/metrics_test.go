package e2e

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape reads /metrics into "name{labels}" → value.
func scrape(t *testing.T, w *wisp, admin string) map[string]float64 {
	t.Helper()
	resp, err := w.Client.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// metricWait waits until the metric reaches want (workers report every second).
func metricWait(t *testing.T, w *wisp, admin, name string, want float64) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := scrape(t, w, admin)
		if m[name] == want || time.Now().After(deadline) {
			if m[name] != want {
				t.Fatalf("%s = %v, want %v", name, m[name], want)
			}
			return m
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// N requests move the counters by exactly N, and the histogram's count too,
// across a recycle of every worker of the pool; a refused request is counted
// by its reason.
func TestMetricsAcrossRecycle(t *testing.T) {
	aport := pickPort(t)
	admin := "127.0.0.1:" + aport
	sock := t.TempDir() + "/ctl.sock"
	w := start(t, app("pool_app/app.py"), "-w", "2", "--admin", admin, "--control-socket", sock)
	const n = 60
	for i := 0; i < n; i++ {
		if code, _ := get(w.Client, w.URL+"/info"); code != 200 {
			t.Fatalf("request %d: %d", i, code)
		}
	}
	total := `wisp_requests_total{code="2xx",pool="default",site="default",vdir="/"}`
	count := `wisp_request_duration_seconds_count{code="2xx",pool="default",site="default",vdir="/"}`
	m := metricWait(t, w, admin, total, n)
	if m[count] != n {
		t.Errorf("histogram count %v, want %d", m[count], n)
	}
	if m[`wisp_workers{pool="default",state="ready"}`] != 2 {
		t.Errorf("ready workers %v", m[`wisp_workers{pool="default",state="ready"}`])
	}
	if code, out, errOut := runWisp(t, time.Minute, "", "recycle", "default", "--socket", sock); code != 0 {
		t.Fatalf("recycle: %d %s%s", code, out, errOut)
	}
	for i := 0; i < n; i++ {
		get(w.Client, w.URL+"/info")
	}
	m = metricWait(t, w, admin, total, 2*n)
	if m[count] != 2*n {
		t.Errorf("histogram count %v after the recycle, want %d", m[count], 2*n)
	}
	recycled := 0.0
	for k, v := range m {
		if strings.HasPrefix(k, `wisp_worker_recycles_total{pool="default"`) {
			recycled += v
		}
	}
	if recycled != 2 {
		t.Errorf("%v recycles counted, want 2 (both workers)", recycled)
	}
	// a malformed request: refused with 400, counted by its reason
	c, err := net.Dial("tcp", w.Addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	c.Read(make([]byte, 512))
	c.Close()
	metricWait(t, w, admin, `wisp_requests_refused_total{pool="default",reason="400"}`, 1)
}

// In-process, the same counters (no pool label value).
func TestMetricsInProcess(t *testing.T) {
	admin := "127.0.0.1:" + pickPort(t)
	w := start(t, app("pool_app/app.py"), "--admin", admin)
	for i := 0; i < 25; i++ {
		get(w.Client, w.URL+"/nope")
	}
	m := metricWait(t, w, admin, `wisp_requests_total{code="2xx",pool="",site="",vdir="/"}`, 25)
	if m[`wisp_request_duration_seconds_count{code="2xx",pool="",site="",vdir="/"}`] != 25 ||
		m[`wisp_python_thread_wait_seconds_count{pool=""}`] != 25 {
		t.Errorf("histogram counts: %v", m)
	}
	if v, ok := m[`wisp_python_gc_collections_total{pool=""}`]; !ok || v <= 0 {
		t.Errorf("Python's GC collections: %v %v (an interpreter that imported an app has collected)", v, ok)
	}
}

// An app that takes long to import shows progress instead of silence, in
// wisp run's startup and in a pool's workers.
func TestImportProgress(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "slow.py"), []byte("import time\ntime.sleep(2.6)\n\ndef application(environ, start_response):\n"+
		"    start_response('200 OK', [])\n    return [b'ok']\n"), 0o644)
	for _, extra := range [][]string{nil, {"-w", "1"}} {
		w := startOpts(t, runOpts{Dir: dir}, append([]string{"slow.py"}, extra...)...)
		if !strings.Contains(w.Stderr(), "importing slow.py… 2.0s") && !strings.Contains(w.Stderr(), "slow.py… 2.0s") {
			t.Errorf("%v: no import progress in:\n%s", extra, w.Stderr())
		}
	}
}

// wisp status lists the live workers in its table and the ones that exited
// apart, marked as such.
func TestStatusMarksExited(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	w := start(t, app("pool_app/app.py"), "-w", "1", "--control-socket", sock)
	runWisp(t, time.Minute, "", "recycle", "default", "--socket", sock)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, out, _ := runWisp(t, time.Minute, "", "status", "--socket", sock)
		table, exited, _ := strings.Cut(out, "recently exited:")
		if strings.Contains(exited, "stopped") && !strings.Contains(table, "stopped") && strings.Contains(table, "ready") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("wisp status:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	_ = w
}

// The dashboard in a real headless browser (Chromium): it shows the worker
// pids, a press of recycle replaces them without a page reload (the button
// pressed stays the page's: rows are updated in place), each new worker's
// state shows, the live trace and the recycles show, and the page fits a
// phone's width.
func TestDashboardChromium(t *testing.T) {
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromedriver"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s is not installed (Debian's chromium and chromium-driver)", p)
		}
	}
	if exec.Command(python, "-c", "import selenium").Run() != nil {
		t.Skip("python3-selenium is not installed")
	}
	admin := "127.0.0.1:" + pickPort(t)
	w := start(t, app("printer/app.py"), "-w", "2", "--admin", admin)
	stop := make(chan struct{})
	defer close(stop)
	go func() { // some traffic for the charts and the trace
		for i := 0; i < 600; i++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				get(w.Client, w.URL+"/dash")
			}
		}
	}()
	args := []string{filepath.Join(repoRoot, "e2e", "dashboard_check.py"), "http://" + admin + "/", "default"}
	if shot := os.Getenv("WISP_DASHBOARD_SCREENSHOT"); shot != "" {
		args = append(args, shot)
	}
	cmd := exec.Command(python, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dashboard_check.py: %v\n%s", err, out)
	}
	var res struct {
		Before, After []string
		Trace, Events string
		PhoneFits     bool `json:"phone_fits"`
		Kept          bool
		States        []string
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(res.Before) != 2 || len(res.After) != 2 || !strings.Contains(res.Trace, "print: /dash") || !strings.Contains(res.Events, "recycled") || !res.PhoneFits {
		t.Errorf("dashboard: %+v", res)
	}
	if !res.Kept {
		t.Errorf("the recycle button pressed was replaced by the page's refresh (a click could land on a button that is gone)")
	}
	if len(res.States) != 2 || res.States[0] != "ready" || res.States[1] != "ready" {
		t.Errorf("the new workers' states: %q, want ready, ready", res.States)
	}
}
