package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

type mountReply struct {
	App         string `json:"app"`
	ScriptName  string `json:"SCRIPT_NAME"`
	PathInfo    string `json:"PATH_INFO"`
	QueryString string `json:"QUERY_STRING"`
	Multithread *bool  `json:"multithread"`
}

func TestHandlers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		args        []string
		multithread string
	}{
		{"default is threadpool", nil, "True"},
		{"threadpool", []string{"--handler", "threadpool"}, "True"},
		{"simple", []string{"--handler", "simple"}, "False"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := start(t, append(tc.args, app("environ/app.py"))...)
			var r envReply
			w.getJSON(t, "/", &r)
			wantEnv(t, r.Environ, "wsgi.multithread", tc.multithread)
			wantEnv(t, r.Environ, "wsgi.multiprocess", "False")
		})
	}
}

func TestMounts(t *testing.T) {
	t.Parallel()
	dir := app("mounts")
	w := start(t,
		"--pythonpath", dir,
		"--mount", "/foo=mountapps:foo_app",
		"--mount", "/foo/bar=mountapps:foobar_app",
		"--mount", "/other="+filepath.Join(dir, "other.py"),
		filepath.Join(dir, "app.py"),
	)
	cases := []struct {
		target, app, script, path, query string
	}{
		{"/", "root", "", "/", ""},
		{"/x/y", "root", "", "/x/y", ""},
		{"/foo", "foo", "/foo", "", ""},
		{"/foo/", "foo", "/foo", "/", ""},
		{"/foo/x?a=1", "foo", "/foo", "/x", "a=1"},
		{"/foobar", "root", "", "/foobar", ""},
		{"/foo/barx", "foo", "/foo", "/barx", ""},
		{"/foo/bar", "foo/bar", "/foo/bar", "", ""},
		{"/foo/bar/baz", "foo/bar", "/foo/bar", "/baz", ""},
		{"/FOO", "root", "", "/FOO", ""},
		{"/other/caf%C3%A9", "other", "/other", "/caf\u00c3\u00a9", ""},
	}
	for _, tc := range cases {
		t.Run(tc.target, func(t *testing.T) {
			_, body, err := exchange(t, w.Addr, "GET", tc.target)
			if err != nil {
				t.Fatal(err)
			}
			var r mountReply
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatalf("bad JSON %q: %v", trunc(body), err)
			}
			if r.App != tc.app || r.ScriptName != tc.script || r.PathInfo != tc.path || r.QueryString != tc.query {
				t.Errorf("GET %s → app %q SCRIPT_NAME %q PATH_INFO %q QUERY_STRING %q; want %q %q %q %q",
					tc.target, r.App, r.ScriptName, r.PathInfo, r.QueryString, tc.app, tc.script, tc.path, tc.query)
			}
		})
	}
}

// TestISAPIScript serves the seed's multiple-apps ISAPI-WSGI script unchanged.
func TestISAPIScript(t *testing.T) {
	t.Parallel()
	w := start(t, app("isapi/app.py"))
	cases := []struct {
		target, app, script, path string
	}{
		{"/", "default", "", "/"},
		{"/foo", "foo", "/foo", ""},
		{"/foo/x", "foo", "/foo", "/x"},
		{"/bar", "bar", "/bar", ""},
		{"/bar/y/z", "bar", "/bar", "/y/z"},
		{"/foobar", "default", "", "/foobar"},
		{"/baz", "default", "", "/baz"},
	}
	for _, tc := range cases {
		t.Run(tc.target, func(t *testing.T) {
			var r mountReply
			w.getJSON(t, tc.target, &r)
			if r.App != tc.app || r.ScriptName != tc.script || r.PathInfo != tc.path {
				t.Errorf("GET %s → app %q SCRIPT_NAME %q PATH_INFO %q; want %q %q %q",
					tc.target, r.App, r.ScriptName, r.PathInfo, tc.app, tc.script, tc.path)
			}
			if r.Multithread == nil || !*r.Multithread {
				t.Errorf("ISAPIThreadPoolHandler app: wsgi.multithread %v, want True", r.Multithread)
			}
		})
	}
}

func TestISAPISimpleHandlerScript(t *testing.T) {
	t.Parallel()
	w := start(t, app("isapi_simple/app.py"))
	var r mountReply
	w.getJSON(t, "/some/where", &r)
	if r.App != "simple" || r.PathInfo != "/some/where" || r.ScriptName != "" {
		t.Errorf("got app %q SCRIPT_NAME %q PATH_INFO %q; want simple '' /some/where", r.App, r.ScriptName, r.PathInfo)
	}
	// ISAPISimpleHandler was IIS's single-threaded handler: wisp runs it so.
	if r.Multithread == nil || *r.Multithread {
		t.Errorf("ISAPISimpleHandler app: wsgi.multithread %v, want False", r.Multithread)
	}
	if !strings.Contains(w.Stderr(), "handler=simple") {
		t.Errorf("the listening line does not say handler=simple:\n%s", tail(w.Stderr(), 5))
	}
	// --handler overrides the script's choice.
	w2 := start(t, "--handler", "threadpool", app("isapi_simple/app.py"))
	var r2 mountReply
	w2.getJSON(t, "/", &r2)
	if r2.Multithread == nil || !*r2.Multithread {
		t.Errorf("ISAPISimpleHandler app with --handler threadpool: wsgi.multithread %v, want True", r2.Multithread)
	}
}

// TestISAPIPasteScript serves the seed's Paste Deploy ISAPI-WSGI example
// (fileConfig + loadapp in __ExtensionFactory__).
func TestISAPIPasteScript(t *testing.T) {
	t.Parallel()
	w := start(t, "--pythonpath", app("pastedeploy"), app("isapi_paste/app.py"))
	resp, body := w.get(t, "/?name=iis")
	if resp.StatusCode != 200 || string(body) != "Howdy, iis!" {
		t.Errorf("got %d %q, want 200 \"Howdy, iis!\"", resp.StatusCode, body)
	}
	resp, _ = w.get(t, "/missing")
	if resp.StatusCode != 404 {
		t.Errorf("GET /missing: %d, want 404", resp.StatusCode)
	}
}

func TestTargetForms(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		opts runOpts
		args []string
		want string
	}{
		{"file path uses app when there is no application", runOpts{}, []string{app("fallback/app.py")}, "fallback-app"},
		{"module:callable via --pythonpath", runOpts{}, []string{"--pythonpath", app("fallback"), "app:other"}, "other"},
		{"relative file path with --chdir", runOpts{}, []string{"--chdir", app("fallback"), "app.py"}, "fallback-app"},
		{"relative file path from the working directory", runOpts{Dir: appsDir}, []string{"fallback/app.py"}, "fallback-app"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := startOpts(t, tc.opts, tc.args...)
			resp, body := w.get(t, "/")
			if resp.StatusCode != 200 || string(body) != tc.want {
				t.Errorf("got %d %q, want 200 %q", resp.StatusCode, body, tc.want)
			}
		})
	}
}

type sysinfo struct {
	Version     string   `json:"version"`
	Prefix      string   `json:"prefix"`
	BasePrefix  string   `json:"base_prefix"`
	Executable  string   `json:"executable"`
	Cwd         string   `json:"cwd"`
	Path        []string `json:"path"`
	VenvOnly    string   `json:"e2e_venv_only"`
	PPOne       string   `json:"e2e_pp_one"`
	PPTwo       string   `json:"e2e_pp_two"`
	Flask       string   `json:"flask"`
	Multithread bool     `json:"multithread"`
}

func TestChdirAndPythonpath(t *testing.T) {
	t.Parallel()
	cwd := t.TempDir()
	w := start(t,
		"--chdir", cwd,
		"--pythonpath", app("sysinfo/pp1"),
		"--pythonpath", app("sysinfo/pp2"),
		app("sysinfo/app.py"))
	var r sysinfo
	w.getJSON(t, "/", &r)
	if r.Cwd != cwd {
		t.Errorf("os.getcwd() = %q, want the --chdir %q", r.Cwd, cwd)
	}
	if r.PPOne != "pp-one" || r.PPTwo != "pp-two" {
		t.Errorf("modules from the two --pythonpath dirs: %q, %q; want pp-one, pp-two", r.PPOne, r.PPTwo)
	}
	if r.Executable == "" {
		t.Errorf("sys.executable is empty; it must be set (multiprocessing needs it)")
	}
}
