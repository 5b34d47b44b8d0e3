/* wisp_py.c: CPython embedding and the WSGI glue, in C for speed.
 *
 * Every Python API is called through the `py` table, filled with dlsym from the
 * libpython chosen at run time. Only stable-ABI symbols are used. Per request, a
 * pool thread (wisp_pool.c) holding the GIL runs wisp_run_job: it builds the
 * environ, calls the app, validates start_response, and hands the status,
 * headers and body chunks to Go as events (wisp_emit); the GIL is released only
 * when a hand-off must wait (a slow client).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <wchar.h>

#include "wisp_py.h"
#include "_cgo_export.h"

#include "wisp_pyapi.h"

struct wisp_pyapi py;

static void *lib;
PyObject *Py_None_;
PyObject *exc_TypeError, *exc_ValueError, *exc_RuntimeError, *exc_OSError, *exc_TimeoutError;

int wisp_load_lib(const char *path, char *err, size_t errlen) {
	lib = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
	if (!lib) {
		snprintf(err, errlen, "%s", dlerror());
		return -1;
	}
#define WISP_SYM(ret, name, args)                                                             \
	*(void **)(&py.name) = dlsym(lib, #name);                                                 \
	if (!py.name) {                                                                           \
		snprintf(err, errlen, "%s: missing stable-ABI symbol %s", path, #name);                \
		return -1;                                                                            \
	}
	WISP_API(WISP_SYM)
	Py_None_ = (PyObject *)dlsym(lib, "_Py_NoneStruct");
	if (!Py_None_) {
		snprintf(err, errlen, "%s: missing stable-ABI symbol _Py_NoneStruct", path);
		return -1;
	}
	return 0;
}

const char *wisp_version(void) { return py.Py_GetVersion(); }

/* ---- process-wide state, set once by wisp_init on the main Python thread ---- */

#define MAX_KEYS 64
#define MAX_APPS 256

static uintptr_t log_handle;
static PyThreadState *main_ts;
static PyObject *boot, *bytesio, *filewrapper, *errstream, *input_from_fd, *format_exc;
static PyObject *keys[MAX_KEYS];
static int nkeys;
static PyObject *k_input;
static struct {
	PyObject *app;
	PyObject *base; /* the environ entries that never change */
} apps[MAX_APPS];
static int napps;
static struct sigaction saved_sig[65];

/* log_text writes to wisp's error log: through the completion queue on a pool
 * thread (which never calls into Go), directly elsewhere. */
static void log_text(int level, const char *s, size_t n) {
	if (wisp_emit_log(level, s, n) == 0) return;
	go_wisp_log(log_handle, level, (char *)s, n);
}

/* Signal dispositions belong to Go. Python and app code (signal.signal at import,
 * faulthandler) may change them: save before, restore after, count changes. */
static void save_signals(void) {
	for (int i = 1; i < 65; i++) {
		if (i == SIGKILL || i == SIGSTOP) continue;
		sigaction(i, NULL, &saved_sig[i]);
	}
}

static int restore_signals(void) {
	int changed = 0;
	for (int i = 1; i < 65; i++) {
		if (i == SIGKILL || i == SIGSTOP) continue;
		struct sigaction cur;
		if (sigaction(i, NULL, &cur) != 0) continue;
		if (cur.sa_handler != saved_sig[i].sa_handler || cur.sa_flags != saved_sig[i].sa_flags) {
			sigaction(i, &saved_sig[i], NULL);
			changed++;
		}
	}
	return changed;
}

static char *xstrndup(const char *s, size_t n) {
	char *d = malloc(n + 1);
	if (!d) return NULL;
	memcpy(d, s, n);
	d[n] = 0;
	return d;
}

/* utf8 returns a malloc'd UTF-8 copy of str(o), never failing. */
static char *utf8(PyObject *o, size_t *len) {
	PyObject *s = (FLAGS(o) & TPF_UNICODE) ? (INCREF(o), o) : py.PyObject_Str(o);
	PyObject *b = s ? py.PyUnicode_AsEncodedString(s, "utf-8", "replace") : NULL;
	char *p = NULL;
	Py_ssize_t n = 0;
	char *out;
	if (b && py.PyBytes_AsStringAndSize(b, &p, &n) == 0) {
		out = xstrndup(p, (size_t)n);
	} else {
		py.PyErr_Clear();
		n = 23;
		out = xstrndup("<unprintable exception>", 23);
	}
	XDECREF(b);
	XDECREF(s);
	if (len) *len = (size_t)n;
	return out;
}

/* fetch_error takes the pending exception and returns its traceback text
 * (malloc'd), or NULL when none is pending. */
static char *fetch_error(size_t *len) {
	PyObject *t = NULL, *v = NULL, *tb = NULL;
	py.PyErr_Fetch(&t, &v, &tb);
	if (!t) return NULL;
	py.PyErr_NormalizeException(&t, &v, &tb);
	char *out = NULL;
	if (format_exc) {
		PyObject *s = py.PyObject_CallFunctionObjArgs(format_exc, t, v ? v : Py_None_, tb ? tb : Py_None_, NULL);
		if (s) {
			out = utf8(s, len);
			DECREF(s);
		} else {
			py.PyErr_Clear();
		}
	}
	if (!out) out = utf8(v ? v : t, len);
	XDECREF(t);
	XDECREF(v);
	XDECREF(tb);
	return out;
}

/* interrupts counts the TimeoutErrors wisp_interrupt_raise has raised; it
 * changes only on request timeouts. async_exc_calls counts every call of
 * PyThreadState_SetAsyncExc, which _wisp.async_exc_calls() reports (tests). */
static unsigned long interrupts, async_exc_calls;

/* mod_async_exc_calls is _wisp.async_exc_calls(): how many times wisp has
 * called PyThreadState_SetAsyncExc. Tests use it to check that requests
 * which were not interrupted leave the eval breaker alone. */
static PyObject *mod_async_exc_calls(PyObject *self, PyObject *args) {
	(void)self;
	(void)args;
	return py.PyLong_FromUnsignedLongLong(__atomic_load_n(&async_exc_calls, __ATOMIC_RELAXED));
}
static PyMethodDef async_exc_calls_def = {"async_exc_calls", mod_async_exc_calls, METH_VARARGS,
					  "async_exc_calls(): how many asynchronous exceptions wisp has raised"};

static PyObject *mod_current_request(PyObject *self, PyObject *args);
static PyMethodDef current_request_def = {"current_request", mod_current_request, METH_VARARGS,
					  "current_request(): \"METHOD URI\" of the request this thread serves, or None"};

static PyObject *mod_log(PyObject *self, PyObject *args) {
	(void)self;
	Py_ssize_t nargs = py.PyTuple_Size(args);
	if (nargs != 2 && nargs != 3) {
		py.PyErr_SetString(exc_TypeError, "log(level, msg[, now]) takes 2 or 3 arguments");
		return NULL;
	}
	long level = py.PyLong_AsLong(py.PyTuple_GetItem(args, 0));
	if (level == -1 && py.PyErr_Occurred()) return NULL;
	int now = nargs == 3 ? py.PyObject_IsTrue(py.PyTuple_GetItem(args, 2)) : 0;
	if (now < 0) return NULL;
	size_t n;
	char *s = utf8(py.PyTuple_GetItem(args, 1), &n);
	uintptr_t job = 0;
	if (now)
		go_wisp_log(log_handle, (int)level, s, n); /* written before the call returns (the process may end next) */
	else if (!wisp_crash_job && (job = wisp_asgi_job()))
		go_wisp_log_job(log_handle, job, (int)level, s, n); /* an ASGI request's task: tagged with its request */
	else
		log_text((int)level, s, n);
	free(s);
	INCREF(Py_None_);
	return Py_None_;
}
static PyMethodDef log_def = {"log", mod_log, METH_VARARGS, "log(level, msg[, now]): write to wisp's error log (now: before returning)"};

static int set_err(char **err, const char *msg) {
	size_t n;
	char *tb = fetch_error(&n);
	if (tb) {
		size_t m = strlen(msg) + n + 3;
		*err = malloc(m);
		snprintf(*err, m, "%s: %s", msg, tb);
		free(tb);
	} else {
		*err = strdup(msg);
	}
	return -1;
}

static PyObject *boot_attr(const char *name) {
	return py.PyObject_GetAttrString(boot, name);
}

int wisp_init(const char *program, uintptr_t lh, const char *src, const char *keybuf, size_t keyslen,
              const char *paths, size_t pathslen, char **err) {
	log_handle = lh;
	/* glibc gives every thread that mallocs an arena of its own, up to 8 per
	 * CPU, and each arena keeps freed memory resident for its thread alone. The
	 * Python threads take turns under the GIL, so they hardly contend for two
	 * shared arenas. MALLOC_ARENA_MAX still overrides. */
	if (!getenv("MALLOC_ARENA_MAX")) mallopt(M_ARENA_MAX, 2);
	save_signals();
	static wchar_t *wprog;
	wprog = py.Py_DecodeLocale(program, NULL);
	if (!wprog) {
		*err = strdup("cannot decode the interpreter path");
		return -1;
	}
	py.Py_SetProgramName(wprog);
	py.Py_InitializeEx(0);
	if (!py.Py_IsInitialized()) {
		*err = strdup("Py_InitializeEx failed");
		return -1;
	}
	exc_TypeError = *(PyObject **)dlsym(lib, "PyExc_TypeError");
	exc_ValueError = *(PyObject **)dlsym(lib, "PyExc_ValueError");
	exc_RuntimeError = *(PyObject **)dlsym(lib, "PyExc_RuntimeError");
	exc_OSError = *(PyObject **)dlsym(lib, "PyExc_OSError");
	exc_TimeoutError = *(PyObject **)dlsym(lib, "PyExc_TimeoutError");

	PyObject *modules = py.PyImport_GetModuleDict();
	PyObject *m = py.PyModule_New("_wisp");
	PyObject *fn = py.PyCFunction_NewEx(&log_def, NULL, NULL);
	PyObject *fa = py.PyCFunction_NewEx(&async_exc_calls_def, NULL, NULL);
	PyObject *fc = py.PyCFunction_NewEx(&current_request_def, NULL, NULL);
	if (!m || !fn || !fa || !fc || py.PyObject_SetAttrString(m, "log", fn) < 0 ||
	    py.PyObject_SetAttrString(m, "async_exc_calls", fa) < 0 ||
	    py.PyObject_SetAttrString(m, "current_request", fc) < 0 || py.PyDict_SetItemString(modules, "_wisp", m) < 0)
		return set_err(err, "create module _wisp");
	DECREF(fn);
	DECREF(fa);
	DECREF(fc);
	DECREF(m);

	boot = py.PyModule_New("_wisp_boot");
	if (!boot) return set_err(err, "create module _wisp_boot");
	PyObject *d = py.PyModule_GetDict(boot);
	py.PyDict_SetItemString(d, "__builtins__", py.PyEval_GetBuiltins());
	py.PyDict_SetItemString(modules, "_wisp_boot", boot);
	PyObject *code = py.Py_CompileString(src, "wisp_boot.py", Py_file_input);
	if (!code) return set_err(err, "compile wisp_boot");
	PyObject *r = py.PyEval_EvalCode(code, d, d);
	DECREF(code);
	if (!r) return set_err(err, "run wisp_boot");
	DECREF(r);
	format_exc = boot_attr("format_exception");
	PyObject *install = boot_attr("install");
	r = install ? py.PyObject_CallObject(install, NULL) : NULL;
	XDECREF(install);
	if (!r) return set_err(err, "wisp_boot.install");
	DECREF(r);

	PyObject *syspath = py.PySys_GetObject("path");
	Py_ssize_t at = 0;
	for (const char *p = paths; p < paths + pathslen; p += strlen(p) + 1) {
		PyObject *s = py.PyUnicode_DecodeFSDefault(p);
		if (!s || !syspath || py.PyList_Insert(syspath, at++, s) < 0) return set_err(err, "sys.path");
		DECREF(s);
	}

	PyObject *io = py.PyImport_ImportModule("io");
	if (!io) return set_err(err, "import io");
	bytesio = py.PyObject_GetAttrString(io, "BytesIO");
	DECREF(io);
	filewrapper = boot_attr("FileWrapper");
	input_from_fd = boot_attr("input_from_fd");
	PyObject *es = boot_attr("ErrorStream");
	errstream = es ? py.PyObject_CallObject(es, NULL) : NULL;
	XDECREF(es);
	if (!bytesio || !filewrapper || !input_from_fd || !errstream || !format_exc)
		return set_err(err, "wisp_boot is missing FileWrapper, ErrorStream, input_from_fd or format_exception");

	nkeys = 1;
	for (const char *p = keybuf; p < keybuf + keyslen; p += strlen(p) + 1) {
		if (nkeys == MAX_KEYS) {
			*err = strdup("too many interned environ keys (raise MAX_KEYS in wisp_py.c)");
			return -1;
		}
		keys[nkeys++] = py.PyUnicode_InternFromString(p);
	}
	k_input = py.PyUnicode_InternFromString("wsgi.input");

	main_ts = py.PyEval_SaveThread();
	int changed = restore_signals();
	if (changed) {
		char msg[128];
		int n = snprintf(msg, sizeof msg, "python start-up changed %d signal handlers; restored them", changed);
		log_text(2, msg, (size_t)n);
	}
	return 0;
}

/* load_error turns the pending exception of a failed load into a one-line
 * message (*err) and the traceback worth logging (*tb, "" if none). */
static void load_error(char **err, char **tb) {
	PyObject *t = NULL, *v = NULL, *x = NULL;
	py.PyErr_Fetch(&t, &v, &x);
	py.PyErr_NormalizeException(&t, &v, &x);
	PyObject *d = boot_attr("describe_load_error");
	PyObject *res = d && t ? py.PyObject_CallFunctionObjArgs(d, t, v ? v : Py_None_, x ? x : Py_None_, NULL) : NULL;
	XDECREF(d);
	if (res && (FLAGS(res) & TPF_TUPLE) && py.PyTuple_Size(res) == 2) {
		*err = utf8(py.PyTuple_GetItem(res, 0), NULL);
		*tb = utf8(py.PyTuple_GetItem(res, 1), NULL);
	} else {
		py.PyErr_Clear();
		*err = v ? utf8(v, NULL) : strdup("unknown error");
		*tb = strdup("");
	}
	XDECREF(res);
	XDECREF(t);
	XDECREF(v);
	XDECREF(x);
}

int wisp_load_app(const char *target, int multithread, int multiprocess, char **hint, char **err, char **tb) {
	int rc = -1;
	save_signals();
	py.PyEval_RestoreThread(main_ts);
	if (napps >= MAX_APPS) {
		*err = strdup("too many apps");
		goto out;
	}
	PyObject *load = boot_attr("load");
	PyObject *t = py.PyUnicode_FromString(target);
	PyObject *res = (load && t) ? py.PyObject_CallFunctionObjArgs(load, t, NULL) : NULL;
	XDECREF(load);
	XDECREF(t);
	if (!res) {
		load_error(err, tb);
		goto out;
	}
	if (!(FLAGS(res) & TPF_TUPLE) || py.PyTuple_Size(res) != 2) {
		DECREF(res);
		*err = strdup("wisp_boot.load must return (app, hint)");
		goto out;
	}
	PyObject *app = py.PyTuple_GetItem(res, 0);
	*hint = utf8(py.PyTuple_GetItem(res, 1), NULL);
	INCREF(app);
	DECREF(res);

	PyObject *base = py.PyDict_New();
	PyObject *ver = py.PyTuple_New(2);
	py.PyTuple_SetItem(ver, 0, py.PyLong_FromLong(1));
	py.PyTuple_SetItem(ver, 1, py.PyLong_FromLong(0));
	PyObject *scheme = py.PyUnicode_FromString("http");
	PyObject *mt = py.PyBool_FromLong(multithread), *mp = py.PyBool_FromLong(multiprocess);
	PyObject *f = py.PyBool_FromLong(0), *tr = py.PyBool_FromLong(1);
	py.PyDict_SetItemString(base, "wsgi.version", ver);
	py.PyDict_SetItemString(base, "wsgi.url_scheme", scheme);
	py.PyDict_SetItemString(base, "wsgi.multithread", mt);
	py.PyDict_SetItemString(base, "wsgi.multiprocess", mp);
	py.PyDict_SetItemString(base, "wsgi.run_once", f);
	py.PyDict_SetItemString(base, "wsgi.input_terminated", tr);
	py.PyDict_SetItemString(base, "wsgi.errors", errstream);
	py.PyDict_SetItemString(base, "wsgi.file_wrapper", filewrapper);
	DECREF(ver);
	DECREF(scheme);
	DECREF(mt);
	DECREF(mp);
	DECREF(f);
	DECREF(tr);
	apps[napps].app = app;
	apps[napps].base = base;
	rc = napps++;
out:
	main_ts = py.PyEval_SaveThread();
	int changed = restore_signals();
	if (changed) {
		char msg[160];
		int n = snprintf(msg, sizeof msg,
		                 "app %s changed %d signal handlers at import; restored them (wisp owns signals)", target, changed);
		log_text(2, msg, (size_t)n);
	}
	return rc;
}

/* wisp_set_multithread sets wsgi.multithread of an app (main thread only). */
int wisp_set_multithread(int app, int on) {
	if (app < 0 || app >= napps) return -1;
	py.PyEval_RestoreThread(main_ts);
	PyObject *b = py.PyBool_FromLong(on);
	int rc = py.PyDict_SetItemString(apps[app].base, "wsgi.multithread", b);
	DECREF(b);
	if (rc < 0) py.PyErr_Clear();
	main_ts = py.PyEval_SaveThread();
	return rc;
}

/* gc_count is the number of collections Python's garbage collector made,
 * all generations together (_wisp_boot.gc_collections), or -1; the caller
 * holds the GIL. */
static long long gc_count(void) {
	long long n = -1;
	PyObject *f = boot_attr("gc_collections");
	PyObject *r = f ? py.PyObject_CallObject(f, NULL) : NULL;
	if (r) n = py.PyLong_AsLongLong(r);
	if (!r || n == -1) py.PyErr_Clear();
	XDECREF(f);
	XDECREF(r);
	return n;
}

/* call_method calls obj.name() and drops the result and any exception. */
static void call_method(PyObject *obj, const char *name) {
	PyObject *f = obj ? py.PyObject_GetAttrString(obj, name) : NULL;
	PyObject *r = f ? py.PyObject_CallObject(f, NULL) : NULL;
	XDECREF(f);
	XDECREF(r);
	if (!r) py.PyErr_Clear();
}

int wisp_finalize(void) {
	py.PyEval_RestoreThread(main_ts);
	/* partial lines written without a newline are not lost: wsgi.errors
	 * keeps one per thread, sys.stdout and sys.stderr buffer theirs */
	call_method(errstream, "flush_all");
	call_method(py.PySys_GetObject("stdout"), "flush");
	call_method(py.PySys_GetObject("stderr"), "flush");
	return py.Py_FinalizeEx();
}

/* ---- worker threads ---- */

/* wisp_req is one request as wisp_run_job runs it. */
typedef struct wisp_req {
	int app;
	const char *env;
	size_t envlen;
	const char *body;
	size_t bodylen;
	int bodyfd;
	char *err;
	size_t errlen;
} wisp_req;

/* rctx is the state of the request a worker thread is running. */
typedef struct rctx {
	wisp_job *job;          /* the request in flight, NULL between requests */
	unsigned long long gen; /* identifies the request; start_response carries it */
	int started;            /* start_response called */
	int sent;               /* headers count as sent (PEP 3333): a body byte was produced */
	int handed;             /* headers handed to Go */
	int gone;               /* the client went away */
	char *bbuf;             /* body gathered since the last hand-off to Go */
	size_t blen;
	unsigned long seen;     /* the interrupts count this thread last absorbed */
	char *hbuf;             /* "status\0name\0value\0..." latin-1 */
	size_t hlen, hcap;
	char *tmp;
	size_t tlen, tcap;
} rctx;

#define BODY_BUF (64 * 1024)

static __thread rctx tctx;
static __thread PyThreadState *tts;
static __thread int tgil;
static unsigned long long thread_seq;

static __thread int tattached;

/* wisp_acquire takes the GIL for the calling OS thread, creating its Python
 * thread state on first use; the state then stays with the thread for life. */
void wisp_acquire(void) {
	if (tattached) {
		py.PyEval_RestoreThread(tts);
		return;
	}
	tgil = py.PyGILState_Ensure();
	tctx.gen = (__atomic_add_fetch(&thread_seq, 1, __ATOMIC_RELAXED)) << 40;
	tctx.bbuf = malloc(BODY_BUF);
	tattached = 1;
}

void wisp_release(void) { tts = py.PyEval_SaveThread(); }

/* wisp_thread_detach destroys the calling thread's Python thread state, if it has one. */
void wisp_thread_detach(void) {
	if (!tattached) return;
	tattached = 0;
	py.PyEval_RestoreThread(tts);
	py.PyGILState_Release(tgil);
	free(tctx.hbuf);
	free(tctx.tmp);
	free(tctx.bbuf);
	memset(&tctx, 0, sizeof tctx);
}

static int tput(rctx *c, const char *p, size_t n) {
	if (c->tlen + n + 1 > c->tcap) {
		size_t cap = c->tcap ? c->tcap : 512;
		while (cap < c->tlen + n + 1) cap *= 2;
		char *b = realloc(c->tmp, cap);
		if (!b) return -1;
		c->tmp = b;
		c->tcap = cap;
	}
	memcpy(c->tmp + c->tlen, p, n);
	c->tlen += n;
	c->tmp[c->tlen++] = 0;
	return 0;
}

static int is_tchar(unsigned char ch) {
	if (ch >= '0' && ch <= '9') return 1;
	if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z') return 1;
	return strchr("!#$%&'*+-.^_`|~", ch) != NULL && ch != 0;
}

/* latin1 encodes a str (TypeError for anything else) and returns the bytes object. */
static PyObject *latin1(PyObject *o, const char *what) {
	if (!(FLAGS(o) & TPF_UNICODE)) {
		py.PyErr_Format(exc_TypeError, "%s must be str", what);
		return NULL;
	}
	return py.PyUnicode_AsLatin1String(o);
}

/* encode_headers validates the status and header list per PEP 3333 and RFC 9110
 * and encodes them into c->tmp. */
/* hop_names holds the hop-by-hop header names, each ended by a NUL, then an
 * empty one: Go's list (package httphdr), given by wisp_set_hop_by_hop before
 * wisp_init and never changed after. */
static char hop_names[512];

void wisp_set_hop_by_hop(const char *names, size_t len) {
	if (len > sizeof hop_names - 2) len = sizeof hop_names - 2; /* whole names only: the list is far shorter */
	memcpy(hop_names, names, len);
	hop_names[len] = hop_names[len + 1] = 0;
}

/* hop_by_hop reports whether header name p[:n] is one a WSGI app must not
 * send: PEP 3333 calls it a fatal error. */
static int hop_by_hop(const char *p, size_t n) {
	for (const char *s = hop_names; *s; s += strlen(s) + 1)
		if (strlen(s) == n && strncasecmp(s, p, n) == 0) return 1;
	return 0;
}

static int encode_headers(rctx *c, PyObject *status, PyObject *headers) {
	c->tlen = 0;
	PyObject *b = latin1(status, "status");
	if (!b) return -1;
	char *p;
	Py_ssize_t n;
	py.PyBytes_AsStringAndSize(b, &p, &n);
	int ok = n >= 3 && p[0] >= '1' && p[0] <= '9' && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' && p[2] <= '9' &&
	         (n == 3 || p[3] == ' ');
	for (Py_ssize_t i = 4; ok && i < n; i++)
		if (((unsigned char)p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f) ok = 0;
	if (!ok) {
		py.PyErr_Format(exc_ValueError, "invalid status %R: want '<3-digit code> <reason>'", status);
		DECREF(b);
		return -1;
	}
	tput(c, p, (size_t)n);
	DECREF(b);
	if (!(FLAGS(headers) & TPF_LIST)) {
		py.PyErr_Format(exc_TypeError, "response_headers must be a list, not %R", headers);
		return -1;
	}
	Py_ssize_t nh = py.PyList_Size(headers);
	for (Py_ssize_t i = 0; i < nh; i++) {
		PyObject *h = py.PyList_GetItem(headers, i);
		if (!(FLAGS(h) & TPF_TUPLE) || py.PyTuple_Size(h) != 2) {
			py.PyErr_Format(exc_TypeError, "response header %R must be a (name, value) tuple", h);
			return -1;
		}
		for (int part = 0; part < 2; part++) {
			PyObject *e = latin1(py.PyTuple_GetItem(h, part), part ? "header value" : "header name");
			if (!e) return -1;
			py.PyBytes_AsStringAndSize(e, &p, &n);
			ok = part || n > 0;
			for (Py_ssize_t j = 0; ok && j < n; j++) {
				unsigned char ch = (unsigned char)p[j];
				ok = part ? !((ch < 0x20 && ch != '\t') || ch == 0x7f) : is_tchar(ch);
			}
			if (!ok) {
				py.PyErr_Format(exc_ValueError, "invalid response header %s in %R", part ? "value" : "name", h);
				DECREF(e);
				return -1;
			}
			if (!part && hop_by_hop(p, (size_t)n)) {
				py.PyErr_Format(exc_ValueError,
						"hop-by-hop header %R is not allowed from a WSGI app (PEP 3333): the server "
						"manages the connection and the framing",
						py.PyTuple_GetItem(h, 0));
				DECREF(e);
				return -1;
			}
			tput(c, p, (size_t)n);
			DECREF(e);
		}
	}
	/* swap: c->hbuf holds the accepted headers */
	char *tb = c->hbuf;
	size_t tc = c->hcap;
	c->hbuf = c->tmp;
	c->hcap = c->tcap;
	c->hlen = c->tlen;
	c->tmp = tb;
	c->tcap = tc;
	c->tlen = 0;
	return 0;
}

static rctx *ctx_of(PyObject *self) {
	unsigned long long g = py.PyLong_AsUnsignedLongLong(self);
	if (!tctx.job || g != tctx.gen) {
		py.PyErr_SetString(exc_RuntimeError, "start_response/write used outside of its request or thread");
		return NULL;
	}
	return &tctx;
}

/* write_body passes one body block to Go. Blocks of a list or tuple (all made
 * already, so nothing waits on them) gather in c->bbuf while they fit; any
 * other block goes out at once with what was gathered (PEP 3333: a block must
 * not wait while the app makes the next one). The headers go with the first
 * hand-off. The GIL is released only if a hand-off would block. Returns -1
 * when the client is gone. */
static int write_body(rctx *c, char *p, size_t n, int gather) {
	if (c->gone) return -1;
	c->sent = 1;
	if (gather && c->blen + n <= BODY_BUF) {
		memcpy(c->bbuf + c->blen, p, n);
		c->blen += n;
		return 0;
	}
	char *h = c->handed ? NULL : c->hbuf;
	size_t hl = c->handed ? 0 : c->hlen;
	if (wisp_emit(c->job, h, hl, c->bbuf, c->blen, p, n, -1, 0) < 0) {
		c->gone = 1;
		return -1;
	}
	c->handed = 1;
	c->blen = 0;
	return 0;
}

static PyObject *wsgi_write(PyObject *self, PyObject *data) {
	rctx *c = ctx_of(self);
	if (!c) return NULL;
	if (!c->started) {
		py.PyErr_SetString(exc_RuntimeError, "write() called before start_response()");
		return NULL;
	}
	if (!(FLAGS(data) & TPF_BYTES)) {
		py.PyErr_Format(exc_TypeError, "write() argument must be bytes, not %R", data);
		return NULL;
	}
	char *p;
	Py_ssize_t n;
	py.PyBytes_AsStringAndSize(data, &p, &n);
	if (n > 0 && write_body(c, p, (size_t)n, 0) < 0) {
		py.PyErr_SetString(exc_OSError, "client disconnected");
		return NULL;
	}
	INCREF(Py_None_);
	return Py_None_;
}
static PyMethodDef write_def = {"write", wsgi_write, METH_O, "WSGI write() callable"};

/* start_response is PEP 3333's start_response(status, response_headers,
 * exc_info=None); exc_info may be given by keyword, as the PEP names it. */
static PyObject *start_response(PyObject *self, PyObject *args, PyObject *kw) {
	rctx *c = ctx_of(self);
	if (!c) return NULL;
	Py_ssize_t na = py.PyTuple_Size(args);
	PyObject *kexc = NULL;
	if (kw && py.PyDict_Size(kw) > 0) {
		kexc = py.PyDict_GetItemString(kw, "exc_info"); /* borrowed */
		if (!kexc || py.PyDict_Size(kw) != 1) {
			py.PyErr_SetString(exc_TypeError, "start_response() takes only exc_info as a keyword argument");
			return NULL;
		}
		if (na == 3) {
			py.PyErr_SetString(exc_TypeError, "start_response() got exc_info both by position and by keyword");
			return NULL;
		}
	}
	if (na < 2 || na > 3) {
		py.PyErr_SetString(exc_TypeError, "start_response() takes 2 or 3 arguments");
		return NULL;
	}
	PyObject *exc = na == 3 ? py.PyTuple_GetItem(args, 2) : kexc ? kexc : Py_None_;
	if (exc != Py_None_) {
		if (!(FLAGS(exc) & TPF_TUPLE) || py.PyTuple_Size(exc) != 3) {
			py.PyErr_SetString(exc_TypeError, "exc_info must be a 3-tuple (type, value, traceback)");
			return NULL;
		}
		PyObject *t = py.PyTuple_GetItem(exc, 0), *v = py.PyTuple_GetItem(exc, 1);
		if (t == Py_None_) {
			exc = Py_None_; /* sys.exc_info() outside an except block: no exception */
		} else if (!(FLAGS(t) & TPF_TYPE) || !(py.PyType_GetFlags((PyTypeObject *)t) & TPF_BASE_EXC) ||
		           (v != Py_None_ && !(FLAGS(v) & TPF_BASE_EXC))) {
			py.PyErr_SetString(exc_TypeError, "exc_info must hold an exception type and instance (sys.exc_info())");
			return NULL;
		}
	}
	if (exc != Py_None_) {
		if (c->sent) {
			/* PEP 3333: headers already went out, re-raise the app's exception */
			PyObject *t = py.PyTuple_GetItem(exc, 0), *v = py.PyTuple_GetItem(exc, 1), *tb = py.PyTuple_GetItem(exc, 2);
			INCREF(t);
			INCREF(v);
			INCREF(tb);
			py.PyErr_Restore(t, v == Py_None_ ? NULL : v, tb == Py_None_ ? NULL : tb);
			if (v == Py_None_) DECREF(v);
			if (tb == Py_None_) DECREF(tb);
			return NULL;
		}
	} else if (c->started) {
		py.PyErr_SetString(exc_RuntimeError, "start_response() called again without exc_info");
		return NULL;
	}
	if (encode_headers(c, py.PyTuple_GetItem(args, 0), py.PyTuple_GetItem(args, 1)) < 0) return NULL;
	c->started = 1;
	return py.PyCFunction_NewEx(&write_def, self, NULL);
}
static PyMethodDef sr_def = {"start_response", (PyCFunction)(void (*)(void))start_response, METH_VARARGS | METH_KEYWORDS,
			      "WSGI start_response(status, response_headers, exc_info=None)"};

static uint32_t rd32(const char *p) {
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* env_value finds interned key id in a flat environ; NULL if absent. */
static const char *env_value(const char *p, const char *end, unsigned want, uint32_t *len) {
	while (p < end) {
		unsigned id = (unsigned char)*p++;
		if (id == 0 || id >= (unsigned)nkeys) p += 4 + rd32(p);
		uint32_t vl = rd32(p);
		if (id == want) {
			*len = vl;
			return p + 4;
		}
		p += 4 + vl;
	}
	return NULL;
}

/* mod_current_request is _wisp.current_request(): "METHOD URI" of the
 * request the calling thread runs (for a log line before os._exit), or None.
 * Key ids 1 and 12 are REQUEST_METHOD and REQUEST_URI (envKeys in
 * environ.go). */
static PyObject *mod_current_request(PyObject *self, PyObject *args) {
	(void)self;
	(void)args;
	wisp_job *j = tctx.job;
	if (!j) {
		INCREF(Py_None_);
		return Py_None_;
	}
	uint32_t ml = 0, ul = 0;
	const char *m = env_value(j->env, j->env + j->envlen, 1, &ml);
	const char *u = env_value(j->env, j->env + j->envlen, 12, &ul);
	char buf[512];
	int n = snprintf(buf, sizeof buf, "%.*s %.*s", m ? (int)(ml < 32 ? ml : 32) : 1, m ? m : "-",
			 u ? (int)(ul < 400 ? ul : 400) : 1, u ? u : "-");
	return py.PyUnicode_DecodeLatin1(buf, n < (int)sizeof buf ? n : (int)sizeof buf - 1, NULL);
}

static PyObject *build_environ(wisp_req *r) {
	PyObject *env = py.PyDict_Copy(apps[r->app].base);
	if (!env) return NULL;
	const char *p = r->env, *end = r->env + r->envlen;
	while (p < end) {
		unsigned id = (unsigned char)*p++;
		PyObject *k;
		if (id == 0 || id >= (unsigned)nkeys) {
			uint32_t kl = rd32(p);
			k = py.PyUnicode_DecodeLatin1(p + 4, kl, NULL);
			p += 4 + kl;
		} else {
			k = keys[id];
			INCREF(k);
		}
		uint32_t vl = rd32(p);
		PyObject *v = py.PyUnicode_DecodeLatin1(p + 4, vl, NULL);
		p += 4 + vl;
		if (!k || !v || py.PyDict_SetItem(env, k, v) < 0) {
			XDECREF(k);
			XDECREF(v);
			DECREF(env);
			return NULL;
		}
		DECREF(k);
		DECREF(v);
	}
	PyObject *in;
	if (r->bodyfd >= 0) {
		PyObject *fd = py.PyLong_FromLong(r->bodyfd);
		in = py.PyObject_CallFunctionObjArgs(input_from_fd, fd, NULL);
		DECREF(fd);
	} else if (r->bodylen > 0) {
		PyObject *b = py.PyBytes_FromStringAndSize(r->body, (Py_ssize_t)r->bodylen);
		in = b ? py.PyObject_CallFunctionObjArgs(bytesio, b, NULL) : NULL;
		XDECREF(b);
	} else {
		in = py.PyObject_CallObject(bytesio, NULL);
	}
	if (!in || py.PyDict_SetItem(env, k_input, in) < 0) {
		XDECREF(in);
		DECREF(env);
		return NULL;
	}
	DECREF(in);
	return env;
}

/* fail records the pending exception and returns the result code for it. */
static int fail(rctx *c, wisp_req *r) {
	if (c->gone) {
		py.PyErr_Clear();
		return WISP_GONE;
	}
	r->err = fetch_error(&r->errlen);
	return c->sent ? WISP_ERR_LATE : WISP_ERR_EARLY;
}

/* try_sendfile serves a wsgi.file_wrapper over a regular file by handing its fd
 * to Go (sendfile): only a plain file, whose bytes are the fd's (the
 * wrapper's sendfile_source), not a gzip.GzipFile that also has a fileno().
 * Returns 1 if served, 0 to fall back to iteration, -1 on error. */
static int try_sendfile(rctx *c, PyObject *result) {
	PyObject *src = py.PyObject_GetAttrString(result, "sendfile_source");
	PyObject *fl = src ? py.PyObject_CallObject(src, NULL) : NULL;
	XDECREF(src);
	if (!fl || fl == Py_None_) {
		py.PyErr_Clear();
		XDECREF(fl);
		return 0;
	}
	PyObject *fno = py.PyObject_GetAttrString(fl, "fileno");
	PyObject *fdo = fno ? py.PyObject_CallObject(fno, NULL) : NULL;
	XDECREF(fno);
	long fd = fdo ? py.PyLong_AsLong(fdo) : -1;
	XDECREF(fdo);
	struct stat st;
	if (fd < 0 || fstat((int)fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		py.PyErr_Clear();
		DECREF(fl);
		return 0;
	}
	PyObject *tell = py.PyObject_GetAttrString(fl, "tell");
	PyObject *pos = tell ? py.PyObject_CallObject(tell, NULL) : NULL;
	XDECREF(tell);
	long long off = pos ? py.PyLong_AsLongLong(pos) : -1;
	XDECREF(pos);
	DECREF(fl);
	if (off < 0) {
		py.PyErr_Clear();
		off = lseek((int)fd, 0, SEEK_CUR);
		if (off < 0) return 0;
	}
	if (!c->started) {
		py.PyErr_SetString(exc_RuntimeError, "application returned a file_wrapper without calling start_response()");
		return -1;
	}
	c->sent = 1;
	long long len = st.st_size > off ? st.st_size - off : 0;
	char *h = c->handed ? NULL : c->hbuf;
	size_t hl = c->handed ? 0 : c->hlen;
	if (c->gone) return 1;
	/* a description of its own, so that the app may close or move fd at once */
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", (int)fd);
	int own = open(path, O_RDONLY | O_CLOEXEC);
	if (own < 0 || lseek(own, off, SEEK_SET) != off) {
		int e = errno;
		if (own >= 0) close(own);
		py.PyErr_Format(exc_OSError, "wisp cannot send the file_wrapper's file: %s", strerror(e));
		return -1;
	}
	if (wisp_emit(c->job, h, hl, c->bbuf, c->blen, NULL, 0, own, len) < 0) {
		close(own);
		c->gone = 1;
	} else {
		c->handed = 1;
		c->blen = 0;
	}
	return 1;
}

static int respond(rctx *c, wisp_req *r, PyObject *result) {
	int isfw = py.PyObject_IsInstance(result, filewrapper);
	if (isfw < 0) return fail(c, r);
	if (isfw == 1) {
		int s = try_sendfile(c, result);
		if (s < 0) return fail(c, r);
		if (s > 0) return c->gone ? WISP_GONE : WISP_OK;
	}
	int gather = (FLAGS(result) & (TPF_LIST | TPF_TUPLE)) != 0;
	PyObject *it = py.PyObject_GetIter(result);
	if (!it) return fail(c, r);
	PyObject *item;
	while ((item = py.PyIter_Next(it))) {
		if (!(FLAGS(item) & TPF_BYTES)) {
			py.PyErr_Format(exc_TypeError, "response body items must be bytes, not %R", item);
			DECREF(item);
			break;
		}
		char *p;
		Py_ssize_t n;
		py.PyBytes_AsStringAndSize(item, &p, &n);
		if (n > 0) {
			if (!c->started) {
				py.PyErr_SetString(exc_RuntimeError, "application yielded body data before calling start_response()");
				DECREF(item);
				break;
			}
			if (write_body(c, p, (size_t)n, gather) < 0) {
				DECREF(item);
				DECREF(it);
				return WISP_GONE;
			}
		}
		DECREF(item);
	}
	DECREF(it);
	if (py.PyErr_Occurred()) return fail(c, r);
	if (!c->started) {
		py.PyErr_SetString(exc_RuntimeError, "application returned without calling start_response()");
		return fail(c, r);
	}
	return c->gone ? WISP_GONE : WISP_OK;
}

/* close_result calls result.close() (PEP 3333: always, whatever happened). */
static void close_result(PyObject *result, wisp_req *r, int *rc) {
	PyObject *cl = py.PyObject_GetAttrString(result, "close");
	if (!cl) {
		py.PyErr_Clear();
		return;
	}
	PyObject *x = py.PyObject_CallObject(cl, NULL);
	DECREF(cl);
	if (x) {
		DECREF(x);
		return;
	}
	size_t n;
	char *tb = fetch_error(&n);
	if (*rc == WISP_OK || *rc == WISP_GONE) {
		const char pre[] = "exception in the response's close(): ";
		char *m = malloc(sizeof pre + n);
		memcpy(m, pre, sizeof pre - 1);
		memcpy(m + sizeof pre - 1, tb, n);
		log_text(3, m, sizeof pre - 1 + n);
		free(m);
		free(tb);
	} else if (!r->err) {
		r->err = tb;
		r->errlen = n;
	} else {
		free(tb);
	}
}

/* absorb_timeout lets the calling thread take a TimeoutError that was raised
 * at it after its app had returned, by running a little bytecode that
 * catches it. Clearing it with PyThreadState_SetAsyncExc(ident, NULL) instead
 * would leave CPython's eval breaker set for good on 3.9-3.12 (it is cleared
 * only when an exception is delivered), and all Python code afterwards would
 * take the eval loop's slow path. */
static void absorb_timeout(void) {
	PyObject *f = boot_attr("absorb_timeout");
	PyObject *r = f ? py.PyObject_CallObject(f, NULL) : NULL;
	XDECREF(f);
	XDECREF(r);
	/* the exception may arrive at the function's entry, before its try */
	if (!r) py.PyErr_Clear();
}

/* wisp_run_job runs one request on the calling pool thread, which holds the
 * GIL, and ends it with its done event. The environ is a flat, pointer-free
 * buffer: entries of [u8 key id][u32 len][value]; key id 0 is followed by [u32
 * len][key name] before the value. */
void wisp_run_job(wisp_job *j) {
	wisp_req req = {j->app, j->env, j->envlen, j->body, j->bodylen, j->bodyfd, NULL, 0};
	wisp_req *r = &req;
	rctx *c = &tctx;
	__atomic_store_n(&j->ident, py.PyThread_get_thread_ident(), __ATOMIC_RELEASE);
	c->job = j;
	wisp_crash_job = j;
	c->gen++;
	c->started = c->sent = c->handed = c->gone = 0;
	c->hlen = 0;
	c->blen = 0;
	int rc;
	if (__atomic_load_n(&j->aborted, __ATOMIC_ACQUIRE)) {
		rc = WISP_GONE;
	} else {
		__atomic_store_n(&j->running, 1, __ATOMIC_RELEASE);
		PyObject *env = build_environ(r);
		PyObject *self = py.PyLong_FromUnsignedLongLong(c->gen);
		PyObject *sr = self ? py.PyCFunction_NewEx(&sr_def, self, NULL) : NULL;
		XDECREF(self);
		PyObject *result = NULL;
		if (env && sr) result = py.PyObject_CallFunctionObjArgs(apps[r->app].app, env, sr, NULL);
		XDECREF(env);
		XDECREF(sr);
		if (!result) {
			rc = fail(c, r);
		} else {
			rc = respond(c, r, result);
			close_result(result, r, &rc);
			DECREF(result);
		}
		__atomic_store_n(&j->running, 0, __ATOMIC_RELEASE);
		/* a TimeoutError raised in this thread that arrived too late (the app
		 * had returned) must not hit the thread's next request. Interrupts
		 * are raised holding the GIL and only while running is set, so any
		 * raised at this thread is counted by now. */
		unsigned long n = __atomic_load_n(&interrupts, __ATOMIC_ACQUIRE);
		if (n != c->seen) {
			c->seen = n;
			absorb_timeout();
		}
	}
	c->job = NULL;
	wisp_crash_job = NULL;
	c->gen++;
	const char *hdr = (c->handed || !c->started) ? NULL : c->hbuf;
	wisp_emit_done(j, hdr, hdr ? c->hlen : 0, c->bbuf, c->blen, rc, r->err, r->errlen, NULL);
}

/* wisp_beat: see wisp_py.h. The calling thread keeps its thread state
 * (wisp_acquire), so a beat costs a GIL hand-off, and the count when asked. */
long long wisp_beat(int count) {
	wisp_acquire();
	long long n = count ? gc_count() : -1;
	wisp_release();
	return n;
}

/* wisp_interrupt_begin takes the GIL for the calling thread and returns the
 * Python stack of thread ident (malloc'd). The caller decides, holding the GIL,
 * whether to raise (wisp_interrupt_raise), then calls wisp_release. */
char *wisp_interrupt_begin(unsigned long ident) {
	wisp_acquire();
	PyObject *f = boot_attr("thread_stack");
	PyObject *id = py.PyLong_FromUnsignedLongLong(ident);
	PyObject *s = (f && id) ? py.PyObject_CallFunctionObjArgs(f, id, NULL) : NULL;
	char *stack = s ? utf8(s, NULL) : strdup("(no stack)");
	if (!s) py.PyErr_Clear();
	XDECREF(s);
	XDECREF(id);
	XDECREF(f);
	return stack;
}

/* wisp_interrupt_raise raises TimeoutError in thread ident (seen at its next
 * bytecode); the caller holds the GIL. Returns the number of threads hit. */
int wisp_interrupt_raise(unsigned long ident) {
	__atomic_add_fetch(&async_exc_calls, 1, __ATOMIC_RELAXED);
	int hit = py.PyThreadState_SetAsyncExc(ident, exc_TimeoutError);
	if (hit > 0) __atomic_add_fetch(&interrupts, 1, __ATOMIC_RELEASE);
	return hit;
}

/* ---- for wisp_asgi.c ---- */

/* wisp_app_object is the app loaded as id (borrowed), or NULL. */
void *wisp_app_object(int id) { return id >= 0 && id < napps ? apps[id].app : NULL; }

/* wisp_main_acquire and wisp_main_release take and drop the GIL on the main
 * Python thread (a call that LoadApp's goroutine makes). */
void wisp_main_acquire(void) { py.PyEval_RestoreThread(main_ts); }
void wisp_main_release(void) { main_ts = py.PyEval_SaveThread(); }
