package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics, that its errors are *Error
// values, and that what it accepts marshals and diffs against itself as
// unchanged.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.toml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(minimal))
	f.Add([]byte("[[sites]]\n[[sites.vdirs]]\n[[sites]]\nvdirs=[{},{path=\"/\"}]\n[sites.x]\n"))
	f.Add([]byte("a.b.c = 1\n[a]\n[[x.y]]\n[x.y.z]\nq = [[1], [{}]]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.toml", data)
		if err != nil {
			if c != nil {
				t.Fatal("config returned with an error")
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is no *Error: %v", err, err)
			}
			return
		}
		if _, err := json.Marshal(c); err != nil {
			t.Fatal(err)
		}
		changed, added, removed, routes := Diff(c, c)
		if len(changed)+len(added)+len(removed) > 0 || routes {
			t.Fatalf("Diff(c, c) reports changes: %v %v %v %v", changed, added, removed, routes)
		}
	})
}
