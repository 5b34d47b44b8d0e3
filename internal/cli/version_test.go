package cli

import (
	"runtime"
	"strings"
	"testing"
)

func TestVersionLine(t *testing.T) {
	plat := ", " + runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH + ")"
	old := commit
	defer func() { commit = old }()
	commit = "0123456789ab-dirty"
	if got, want := versionLine(), "wisp "+version+" (commit 0123456789ab-dirty"+plat; got != want {
		t.Errorf("versionLine() = %q, want %q", got, want)
	}
	commit = ""
	// a test binary carries no VCS stamp
	if got, want := versionLine(), "wisp "+version+" (unknown commit"+plat; got != want && !strings.Contains(got, "(commit ") {
		t.Errorf("versionLine() = %q, want %q", got, want)
	}
}
