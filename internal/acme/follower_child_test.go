package acme

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"wisp/internal/acme/pebbletest"
)

// The follower child: the test binary run again as a pool worker would
// be, with the listeners as fds 3 (TLS) and 4 (plain HTTP), serving through
// a Follower only. It says "ready" on stdout and runs until stdin closes.

const followerChildEnv = "WISP_ACME_TEST_FOLLOWER"

func TestMain(m *testing.M) {
	if os.Getenv(followerChildEnv) != "" {
		os.Exit(followerChild())
	}
	os.Exit(m.Run())
}

type followerArgs struct {
	Names               []string
	CA, CARoot, Storage string
}

func followerChild() int {
	var a followerArgs
	if err := json.Unmarshal([]byte(os.Getenv(followerChildEnv)), &a); err != nil {
		fmt.Fprintln(os.Stderr, "follower child:", err)
		return 2
	}
	h := slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})
	f, err := NewFollower(Options{Names: a.Names, CA: a.CA, CARoot: a.CARoot, Storage: a.Storage, Log: slog.New(h)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "follower child:", err)
		return 2
	}
	defer f.Stop()
	var lns [2]net.Listener
	for i := range lns {
		if lns[i], err = net.FileListener(os.NewFile(uintptr(3+i), "listener")); err != nil {
			fmt.Fprintln(os.Stderr, "follower child:", err)
			return 2
		}
	}
	errLog := slog.NewLogLogger(h, slog.LevelWarn)
	https := &http.Server{
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintf(w, "follower pid=%d", os.Getpid()) }),
		TLSConfig: &tls.Config{GetCertificate: f.GetCertificate, NextProtos: NextProtos("http/1.1")},
		ErrorLog:  errLog,
	}
	plain := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !f.HTTPChallenge(w, r) {
				http.NotFound(w, r)
			}
		}),
		ErrorLog: errLog,
	}
	go https.ServeTLS(lns[0], "", "")
	go plain.Serve(lns[1])
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin) // until the test closes it, or dies
	https.Close()
	plain.Close()
	return 0
}

// startFollowerChild runs the follower child on tlsLn and httpLn, which this
// process keeps open but never accepts on (as a pool's supervisor), as the
// user cred if not nil (a copy of the test binary then runs, from a folder
// that user can reach); its output (its log) is the returned process's.
func startFollowerChild(t *testing.T, a followerArgs, cred *syscall.Credential, tlsLn, httpLn net.Listener) (*exec.Cmd, *pebbletest.Process) {
	t.Helper()
	b, _ := json.Marshal(a)
	bin := os.Args[0]
	if cred != nil {
		bin = filepath.Join(sharedTempDir(t), "acme.test")
		exe, err := os.ReadFile(os.Args[0])
		if err == nil {
			err = os.WriteFile(bin, exe, 0o755)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), followerChildEnv+"="+string(b))
	for _, ln := range []net.Listener{tlsLn, httpLn} {
		f, err := ln.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close() // the child has its copy once started
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close() })
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	logs := pebbletest.StartProcess(t, "follower child", cmd)
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("said %q", line)
		}
		ready <- err
		io.Copy(io.Discard, stdout)
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("follower child: %v", err)
		}
	case <-time.After(pebbletest.WaitLimit):
		t.Fatal("follower child: not ready")
	}
	return cmd, logs
}
