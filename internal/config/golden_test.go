package config

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// TestGolden loads each testdata/*.toml and compares the outcome with the
// .golden file beside it: the error text for a bad file; for a good one,
// its warnings and its JSON form, with the testdata folder written $DIR.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".toml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := outcome(t, file, dir)
			golden := strings.TrimSuffix(file, ".toml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs (go test -update rewrites it)\n--- got:\n%s\n--- want:\n%s", golden, got, want)
			}
		})
	}
}

func outcome(t *testing.T, file, dir string) string {
	c, err := Load(file)
	if err != nil {
		if c != nil {
			t.Errorf("Load returned a config with an error")
		}
		return "ERROR\n" + err.Error() + "\n"
	}
	var b strings.Builder
	b.WriteString("OK\n")
	for _, w := range c.Warnings {
		b.WriteString("warning: " + w + "\n")
	}
	js, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b.WriteString(strings.ReplaceAll(string(js), dir, "$DIR"))
	b.WriteString("\n")
	return b.String()
}
