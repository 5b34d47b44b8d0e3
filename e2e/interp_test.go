package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pyImports reports how the interpreter itself fares importing module:
// "ok" or "ImportError".
func pyImports(t *testing.T, interp, module string) string {
	t.Helper()
	if err := exec.Command(interp, "-c", "import "+module).Run(); err != nil {
		return "ImportError"
	}
	return "ok"
}

func importStatus(s string) string {
	if strings.HasPrefix(s, "ImportError") {
		return "ImportError"
	}
	return "ok"
}

func TestSecondInterpreter(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(python2); err != nil {
		t.Skipf("second interpreter %s not present", python2)
	}
	w := start(t, "--python", python2, app("sysinfo/app.py"))
	var r sysinfo
	w.getJSON(t, "/", &r)
	if !strings.Contains(r.Version, "3.11.7") {
		t.Errorf("sys.version %q, want the 3.11.7 of %s", r.Version, python2)
	}
	wantPrefix := filepath.Dir(filepath.Dir(python2))
	if r.Prefix != wantPrefix {
		t.Errorf("sys.prefix %q, want %q", r.Prefix, wantPrefix)
	}
	if got, want := importStatus(r.Flask), pyImports(t, python2, "flask"); got != want {
		t.Errorf("import flask in the app: %s (%s); the interpreter itself: %s", got, r.Flask, want)
	}
}

func makeVenv(t *testing.T, extra ...string) (venv, sitePackages string) {
	t.Helper()
	venv = filepath.Join(t.TempDir(), "venv")
	args := append([]string{"-m", "venv", "--without-pip"}, extra...)
	if out, err := exec.Command(python, append(args, venv)...).CombinedOutput(); err != nil {
		t.Fatalf("creating venv: %v\n%s", err, out)
	}
	out, err := exec.Command(filepath.Join(venv, "bin", "python3"), "-c", "import site; print(site.getsitepackages()[0])").Output()
	if err != nil {
		t.Fatalf("venv site-packages: %v", err)
	}
	sitePackages = strings.TrimSpace(string(out))
	if err := os.WriteFile(filepath.Join(sitePackages, "e2e_venv_only.py"), []byte("VALUE = \"from-venv\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return venv, sitePackages
}

func TestVenv(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		venvArgs []string
		flask    string
	}{
		{"isolated", nil, "ImportError"},
		{"system-site-packages", []string{"--system-site-packages"}, "ok"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			venv, _ := makeVenv(t, tc.venvArgs...)
			if got := pyImports(t, filepath.Join(venv, "bin", "python3"), "flask"); got != tc.flask {
				t.Fatalf("test setup: the venv's own python imports flask: %s, expected %s", got, tc.flask)
			}
			for _, form := range []string{venv, filepath.Join(venv, "bin", "python3")} {
				t.Run(strings.TrimPrefix(form, venv), func(t *testing.T) {
					w := start(t, "--python", form, app("sysinfo/app.py"))
					var r sysinfo
					w.getJSON(t, "/", &r)
					if r.VenvOnly != "from-venv" {
						t.Errorf("import of a module only in the venv's site-packages: %q", r.VenvOnly)
					}
					if r.Prefix != venv {
						t.Errorf("sys.prefix %q, want the venv %q", r.Prefix, venv)
					}
					if got := importStatus(r.Flask); got != tc.flask {
						t.Errorf("import flask (a system package): %s (%s), want %s as with the venv's own python (pyvenv.cfg)", got, r.Flask, tc.flask)
					}
				})
			}
		})
	}
}

// startupFailure checks a wisp run that must fail at start-up: non-zero exit,
// one clear error line mentioning needle (plus a traceback when
// allowTraceback), no crash dump, no listening line.
func startupFailure(t *testing.T, allowTraceback bool, dir, needle string, args ...string) string {
	t.Helper()
	full := append([]string{"run", "--bind", "127.0.0.1:0"}, args...)
	if !hasFlag(args, "--python") {
		full = append([]string{"run", "--bind", "127.0.0.1:0", "--python", python}, args...)
	}
	code, stdout, stderr := runWisp(t, 60*time.Second, dir, full...)
	if code == 0 {
		t.Errorf("exit code 0, want non-zero")
	}
	if strings.Contains(stderr, "msg=listening") {
		t.Errorf("it started listening")
	}
	for _, crash := range []string{"panic:", "goroutine ", "SIGSEGV", "Fatal Python error", "core dumped"} {
		if strings.Contains(stderr, crash) {
			t.Errorf("crash dump on stderr (%q)", crash)
		}
	}
	if !allowTraceback && strings.Contains(stderr, "Traceback") {
		t.Errorf("a Python traceback for a configuration error; want one clear line")
	}
	// The error is one line: a slog level=ERROR line or a plain "wisp: ..."
	// line. Informational slog lines may precede it.
	var lines []string
	for _, line := range strings.Split(stderr, "\n") {
		if strings.TrimSpace(line) == "" || strings.Contains(line, "level=INFO") ||
			strings.Contains(line, "level=DEBUG") || strings.Contains(line, "level=WARN") {
			continue
		}
		lines = append(lines, line)
	}
	switch {
	case len(lines) == 0:
		t.Errorf("no error message on stderr")
	case !strings.Contains(lines[0], "level=ERROR") && !strings.HasPrefix(lines[0], "wisp:"):
		t.Errorf("first error output is not an error line: %q", lines[0])
	case !allowTraceback && len(lines) != 1:
		t.Errorf("%d lines of error output, want one clear line", len(lines))
	case !strings.Contains(strings.Join(lines, "\n"), needle):
		t.Errorf("the error does not mention %q", needle)
	case !allowTraceback && !strings.Contains(lines[0], needle):
		t.Errorf("the error line does not mention %q: %s", needle, lines[0])
	}
	if t.Failed() {
		t.Logf("wisp %s\nexit %d\n--- stderr ---\n%s--- stdout ---\n%s", strings.Join(full, " "), code, stderr, stdout)
	}
	return stderr
}

func TestBadInterpreter(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	notPython := filepath.Join(t.TempDir(), "python3")
	if err := os.WriteFile(notPython, []byte("#!/bin/sh\necho 'I am not python'\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, interp string }{
		{"missing", "/nonexistent"},
		{"empty directory", empty},
		{"not a python", notPython},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			startupFailure(t, false, "", tc.interp, "--python", tc.interp, app("environ/app.py"))
		})
	}
}

func TestBadTarget(t *testing.T) {
	t.Parallel()
	ini := app("pastedeploy/app.ini")
	cases := []struct {
		name           string
		needle         string
		allowTraceback bool
		args           []string
	}{
		{"missing file", "/nonexistent/app.py", false, []string{"/nonexistent/app.py"}},
		{"missing module", "e2e_no_such_module", false, []string{"e2e_no_such_module:application"}},
		{"missing callable", "nothere", false, []string{"--pythonpath", app("fallback"), "app:nothere"}},
		{"file without an entry point", "noapp", false, []string{app("noapp/app.py")}},
		{"import raises", "e2e-import-time-failure", true, []string{app("importerror/app.py")}},
		{"missing ini", "/nonexistent.ini", false, []string{"config:/nonexistent.ini"}},
		{"missing ini section", "nosuch", false, []string{"--pythonpath", app("pastedeploy"), "config:" + ini + "#nosuch"}},
		{"bad mount target", "e2e_no_such_module", false, []string{"--mount", "/x=e2e_no_such_module:app", app("environ/app.py")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			startupFailure(t, tc.allowTraceback, "", tc.needle, tc.args...)
		})
	}
}

func TestBadFlags(t *testing.T) {
	t.Parallel()
	cases := [][]string{
		{"--no-such-flag", app("environ/app.py")},
		{"--handler", "bogus", app("environ/app.py")},
		{"--threads", "zero", app("environ/app.py")},
		{"--read-timeout", "soon", app("environ/app.py")},
		{}, // no target
	}
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			full := append([]string{"run", "--bind", "127.0.0.1:0", "--python", python}, args...)
			code, _, stderr := runWisp(t, 30*time.Second, "", full...)
			if code == 0 {
				t.Errorf("exit code 0, want non-zero")
			}
			if strings.Contains(stderr, "panic:") || strings.Contains(stderr, "goroutine ") {
				t.Errorf("crash dump:\n%s", stderr)
			}
			if strings.Contains(stderr, "msg=listening") {
				t.Errorf("it started listening")
			}
		})
	}
}
