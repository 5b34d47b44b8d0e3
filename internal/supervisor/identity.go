package supervisor

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// credential resolves a pool's user and group (names or ids); it needs root.
func credential(u, g string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("user/group %q/%q: wisp must start as root to run a pool as another user", u, g)
	}
	cred := &syscall.Credential{Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())}
	if u != "" {
		usr, err := user.Lookup(u)
		if err != nil {
			if usr, err = user.LookupId(u); err != nil {
				return nil, fmt.Errorf("user %q: no such user", u)
			}
		}
		uid, _ := strconv.Atoi(usr.Uid)
		gid, _ := strconv.Atoi(usr.Gid)
		cred.Uid, cred.Gid = uint32(uid), uint32(gid)
	}
	if g != "" {
		grp, err := user.LookupGroup(g)
		if err != nil {
			if grp, err = user.LookupGroupId(g); err != nil {
				return nil, fmt.Errorf("group %q: no such group", g)
			}
		}
		gid, _ := strconv.Atoi(grp.Gid)
		cred.Gid = uint32(gid)
	}
	cred.NoSetGroups = true
	return cred, nil
}
