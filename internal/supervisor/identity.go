package supervisor

import (
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"wisp/internal/listen"
)

// identity is who a pool's workers run as (`user =`, `group =`): the
// credentials they are started with, and the environment that goes with
// the user.
type identity struct {
	// cred is the uid, the gid (the group's if set, else the user's primary
	// group) and exactly the user's supplementary groups, as initgroups(3)
	// gives them (the groups it is a member of, its primary group among
	// them, and the gid): never the supervisor's own.
	cred *syscall.Credential
	// env is HOME, USER and LOGNAME of the user (none without `user =`).
	env []string
}

// lookupIdentity resolves a pool's user and group (names or ids); it needs
// root. Without a user the workers keep the supervisor's uid, and get that
// user's groups.
func lookupIdentity(u, g string) (*identity, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("user/group %q/%q: wisp must start as root to run a pool as another user", u, g)
	}
	id := &identity{cred: &syscall.Credential{Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())}}
	var usr *user.User
	if u != "" {
		var err error
		if usr, err = user.Lookup(u); err != nil {
			if usr, err = user.LookupId(u); err != nil {
				return nil, fmt.Errorf("user %q: no such user", u)
			}
		}
		uid, err := strconv.ParseUint(usr.Uid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("user %q: uid %q: %w", u, usr.Uid, err)
		}
		gid, err := strconv.ParseUint(usr.Gid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("user %q: gid %q: %w", u, usr.Gid, err)
		}
		id.cred.Uid, id.cred.Gid = uint32(uid), uint32(gid)
		id.env = []string{"HOME=" + usr.HomeDir, "USER=" + usr.Username, "LOGNAME=" + usr.Username}
	} else {
		usr, _ = user.LookupId(strconv.Itoa(os.Getuid())) // none: no groups but the gid
	}
	if g != "" {
		grp, err := user.LookupGroup(g)
		if err != nil {
			if grp, err = user.LookupGroupId(g); err != nil {
				return nil, fmt.Errorf("group %q: no such group", g)
			}
		}
		gid, err := strconv.ParseUint(grp.Gid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("group %q: gid %q: %w", g, grp.Gid, err)
		}
		id.cred.Gid = uint32(gid)
	}
	groups, err := listen.UserGroups(usr, id.cred.Gid)
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", u, err)
	}
	id.cred.Groups = groups
	return id, nil
}

// workerEnv is the environment of a worker: the supervisor's without its
// WISP_* variables (its flags, an admin token: a worker's app could read them
// in /proc/self/environ) but the log format, with the identity's variables
// (id may be nil) over it and the pool's env over both.
func workerEnv(base []string, id *identity, poolEnv map[string]string) []string {
	var over []string
	if id != nil {
		for _, kv := range id.env {
			if _, set := poolEnv[envKey(kv)]; !set {
				over = append(over, kv)
			}
		}
	}
	env := make([]string, 0, len(base)+len(over)+len(poolEnv))
	for _, kv := range base {
		if k := envKey(kv); strings.HasPrefix(k, "WISP_") && k != "WISP_LOG_FORMAT" {
			continue
		}
		if !slices.ContainsFunc(over, func(o string) bool { return envKey(o) == envKey(kv) }) {
			env = append(env, kv)
		}
	}
	env = append(env, over...)
	for k, v := range poolEnv {
		env = append(env, k+"="+v)
	}
	return env
}

// envKey is the name of a NAME=value environment entry.
func envKey(kv string) string {
	k, _, _ := strings.Cut(kv, "=")
	return k
}

// PoolCredential is who the workers of a pool with `user =` and `group =`
// run as, for a process started on their behalf (the import check of
// `wisp install` and `wisp check`, which must see only what the workers
// will see): its credentials (nil when the pool names neither) and a
// worker's environment made from base (workerEnv: no WISP_* variable but
// the log format, the user's variables over it).
func PoolCredential(u, g string, base []string) (*syscall.Credential, []string, error) {
	if u == "" && g == "" {
		return nil, workerEnv(base, nil, nil), nil
	}
	id, err := lookupIdentity(u, g)
	if err != nil {
		return nil, nil, err
	}
	return id.cred, workerEnv(base, id, nil), nil
}
