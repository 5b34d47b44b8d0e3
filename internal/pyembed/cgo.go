// Package pyembed embeds CPython in the wisp process: it loads the libpython of a
// chosen interpreter at run time (dlopen, stable ABI only), runs WSGI apps on
// Python threads owned by locked goroutines, and hands each response back to Go
// through a Sink. It is the only package with cgo or any PyObject.
package pyembed

// #cgo CFLAGS: -O2 -Wall -Wno-unused-function
// #cgo LDFLAGS: -ldl
import "C"
