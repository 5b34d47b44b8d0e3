package accesslog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"wisp/internal/trace"
)

var entry = Entry{Start: time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC), Duration: 1500 * time.Microsecond,
	Remote: "10.1.2.3:5555", Method: "GET", Target: "/shop/a b?x=1", Proto: "HTTP/1.1", Status: 200, Bytes: 42,
	Referer: "http://ref/", UserAgent: "agent \"quoted\"", Auth: "Basic dXNlcjpwdw==", RequestID: trace.NewID(0xabc),
	Site: "main", Vdir: "/shop", Local: &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 8080}}

func logged(t *testing.T, format string, es ...Entry) string {
	t.Helper()
	var b syncBuf
	l, err := New(&b, format, "web", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		l.Log(e)
	}
	l.Close()
	return b.String()
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestCombined(t *testing.T) {
	got := logged(t, "combined", entry)
	want := `10.1.2.3 - user [05/Dec/2026:08:00:00 +0000] "GET /shop/a b?x=1 HTTP/1.1" 200 42 "http://ref/" "agent \"quoted\"" rid=0000000000000abc` + "\n"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// W3C: the header, then lines that a W3C parser (fields from #Fields,
// space-separated, "-" empty) reads back.
func TestW3C(t *testing.T) {
	out := logged(t, "w3c", entry)
	var fields []string
	var rows [][]string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#Fields: ") {
			fields = strings.Fields(strings.TrimPrefix(line, "#Fields: "))
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		rows = append(rows, strings.Split(line, " "))
	}
	if len(rows) != 1 || len(rows[0]) != len(fields) {
		t.Fatalf("fields %v, rows %v", fields, rows)
	}
	row := map[string]string{}
	for i, f := range fields {
		row[f] = rows[0][i]
	}
	for k, v := range map[string]string{"date": "2026-12-05", "time": "08:00:00", "s-sitename": "main", "s-ip": "127.0.0.1",
		"cs-method": "GET", "cs-uri-stem": "/shop/a+b", "cs-uri-query": "x=1", "s-port": "8080", "cs-username": "user",
		"c-ip": "10.1.2.3", "sc-status": "200", "sc-bytes": "42", "time-taken": "1", "x-request-id": "0000000000000abc",
		"cs(User-Agent)": `agent+\"quoted\"`, "cs(Referer)": "http://ref/"} {
		if row[k] != v {
			t.Errorf("%s = %q, want %q", k, row[k], v)
		}
	}
}

func TestJSON(t *testing.T) {
	out := logged(t, "json", entry, Entry{Start: entry.Start, Status: 400, Remote: "[::1]:9"})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("%q", out)
	}
	var j jsonLine
	if err := json.Unmarshal([]byte(lines[0]), &j); err != nil {
		t.Fatal(err)
	}
	if j.RequestID != "0000000000000abc" || j.Site != "main" || j.Vdir != "/shop" || j.Pool != "web" || j.PID != os.Getpid() ||
		j.Status != 200 || j.Bytes != 42 || j.Duration != 1.5 || j.Remote != "10.1.2.3" || j.UserAgent != `agent "quoted"` {
		t.Errorf("%+v", j)
	}
	json.Unmarshal([]byte(lines[1]), &j)
	if j.Remote != "::1" || j.Status != 400 {
		t.Errorf("%+v", j)
	}
}

// A log that cannot write (a pipe nobody reads) drops entries and counts
// them; Log never waits.
func TestNeverBlocks(t *testing.T) {
	r, w, _ := os.Pipe()
	defer r.Close()
	l, _ := New(w, "combined", "", nil)
	t0 := time.Now()
	for i := 0; i < queueSize+5000; i++ {
		l.Log(entry)
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("logging took %v", d)
	}
	if l.Dropped() == 0 {
		t.Error("nothing dropped")
	}
	w.Close() // lets the writer goroutine fail and Close return
	l.Close()
}

// Reopen: logrotate renamed the file; later lines go to a new one, which
// starts with the W3C header again.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	l, err := Open(path, "w3c", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Log(entry)
	time.Sleep(300 * time.Millisecond)
	os.Rename(path, path+".1")
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Log(entry)
	l.Close()
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if strings.Count(string(old), "\n2026-12-05") != 1 || !strings.HasPrefix(string(cur), "#Software: wisp") || strings.Count(string(cur), "\n2026-12-05") != 1 {
		t.Errorf("old:\n%s\nnew:\n%s", old, cur)
	}
	if _, err := Open("off", "xml", "", nil); err == nil {
		t.Error("an unknown format accepted")
	}
}
