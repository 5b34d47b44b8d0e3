package pyembed

/*
#include <stdlib.h>
#include "wisp_py.h"
*/
import "C"

import "fmt"

// installCrashHandler makes a fatal signal in app code (SIGSEGV, SIGBUS,
// SIGFPE, SIGILL, SIGABRT) write one line naming the signal and the request,
// then the Python stack of the crashing thread, to fd, and end the process by
// that signal without Go's runtime dump (see wisp_crash.c).
func installCrashHandler(fd int, prefix string) error {
	// never freed: the handler may read it until the process ends
	if C.wisp_crash_install(C.int(fd), C.CString(prefix)) != 0 {
		return fmt.Errorf("install the crash handler: sigaction failed")
	}
	return nil
}

// CrashReportsTo sends the crash reports of this process to fd, each header
// line starting with prefix (a pool worker: its status pipe, which the
// supervisor logs). Call after Start.
func CrashReportsTo(fd int, prefix string) error { return installCrashHandler(fd, prefix) }
