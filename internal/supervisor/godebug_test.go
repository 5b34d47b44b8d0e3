package supervisor

import (
	"os"
	"slices"
	"testing"

	"wisp/internal/h2"
)

func TestWorkerGODEBUG(t *testing.T) {
	x := "," + h2.XConnect // always added, last (WebSockets over HTTP/2)
	for _, tc := range []struct{ in, want []string }{
		{[]string{"A=1"}, []string{"A=1", "GODEBUG=" + sysmonAwake + x}},
		{[]string{"GODEBUG=gctrace=1", "B=2"}, []string{"GODEBUG=gctrace=1," + sysmonAwake + x, "B=2"}},
		{[]string{"GODEBUG="}, []string{"GODEBUG=" + sysmonAwake + x}},
		// the first GODEBUG is the one the runtime reads; the user's schedtrace is kept
		{[]string{"GODEBUG=x=1", "GODEBUG=y=2"}, []string{"GODEBUG=x=1," + sysmonAwake + x, "GODEBUG=y=2"}},
		{[]string{"GODEBUG=schedtrace=1000"}, []string{"GODEBUG=schedtrace=1000" + x}},
	} {
		if got := workerGODEBUG(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("workerGODEBUG(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRestoreGODEBUG(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "-": unset
	}{
		{sysmonAwake, "-"},
		{"gctrace=1," + sysmonAwake, "gctrace=1"},
		{"schedtrace=1000", "schedtrace=1000"},
		// what workerGODEBUG gives, h2.XConnect included, goes back whole
		{sysmonAwake + "," + h2.XConnect, "-"},
		{"gctrace=1," + sysmonAwake + "," + h2.XConnect, "gctrace=1"},
		{"schedtrace=1000," + h2.XConnect, "schedtrace=1000"},
	} {
		t.Setenv("GODEBUG", tc.in)
		restoreGODEBUG()
		got, ok := os.LookupEnv("GODEBUG")
		if !ok {
			got = "-"
		}
		if got != tc.want {
			t.Errorf("GODEBUG %q restored to %q, want %q", tc.in, got, tc.want)
		}
	}
}
