package cpusched

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSetProcess runs its checks in a child process: the policy is inherited
// by every thread made afterwards, and the test binary keeps SCHED_NORMAL.
func TestSetProcess(t *testing.T) {
	if os.Getenv("CPUSCHED_CHILD") == "1" {
		if err := child(); err != nil {
			fmt.Println("CHILD FAILED:", err)
			os.Exit(1)
		}
		fmt.Println("CHILD OK")
		return
	}
	if p, err := Of(0); err != nil || p != Normal {
		t.Skipf("the test process runs under %q (%v), not SCHED_NORMAL", p, err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSetProcess$")
	cmd.Env = append(os.Environ(), "CPUSCHED_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "CHILD OK") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func child() error {
	// nice is per thread on Linux: set it and read it back on this one
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// a nice value the operator gave survives the change
	if err := unix.Setpriority(unix.PRIO_PROCESS, 0, 3); err != nil {
		return fmt.Errorf("setpriority: %w", err)
	}
	if err := SetProcess(Normal); err != nil {
		return err
	}
	if p, _ := Of(0); p != Normal {
		return fmt.Errorf("Normal changed the policy to %s", p)
	}
	if err := SetProcess(Batch); err != nil {
		return err
	}
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, e := range ents {
		tid, _ := strconv.Atoi(e.Name())
		if p, err := Of(tid); err == nil && p != Batch {
			return fmt.Errorf("thread %d runs under %s", tid, p)
		}
	}
	// a thread made afterwards inherits the policy
	got := make(chan string)
	for range 4 {
		go func() {
			runtime.LockOSThread() // not unlocked: the thread ends with the goroutine
			p, _ := Of(0)
			got <- p
		}()
		if p := <-got; p != Batch {
			return fmt.Errorf("a new thread runs under %s", p)
		}
	}
	attr, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		return err
	}
	if attr.Nice != 3 {
		return fmt.Errorf("nice %d after SetProcess, want 3", attr.Nice)
	}
	return nil
}

func TestUnknownPolicy(t *testing.T) {
	if err := SetProcess("fifo"); err == nil {
		t.Fatal("SetProcess(fifo) = nil, want an error")
	}
	if !Valid(Batch) || !Valid(Normal) || Valid("idle") {
		t.Fatal("Valid")
	}
}
