package supervisor

import (
	"os"
	"strings"

	"wisp/internal/h2"
)

// sysmonAwake is what workerGODEBUG adds to a worker's GODEBUG. A worker's Go
// side goes idle between requests many times a second, and Go's sysmon then
// sleeps deeply; the next cgo call (every request makes several, into the
// Python side) wakes it, and it restarts at its 20 us cadence, a thousand
// wake-ups a second of pure overhead on a busy worker. With schedtrace set,
// sysmon never sleeps deeply: it backs off to 10 ms while nothing needs it and
// no call wakes it. The trace itself is printed once per schedtrace interval
// (in ms, the largest the runtime takes): a "SCHED" line in the worker's log
// once the machine has been up 24.8 days, and every 24.8 days after. Measured
// with scripts/cpuperreq.sh, pool 2 x 4, alternating pairs: django 330-385
// us of CPU per request against 408-560 without; hello 25-31 against 31-37.
// An idle worker costs 0.3 % of a CPU instead of 0.05 %.
const sysmonAwake = "schedtrace=2147483647"

// workerGODEBUG returns env with sysmonAwake added to its GODEBUG (the first
// one: the runtime reads that), unless the user set schedtrace there already,
// and then h2.XConnect (always: restoreGODEBUG takes it off the end), which
// net/http reads at init to serve WebSockets over HTTP/2.
func workerGODEBUG(env []string) []string {
	for i := range env {
		v, ok := strings.CutPrefix(env[i], "GODEBUG=")
		if !ok {
			continue
		}
		if !strings.Contains(v, "schedtrace=") {
			v = strings.TrimPrefix(v+","+sysmonAwake, ",")
		}
		out := append([]string(nil), env...)
		out[i] = "GODEBUG=" + v + "," + h2.XConnect
		return out
	}
	return append(env, "GODEBUG="+sysmonAwake+","+h2.XConnect)
}

// restoreGODEBUG takes h2.XConnect and sysmonAwake back out of the worker's
// environment once the runtime and net/http have read them, so that the app
// and what it starts (a Go program run with subprocess would print a SCHED
// line) see the GODEBUG the user set.
func restoreGODEBUG() {
	v, ok := os.LookupEnv("GODEBUG")
	if !ok {
		return
	}
	w := strings.TrimSuffix(v, ","+h2.XConnect)
	switch {
	case w == sysmonAwake:
		os.Unsetenv("GODEBUG")
	case strings.HasSuffix(w, ","+sysmonAwake):
		os.Setenv("GODEBUG", strings.TrimSuffix(w, ","+sysmonAwake))
	case w != v:
		os.Setenv("GODEBUG", w)
	}
}
