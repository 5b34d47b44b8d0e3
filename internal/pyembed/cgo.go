// Package pyembed embeds CPython in the wisp process: it loads the libpython of a
// chosen interpreter at run time (dlopen, stable ABI only), runs WSGI apps on
// a Pool of Python threads that live in C, and hands each response back to Go
// as Events. It is the only package with cgo or any PyObject.
package pyembed

// #cgo CFLAGS: -O2 -Wall -Wno-unused-function
// #cgo LDFLAGS: -ldl
import "C"
