package supervisor

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// cpuMask is a CPU set for sched_{get,set}affinity(2): up to 1024 CPUs.
type cpuMask [16]uint64

// allowedCPUs returns the CPUs this process may run on (nil if unknown).
func allowedCPUs() []int {
	var m cpuMask
	_, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, 0, unsafe.Sizeof(m), uintptr(unsafe.Pointer(&m)))
	if errno != 0 {
		return nil
	}
	var cpus []int
	for i := 0; i < len(m)*64; i++ {
		if m[i/64]&(1<<(i%64)) != 0 {
			cpus = append(cpus, i)
		}
	}
	return cpus
}

// cpuShare is the k-th of n workers' share of cpus: the k-th of n equal
// slices, or with more workers than CPUs, CPU k mod len(cpus).
func cpuShare(cpus []int, k, n int) []int {
	c := len(cpus)
	if c == 0 || n <= 0 {
		return nil
	}
	k %= n
	if n >= c {
		return []int{cpus[k%c]}
	}
	return cpus[k*c/n : (k+1)*c/n]
}

// pinProcess pins every thread of this process to cpus; threads started
// later inherit it from the thread that starts them. It goes over the threads
// twice, for one a runtime thread may have started meanwhile.
func pinProcess(cpus []int) error {
	var m cpuMask
	for _, c := range cpus {
		if c < 0 || c >= len(m)*64 {
			return fmt.Errorf("cpu %d out of range", c)
		}
		m[c/64] |= 1 << (c % 64)
	}
	for range 2 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			_, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, uintptr(tid), unsafe.Sizeof(m), uintptr(unsafe.Pointer(&m)))
			if errno != 0 && errno != syscall.ESRCH {
				return fmt.Errorf("sched_setaffinity: %w", errno)
			}
		}
	}
	return nil
}
