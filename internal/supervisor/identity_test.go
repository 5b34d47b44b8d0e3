package supervisor

import (
	"os/user"
	"slices"
	"testing"
)

func TestWorkerEnv(t *testing.T) {
	id := &identity{env: []string{"HOME=/home/u", "USER=u", "LOGNAME=u"}}
	base := []string{"PATH=/bin", "HOME=/root", "USER=root", "LANG=C"}
	got := workerEnv(base, id, map[string]string{"LOGNAME": "mine"})
	want := []string{"PATH=/bin", "LANG=C", "HOME=/home/u", "USER=u", "LOGNAME=mine"}
	if !slices.Equal(got, want) {
		t.Errorf("workerEnv = %v, want %v (the user's over wisp's, the pool's env over both)", got, want)
	}
	if got := workerEnv(base, nil, nil); !slices.Equal(got, base) {
		t.Errorf("workerEnv without identity = %v, want %v", got, base)
	}
}

func TestUserGroups(t *testing.T) {
	if got, err := userGroups(nil, 7); err != nil || !slices.Equal(got, []uint32{7}) {
		t.Errorf("userGroups(nil, 7) = %v, %v; want [7]", got, err)
	}
	root, err := user.LookupId("0")
	if err != nil {
		t.Skip(err)
	}
	got, err := userGroups(root, 4242)
	if err != nil || got[0] != 4242 || !slices.Contains(got, 0) {
		t.Errorf("userGroups(root, 4242) = %v, %v; want 4242 and root's groups (0 among them)", got, err)
	}
}
