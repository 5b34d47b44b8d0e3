package supervisor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// The pools' unix sockets, which the workers of other pools forward
// requests to, live in the run folder. That folder is 0711: every pool's
// user may pass through it, none may list it. Each socket is made 0600 (the
// supervisor's user only) and then opened to exactly the users whose
// workers forward to it (see grantPoolSockets); root may always connect.

// openPoolSocket opens the unix socket a pool's workers accept forwarded
// requests on, unless it is open. Each has a name of its own for the life of
// the supervisor (a pool removed and added again gets a new one), and its
// file goes when the listener closes.
func (s *Supervisor) openPoolSocket(name string) error {
	key := "pool:" + name
	if _, ok := s.listeners[key]; ok {
		return nil
	}
	s.poolSockets++
	path := filepath.Join(s.rundir, "pool-"+strconv.Itoa(s.poolSockets)+".sock")
	ln, err := listenPrivate(path)
	if err != nil {
		return fmt.Errorf("pool %q: socket: %w", name, err)
	}
	fd, err := dupListener(ln)
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("pool %q: socket: %w", name, err)
	}
	s.listeners[key] = &listener{key: key, addr: path, pool: name, fd: fd, unlink: path}
	return nil
}

// listenPrivate listens on a unix socket at path whose file is 0600 from
// the start, whatever the umask: the mode is set on the socket before bind
// creates the file. Closing the listener leaves the file.
func listenPrivate(path string) (*net.UnixListener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) { err = syscall.Fchmod(int(fd), 0o600) }); cerr != nil {
			return cerr
		}
		if err != nil {
			return fmt.Errorf("fchmod: %w", err)
		}
		return nil
	}}
	ln, err := lc.Listen(context.Background(), "unix", path)
	if err != nil {
		return nil, err
	}
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	return ul, nil
}

// grantPoolSockets lets each pool socket be reached by exactly the users
// whose workers forward to it: those of the pools' current settings, and of
// the settings a pool's old workers still run during a reload. Call it
// before workers of new settings start, and after settings are put back.
func (s *Supervisor) grantPoolSockets() {
	users := s.socketUsers()
	for _, l := range s.listeners {
		if l.pool == "" || l.fd < 0 {
			continue
		}
		want := users[l.addr]
		if l.granted != nil && slices.Equal(*l.granted, want) {
			continue
		}
		if err := grantSocket(l.addr, want); err != nil {
			s.log.Error("pool socket: the workers that forward to the pool may not reach it", "pool", l.pool, "err", err)
			l.granted = nil // try again next time
			continue
		}
		l.granted = &want
	}
}

// socketUsers is, by pool socket, the uids (sorted) of the workers that
// forward to it, other than the supervisor's own.
func (s *Supervisor) socketUsers() map[string][]uint32 {
	self := uint32(os.Geteuid())
	users := map[string][]uint32{}
	add := func(spec *WorkerSpec, id *identity) {
		if id == nil || id.cred.Uid == self {
			return
		}
		for _, st := range spec.Sites {
			for _, m := range st.Mounts {
				if m.Forward != "" && !slices.Contains(users[m.Forward], id.cred.Uid) {
					users[m.Forward] = append(users[m.Forward], id.cred.Uid)
				}
			}
		}
	}
	for _, p := range s.pools {
		add(&p.spec, p.ident)
		if p.prev != nil {
			add(&p.prev.spec, p.prev.ident)
		}
	}
	for _, u := range users {
		slices.Sort(u)
	}
	return users
}

// aclXattr is the extended attribute that holds a file's POSIX ACL.
const aclXattr = "system.posix_acl_access"

// grantSocket lets exactly uids connect to the unix socket at path, besides
// the supervisor's user (and root). The socket stays the supervisor's, 0600,
// and a POSIX ACL names uids. Only where the file system has no ACLs is a
// single user made the socket's owner instead.
func grantSocket(path string, uids []uint32) error {
	// The socket stays wisp's own, 0600: an owner could chmod it open to
	// every local user, who could then pass X-Wisp-* headers the pool trusts.
	if err := os.Chown(path, os.Geteuid(), -1); err != nil {
		return err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return err
	}
	if len(uids) == 0 {
		if err := syscall.Removexattr(path, aclXattr); err != nil && !errors.Is(err, syscall.ENODATA) && !errors.Is(err, syscall.EOPNOTSUPP) {
			return fmt.Errorf("%s: remove its ACL: %w", path, err)
		}
		return nil
	}
	err := syscall.Setxattr(path, aclXattr, userACL(uids), 0)
	if err == nil {
		return nil
	}
	if len(uids) == 1 && errors.Is(err, syscall.EOPNOTSUPP) {
		// no ACLs on this file system: the one user owns the socket (it
		// could open it to others; documented)
		return os.Chown(path, int(uids[0]), -1)
	}
	return fmt.Errorf("%s: let uids %v connect with an ACL (does its file system have ACLs?): %w", path, uids, err)
}

// userACL is the POSIX ACL, in the kernel's xattr form
// (linux/posix_acl_xattr.h), that gives the owner and uids read and write,
// and nobody else anything.
func userACL(uids []uint32) []byte {
	const (
		version  = 2
		userObj  = 0x01
		user     = 0x02
		groupObj = 0x04
		mask     = 0x10
		other    = 0x20
		rw       = 6
		noID     = ^uint32(0)
	)
	b := binary.LittleEndian.AppendUint32(nil, version)
	entry := func(tag, perm uint16, id uint32) {
		b = binary.LittleEndian.AppendUint16(b, tag)
		b = binary.LittleEndian.AppendUint16(b, perm)
		b = binary.LittleEndian.AppendUint32(b, id)
	}
	entry(userObj, rw, noID)
	for _, u := range uids { // sorted, as the kernel wants them
		entry(user, rw, u)
	}
	entry(groupObj, 0, noID)
	entry(mask, rw, noID)
	entry(other, 0, noID)
	return b
}
