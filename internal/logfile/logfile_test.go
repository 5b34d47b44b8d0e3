package logfile

import (
	"os"
	"path/filepath"
	"testing"
)

// After the file is renamed (logrotate), writes go on to it until Reopen;
// then they go to a new file at the path. A path that cannot be opened
// again keeps the writes on the old file.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.log")
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write([]byte("one\n"))
	os.Rename(path, path+".1")
	f.Write([]byte("two\n"))
	if err := f.Reopen(); err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("three\n"))
	if b, _ := os.ReadFile(path + ".1"); string(b) != "one\ntwo\n" {
		t.Errorf("rotated file: %q", b)
	}
	if b, _ := os.ReadFile(path); string(b) != "three\n" {
		t.Errorf("new file: %q", b)
	}

	os.Rename(path, path+".2")
	os.Mkdir(path, 0o755) // the path can no longer be opened as a file
	if err := f.Reopen(); err == nil {
		t.Error("Reopen on a folder: no error")
	}
	f.Write([]byte("four\n"))
	if b, _ := os.ReadFile(path + ".2"); string(b) != "three\nfour\n" {
		t.Errorf("after a failed reopen: %q", b)
	}
}
