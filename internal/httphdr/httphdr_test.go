package httphdr

import "testing"

func TestSets(t *testing.T) {
	for _, c := range []struct {
		name            string
		hop, connection bool
	}{
		{"Connection", true, true},
		{"connection", true, true},
		{"KEEP-ALIVE", true, true},
		{"Proxy-Connection", true, true},
		{"Transfer-Encoding", true, true},
		{"Upgrade", true, true},
		{"TE", true, false},
		{"te", true, false},
		{"Trailer", true, false},
		{"Trailers", true, false},
		{"Proxy-Authenticate", true, false},
		{"Proxy-Authorization", true, false},
		{"Content-Length", false, false},
		{"Host", false, false},
		{"Expect", false, false},
		{"X-Forwarded-For", false, false},
		{"", false, false},
		{"Connectio", false, false},
	} {
		if got := HopByHop(c.name); got != c.hop {
			t.Errorf("HopByHop(%q) = %v, want %v", c.name, got, c.hop)
		}
		if got := ConnectionSpecific(c.name); got != c.connection {
			t.Errorf("ConnectionSpecific(%q) = %v, want %v", c.name, got, c.connection)
		}
	}
	names := Names()
	if len(names) != 10 {
		t.Fatalf("Names() = %q, want the 10 of wsgiref's list with Trailer and Proxy-Connection", names)
	}
	names[0] = "X"
	if !HopByHop("Connection") {
		t.Error("Names() gives the list itself: a caller changed it")
	}
}
