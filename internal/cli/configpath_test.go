package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Without -c, a command reads ./wisp.toml, else the system-wide file, else
// names ./wisp.toml (for install to create); WISP_CONFIG sets -c.
func TestFindConfig(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	sys := filepath.Join(t.TempDir(), "etc-wisp.toml")
	if got := findConfigIn("", sys); got != "wisp.toml" {
		t.Errorf("nothing anywhere: %q, want wisp.toml", got)
	}
	os.WriteFile(sys, []byte("[server]\n"), 0o644)
	if got := findConfigIn("", sys); got != sys {
		t.Errorf("only the system file: %q, want %q", got, sys)
	}
	os.WriteFile("wisp.toml", []byte("[server]\n"), 0o644)
	if got := findConfigIn("", sys); got != "wisp.toml" {
		t.Errorf("./wisp.toml and the system file: %q, want wisp.toml", got)
	}
	if got := findConfigIn("other.toml", sys); got != "other.toml" {
		t.Errorf("-c other.toml: %q", got)
	}
}

// WISP_CONFIG reaches `wisp list` as -c does, and without either it reads
// ./wisp.toml.
func TestConfigFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	cfg := filepath.Join(t.TempDir(), "elsewhere.toml")
	text := "[pools.p]\nprocesses = 1\n\n[[sites]]\nname = \"envsite\"\nbindings = [\"127.0.0.1:1\"]\n[[sites.vdirs]]\npath = \"/\"\napp = \"app:app\"\npool = \"p\"\n"
	os.WriteFile(cfg, []byte(text), 0o644)
	t.Setenv("WISP_CONFIG", cfg)
	var out, errOut strings.Builder
	if err := execute(newListCommand(&out, &errOut), nil); err != nil {
		t.Fatalf("wisp list with WISP_CONFIG: %v %s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "envsite") {
		t.Errorf("wisp list with WISP_CONFIG=%s:\n%s", cfg, out.String())
	}
	t.Setenv("WISP_CONFIG", "")
	os.Unsetenv("WISP_CONFIG")
	os.WriteFile("wisp.toml", []byte(strings.ReplaceAll(text, "envsite", "cwdsite")), 0o644)
	out.Reset()
	if err := execute(newListCommand(&out, &errOut), nil); err != nil {
		t.Fatalf("wisp list in a folder with wisp.toml: %v %s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "cwdsite") {
		t.Errorf("wisp list in a folder with wisp.toml:\n%s", out.String())
	}
}
