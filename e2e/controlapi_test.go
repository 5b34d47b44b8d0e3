package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// docExample is one example of docs/control-api.md: shell lines and the
// JSON shown as their answer.
type docExample struct {
	lines []string
	want  string
}

var fenceRE = regexp.MustCompile("(?s)```sh\n(.*?)```\\s*```json\n(.*?)```")

// TestControlAPIDoc runs every example of docs/control-api.md, in order,
// against a running `wisp serve`, and checks each answer against the JSON
// the page shows: the same keys (recursively, first array element), and the
// same values for the keys that do not depend on the machine.
func TestControlAPIDoc(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "control-api.md"))
	if err != nil {
		t.Fatal(err)
	}
	var examples []docExample
	for _, m := range fenceRE.FindAllStringSubmatch(string(doc), -1) {
		examples = append(examples, docExample{lines: strings.Split(strings.TrimSpace(m[1]), "\n"), want: m[2]})
	}
	if len(examples) < 10 {
		t.Fatalf("%d examples in docs/control-api.md, want one per endpoint", len(examples))
	}
	s := newPoolServer(t)
	s.writeConfig(t, installConfig)
	s.start(t)
	get(s.Client, s.URL+"/doc") // something for the trace to show
	seen := map[string]bool{}
	for _, ex := range examples {
		if strings.Contains(ex.lines[len(ex.lines)-1], "/v1/trace") {
			// a request line in the trace of today's workers (the examples
			// recycled them): a fresh connection, to one of them
			fresh := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
			if code, body := get(fresh, s.URL+"/doc"); code != 200 {
				t.Fatalf("GET /doc before the trace example: %d %q", code, body)
			}
		}
		var out []byte
		for _, line := range ex.lines {
			cmd := exec.Command("sh", "-c", line)
			cmd.Dir = s.Dir
			var err error
			if out, err = cmd.Output(); err != nil && !strings.Contains(line, "--max-time") {
				t.Fatalf("%s: %v\n%s", line, err, out)
			}
		}
		last := ex.lines[len(ex.lines)-1]
		if f := strings.Fields(last); len(f) > 0 {
			for _, w := range f {
				if strings.HasPrefix(w, "http://wisp/") || strings.HasPrefix(w, "'http://wisp/") {
					seen[strings.Trim(w, "'")] = true
				}
			}
		}
		text := strings.TrimSpace(string(out))
		if strings.Contains(last, "/v1/trace") {
			// JSON lines: the first of the kind the page shows (a request's)
			first := ""
			for _, l := range strings.Split(text, "\n") {
				if strings.Contains(l, `"stream":"request"`) {
					first = l
					break
				}
			}
			if first == "" {
				t.Errorf("%s: no request line in:\n%s", last, text)
				continue
			}
			text = first
		}
		var got, want any
		if err := json.Unmarshal([]byte(text), &got); err != nil {
			t.Errorf("%s: the answer is not JSON: %v\n%s", last, err, out)
			continue
		}
		if err := json.Unmarshal([]byte(ex.want), &want); err != nil {
			t.Fatalf("docs/control-api.md: the example answer of %s is not JSON: %v", last, err)
		}
		if problems := shapeDiff("", want, got); len(problems) > 0 {
			t.Errorf("%s:\n  %s\ngot: %s", last, strings.Join(problems, "\n  "), text)
		}
	}
	for _, ep := range []string{"/v1/status", "/v1/config", "/v1/reload", "/v1/pools/default/recycle", "/v1/pools/default/stop",
		"/v1/pools/default/start", "/v1/trace"} {
		found := false
		for k := range seen {
			found = found || strings.Contains(k, ep)
		}
		if !found {
			t.Errorf("docs/control-api.md has no example of %s", ep)
		}
	}
}

// exactKeys are compared by value; other keys only need to be present.
var exactKeys = map[string]bool{"done": true, "pool": true, "reloaded": true, "threads": true, "key": true, "file": true,
	"msg": true, "error": true}

func shapeDiff(path string, want, got any) []string {
	var out []string
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want an object, got %T", path, got)}
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				out = append(out, fmt.Sprintf("%s.%s: missing", path, k))
				continue
			}
			if exactKeys[k] {
				if _, isObj := wv.(map[string]any); !isObj && fmt.Sprint(wv) != fmt.Sprint(gv) {
					out = append(out, fmt.Sprintf("%s.%s: %v, want %v", path, k, gv, wv))
					continue
				}
			}
			out = append(out, shapeDiff(path+"."+k, wv, gv)...)
		}
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want an array, got %T", path, got)}
		}
		if len(w) > 0 {
			if len(g) == 0 {
				return []string{path + ": empty"}
			}
			out = append(out, shapeDiff(path+"[0]", w[0], g[0])...)
		}
	}
	return out
}
