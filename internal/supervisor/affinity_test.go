package supervisor

import (
	"fmt"
	"testing"
)

func TestCPUShare(t *testing.T) {
	for _, c := range []struct {
		cpus []int
		k, n int
		want string
	}{
		{[]int{0, 1}, 0, 2, "[0]"},
		{[]int{0, 1}, 1, 2, "[1]"},
		{[]int{0, 1, 2, 3, 4, 5, 6, 7}, 0, 2, "[0 1 2 3]"},
		{[]int{0, 1, 2, 3, 4, 5, 6, 7}, 1, 2, "[4 5 6 7]"},
		{[]int{0, 1, 2, 3, 4, 5, 6, 7}, 2, 3, "[5 6 7]"},
		{[]int{2, 3}, 3, 4, "[3]"},    // more workers than CPUs: k mod CPUs
		{[]int{0, 1, 2}, 0, 3, "[0]"}, // one each
		{nil, 0, 2, "[]"},
	} {
		if got := fmt.Sprint(cpuShare(c.cpus, c.k, c.n)); got != c.want {
			t.Errorf("cpuShare(%v, %d, %d) = %s, want %s", c.cpus, c.k, c.n, got, c.want)
		}
	}
	if len(allowedCPUs()) == 0 {
		t.Error("allowedCPUs found no CPU")
	}
}
