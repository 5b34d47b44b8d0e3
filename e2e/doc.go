// Package e2e holds wisp's black-box end-to-end tests.
//
// The tests build cmd/wisp once (TestMain), start it as a child process on
// 127.0.0.1:0 with the tiny WSGI apps of testdata/apps/<case>/, and talk to it
// over real HTTP: net/http for ordinary exchanges, raw net.Conn where the
// bytes on the wire matter (framing, truncation, HEAD, 204/304).
//
// Environment:
//
//	WISP_E2E_BIN      use this wisp binary instead of building one
//	WISP_E2E_PYTHON   the interpreter passed to --python (default /usr/bin/python3)
//	WISP_E2E_PYTHON2  a second interpreter (default /root/.pyenv/versions/3.11.7/bin/python3)
package e2e
