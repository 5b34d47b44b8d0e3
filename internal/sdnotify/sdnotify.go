// Package sdnotify tells systemd how a Type=notify service is doing
// (sd_notify(3)): READY=1 once the apps are imported, RELOADING=1 and
// STOPPING=1, STATUS= lines for `systemctl status`, and WATCHDOG=1 pings
// when the unit sets WatchdogSec=. Outside systemd every call does nothing.
package sdnotify

import (
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Notifier sends to the service manager's socket. The zero of a nil
// *Notifier does nothing.
type Notifier struct {
	mu       sync.Mutex
	conn     *net.UnixConn
	watchdog time.Duration
	stop     chan struct{}
	env      []string // NOTIFY_SOCKET and WATCHDOG_USEC as read, for a successor
	handed   bool     // HandOver: another process speaks for the service now
}

// New reads NOTIFY_SOCKET (and WATCHDOG_USEC) and clears them, so that the
// pool's worker processes do not speak for the service. It returns nil when
// the process is not a notify service.
func New() *Notifier {
	addr := os.Getenv("NOTIFY_SOCKET")
	notifySocket := addr
	wd, wdPID := os.Getenv("WATCHDOG_USEC"), os.Getenv("WATCHDOG_PID")
	for _, v := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} {
		os.Unsetenv(v)
	}
	if addr == "" {
		return nil
	}
	if strings.HasPrefix(addr, "@") {
		addr = "\x00" + addr[1:] // an abstract socket
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return nil
	}
	n := &Notifier{conn: conn, stop: make(chan struct{}), env: []string{"NOTIFY_SOCKET=" + notifySocket}}
	if wd != "" {
		n.env = append(n.env, "WATCHDOG_USEC="+wd)
	}
	if us, err := strconv.ParseInt(wd, 10, 64); err == nil && us > 0 {
		if p, err := strconv.Atoi(wdPID); wdPID == "" || (err == nil && p == os.Getpid()) {
			n.watchdog = time.Duration(us) * time.Microsecond
		}
	}
	return n
}

// Send sends the lines (KEY=VALUE) as one message.
func (n *Notifier) Send(lines ...string) error {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.handed {
		return nil
	}
	_, err := n.conn.Write([]byte(strings.Join(lines, "\n") + "\n"))
	return err
}

// Ready says the service is up: its apps imported, its sockets served.
func (n *Notifier) Ready(status string) error {
	return n.Send("READY=1", "STATUS="+status, "MAINPID="+strconv.Itoa(os.Getpid()))
}

// Reloading says a reload began (with the monotonic time, which
// Type=notify-reload wants); Ready ends it.
func (n *Notifier) Reloading() error {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	usec := ts.Sec*1e6 + ts.Nsec/1e3
	return n.Send("RELOADING=1", "STATUS=reloading", "MONOTONIC_USEC="+strconv.FormatInt(usec, 10))
}

// Stopping says the service is shutting down.
func (n *Notifier) Stopping() error {
	return n.Send("STOPPING=1", "STATUS=stopping: draining requests")
}

// Status sets the STATUS= line `systemctl status` shows.
func (n *Notifier) Status(s string) error { return n.Send("STATUS=" + s) }

// Watchdog is the WatchdogSec= interval, 0 when not set.
func (n *Notifier) Watchdog() time.Duration {
	if n == nil {
		return 0
	}
	return n.watchdog
}

// StartWatchdog pings WATCHDOG=1 at half the interval while alive returns
// true (the process is serving); a false answer skips the ping, so that
// systemd restarts a service that no longer works.
func (n *Notifier) StartWatchdog(alive func() bool) {
	if n == nil || n.watchdog == 0 {
		return
	}
	go func() {
		t := time.NewTicker(n.watchdog / 2)
		defer t.Stop()
		for {
			select {
			case <-n.stop:
				return
			case <-t.C:
				if alive == nil || alive() {
					n.Send("WATCHDOG=1")
				}
			}
		}
	}()
}

// Close stops the watchdog pings.
func (n *Notifier) Close() {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	select {
	case <-n.stop:
	default:
		close(n.stop)
	}
}

// SuccessorEnv is the environment that lets the successor of a binary
// upgrade speak for the service (NOTIFY_SOCKET, WATCHDOG_USEC; no
// WATCHDOG_PID, which would name this process). None outside systemd.
func (n *Notifier) SuccessorEnv() []string {
	if n == nil {
		return nil
	}
	return n.env
}

// HandOver makes pid the service's main process (MAINPID=, which systemd
// takes from the main process with NotifyAccess=main) and silences this
// one: no watchdog pings, no STOPPING=1 while it drains its old workers.
func (n *Notifier) HandOver(pid int) error {
	if n == nil {
		return nil
	}
	err := n.Send("MAINPID=" + strconv.Itoa(pid))
	n.Close()
	n.mu.Lock()
	n.handed = true
	n.mu.Unlock()
	return err
}
