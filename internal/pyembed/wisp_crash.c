/* wisp_crash.c: a fatal signal in app code (a segfault in a C extension,
 * ctypes.string_at(0), abort()) is reported as one clear line (the signal, its
 * address, the request being served) and the Python stack of the crashing
 * thread, as faulthandler shows it, instead of Go's runtime dump; the process
 * then dies by that signal.
 *
 * The handler is installed after Go's, with SA_ONSTACK (Go's threads run
 * signal handlers on their alternate stack, and Go refuses handlers without
 * it). It handles a signal only if it is synchronous (raised by the fault
 * itself, or abort() in this process) and the thread is running a request in
 * its app (wisp_crash_job, set around the app call by wisp_run_job); anything
 * else goes to Go's handler unchanged, so that Go's own faults (nil pointer
 * panics) behave as before. Everything it calls is async-signal-safe:
 * write(2), _Py_DumpTraceback (documented signal safe, as faulthandler uses
 * it), PyGILState_GetThisThreadState (a thread-local read). */
#include <dlfcn.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "wisp_py.h"

__thread wisp_job *wisp_crash_job;
__thread int wisp_crash_loop;

static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
#define NCRASH (sizeof crash_signals / sizeof crash_signals[0])
static struct sigaction crash_prev[NCRASH];
static int crash_fd = 2;
static const char *crash_prefix = "wisp: ";
static void (*dump_traceback)(int, void *);
static void *(*this_tstate)(void);

static void put(const char *s, size_t n) {
	while (n > 0) {
		ssize_t w = write(crash_fd, s, n);
		if (w <= 0) return;
		s += w;
		n -= (size_t)w;
	}
}

static void puts_(const char *s) { put(s, strlen(s)); }

static const char *signame(int sig) {
	switch (sig) {
	case SIGSEGV: return "SIGSEGV";
	case SIGBUS: return "SIGBUS";
	case SIGFPE: return "SIGFPE";
	case SIGILL: return "SIGILL";
	case SIGABRT: return "SIGABRT";
	}
	return "signal";
}

static void puthex(uintptr_t v) {
	char b[2 + 2 * sizeof v + 1];
	int i = sizeof b - 1;
	b[i] = 0;
	do {
		b[--i] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v && i > 2);
	b[--i] = 'x';
	b[--i] = '0';
	puts_(b + i);
}

static uint32_t get32(const char *p) {
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* envget finds an interned key (its index in pyembed's envKeys) in a job's
 * flat environ (see Environ in environ.go). */
static const char *envget(wisp_job *j, int id, uint32_t *len) {
	const char *p = j->env, *end = j->env + j->envlen;
	while (p < end) {
		int k = (unsigned char)*p++;
		if (k == 0) {
			if (end - p < 4) return NULL;
			p += 4 + get32(p);
		}
		if (end - p < 4) return NULL;
		uint32_t n = get32(p);
		p += 4;
		if ((size_t)(end - p) < n) return NULL;
		if (k == id) {
			*len = n;
			return p;
		}
		p += n;
	}
	return NULL;
}

enum { ENV_REQUEST_METHOD = 1, ENV_REQUEST_URI = 12 };

static int crash_index(int sig) {
	for (size_t i = 0; i < NCRASH; i++)
		if (crash_signals[i] == sig) return (int)i;
	return -1;
}

static void crash_handler(int sig, siginfo_t *si, void *uc) {
	int i = crash_index(sig);
	wisp_job *j = wisp_crash_job;
	int sync = si && (si->si_code > 0 || (sig == SIGABRT && si->si_pid == getpid()));
	if (i < 0) return;
	if ((!j && !wisp_crash_loop) || !sync) {
		struct sigaction *p = &crash_prev[i];
		if (p->sa_flags & SA_SIGINFO) {
			if (p->sa_sigaction) p->sa_sigaction(sig, si, uc);
			return;
		}
		if (p->sa_handler == SIG_IGN) return;
		if (p->sa_handler != SIG_DFL) {
			p->sa_handler(sig);
			return;
		}
		signal(sig, SIG_DFL);
		syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig);
		return;
	}
	wisp_crash_job = NULL; /* a fault while reporting goes to the default action */
	wisp_crash_loop = 0;
	signal(sig, SIG_DFL);
	puts_(crash_prefix);
	puts_("fatal signal ");
	puts_(signame(sig));
	if (sig != SIGABRT) {
		puts_(" at address ");
		puthex((uintptr_t)si->si_addr);
	}
	if (j) {
		puts_(" in the app while serving ");
		uint32_t ml = 0, ul = 0;
		const char *m = envget(j, ENV_REQUEST_METHOD, &ml), *u = envget(j, ENV_REQUEST_URI, &ul);
		if (m) put(m, ml < 16 ? ml : 16);
		puts_(" ");
		if (u) put(u, ul < 2000 ? ul : 2000);
		puts_("\n");
	} else {
		/* which task ran is Python's to say, which a signal handler cannot ask:
		 * the stack below shows its coroutines */
		puts_(" in an ASGI app, on the event loop's thread\n");
	}
	void *ts = this_tstate ? this_tstate() : NULL;
	if (dump_traceback && ts) {
		dump_traceback(crash_fd, ts);
	} else {
		puts_("(no Python stack: this Python has no _Py_DumpTraceback)\n");
	}
	/* die by the signal: pending until the handler returns, or raised again
	 * by the faulting instruction */
	syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig);
}

/* wisp_crash_install installs the handler (once; later calls only change
 * where the report goes): fd receives the report, each header line starting
 * with prefix. It needs libpython loaded (wisp_load_lib). */
int wisp_crash_install(int fd, const char *prefix) {
	static int installed;
	crash_fd = fd;
	crash_prefix = prefix;
	if (installed) return 0;
	*(void **)&dump_traceback = dlsym(RTLD_DEFAULT, "_Py_DumpTraceback");
	if (!dump_traceback) *(void **)&dump_traceback = dlsym(RTLD_DEFAULT, "PyUnstable_DumpTraceback");
	*(void **)&this_tstate = dlsym(RTLD_DEFAULT, "PyGILState_GetThisThreadState");
	for (size_t i = 0; i < NCRASH; i++) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_sigaction = crash_handler;
		sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
		sigfillset(&sa.sa_mask);
		if (sigaction(crash_signals[i], &sa, &crash_prev[i]) != 0) return -1;
	}
	installed = 1;
	return 0;
}
