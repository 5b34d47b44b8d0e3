package cli

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLenientControlSocket(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ text, want string }{
		{"[server]\ncontrol_socket = \"run/w.sock\" # here\n[pools.a\nthreads = \n", filepath.Join(dir, "run/w.sock")},
		{"[server]\n  control_socket='/tmp/abs.sock'\n", "/tmp/abs.sock"},
		{"[pools.x]\ncontrol_socket = \"/not/server.sock\"\n[server\n", filepath.Join(dir, "wisp.sock")},
		{"garbage ] [", filepath.Join(dir, "wisp.sock")},
	} {
		path := filepath.Join(dir, "wisp.toml")
		if err := os.WriteFile(path, []byte(tc.text), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := lenientControlSocket(path)
		if err != nil || got != tc.want {
			t.Errorf("lenientControlSocket(%q) = %q, %v; want %q", tc.text, got, err, tc.want)
		}
	}
	if _, err := lenientControlSocket(filepath.Join(dir, "missing.toml")); err == nil {
		t.Errorf("a missing file should be an error")
	}
}
