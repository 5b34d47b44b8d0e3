package cli

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"wisp/internal/h2"
)

// The re-exec's environment: WISP_* variables move to the memfd, the first
// GODEBUG gains h2.XConnect, and what the memfd carries back restores the
// user's GODEBUG (or its absence) once net/http has read the new one.
func TestReexecEnv(t *testing.T) {
	x := h2.XConnect
	for _, tc := range []struct {
		name   string
		in     []string
		keep   []string
		moved  string // NUL-separated
		hidden bool
	}{
		{"no GODEBUG", []string{"A=1"}, []string{"A=1", "GODEBUG=" + x}, "GODEBUG\x00", false},
		{"the user's GODEBUG", []string{"GODEBUG=gctrace=1", "B=2"}, []string{"GODEBUG=gctrace=1," + x, "B=2"}, "GODEBUG=gctrace=1\x00", false},
		{"empty GODEBUG", []string{"GODEBUG="}, []string{"GODEBUG=" + x}, "GODEBUG=\x00", false},
		{"already there: nothing to do", []string{"GODEBUG=a=1," + x}, []string{"GODEBUG=a=1," + x}, "", false},
		{"already there, WISP_*", []string{"WISP_BIND=:1", "GODEBUG=" + x}, []string{"GODEBUG=" + x}, "WISP_BIND=:1\x00", true},
		{"two GODEBUGs: the first counts", []string{"GODEBUG=a=1", "GODEBUG=b=2"}, []string{"GODEBUG=a=1," + x, "GODEBUG=b=2"}, "GODEBUG=a=1\x00", false},
		{"WISP_* and no GODEBUG", []string{"WISP_ADMIN_TOKEN=s", "C=3"}, []string{"C=3", "GODEBUG=" + x}, "WISP_ADMIN_TOKEN=s\x00GODEBUG\x00", true},
	} {
		keep, moved, hidden := reexecEnv(tc.in)
		if !slices.Equal(keep, tc.keep) || string(moved) != tc.moved || hidden != tc.hidden {
			t.Errorf("%s: reexecEnv(%q) = %q, %q, %v; want %q, %q, %v", tc.name, tc.in, keep, moved, hidden, tc.keep, tc.moved, tc.hidden)
		}
	}
}

// What the memfd carries back is set again: the WISP_* variables, the
// user's GODEBUG, or none when the user had none.
func TestRestoreEnviron(t *testing.T) {
	for _, tc := range []struct {
		moved   string
		godebug string // "-": unset
	}{
		{"WISP_X_TEST=1\x00GODEBUG\x00", "-"},
		{"GODEBUG=gctrace=1\x00", "gctrace=1"},
		{"GODEBUG=\x00", ""},
	} {
		t.Setenv("GODEBUG", "gctrace=1,"+h2.XConnect)
		t.Setenv("WISP_X_TEST", "")
		f, err := os.CreateTemp(t.TempDir(), "env")
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(tc.moved)
		f.Seek(0, 0)
		fd, err := dupFD(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		restoreEnviron(fd, &stderr)
		got, ok := os.LookupEnv("GODEBUG")
		if !ok {
			got = "-"
		}
		if got != tc.godebug || stderr.Len() > 0 {
			t.Errorf("%q: GODEBUG %q, want %q (stderr %q)", tc.moved, got, tc.godebug, stderr.String())
		}
		if strings.HasPrefix(tc.moved, "WISP_X_TEST=1") && os.Getenv("WISP_X_TEST") != "1" {
			t.Errorf("%q: WISP_X_TEST not set again", tc.moved)
		}
	}
}

// dupFD is a descriptor of f's own for restoreEnviron, which closes it.
func dupFD(f *os.File) (string, error) {
	fd, err := unix.Dup(int(f.Fd()))
	return strconv.Itoa(fd), err
}
