//go:build handoffbench

/* handoff.c: see handoff.h. One run (one mechanism, one loop) per process:
 * main.go starts a child process per measurement, so the state here is
 * static. */
#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "handoff.h"
#include "_cgo_export.h"

typedef struct msg {
	struct msg *next;
	long long id;
} msg;

static struct {
	int mech;
	/* Go -> loop */
	pthread_mutex_t mu;
	msg *head, *tail;
	int armed;
	int rfd, wfd; /* the loop reads rfd; Go writes wfd (the same eventfd, or a pipe's ends) */
	PyObject *target, *handler; /* c: loop.call_soon_threadsafe and the per-message function */
	int ready;
	pthread_t loop_thread;
	int loop_started;
	/* loop -> Go, as wisp_pool.c's completion queue */
	pthread_mutex_t emu;
	msg *ehead, *etail;
	int earmed;
	int efd;
	uintptr_t handle; /* Go's, for the callback return path; 0: the completion queue */
	hb_counts n;
} hb = {.mu = PTHREAD_MUTEX_INITIALIZER, .emu = PTHREAD_MUTEX_INITIALIZER, .rfd = -1, .wfd = -1, .efd = -1};

static void count(unsigned long long *c) { __atomic_add_fetch(c, 1, __ATOMIC_RELAXED); }

int hb_init(void) {
	Py_InitializeEx(0);
	if (!Py_IsInitialized()) {
		fprintf(stderr, "handoff: python did not initialize\n");
		return -1;
	}
	/* threading takes the importing thread for the main one: import it on
	 * the thread that initialized Python, or uvloop's run_forever on the
	 * loop's thread calls signal.set_wakeup_fd, which only the main thread may */
	PyObject *t = PyImport_ImportModule("threading");
	if (!t) {
		PyErr_Print();
		return -1;
	}
	Py_DECREF(t);
	PyEval_SaveThread(); /* the main thread's state stays saved: loop and Go threads take the GIL */
	return 0;
}

int hb_setup(int mech, uintptr_t handle) {
	hb.mech = mech;
	hb.handle = handle;
	hb.armed = 1;
	hb.earmed = 1;
	hb.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (hb.efd < 0) return -1;
	switch (mech) {
	case HB_ARMED:
	case HB_ARMEDC:
	case HB_EACH:
		hb.rfd = hb.wfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		break;
	case HB_SEM:
		hb.rfd = hb.wfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC | EFD_SEMAPHORE);
		break;
	case HB_PIPE: {
		int p[2];
		if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) return -1;
		hb.rfd = p[0];
		hb.wfd = p[1];
		break;
	}
	default:
		break;
	}
	if ((mech == HB_ARMED || mech == HB_ARMEDC || mech == HB_EACH || mech == HB_SEM || mech == HB_PIPE) && hb.rfd < 0) return -1;
	return hb.efd;
}

void hb_teardown(void) {
	if (hb.rfd >= 0) close(hb.rfd);
	if (hb.wfd >= 0 && hb.wfd != hb.rfd) close(hb.wfd);
	close(hb.efd);
	hb.rfd = hb.wfd = hb.efd = -1;
}

void hb_get_counts(hb_counts *c) {
	c->req_writes = __atomic_load_n(&hb.n.req_writes, __ATOMIC_RELAXED);
	c->loop_wakes = __atomic_load_n(&hb.n.loop_wakes, __ATOMIC_RELAXED);
	c->loop_empty = __atomic_load_n(&hb.n.loop_empty, __ATOMIC_RELAXED);
	c->resp_writes = __atomic_load_n(&hb.n.resp_writes, __ATOMIC_RELAXED);
	c->loop_tid = __atomic_load_n(&hb.n.loop_tid, __ATOMIC_RELAXED);
}

long long hb_loop_cpu(void) {
	clockid_t c;
	struct timespec ts;
	if (!__atomic_load_n(&hb.loop_started, __ATOMIC_ACQUIRE) || pthread_getcpuclockid(hb.loop_thread, &c) != 0 ||
	    clock_gettime(c, &ts) != 0)
		return -1;
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int hb_ready(void) { return __atomic_load_n(&hb.ready, __ATOMIC_ACQUIRE); }

/* ---- Go -> loop ---- */

static void notify(int fd, int pipe) {
	uint64_t one = 1;
	if (pipe) {
		while (write(fd, "x", 1) < 0 && errno == EINTR) {
		}
		return;
	}
	while (write(fd, &one, sizeof one) < 0 && errno == EINTR) {
	}
}

/* post_queue is wisp_asgi.c's post: append under the mutex, write the fd
 * when the loop is armed (a, d) or always (b, b1), never (e). */
static int post_queue(long long id) {
	msg *m = malloc(sizeof *m);
	if (!m) return -1;
	m->id = id;
	m->next = NULL;
	pthread_mutex_lock(&hb.mu);
	if (hb.tail)
		hb.tail->next = m;
	else
		hb.head = m;
	hb.tail = m;
	int wake = hb.armed;
	hb.armed = 0;
	pthread_mutex_unlock(&hb.mu);
	if (hb.mech == HB_EACH || hb.mech == HB_SEM) wake = 1;
	if (hb.mech == HB_POLL) wake = 0;
	if (wake) {
		count(&hb.n.req_writes);
		notify(hb.wfd, hb.mech == HB_PIPE);
	}
	return 0;
}

/* tattached and tts keep a Go thread's Python state for the thread's life,
 * as wisp_py.c's wisp_acquire does. */
static __thread int tattached;
static __thread PyThreadState *tts;

/* post_cst calls loop.call_soon_threadsafe(handler, id) holding the GIL. */
static int post_cst(long long id) {
	PyGILState_STATE g = PyGILState_UNLOCKED;
	if (hb.mech == HB_CSTG) {
		g = PyGILState_Ensure();
	} else if (tattached) {
		PyEval_RestoreThread(tts);
	} else {
		PyGILState_Ensure();
		tattached = 1;
	}
	PyObject *i = PyLong_FromLongLong(id);
	PyObject *r = i ? PyObject_CallFunctionObjArgs(hb.target, hb.handler, i, NULL) : NULL;
	if (!r) PyErr_Print();
	Py_XDECREF(r);
	Py_XDECREF(i);
	if (hb.mech == HB_CSTG)
		PyGILState_Release(g);
	else
		tts = PyEval_SaveThread();
	return r ? 0 : -1;
}

int hb_post(long long id) {
	if (hb.mech == HB_CST || hb.mech == HB_CSTG) return post_cst(id);
	return post_queue(id);
}

void hb_quit(void) { hb_post(-1); }

/* ---- loop -> Go ---- */

int hb_drain(long long *out, int max) {
	int n = 0;
	pthread_mutex_lock(&hb.emu);
	while (n < max && hb.ehead) {
		msg *e = hb.ehead;
		hb.ehead = e->next;
		if (!hb.ehead) hb.etail = NULL;
		out[n++] = e->id;
		free(e);
	}
	if (n == 0) hb.earmed = 1;
	pthread_mutex_unlock(&hb.emu);
	return n;
}

/* ---- the module _hb: what the loop's Python calls ---- */

/* drain() -> [id, ...]: every queued message (b1: the first one only). */
static PyObject *mod_drain(PyObject *self, PyObject *unused) {
	(void)self;
	(void)unused;
	pthread_mutex_lock(&hb.mu);
	msg *m = hb.head;
	if (hb.mech == HB_SEM && m) {
		hb.head = m->next;
		if (!hb.head) hb.tail = NULL;
		m->next = NULL;
	} else {
		hb.head = hb.tail = NULL;
		hb.armed = 1;
	}
	pthread_mutex_unlock(&hb.mu);
	count(m ? &hb.n.loop_wakes : &hb.n.loop_empty);
	PyObject *out = PyList_New(0);
	while (m) {
		msg *next = m->next;
		PyObject *i = out ? PyLong_FromLongLong(m->id) : NULL;
		if (i) {
			PyList_Append(out, i);
			Py_DECREF(i);
		}
		free(m);
		m = next;
	}
	return out;
}

/* wake(handler): a2's reader callback: reads the eventfd, takes every
 * queued message and calls handler(id) for each, with no Python in between. */
static PyObject *mod_wake(PyObject *self, PyObject *handler) {
	(void)self;
	uint64_t v;
	while (read(hb.rfd, &v, sizeof v) < 0 && errno == EINTR) {
	}
	pthread_mutex_lock(&hb.mu);
	msg *m = hb.head;
	hb.head = hb.tail = NULL;
	hb.armed = 1;
	pthread_mutex_unlock(&hb.mu);
	count(m ? &hb.n.loop_wakes : &hb.n.loop_empty);
	int failed = 0;
	while (m) {
		msg *next = m->next;
		if (!failed) {
			PyObject *i = PyLong_FromLongLong(m->id);
			PyObject *r = i ? PyObject_CallOneArg(handler, i) : NULL;
			failed = r == NULL;
			Py_XDECREF(r);
			Py_XDECREF(i);
		}
		free(m);
		m = next;
	}
	if (failed) return NULL;
	Py_RETURN_NONE;
}

/* done(id): the answer to message id, as wisp_emit_done hands back a response. */
static PyObject *mod_done(PyObject *self, PyObject *arg) {
	(void)self;
	long long id = PyLong_AsLongLong(arg);
	if (id == -1 && PyErr_Occurred()) return NULL;
	if (hb.handle) {
		goAnswer(hb.handle, id);
		Py_RETURN_NONE;
	}
	msg *e = malloc(sizeof *e);
	if (!e) return PyErr_NoMemory();
	e->id = id;
	e->next = NULL;
	pthread_mutex_lock(&hb.emu);
	if (hb.etail)
		hb.etail->next = e;
	else
		hb.ehead = e;
	hb.etail = e;
	int w = hb.earmed;
	hb.earmed = 0;
	pthread_mutex_unlock(&hb.emu);
	if (w) {
		count(&hb.n.resp_writes);
		notify(hb.efd, 0);
	}
	Py_RETURN_NONE;
}

/* target(call_soon_threadsafe, handler): what Go calls for c. */
static PyObject *mod_target(PyObject *self, PyObject *args) {
	(void)self;
	PyObject *t, *h;
	if (!PyArg_ParseTuple(args, "OO", &t, &h)) return NULL;
	Py_INCREF(t);
	Py_INCREF(h);
	hb.target = t;
	hb.handler = h;
	Py_RETURN_NONE;
}

/* ready(): the loop runs; Go may post. */
static PyObject *mod_ready(PyObject *self, PyObject *unused) {
	(void)self;
	(void)unused;
	__atomic_store_n(&hb.ready, 1, __ATOMIC_RELEASE);
	Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"drain", mod_drain, METH_NOARGS, "drain(): the queued message ids"},
    {"wake", mod_wake, METH_O, "wake(handler): a2's reader callback"},
    {"done", mod_done, METH_O, "done(id): answer message id"},
    {"target", mod_target, METH_VARARGS, "target(call_soon_threadsafe, handler)"},
    {"ready", mod_ready, METH_NOARGS, "ready(): the loop runs"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "_hb", NULL, -1, methods};

static char *error_text(void) {
	PyObject *t, *v, *tb;
	PyErr_Fetch(&t, &v, &tb);
	PyErr_NormalizeException(&t, &v, &tb);
	PyObject *s = v ? PyObject_Str(v) : NULL;
	const char *u = s ? PyUnicode_AsUTF8(s) : NULL;
	char *out = strdup(u ? u : "unknown error");
	PyErr_Clear();
	Py_XDECREF(s);
	Py_XDECREF(t);
	Py_XDECREF(v);
	Py_XDECREF(tb);
	return out;
}

char *hb_run(const char *src, const char *kind, const char *work) {
	PyGILState_STATE g = PyGILState_Ensure();
	hb.loop_thread = pthread_self();
	__atomic_store_n(&hb.loop_started, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&hb.n.loop_tid, (int)gettid(), __ATOMIC_RELAXED);
	char *err = NULL;
	PyObject *mod = PyModule_Create(&moddef);
	PyObject *modules = PyImport_GetModuleDict();
	PyObject *globals = PyDict_New();
	PyObject *code = NULL, *r = NULL, *run = NULL;
	if (!mod || !globals || PyDict_SetItemString(modules, "_hb", mod) < 0 ||
	    PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins()) < 0)
		goto out;
	if (!(code = Py_CompileString(src, "loop.py", Py_file_input))) goto out;
	if (!(r = PyEval_EvalCode(code, globals, globals))) goto out;
	if (!(run = PyDict_GetItemString(globals, "run"))) {
		PyErr_SetString(PyExc_RuntimeError, "loop.py has no run()");
		goto out;
	}
	Py_DECREF(r);
	r = PyObject_CallFunction(run, "ssii", kind, work, hb.mech, hb.rfd);
out:
	if (!r) err = error_text();
	Py_XDECREF(r);
	Py_XDECREF(code);
	Py_XDECREF(globals);
	Py_XDECREF(mod);
	__atomic_store_n(&hb.ready, 0, __ATOMIC_RELEASE);
	PyGILState_Release(g);
	return err;
}
