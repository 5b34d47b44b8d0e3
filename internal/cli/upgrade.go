package cli

// A binary upgrade, as nginx (USR2) and gunicorn (USR2) have one: the
// running supervisor execs the wisp binary on disk as its successor and
// hands it its listening sockets (as systemd's socket activation passes
// them: LISTEN_FDS from fd 3, the bindings as names) and its control socket.
// The successor starts its own workers; once they are ready it says so on a
// pipe, and the old supervisor stops accepting on the control socket, tells
// systemd the new main pid, drains its workers and exits. A successor that
// exits or does not become ready in time changes nothing: the old one keeps
// serving, and `wisp upgrade` fails with the reason.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"wisp/internal/admin"
	"wisp/internal/config"
	"wisp/internal/control"
	"wisp/internal/poolstate"
	"wisp/internal/sdnotify"
	"wisp/internal/supervisor"
)

// upgradeEnv carries to the successor of an upgrade what is not in
// LISTEN_FDS: its predecessor, the control socket and the readiness pipe
// (a handover, JSON).
const upgradeEnv = "WISP_UPGRADE"

// handover is what a supervisor hands its successor, besides the sockets.
type handover struct {
	From     int      `json:"from"`            // the previous supervisor's pid
	Bindings []string `json:"bindings"`        // the binding of each LISTEN_FDS socket, in order
	CtlFD    int      `json:"ctl_fd"`          // the control socket; -1: none
	CtlPath  string   `json:"ctl_path"`        // where it is
	ReadyFD  int      `json:"ready_fd"`        // written "ready" and closed once the successor serves
	Owned    []string `json:"owned,omitempty"` // the unix socket files the predecessor created: the successor's to remove
}

// successor is what this process, the successor of an upgrade, was handed.
type successor struct {
	from     int
	bindings []string
	owned    []string
	ctl      *net.UnixListener // nil: none
	ctlPath  string
	ready    *os.File
}

// takeUpgrade reads what the previous supervisor handed over, when this
// process is an upgrade's successor (nil, nil if not), and makes the sockets
// passed as LISTEN_FDS this process's for listen.Inherit. Call it before
// listen.Inherit.
func takeUpgrade() (*successor, error) {
	raw := os.Getenv(upgradeEnv)
	os.Unsetenv(upgradeEnv)
	if raw == "" {
		return nil, nil
	}
	var h handover
	if err := json.Unmarshal([]byte(raw), &h); err != nil {
		return nil, fmt.Errorf("%s: %w", upgradeEnv, err)
	}
	if os.Getenv("LISTEN_FDS") != "" {
		os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	}
	s := &successor{from: h.From, bindings: h.Bindings, owned: h.Owned, ctlPath: h.CtlPath}
	if h.ReadyFD > 2 {
		syscall.CloseOnExec(h.ReadyFD)
		s.ready = os.NewFile(uintptr(h.ReadyFD), "upgrade-ready")
	}
	if h.CtlFD > 2 {
		syscall.CloseOnExec(h.CtlFD)
		f := os.NewFile(uintptr(h.CtlFD), "control-socket")
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("upgrade: the control socket handed over: %w", err)
		}
		u, ok := ln.(*net.UnixListener)
		if !ok {
			ln.Close()
			return nil, errors.New("upgrade: the control socket handed over is not a unix socket")
		}
		u.SetUnlinkOnClose(false)
		s.ctl = u
	}
	return s, nil
}

// control is the inherited control socket if it is at path (nil: create
// one; an inherited socket at another path is closed).
func (s *successor) control(path string) *net.UnixListener {
	if s == nil || s.ctl == nil {
		return nil
	}
	if s.ctlPath != path {
		s.ctl.Close()
		s.ctl = nil
	}
	return s.ctl
}

// serving tells the previous supervisor this one serves: it hands over.
func (s *successor) serving() {
	if s == nil || s.ready == nil {
		return
	}
	fmt.Fprintf(s.ready, "ready %d\n", os.Getpid())
	s.ready.Close()
	s.ready = nil
}

// failed ends a successor that cannot serve: its predecessor keeps serving.
func (s *successor) failed() {
	if s != nil && s.ready != nil {
		s.ready.Close() // the predecessor reads EOF: not ready
		s.ready = nil
	}
}

// nextSupervisor is an upgrade to start: the sockets to hand over and how
// long the successor has to become ready.
type nextSupervisor struct {
	sockets []supervisor.Socket
	ctlFD   int // -1: none
	ctlPath string
	env     []string // besides os.Environ(): systemd's notify socket, for the successor
	timeout time.Duration
	dir     string // the working folder to start it in ("": this one's)
}

// start execs the binary on disk (the same arguments) and waits until it
// serves: it returns its pid, or why it does not serve (then it is gone).
func (n nextSupervisor) start() (int, error) {
	exe, err := os.Executable() // the file now at our path ("(deleted)" stripped)
	if err != nil {
		return 0, fmt.Errorf("find the wisp binary: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("a pipe for the new supervisor's readiness: %w", err)
	}
	defer r.Close()
	files := []uintptr{0, 1, 2}
	h := handover{From: os.Getpid(), CtlFD: -1, CtlPath: n.ctlPath}
	for _, s := range n.sockets {
		files = append(files, uintptr(s.FD))
		h.Bindings = append(h.Bindings, s.Binding)
		if s.Unlink != "" {
			h.Owned = append(h.Owned, s.Unlink)
		}
	}
	if n.ctlFD >= 0 {
		h.CtlFD = len(files)
		files = append(files, uintptr(n.ctlFD))
	}
	h.ReadyFD = len(files)
	files = append(files, w.Fd())
	raw, _ := json.Marshal(h)
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", upgradeEnv:
			continue
		}
		env = append(env, kv)
	}
	env = append(env, n.env...)
	env = append(env, "LISTEN_FDS="+strconv.Itoa(len(n.sockets)), upgradeEnv+"="+string(raw))
	// Raw descriptors (syscall.ForkExec, not exec.Cmd): exec.Cmd would call
	// os.File.Fd on the shared listeners and make them blocking.
	pid, err := syscall.ForkExec(exe, os.Args, &syscall.ProcAttr{Dir: n.dir, Env: env, Files: files})
	w.Close()
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", exe, err)
	}
	proc, _ := os.FindProcess(pid)
	exited := make(chan string, 1)
	go func() { // owned by proc: it ends when the successor does
		st, err := proc.Wait()
		if err != nil {
			exited <- err.Error()
			return
		}
		exited <- st.String()
	}()
	ready := make(chan bool, 1)
	go func() { // owned by r: closed when start returns
		line, err := bufio.NewReader(r).ReadString('\n')
		ready <- err == nil && strings.HasPrefix(line, "ready ")
	}()
	fail := func(why string) (int, error) {
		proc.Signal(syscall.SIGKILL)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
		}
		return 0, fmt.Errorf("the new supervisor (%s, pid %d) %s (see the error log for its output)", exe, pid, why)
	}
	select {
	case ok := <-ready:
		if ok {
			return pid, nil
		}
		select {
		case st := <-exited:
			return 0, fmt.Errorf("the new supervisor (%s, pid %d) exited before it was ready (%s; see the error log for its output)", exe, pid, st)
		case <-time.After(5 * time.Second):
			return fail("gave up before it was ready")
		}
	case <-time.After(n.timeout):
		return fail(fmt.Sprintf("was not ready within %s: killed", n.timeout))
	}
}

// upgradeResult is the control API's answer to an upgrade.
type upgradeResult struct {
	From int `json:"from"` // the previous supervisor's pid
	PID  int `json:"pid"`  // the new one's
}

// newUpgradeCommand is `wisp upgrade`: SIGUSR2 with the verdict.
func newUpgradeCommand(stdout, stderr io.Writer) *cobra.Command {
	var cf controlFlags
	c := &cobra.Command{
		Use:   "upgrade",
		Short: "run the wisp binary on disk as the server's supervisor and workers, live (as SIGUSR2 does), and wait for the verdict",
		Long: `Upgrade a running wisp to the binary now on disk, without refusing a connection:
the supervisor starts the new binary with its listening sockets and control
socket; the new supervisor starts new workers, and once they are ready the old
supervisor and its workers drain and exit. If the new binary fails to start,
the old one keeps serving and this command fails with the reason.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			sock, err := cf.find()
			if err != nil {
				return err
			}
			var res upgradeResult
			if err := control.Call(sock, "POST", "/v1/upgrade", nil, &res); err != nil {
				return fmt.Errorf("upgrade failed: %w", err)
			}
			var st poolstate.Status
			build := "unknown build"
			if err := control.Call(sock, "GET", "/v1/status", nil, &st); err == nil && st.Build != "" {
				build = st.Build
			}
			fmt.Fprintf(stdout, "upgrade: ok: supervisor pid %d replaced by pid %d (wisp %s)\n", res.From, res.PID, build)
			return nil
		},
	}
	cf.define(c.Flags(), false)
	return c
}

// ownedSockets are the unix socket files the predecessor created.
func (s *successor) ownedSockets() []string {
	if s == nil {
		return nil
	}
	return s.owned
}

// predecessor is the pid of the supervisor this one takes over from (0: none).
func (s *successor) predecessor() int {
	if s == nil {
		return 0
	}
	return s.from
}

// successorReady says whether an upgrade's successor may take over: each
// of its pools has a ready worker, or is idle (a request starts it); a pool
// stopped by rapid-fail protection, or none ready in time, is a failure.
func successorReady(ready bool, st poolstate.Status) error {
	for _, p := range st.Pools {
		if p.State == poolstate.PoolStopped {
			return fmt.Errorf("upgrade: pool %s is stopped (%s); the previous supervisor keeps serving", p.Name, p.Reason)
		}
	}
	if !ready {
		return errors.New("upgrade: a pool has no ready worker; the previous supervisor keeps serving")
	}
	return nil
}

// errUpgrading refuses an upgrade while another one runs or after one
// succeeded (this supervisor is draining).
var errUpgrading = errors.New("an upgrade is under way, or done already")

// upgradeTimeout is how long an upgrade's successor has to become ready: the
// longest start timeout of the pools, and some.
func upgradeTimeout(cfg *config.Config) time.Duration {
	d := time.Minute
	for _, p := range cfg.Pools {
		d = max(d, time.Duration(p.StartTimeout)+30*time.Second)
	}
	return d
}

// upgrader carries out a supervisor's binary upgrades (SIGUSR2, the control
// API's POST /v1/upgrade): one at a time, none once the server stops, and
// none after one succeeded (this supervisor drains then).
type upgrader struct {
	log     *slog.Logger
	sup     *supervisor.Supervisor
	notify  *sdnotify.Notifier
	ctl     *control.Server // set once the control socket is open
	admin   *adminSlot
	dir     string                // the folder the successor starts in ("": this one)
	lock    sync.Locker           // the configuration's: no reload during an upgrade
	current func() *config.Config // the running configuration, read with lock held
	handed  chan int              // the successor's pid, once it serves (buffered: 1)
	stopped atomic.Bool           // a stop signal came
	mu      sync.Mutex            // one upgrade at a time; held for good once one succeeded
}

// run starts the binary on disk as the next supervisor and hands over to
// it once it serves; on failure this supervisor serves on, and the error
// says why.
func (u *upgrader) run() (any, error) {
	if !u.mu.TryLock() {
		return nil, errUpgrading
	}
	if u.stopped.Load() {
		u.mu.Unlock()
		return nil, errors.New("the server is stopping")
	}
	u.lock.Lock()
	defer u.lock.Unlock()
	cfg := u.current()
	next := nextSupervisor{sockets: u.sup.Sockets(), ctlFD: -1, ctlPath: cfg.Server.ControlSocket,
		env: u.notify.SuccessorEnv(), timeout: upgradeTimeout(cfg), dir: u.dir}
	if fd, err := u.ctl.DupFD(); err == nil {
		next.ctlFD = fd
		defer syscall.Close(fd)
	}
	reopen := u.admin.pause() // the admin listener is not handed over
	u.log.Info("upgrade: starting the wisp binary on disk as the next supervisor", "sockets", len(next.sockets), "timeout", next.timeout.String())
	pid, err := next.start()
	if err == nil && u.stopped.Load() {
		syscall.Kill(pid, syscall.SIGTERM)
		err = errors.New("the server is stopping: the new supervisor was told to stop too")
	}
	if err != nil {
		u.log.Error("upgrade failed: the running supervisor keeps serving", "err", err)
		reopen()
		u.mu.Unlock()
		return nil, fmt.Errorf("%w; the running supervisor keeps serving", err)
	}
	u.ctl.HandOver() // the calls under way are answered; new ones reach the successor
	u.sup.HandedOver()
	u.notify.HandOver(pid)
	u.log.Info("upgrade: the new supervisor serves; this one drains its workers and exits", "pid", pid)
	u.handed <- pid
	return upgradeResult{From: os.Getpid(), PID: pid}, nil
}

// adminSlot is the admin listener of a supervisor: closed while an
// upgrade's successor starts (it opens its own), opened again if the
// upgrade fails.
type adminSlot struct {
	log  *slog.Logger
	opts admin.Options
	src  admin.Source
	mu   sync.Mutex
	srv  *admin.Server // nil: none, or paused
}

// open starts the listener, if the configuration has one.
func (a *adminSlot) open() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	srv, err := startAdmin(a.opts, a.src, a.log)
	a.srv = srv
	return err
}

// pause closes the listener; reopen opens it again (logging why not).
func (a *adminSlot) pause() (reopen func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.srv == nil {
		return func() {}
	}
	a.srv.Close()
	a.srv = nil
	return func() {
		if err := a.open(); err != nil {
			a.log.Error("the admin listener does not open again", "err", err)
		}
	}
}

// close closes the listener for good.
func (a *adminSlot) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.srv != nil {
		a.srv.Close()
		a.srv = nil
	}
}
