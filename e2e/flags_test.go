package e2e

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// A flag value that cannot work makes the binary exit 2 with the flag's name,
// before it starts anything (it used to be ignored or silently replaced).
func TestRunBadFlagsExit2(t *testing.T) {
	cases := [][]string{
		{"--threads", "0"},
		{"--processes", "-1"},
		{"--max-rss", "512"},
		{"--bind", "unix:"},
		{"--timeout", "soon"},
		{"--no-such-flag"},
	}
	for _, c := range cases {
		args := append(append([]string{"run", "--python", python}, c...), app("pool_app/app.py"))
		code, _, stderr := runWisp(t, 30*time.Second, "", args...)
		if code != 2 || !strings.Contains(stderr, c[0]) {
			t.Errorf("wisp %s: exit %d, stderr %q; want exit 2 naming %s", strings.Join(args, " "), code, stderr, c[0])
		}
	}
}

// Two --bind flags: both addresses serve (the last one used to win), and the
// startup line names the interpreter and why it was chosen.
func TestRunTwoBinds(t *testing.T) {
	port := pickPort(t)
	w := start(t, "--bind", "127.0.0.1:"+port, app("pool_app/app.py"))
	for _, url := range []string{w.URL, "http://127.0.0.1:" + port} {
		r2, err := w.Client.Get(url + "/info")
		if err != nil || r2.StatusCode != 200 {
			t.Fatalf("GET %s/info: %v", url, err)
		}
		r2.Body.Close()
	}
	if n := strings.Count(w.Stderr(), "msg=listening"); n != 2 {
		t.Errorf("%d listening lines, want 2", n)
	}
	if !strings.Contains(w.Stderr(), `interpreter=`+python) || !strings.Contains(w.Stderr(), `from="--python `+python+`"`) {
		t.Errorf("the startup line does not say which interpreter and why:\n%s", w.Stderr())
	}
}

// An interpreter that fails shows what was run and its whole error, not only
// the last line (pyenv explains itself over several lines).
func TestRunPythonProbeShowsWholeError(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "python3")
	script := "#!/bin/sh\necho 'pyenv: python3: command not found' >&2\necho 'The python3 command exists in these Python versions:' >&2\necho '  3.11.7' >&2\nexit 127\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runWisp(t, 30*time.Second, "", "run", "--python", fake, app("pool_app/app.py"))
	if code == 0 {
		t.Fatalf("wisp run with a failing interpreter exited 0")
	}
	for _, want := range []string{fake + " -I -c", "pyenv: python3: command not found", "3.11.7"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

// --log-format text prints an app's traceback as lines a person reads, not
// one logfmt line of \n escapes (the default when stderr is a terminal).
func TestRunLogFormatText(t *testing.T) {
	w := start(t, "--log-format", "text", app("crash/app.py"))
	resp, _ := w.get(t, "/raise?fmt")
	if resp.StatusCode != 500 {
		t.Fatalf("status %d, want 500", resp.StatusCode)
	}
	if !w.waitStderr("RuntimeError: e2e-boom-fmt", 5*time.Second) {
		t.Fatalf("no traceback in the log:\n%s", w.Stderr())
	}
	log := w.Stderr()
	if !strings.Contains(log, "\n    Traceback (most recent call last):\n") || !strings.Contains(log, "\n    RuntimeError: e2e-boom-fmt\n") {
		t.Errorf("the traceback is not printed as indented lines:\n%s", log)
	}
	if strings.Contains(log, `\n`) {
		t.Errorf("escaped newlines in the text log:\n%s", log)
	}
}

// `wisp version` names the Go toolchain and platform the binary was built
// with, and its commit when the build knew it (the Makefile passes it).
func TestVersionCommand(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		code, out, _ := runWisp(t, 10*time.Second, "", arg)
		want := ", " + runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
		if code != 0 || !strings.HasPrefix(out, "wisp ") || !strings.HasSuffix(out, want) ||
			!(strings.Contains(out, "(commit ") || strings.Contains(out, "(unknown commit")) {
			t.Errorf("wisp %s: exit %d, %q; want \"wisp VERSION (commit C|unknown commit%s", arg, code, out, want)
		}
	}
}
