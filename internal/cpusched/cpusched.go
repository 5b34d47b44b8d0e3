// Package cpusched gives a worker process's threads the Linux scheduling
// policy its pool asks for (sched(7)).
//
// Why SCHED_BATCH for pool workers: a worker is one Python thread doing the
// app's work and a few Go threads moving bytes between it and the sockets.
// Under SCHED_NORMAL every wake-up of a Go thread (a request arrived, a
// response is ready) preempts the Python thread on its CPU, because a thread
// that slept counts as interactive; a loaded worker then switches context
// three times per request, and each switch costs the app its caches (and, in
// a virtual machine, an exit to the hypervisor). Under SCHED_BATCH a woken
// thread does not preempt: it runs on an idle CPU, or when the running one
// blocks or uses up its slice. Measured on a 2-CPU VM, pool 2 x 4 under wrk:
// context switches per request 3.1 -> 0.7 (django) and 1.3 -> 0.4 (hello),
// server CPU per request -20 % to -45 % (docs/benchmarks.md). A process that
// is not a batch thread (a load generator, a database, the supervisor) still
// preempts the worker as before, so neighbours lose nothing. The nice value
// is kept; threads under another policy (SCHED_IDLE, real-time) are left as
// they are, so `chrt` and `nice` given by an operator still win.
package cpusched

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Policy names as wisp.toml's sched_policy takes them.
const (
	Batch  = "batch"
	Normal = "normal"
)

// Valid reports whether name is a policy this package sets.
func Valid(name string) bool { return name == Batch || name == Normal }

// SetProcess moves every thread of this process that runs under
// SCHED_NORMAL to the named policy (Normal leaves everything as it is).
// Threads inherit their maker's policy, so a process that calls this before
// starting its own threads has every later thread under it too; the thread
// list is read again until a pass finds no thread it has not seen.
func SetProcess(name string) error {
	switch name {
	case Normal, "":
		return nil
	case Batch:
	default:
		return fmt.Errorf("unknown scheduling policy %q", name)
	}
	seen := map[int]bool{}
	for {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		fresh := false
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil || seen[tid] {
				continue
			}
			seen[tid] = true
			fresh = true
			if err := toBatch(tid); err != nil {
				return err
			}
		}
		if !fresh {
			return nil
		}
	}
}

// toBatch moves thread tid from SCHED_NORMAL to SCHED_BATCH, nice unchanged.
func toBatch(tid int) error {
	attr, err := unix.SchedGetAttr(tid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil // it ended meanwhile
	}
	if err != nil {
		return fmt.Errorf("sched_getattr: %w", err)
	}
	if attr.Policy != unix.SCHED_NORMAL {
		return nil
	}
	attr.Policy = unix.SCHED_BATCH
	if err := unix.SchedSetAttr(tid, attr, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("sched_setattr: %w", err)
	}
	return nil
}

// Of reports the policy of thread tid (0: the caller) by the names above;
// another policy is reported by its number.
func Of(tid int) (string, error) {
	attr, err := unix.SchedGetAttr(tid, 0)
	if err != nil {
		return "", err
	}
	switch attr.Policy {
	case unix.SCHED_NORMAL:
		return Normal, nil
	case unix.SCHED_BATCH:
		return Batch, nil
	}
	return "policy " + strconv.Itoa(int(attr.Policy)), nil
}
