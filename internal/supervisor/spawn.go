package supervisor

import (
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"wisp/internal/poolstate"
)

// spawn execs one worker of p; it replaces old once ready (nil: a new slot).
func (s *Supervisor) spawn(p *pool, old *worker) *worker {
	if s.stopping {
		return nil // the listeners are closed
	}
	s.nextID++
	spec := p.spec
	spec.ID = s.nextID
	spec.TraceSocket = filepath.Join(s.rundir, "trace-"+strconv.Itoa(s.nextID)+".sock")
	w := &worker{id: s.nextID, pool: p, state: poolstate.Starting, started: time.Now(), replaces: old, slot: -1}
	if n := p.cfg.MaxRequests; n > 0 {
		w.maxRequests = n
		if j := p.cfg.MaxRequestsJitter; j > 0 {
			w.maxRequests += rand.IntN(j + 1)
		}
	}
	r, wr, err := os.Pipe()
	if err != nil {
		s.log.Error("cannot start a worker", "pool", p.name, "err", err)
		return nil
	}
	// Raw descriptors (syscall.ForkExec, not exec.Cmd): exec.Cmd would call
	// os.File.Fd on the shared listeners and make them blocking.
	fds := []uintptr{s.devNull.Fd(), s.fileFD(s.opt.Stdout), s.fileFD(s.opt.Stderr), wr.Fd()}
	for _, l := range spec.Listeners {
		fds = append(fds, uintptr(s.listeners[l.Addr].fd))
	}
	if old != nil {
		w.cpuIndex = old.cpuIndex // the replacement takes over its CPUs
	} else {
		w.cpuIndex = p.freeCPUIndex()
	}
	if p.cfg.CPUAffinity && p.cfg.Processes >= 2 {
		spec.CPUs = cpuShare(s.cpus, w.cpuIndex, p.cfg.Processes)
	}
	spec.BoardSlot = -1
	if p.board == nil {
		if b, err := newBoard(); err == nil {
			p.board = b
		} else {
			s.log.Warn("no connection balancing between the pool's workers", "pool", p.name, "err", err)
		}
	}
	if p.board != nil {
		if w.slot = p.board.take(); w.slot >= 0 {
			spec.BoardSlot = w.slot
			fds = append(fds, p.board.f.Fd())
		}
	}
	// The worker's trace socket, made here so that a worker running as
	// another user needs no right to the supervisor's folder.
	spec.TraceFD = -1
	var traceFD int = -1
	if ln, err := listenPrivate(spec.TraceSocket); err == nil {
		if fd, err := dupListener(ln); err == nil {
			traceFD = fd
			spec.TraceFD = len(fds)
			fds = append(fds, uintptr(fd))
		}
	} else {
		s.log.Warn("no trace for a worker", "pool", p.name, "err", err)
	}
	raw, _ := json.Marshal(spec)
	env := workerEnv(os.Environ(), p.ident, p.cfg.Env)
	env = append(workerGODEBUG(env), WorkerEnv+"="+string(raw))
	var cred *syscall.Credential
	if p.ident != nil {
		cred = p.ident.cred
	}
	pid, err := syscall.ForkExec(s.opt.Exe, []string{s.opt.Exe, "worker"}, &syscall.ProcAttr{
		Env: env, Files: fds,
		Sys: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Credential: cred},
	})
	wr.Close()
	if traceFD >= 0 {
		syscall.Close(traceFD) // the worker has its own
	}
	if err != nil {
		os.Remove(spec.TraceSocket)
		r.Close()
		p.freeSlot(w)
		if s.collect != nil {
			s.collect.failed(p, "cannot start a worker: "+err.Error())
		}
		s.log.Error("cannot start a worker", "pool", p.name, "err", err)
		p.failed(w, err.Error(), nil, true)
		return nil
	}
	proc, _ := os.FindProcess(pid)
	w.proc, w.pid = proc, pid
	p.workers = append(p.workers, w)
	s.log.Info("worker starting", "pool", p.name, "worker", w.id, "pid", w.pid)
	if s.collect != nil {
		s.collect.started(p, w)
	}
	statusDone := make(chan struct{})
	go func() { w.readStatus(r); close(statusDone) }()
	go func() {
		st, err := proc.Wait()
		os.Remove(spec.TraceSocket)
		// its last status lines (why it failed) are handled first
		select {
		case <-statusDone:
		case <-time.After(time.Second):
		}
		s.post(func() { p.exited(w, st, err) })
	}()
	timeout := time.Duration(p.cfg.StartTimeout)
	time.AfterFunc(timeout, func() {
		s.post(func() {
			if w.state == poolstate.Starting {
				s.log.Error("worker did not become ready in time: killed", "pool", p.name, "worker", w.id,
					"start_timeout", timeout.String())
				w.startTimedOut = true
				w.signal(syscall.SIGKILL)
			}
		})
	})
	return w
}

// fileFD is w's descriptor for a child if w is a file, else /dev/null's.
// Only for the log streams, whose blocking mode does not matter.
func (s *Supervisor) fileFD(w io.Writer) uintptr {
	if f, ok := w.(*os.File); ok {
		return f.Fd()
	}
	if r, ok := w.(interface{ File() *os.File }); ok && r.File() != nil {
		return r.File().Fd() // a log file that is reopened (logrotate): the current one
	}
	return s.devNull.Fd()
}
