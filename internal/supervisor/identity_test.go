package supervisor

import (
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
