// Package listen opens the sockets wisp serves: TCP ("host:port"), unix
// ("unix:PATH", with the mode and owner the operator asks for), and the
// sockets systemd passes to a socket-activated service (LISTEN_FDS).
package listen

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Scheme splits a binding into its scheme, "http" or "https" when it is
// written "http://:80" or "https://:443" ("" without one), and its address
// ("host:port" or "unix:PATH"), which is what this package listens on.
func Scheme(binding string) (scheme, addr string) {
	for _, sc := range []string{"http", "https"} {
		if a, ok := strings.CutPrefix(binding, sc+"://"); ok {
			return sc, a
		}
	}
	return "", binding
}

// UnixPath returns the path of a "unix:PATH" binding.
func UnixPath(binding string) (string, bool) {
	_, binding = Scheme(binding)
	if p, ok := strings.CutPrefix(binding, "unix:"); ok {
		return p, true
	}
	return "", false
}

// Check reports whether binding is a form Open accepts: "host:port" with a
// numeric port, or "unix:PATH" with an absolute or relative path short
// enough for a socket address.
func Check(binding string) error {
	_, binding = Scheme(binding)
	if p, ok := UnixPath(binding); ok {
		switch {
		case p == "":
			return fmt.Errorf("invalid binding %q: want unix:PATH, such as unix:/run/wisp/app.sock", binding)
		case len(p) > 107:
			return fmt.Errorf("invalid binding %q: a unix socket path may have at most 107 bytes, this one has %d", binding, len(p))
		}
		return nil
	}
	i := strings.LastIndexByte(binding, ':')
	if n, err := strconv.Atoi(binding[i+1:]); i < 0 || err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("invalid binding %q: want host:port, such as 127.0.0.1:8000 or [::1]:8000, or unix:PATH", binding)
	}
	return nil
}

// Unix is how unix socket bindings are created.
type Unix struct {
	Mode  os.FileMode // permissions of the socket file; 0: 0660
	Owner string      // "user", "user:group" or ":group" (names or numbers); "": wisp's own
}

// ParseMode reads an octal socket mode such as "660" or "0660".
func ParseMode(s string) (os.FileMode, error) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o777 {
		return 0, fmt.Errorf("socket mode %q: want octal permissions such as 0660", s)
	}
	return os.FileMode(n), nil
}

// ParseOwner resolves "user[:group]" or ":group" to ids (-1: unchanged).
func ParseOwner(s string) (uid, gid int, err error) {
	uid, gid = -1, -1
	if s == "" {
		return
	}
	u, g, _ := strings.Cut(s, ":")
	if u != "" {
		if uid, err = LookupUser(u); err != nil {
			return
		}
	}
	if g != "" {
		gid, err = LookupGroup(g)
	}
	return
}

// LookupUser resolves a user name or number to a uid.
func LookupUser(name string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		return n, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return -1, fmt.Errorf("user %q: no such user", name)
	}
	return strconv.Atoi(u.Uid)
}

// UserGroups is what initgroups(3) gives usr with group gid: the groups usr
// is a member of (its primary group among them), and gid. A pool's
// workers and `wisp run -u` both run with exactly these.
func UserGroups(usr *user.User, gid uint32) ([]uint32, error) {
	groups := []uint32{gid}
	if usr == nil {
		return groups, nil
	}
	ids, err := usr.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("list the groups of %s: %w", usr.Username, err)
	}
	for _, s := range ids {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("the groups of %s: gid %q: %w", usr.Username, s, err)
		}
		if !slices.Contains(groups, uint32(n)) {
			groups = append(groups, uint32(n))
		}
	}
	return groups, nil
}

// LookupGroup resolves a group name or number to a gid.
func LookupGroup(name string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		return n, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return -1, fmt.Errorf("group %q: no such group", name)
	}
	return strconv.Atoi(g.Gid)
}

// Open listens on binding. A unix socket's file is created with u's mode and
// owner; a stale file (no server answers on it) is replaced, a live one is an
// error. The listener does not remove the file when it is closed (wisp's
// workers share it): call Remove at exit.
func Open(binding string, u Unix) (net.Listener, error) {
	if err := Check(binding); err != nil {
		return nil, err
	}
	path, ok := UnixPath(binding)
	if !ok {
		_, addr := Scheme(binding)
		return net.Listen("tcp", addr)
	}
	if _, err := os.Lstat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen %s: another server is listening on this socket", binding)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("listen %s: remove the stale socket: %w", binding, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	mode := u.Mode
	if mode == 0 {
		mode = 0o660
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		os.Remove(path)
		return nil, fmt.Errorf("listen %s: %w", binding, err)
	}
	uid, gid, err := ParseOwner(u.Owner)
	if err == nil && (uid >= 0 || gid >= 0) {
		err = os.Lchown(path, uid, gid)
	}
	if err != nil {
		ln.Close()
		os.Remove(path)
		return nil, fmt.Errorf("listen %s: socket owner: %w", binding, err)
	}
	return ln, nil
}

// Remove deletes the socket file of a unix binding that wisp created (not
// one systemd passed).
func Remove(binding string) {
	if p, ok := UnixPath(binding); ok {
		os.Remove(p)
	}
}

// Activated is a socket passed by systemd.
type Activated struct {
	Name string // its FileDescriptorName= (systemd's default: the unit's name)
	Ln   net.Listener
	used bool
}

// Addr is the socket's address as a binding string: "ip:port" or "unix:PATH".
func (a *Activated) Addr() string {
	if u, ok := a.Ln.Addr().(*net.UnixAddr); ok {
		return "unix:" + u.Name
	}
	return a.Ln.Addr().String()
}

// Set is the sockets systemd passed, to be matched to bindings.
type Set struct{ socks []*Activated }

// Inherit takes the sockets systemd passed to this process (socket
// activation: LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES) and clears those
// variables, so that child processes do not take them as theirs. No
// activation: an empty set.
func Inherit() (*Set, error) {
	s := &Set{}
	pid, fds, names := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES")
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_FDNAMES")
	if fds == "" {
		return s, nil
	}
	if p, err := strconv.Atoi(pid); err != nil || p != os.Getpid() {
		return s, nil // meant for another process
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 0 || n > 1024 {
		return nil, fmt.Errorf("socket activation: LISTEN_FDS=%q is not a count of sockets", fds)
	}
	nameList := strings.Split(names, ":")
	var errs []error
	for i := range n {
		fd := 3 + i
		syscall.CloseOnExec(fd)
		name := ""
		if i < len(nameList) {
			name = nameList[i]
		}
		f := os.NewFile(uintptr(fd), "listen-fd-"+strconv.Itoa(fd))
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("socket activation: descriptor %d (%s) is not a listening stream socket: %w", fd, name, err))
			continue
		}
		if u, ok := ln.(*net.UnixListener); ok {
			u.SetUnlinkOnClose(false) // systemd owns the file
		}
		s.socks = append(s.socks, &Activated{Name: name, Ln: ln})
	}
	return s, errors.Join(errs...)
}

// Len is the number of passed sockets.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.socks)
}

// Take returns the passed socket for binding, matched by name (the binding
// itself, or site, as FileDescriptorName=) or by address, and marks it used.
func (s *Set) Take(binding, site string) (*Activated, bool) {
	if s == nil {
		return nil, false
	}
	for _, a := range s.socks {
		if !a.used && a.Name != "" && (a.Name == binding || a.Name == site) {
			a.used = true
			return a, true
		}
	}
	for _, a := range s.socks {
		if !a.used && sameAddr(a.Addr(), binding) {
			a.used = true
			return a, true
		}
	}
	return nil, false
}

// Extra returns the addresses of the passed sockets that no binding of
// sites (site name → bindings) matches, as Take would match them.
func (s *Set) Extra(sites map[string][]string) []string {
	if s == nil {
		return nil
	}
	var out []string
	for _, a := range s.socks {
		if a.used {
			continue
		}
		matched := false
		for site, bs := range sites {
			for _, b := range bs {
				if (a.Name != "" && (a.Name == b || a.Name == site)) || sameAddr(a.Addr(), b) {
					matched = true
				}
			}
		}
		if !matched {
			out = append(out, a.Addr())
		}
	}
	return out
}

// Rest returns the passed sockets no binding took, marking them used.
func (s *Set) Rest() []*Activated {
	if s == nil {
		return nil
	}
	var out []*Activated
	for _, a := range s.socks {
		if !a.used {
			a.used = true
			out = append(out, a)
		}
	}
	return out
}

// sameAddr compares a socket's address with a binding: the same unix path,
// or the same port and the same IP (an empty or unspecified host matches an
// unspecified one).
func sameAddr(addr, binding string) bool {
	_, binding = Scheme(binding)
	if p, ok := UnixPath(binding); ok {
		q, ok := UnixPath(addr)
		return ok && q == p
	}
	ah, ap, err1 := net.SplitHostPort(addr)
	bh, bp, err2 := net.SplitHostPort(binding)
	if err1 != nil || err2 != nil || ap != bp {
		return false
	}
	aip, bip := net.ParseIP(ah), net.ParseIP(bh)
	unspec := func(h string, ip net.IP) bool { return h == "" || (ip != nil && ip.IsUnspecified()) }
	if unspec(ah, aip) || unspec(bh, bip) {
		return unspec(ah, aip) && unspec(bh, bip)
	}
	return aip != nil && bip != nil && aip.Equal(bip)
}

// Name names the passed sockets in order; "" keeps a name. An upgrade's next
// supervisor names them by the bindings they were opened for, which
// LISTEN_FDNAMES cannot carry (':' separates its names).
func (s *Set) Name(names []string) {
	if s == nil {
		return
	}
	for i, a := range s.socks {
		if i < len(names) && names[i] != "" {
			a.Name = names[i]
		}
	}
}
