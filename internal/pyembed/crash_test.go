package pyembed

import (
	"os"
	"testing"
)

// Go's own faults still reach Go's handler once the crash handler is
// installed: a nil dereference is a recoverable panic, not a crash report.
func TestCrashHandlerChainsGoFaults(t *testing.T) {
	if err := installCrashHandler(int(os.Stderr.Fd()), "wisp-test: "); err != nil {
		t.Fatal(err)
	}
	var p *int
	recovered := func() (r any) {
		defer func() { r = recover() }()
		return *p
	}()
	if recovered == nil {
		t.Fatalf("a nil dereference did not panic")
	}
	t.Logf("recovered: %v", recovered)
}
