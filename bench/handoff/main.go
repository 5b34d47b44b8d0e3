//go:build handoffbench

// Command handoff measures how Go should hand work to an asyncio event loop
// running on a Python thread of its own, and take the answers back (issue 21,
// DESIGN.md §6). It embeds Debian's libpython3.11 as wisp does (one loop
// thread, a locked goroutine inside a long C call; Go threads never hold the
// GIL except for mechanisms c and c1) and compares:
//
//	a   wisp's: a C queue, an eventfd written only when the loop is armed
//	    (has drained everything), add_reader, and the loop drains everything
//	a2  as a, with the reader callback in C: it reads the eventfd and calls
//	    the handler for each message (no Python wake function, no list)
//	b   as a, with an eventfd write for every message
//	b1  a semaphore eventfd written for every message, one message per callback
//	c   loop.call_soon_threadsafe called from Go through cgo (the Go thread
//	    keeps its Python thread state, as wisp_acquire does)
//	c1  as c, with PyGILState_Ensure and Release around every call
//	d   as a, with a pipe instead of the eventfd
//	e   no fd: the loop drains the C queue on every iteration (call_soon)
//
// The answers come back the same way for all: a C completion queue and an
// eventfd written only when Go's drainer sleeps, as wisp_pool.c's; or, with
// -ret callback, through a call from the loop's thread into Go (an exported
// function that hands the answer to its goroutine at once).
//
// It is a separate program behind the build tag handoffbench (it needs
// Python.h, python3.11-dev): go run -tags handoffbench ./bench/handoff
// Every measurement runs in a child process of its own.
package main

/*
#cgo pkg-config: python3-embed
#cgo CFLAGS: -O2 -Wall
#include <stdlib.h>
#include "handoff.h"
*/
import "C"

import (
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/cgo"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

//go:embed loop.py
var loopSource string

// mechs are the mechanisms by name, in the order they are reported.
var mechs = []struct {
	name string
	id   C.int
}{
	{"a", C.HB_ARMED},
	{"a2", C.HB_ARMEDC},
	{"b", C.HB_EACH},
	{"b1", C.HB_SEM},
	{"c", C.HB_CST},
	{"c1", C.HB_CSTG},
	{"d", C.HB_PIPE},
	{"e", C.HB_POLL},
}

func mechID(name string) (C.int, error) {
	for _, m := range mechs {
		if m.name == name {
			return m.id, nil
		}
	}
	return 0, fmt.Errorf("unknown mechanism %q", name)
}

// options are one measurement's parameters (the child's flags).
type options struct {
	loop, mech, work string
	ret              string        // the return path: queue or callback
	idle             time.Duration // how long idle CPU is measured
	latN             int           // messages of the latency test
	gap              time.Duration // pause between them (the loop is idle when each arrives)
	dur              time.Duration // each throughput test
	inflight         []int
}

// tput is one throughput test's outcome.
type tput struct {
	N          int     `json:"n"`
	Msgs       int64   `json:"msgs"`
	PerSec     float64 `json:"per_sec"`
	CPUus      float64 `json:"cpu_us"`      // process CPU (user+sys) per message
	LoopCPUus  float64 `json:"loop_cpu_us"` // the loop thread's CPU per message
	ReqWrites  float64 `json:"req_writes"`  // writes to the loop's fd per message
	LoopWakes  float64 `json:"loop_wakes"`  // drains that found messages, per message
	LoopEmpty  float64 `json:"loop_empty"`  // drains that found none, per message
	RespWrites float64 `json:"resp_writes"` // completion eventfd writes per message
	LoopSleeps float64 `json:"loop_sleeps"` // the loop thread's voluntary context switches per message
}

// result is one child's report.
type result struct {
	Loop, Mech, Work, Ret string
	IdleCPU               float64 `json:"idle_cpu_pct"`
	LatP50                float64 `json:"lat_p50_us"`
	LatP99                float64 `json:"lat_p99_us"`
	LatSleeps             float64 `json:"lat_loop_sleeps"`
	Tput                  []tput  `json:"tput"`
}

func main() {
	var o options
	child := flag.Bool("child", false, "run one measurement (loop, mech) and print it as JSON")
	loops := flag.String("loops", "asyncio,uvloop", "event loops to measure")
	names := flag.String("mechs", "a,a2,b,b1,c,c1,d,e", "mechanisms to measure")
	reps := flag.Int("reps", 3, "repetitions; the tables show medians")
	inflight := flag.String("inflight", "1,16,64", "messages in flight for the throughput tests")
	verbose := flag.Bool("v", false, "print every repetition's figures too")
	flag.StringVar(&o.loop, "loop", "asyncio", "the child's loop")
	flag.StringVar(&o.mech, "mech", "a", "the child's mechanism")
	flag.StringVar(&o.work, "work", "call", "what answers a message on the loop: call (done(id) at once) or task (a task per message, as wisp)")
	flag.StringVar(&o.ret, "ret", "queue", "the return path: queue (wisp's completion queue and eventfd) or callback (the loop's thread calls into Go)")
	flag.DurationVar(&o.idle, "idle", time.Second, "idle CPU measurement")
	flag.IntVar(&o.latN, "lat", 1000, "messages of the latency test")
	flag.DurationVar(&o.gap, "gap", 200*time.Microsecond, "pause between latency messages")
	flag.DurationVar(&o.dur, "dur", time.Second, "duration of each throughput test")
	flag.Parse()
	for _, s := range strings.Split(*inflight, ",") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1024 {
			fatal(fmt.Errorf("-inflight: bad count %q", s))
		}
		o.inflight = append(o.inflight, n)
	}
	if *child {
		r, err := measure(o)
		if err != nil {
			fatal(err)
		}
		if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
			fatal(err)
		}
		return
	}
	if err := parent(o, strings.Split(*loops, ","), strings.Split(*names, ","), *reps, *verbose); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "handoff:", err)
	os.Exit(1)
}

// parent runs every (rep, loop, mech) in a child process and prints the
// medians as markdown tables.
func parent(o options, loops, names []string, reps int, verbose bool) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	for _, n := range names {
		if _, err := mechID(n); err != nil {
			return err
		}
	}
	all := map[string][]result{}
	for rep := 0; rep < reps; rep++ {
		// rotate the order, so that no mechanism always runs first
		order := append(slices.Clone(names[rep%len(names):]), names[:rep%len(names)]...)
		for _, lp := range loops {
			for _, m := range order {
				r, err := runChild(self, o, lp, m)
				if err != nil {
					return fmt.Errorf("rep %d, %s, %s: %w", rep+1, lp, m, err)
				}
				if verbose {
					b, _ := json.Marshal(r)
					fmt.Fprintf(os.Stderr, "rep %d %s\n", rep+1, b)
				}
				all[lp+"/"+m] = append(all[lp+"/"+m], r)
			}
		}
	}
	fmt.Printf("_%s · %d cores · work %q · return path %q · %d repetitions (medians) · latency: %d messages %v apart · throughput: %v per test_\n\n",
		time.Now().UTC().Format("20060102-150405"), runtime.NumCPU(), o.work, o.ret, reps, o.latN, o.gap, o.dur)
	ns := "N=" + joinInts(o.inflight, "/")
	for _, lp := range loops {
		fmt.Printf("**%s**: latency and throughput\n\n", lp)
		fmt.Print("| mechanism | idle CPU % | latency p50 µs | p99 µs |")
		for _, n := range o.inflight {
			fmt.Printf(" N=%d msg/s |", n)
		}
		fmt.Print("\n|---|---:|---:|---:|" + strings.Repeat("---:|", len(o.inflight)) + "\n")
		for _, m := range names {
			rs := all[lp+"/"+m]
			fmt.Printf("| %s | %.1f | %.0f | %.0f |", m, med(rs, func(r result) float64 { return r.IdleCPU }),
				med(rs, func(r result) float64 { return r.LatP50 }), med(rs, func(r result) float64 { return r.LatP99 }))
			for i := range o.inflight {
				fmt.Printf(" %s |", thousands(med(rs, func(r result) float64 { return r.Tput[i].PerSec })))
			}
			fmt.Println()
		}
		fmt.Printf("\n**%s**: per message, %s in flight\n\n", lp, ns)
		fmt.Print("| mechanism | process CPU µs | loop thread CPU µs | fd writes | loop sleeps |\n|---|---:|---:|---:|---:|\n")
		for _, m := range names {
			rs := all[lp+"/"+m]
			col := func(f func(tput) float64, prec int) string {
				var v []string
				for i := range o.inflight {
					v = append(v, strconv.FormatFloat(med(rs, func(r result) float64 { return f(r.Tput[i]) }), 'f', prec, 64))
				}
				return strings.Join(v, " / ")
			}
			w := col(func(t tput) float64 { return t.ReqWrites }, 2)
			if m == "c" || m == "c1" {
				w = "(the loop's own)"
			}
			fmt.Printf("| %s | %s | %s | %s | %s |\n", m, col(func(t tput) float64 { return t.CPUus }, 1),
				col(func(t tput) float64 { return t.LoopCPUus }, 1), w, col(func(t tput) float64 { return t.LoopSleeps }, 2))
		}
		fmt.Println()
	}
	return nil
}

func runChild(self string, o options, loop, mech string) (result, error) {
	args := []string{"-child", "-loop", loop, "-mech", mech, "-work", o.work, "-ret", o.ret, "-idle", o.idle.String(),
		"-lat", strconv.Itoa(o.latN), "-gap", o.gap.String(), "-dur", o.dur.String(), "-inflight", joinInts(o.inflight, ",")}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return result{}, fmt.Errorf("child: %w", err)
	}
	var r result
	if err := json.Unmarshal(out, &r); err != nil {
		return result{}, fmt.Errorf("child's report %q: %w", out, err)
	}
	return r, nil
}

func med(rs []result, f func(result) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func joinInts(v []int, sep string) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, sep)
}

func thousands(f float64) string {
	s := strconv.FormatInt(int64(f+0.5), 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// bench is one child's run: the loop, the drainer and the answer channels.
type bench struct {
	answers []chan struct{} // by message id
	efd     *os.File        // the completion eventfd
	ended   chan struct{}   // closed when the loop's thread left Python
	err     error           // why the loop ended (read after ended)
	drained chan struct{}   // closed when the drainer returned
}

// measure runs one child's measurements.
func measure(o options) (result, error) {
	res := result{Loop: o.loop, Mech: o.mech, Work: o.work, Ret: o.ret}
	id, err := mechID(o.mech)
	if err != nil {
		return res, err
	}
	if o.ret != "queue" && o.ret != "callback" {
		return res, fmt.Errorf("-ret: %q is neither queue nor callback", o.ret)
	}
	if C.hb_init() != 0 {
		return res, errors.New("python did not start")
	}
	b := &bench{
		answers: make([]chan struct{}, slices.Max(o.inflight)),
		ended:   make(chan struct{}),
		drained: make(chan struct{}),
	}
	for i := range b.answers {
		b.answers[i] = make(chan struct{}, 1)
	}
	var h cgo.Handle
	if o.ret == "callback" {
		h = cgo.NewHandle(b)
		defer h.Delete()
	}
	fd := C.hb_setup(id, C.uintptr_t(h))
	if fd < 0 {
		return res, errors.New("setup: no eventfd or pipe")
	}
	b.efd = os.NewFile(uintptr(fd), "handoff-completions")
	go b.loop(o.loop, o.work)
	go b.drain()
	if err := b.waitReady(); err != nil {
		return res, err
	}
	defer func() {
		C.hb_quit()
		select {
		case <-b.ended:
		case <-time.After(10 * time.Second):
		}
		b.efd.Close() // ends the drainer's read
		<-b.drained
	}()

	time.Sleep(100 * time.Millisecond)
	c0 := cpu()
	time.Sleep(o.idle)
	res.IdleCPU = float64(cpu()-c0) / float64(o.idle) * 100

	var counts C.hb_counts
	C.hb_get_counts(&counts)
	tid := int(counts.loop_tid)

	lats := make([]time.Duration, 0, o.latN)
	s0 := loopSleeps(tid)
	for i := 0; i < o.latN; i++ {
		time.Sleep(o.gap)
		t0 := time.Now()
		if C.hb_post(0) != 0 {
			return res, errors.New("post failed")
		}
		select {
		case <-b.answers[0]:
		case <-b.ended:
			return res, fmt.Errorf("the loop ended: %w", b.err)
		case <-time.After(10 * time.Second):
			return res, errors.New("no answer within 10s")
		}
		lats = append(lats, time.Since(t0))
	}
	res.LatSleeps = float64(loopSleeps(tid)-s0) / float64(o.latN)
	slices.Sort(lats)
	res.LatP50 = float64(lats[len(lats)/2]) / 1e3
	res.LatP99 = float64(lats[len(lats)*99/100]) / 1e3

	for _, n := range o.inflight {
		t, err := b.throughput(n, o.dur, tid)
		if err != nil {
			return res, err
		}
		res.Tput = append(res.Tput, t)
	}
	return res, nil
}

// loop runs the event loop on a locked thread until hb_quit.
func (b *bench) loop(kind, work string) {
	defer close(b.ended)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	src, k, w := C.CString(loopSource), C.CString(kind), C.CString(work)
	defer C.free(unsafe.Pointer(src))
	defer C.free(unsafe.Pointer(k))
	defer C.free(unsafe.Pointer(w))
	if e := C.hb_run(src, k, w); e != nil {
		b.err = errors.New(C.GoString(e))
		C.free(unsafe.Pointer(e))
	}
}

func (b *bench) waitReady() error {
	deadline := time.Now().Add(20 * time.Second)
	for C.hb_ready() == 0 {
		select {
		case <-b.ended:
			return fmt.Errorf("the loop did not start: %w", b.err)
		default:
		}
		if time.Now().After(deadline) {
			return errors.New("the loop did not start within 20s")
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// drain delivers the answers, as pyembed's Pool.drain does.
func (b *bench) drain() {
	defer close(b.drained)
	var ids [64]C.longlong
	var buf [8]byte
	for {
		n := int(C.hb_drain(&ids[0], C.int(len(ids))))
		if n == 0 {
			if _, err := b.efd.Read(buf[:]); err != nil {
				return
			}
			continue
		}
		for _, id := range ids[:n] {
			b.answers[id] <- struct{}{}
		}
	}
}

// goAnswer is the callback return path: the loop's thread (inside
// hb_run, holding the GIL) hands answer id to its goroutine.
//
//export goAnswer
func goAnswer(h C.uintptr_t, id C.longlong) {
	cgo.Handle(h).Value().(*bench).answers[id] <- struct{}{}
}

// throughput keeps n messages in flight from n goroutines for d.
func (b *bench) throughput(n int, d time.Duration, tid int) (tput, error) {
	var stop atomic.Bool
	var msgs atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			for !stop.Load() {
				if C.hb_post(C.longlong(id)) != 0 {
					failed.Store("post failed")
					return
				}
				select {
				case <-b.answers[id]:
				case <-time.After(10 * time.Second):
					failed.Store("no answer within 10s")
					return
				}
				msgs.Add(1)
			}
		}(i)
	}
	time.Sleep(d / 10) // warm up
	var c0, c1 C.hb_counts
	C.hb_get_counts(&c0)
	m0, cpu0, l0, s0, t0 := msgs.Load(), cpu(), C.hb_loop_cpu(), loopSleeps(tid), time.Now()
	time.Sleep(d)
	C.hb_get_counts(&c1)
	m1, cpu1, l1, s1, el := msgs.Load(), cpu(), C.hb_loop_cpu(), loopSleeps(tid), time.Since(t0)
	stop.Store(true)
	wg.Wait()
	if f := failed.Load(); f != nil {
		return tput{}, errors.New(f.(string))
	}
	m := float64(m1 - m0)
	if m == 0 {
		return tput{}, errors.New("no message went through")
	}
	return tput{
		N:          n,
		Msgs:       m1 - m0,
		PerSec:     m / el.Seconds(),
		CPUus:      float64(cpu1-cpu0) / 1e3 / m,
		LoopCPUus:  float64(l1-l0) / 1e3 / m,
		ReqWrites:  float64(c1.req_writes-c0.req_writes) / m,
		LoopWakes:  float64(c1.loop_wakes-c0.loop_wakes) / m,
		LoopEmpty:  float64(c1.loop_empty-c0.loop_empty) / m,
		RespWrites: float64(c1.resp_writes-c0.resp_writes) / m,
		LoopSleeps: float64(s1-s0) / m,
	}, nil
}

// cpu is the process's user and system CPU time so far.
func cpu() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loopSleeps is the loop thread's count of voluntary context switches: how
// often it slept (in epoll_wait, or waiting for the GIL).
func loopSleeps(tid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/self/task/%d/status", tid))
	if err != nil {
		return 0
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}
