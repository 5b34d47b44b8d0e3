package edge

import "testing"

func TestMatchPrefix(t *testing.T) {
	for _, c := range []struct {
		path, prefix, rest string
		ok                 bool
	}{
		{"/", "", "/", true},
		{"/anything/x", "", "/anything/x", true},
		{"/foo", "/foo", "", true},
		{"/foo/", "/foo", "/", true},
		{"/foo/x/y", "/foo", "/x/y", true},
		{"/foobar", "/foo", "", false},
		{"/fo", "/foo", "", false},
		{"/a/b/c", "/a/b", "/c", true},
		{"/a/bc", "/a/b", "", false},
		{"", "/foo", "", false},
	} {
		rest, ok := MatchPrefix(c.path, c.prefix)
		if rest != c.rest || ok != c.ok {
			t.Errorf("MatchPrefix(%q, %q) = %q, %v; want %q, %v", c.path, c.prefix, rest, ok, c.rest, c.ok)
		}
	}
}
