package sdnotify

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNotifier(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "100000")
	t.Setenv("WATCHDOG_PID", "")
	n := New()
	if n == nil {
		t.Fatal("no notifier with NOTIFY_SOCKET set")
	}
	defer n.Close()
	if os.Getenv("NOTIFY_SOCKET") != "" {
		t.Error("NOTIFY_SOCKET left for child processes")
	}
	if n.Watchdog() != 100*time.Millisecond {
		t.Errorf("watchdog %v", n.Watchdog())
	}
	read := func() string {
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		b := make([]byte, 1024)
		k, err := conn.Read(b)
		if err != nil {
			t.Fatal(err)
		}
		return string(b[:k])
	}
	n.Ready("serving")
	if m := read(); !strings.Contains(m, "READY=1\n") || !strings.Contains(m, "STATUS=serving\n") {
		t.Errorf("ready: %q", m)
	}
	n.Reloading()
	if m := read(); !strings.Contains(m, "RELOADING=1\n") || !strings.Contains(m, "MONOTONIC_USEC=") {
		t.Errorf("reloading: %q", m)
	}
	n.StartWatchdog(func() bool { return true })
	if m := read(); m != "WATCHDOG=1\n" {
		t.Errorf("watchdog: %q", m)
	}
	var none *Notifier
	if none.Ready("x") != nil || none.Watchdog() != 0 {
		t.Error("a nil notifier must do nothing")
	}
}

// HandOver names the upgrade's new main process, and then the old one says
// nothing more (no STOPPING=1 while it drains); SuccessorEnv gives the new
// one the socket and the watchdog, without WATCHDOG_PID.
func TestHandOver(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "100000")
	t.Setenv("WATCHDOG_PID", "")
	n := New()
	if n == nil {
		t.Fatal("no notifier with NOTIFY_SOCKET set")
	}
	env := strings.Join(n.SuccessorEnv(), " ")
	if env != "NOTIFY_SOCKET="+path+" WATCHDOG_USEC=100000" {
		t.Errorf("successor env: %q", env)
	}
	if err := n.HandOver(4242); err != nil {
		t.Fatal(err)
	}
	n.Stopping()
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	b := make([]byte, 1024)
	k, err := conn.Read(b)
	if err != nil || string(b[:k]) != "MAINPID=4242\n" {
		t.Errorf("handover: %q %v", b[:k], err)
	}
	conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if k, err := conn.Read(b); err == nil {
		t.Errorf("a message after the handover: %q", b[:k])
	}
	var none *Notifier
	if none.HandOver(1) != nil || none.SuccessorEnv() != nil {
		t.Error("a nil notifier must do nothing")
	}
}
