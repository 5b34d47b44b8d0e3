package devreload

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// A change of a .py file, in a folder made after the watch began too,
// calls back once; caches, virtualenvs and other files do not.
func TestWatch(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "venv"), 0o755)
	os.WriteFile(filepath.Join(dir, "venv", "pyvenv.cfg"), nil, 0o644)
	got := make(chan []string, 10)
	w, err := Watch([]string{dir}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), func(p []string) { got <- p })
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	expectNone := func(what string) {
		select {
		case p := <-got:
			t.Errorf("%s: callback %v", what, p)
		case <-time.After(300 * time.Millisecond):
		}
	}
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "venv", "lib.py"), []byte("x"), 0o644)
	os.MkdirAll(filepath.Join(dir, "__pycache__"), 0o755)
	os.WriteFile(filepath.Join(dir, "__pycache__", "app.cpython-311.pyc"), []byte("x"), 0o644)
	expectNone("a text file, a venv, a cache")
	app := filepath.Join(dir, "app.py")
	os.WriteFile(app, []byte("x = 1"), 0o644)
	os.WriteFile(app, []byte("x = 2"), 0o644)
	select {
	case p := <-got:
		if !slices.Contains(p, app) {
			t.Errorf("callback %v, want %s", p, app)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no callback for app.py")
	}
	expectNone("one burst, one callback")
	sub := filepath.Join(dir, "pkg")
	os.MkdirAll(sub, 0o755)
	time.Sleep(100 * time.Millisecond)
	os.WriteFile(filepath.Join(sub, "mod.py"), []byte("y = 1"), 0o644)
	select {
	case <-got:
	case <-time.After(3 * time.Second):
		t.Fatal("no callback for a module in a new folder")
	}
}
