package edge

import "strings"

// MatchPrefix reports whether a decoded URL path is under a vdir's URL
// prefix, and the rest of it (PATH_INFO; SCRIPT_NAME is the prefix). The
// prefix is "" for the root, else "/a/b" with no trailing slash. As PEP
// 3333 and IIS have it, "/foo" matches "/foo" and "/foo/x", never "/foobar".
// Sites choose a vdir by the longest prefix that matches.
func MatchPrefix(path, prefix string) (rest string, ok bool) {
	if prefix == "" {
		return path, true
	}
	if strings.HasPrefix(path, prefix) && (len(path) == len(prefix) || path[len(prefix)] == '/') {
		return path[len(prefix):], true
	}
	return "", false
}
