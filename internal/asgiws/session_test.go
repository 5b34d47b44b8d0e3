package asgiws

import "testing"

// The app's close as wisp_asgi.py encodes it: "code\x00reason".
func TestParseClose(t *testing.T) {
	for _, c := range []struct {
		in     string
		code   int
		reason string
	}{
		{"4001\x00see you", 4001, "see you"},
		{"1000\x00", 1000, ""},
		{"x\x00why", 1000, "why"}, // no number: a normal close, the reason kept
		{"", 1000, ""},
		{"1001", 1000, ""}, // no NUL: not the encoding
	} {
		code, reason := parseClose([]byte(c.in))
		if code != c.code || reason != c.reason {
			t.Errorf("parseClose(%q) = %d %q, want %d %q", c.in, code, reason, c.code, c.reason)
		}
	}
}

func TestCloseReason(t *testing.T) {
	if CloseReason(1012) == "" || CloseReason(1001) == "" || CloseReason(1000) != "" {
		t.Errorf("closeReason: %q %q %q", CloseReason(1012), CloseReason(1001), CloseReason(1000))
	}
}
