/* wisp_asgi.c: the C side of the ASGI event loop.
 *
 * One asyncio loop per process runs on a Python thread of its own (a locked
 * goroutine calls wisp_loop_run, which never returns until the loop stops).
 * Go reaches it through a queue of messages in C: wisp_loop_post appends one
 * and writes the loop's eventfd only if the loop has drained everything and
 * waits (armed), so a burst of messages costs one wake-up. The loop watches
 * the eventfd with add_reader and takes every queued message at once
 * (_wisp_asgi.drain). Responses go back through the pool's completion queue
 * (wisp_emit_nowait, wisp_emit_done in wisp_pool.c), bounded in bytes as a
 * WSGI response is; when the window is full, send() awaits a resume message
 * that wisp_ev_free posts once Go has written half of it.
 *
 * The Python half is py/wisp_asgi.py, compiled into module _wisp_asgi_py.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wisp_py.h"
#include "wisp_pyapi.h"

typedef struct wisp_amsg {
	struct wisp_amsg *next;
	int kind, app, more;
	wisp_job *job;
	unsigned long long gen;
	size_t dl, bl;
	char buf[]; /* data, then body */
} wisp_amsg;

struct wisp_loop {
	pthread_mutex_t mu;
	wisp_amsg *head, *tail;
	int armed;   /* the loop drained everything: the next post writes efd */
	int stopped; /* the loop has ended: posts fail */
	int efd;
	wisp_ev *rel;    /* released zero-copy hand-offs: their bytes objects to drop (wisp_loop_unref) */
	size_t relbytes; /* and their bytes */
};

/* A body of at least ZC_MIN bytes goes to Go as a view of its bytes object,
 * held until Go has written it, rather than as a copy: a streamed response
 * (64 KiB messages) spent a sixth of its CPU time in that copy. A shorter one
 * is copied, which costs less than the reference's round trip. */
#define ZC_MIN (16 * 1024)
/* REL_WAKE bounds the bytes of released hand-offs an idle loop keeps: the
 * loop drops them at every drain (each request, message or resume), and
 * wisp_loop_unref wakes it when they reach this much. */
#define REL_WAKE (4 << 20)

wisp_loop *wisp_loop_new(int efd) {
	wisp_loop *l = calloc(1, sizeof *l);
	if (!l) return NULL;
	pthread_mutex_init(&l->mu, NULL);
	l->efd = efd;
	l->armed = 1;
	return l;
}

static void loop_notify(wisp_loop *l) {
	uint64_t one = 1;
	while (write(l->efd, &one, sizeof one) < 0 && errno == EINTR) {
	}
}

static int post(wisp_loop *l, wisp_amsg *m) {
	m->next = NULL;
	pthread_mutex_lock(&l->mu);
	if (l->stopped) {
		pthread_mutex_unlock(&l->mu);
		free(m);
		return -1;
	}
	if (l->tail)
		l->tail->next = m;
	else
		l->head = m;
	l->tail = m;
	int wake = l->armed;
	l->armed = 0;
	pthread_mutex_unlock(&l->mu);
	if (wake) loop_notify(l);
	return 0;
}

int wisp_loop_post(wisp_loop *l, int kind, wisp_job *j, int app, int more, const char *data, size_t dl,
                   const char *body, size_t bl) {
	wisp_amsg *m = malloc(sizeof *m + dl + bl);
	if (!m) return -1;
	m->kind = kind;
	m->app = app;
	m->more = more;
	m->job = j;
	m->gen = j ? j->gen : 0;
	m->dl = dl;
	m->bl = bl;
	if (dl) memcpy(m->buf, data, dl);
	if (bl) memcpy(m->buf + dl, body, bl);
	if (kind == WISP_A_BODY && j) __atomic_add_fetch(&j->bodyq, (long long)bl, __ATOMIC_ACQ_REL);
	if (kind == WISP_A_MSG && j) __atomic_add_fetch(&j->bodyq, (long long)bl + WISP_MSG_COST, __ATOMIC_ACQ_REL);
	return post(l, m);
}

int wisp_loop_submit(wisp_loop *l, wisp_pool *p, wisp_job *j, int kind, unsigned long long gen, int app, int more,
                     const char *data, size_t dl, const char *body, size_t bl) {
	wisp_job_reset(p, j);
	j->loop = l;
	j->gen = gen;
	__atomic_store_n(&j->bodyq, (long long)bl, __ATOMIC_SEQ_CST);
	return wisp_loop_post(l, kind, j, app, more, data, dl, body, bl);
}

void wisp_loop_unref(wisp_loop *l, wisp_ev *e) {
	pthread_mutex_lock(&l->mu);
	if (l->stopped) {
		/* no drain will come: the bytes object stays (the loop stopped,
		 * at most a window of each response then under way) */
		pthread_mutex_unlock(&l->mu);
		wisp_ev_dispose(e);
		return;
	}
	e->next = l->rel;
	l->rel = e;
	l->relbytes += e->len;
	int wake = l->armed && l->relbytes >= REL_WAKE;
	if (wake) l->armed = 0;
	pthread_mutex_unlock(&l->mu);
	if (wake) loop_notify(l);
}

/* drop_refs drops the bytes objects of released hand-offs and frees them. GIL held. */
static void drop_refs(wisp_ev *e) {
	while (e) {
		wisp_ev *next = e->next;
		DECREF((PyObject *)e->ref);
		wisp_ev_dispose(e);
		e = next;
	}
}

void wisp_loop_resume(wisp_job *j) {
	wisp_loop *l = j->loop;
	if (l) wisp_loop_post(l, WISP_A_RESUME, j, 0, 0, NULL, 0, NULL, 0);
}

/* ---- the module _wisp_asgi: what the loop's Python calls ---- */

static PyObject *ptr_obj(void *p) { return py.PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)p); }

static void *obj_ptr(PyObject *o) {
	unsigned long long v = py.PyLong_AsUnsignedLongLong(o);
	if (v == (unsigned long long)-1 && py.PyErr_Occurred()) return NULL;
	return (void *)(uintptr_t)v;
}

static PyObject *bytes_or_none(const char *p, size_t n, int none) {
	if (none) {
		INCREF(Py_None_);
		return Py_None_;
	}
	return py.PyBytes_FromStringAndSize(p, (Py_ssize_t)n);
}

/* drain(loop) -> [(kind, job, gen, app, more, data, body), ...]: every queued message. */
static PyObject *mod_drain(PyObject *self, PyObject *arg) {
	(void)self;
	wisp_loop *l = obj_ptr(arg);
	if (!l) return NULL;
	pthread_mutex_lock(&l->mu);
	wisp_amsg *m = l->head;
	l->head = l->tail = NULL;
	l->armed = 1;
	wisp_ev *rel = l->rel;
	l->rel = NULL;
	l->relbytes = 0;
	pthread_mutex_unlock(&l->mu);
	drop_refs(rel);
	PyObject *out = py.PyList_New(0);
	while (m) {
		wisp_amsg *next = m->next;
		PyObject *t = out ? py.PyTuple_New(7) : NULL;
		if (t) {
			py.PyTuple_SetItem(t, 0, py.PyLong_FromLong(m->kind));
			py.PyTuple_SetItem(t, 1, ptr_obj(m->job));
			py.PyTuple_SetItem(t, 2, py.PyLong_FromUnsignedLongLong(m->gen));
			py.PyTuple_SetItem(t, 3, py.PyLong_FromLong(m->app));
			py.PyTuple_SetItem(t, 4, py.PyLong_FromLong(m->more));
			int k = m->kind;
			py.PyTuple_SetItem(t, 5, bytes_or_none(m->buf, m->dl, k != WISP_A_NEW && k != WISP_A_LIFESPAN && k != WISP_A_WS && k != WISP_A_GONE));
			py.PyTuple_SetItem(t, 6, bytes_or_none(m->buf + m->dl, m->bl, k != WISP_A_NEW && k != WISP_A_BODY && k != WISP_A_MSG));
			py.PyList_Append(out, t);
			DECREF(t);
		}
		free(m);
		m = next;
	}
	return out;
}

/* view gets the bytes of b (None: empty). */
static int view(PyObject *b, char **p, Py_ssize_t *n) {
	if (b == Py_None_) {
		*p = NULL;
		*n = 0;
		return 0;
	}
	if (!(FLAGS(b) & TPF_BYTES)) {
		py.PyErr_Format(exc_TypeError, "expected bytes, not %R", b);
		return -1;
	}
	return py.PyBytes_AsStringAndSize(b, p, n);
}

/* view_ref decides whether body (bl bytes, of j's response) goes to Go as
 * a view rather than a copy (ZC_MIN): it returns body with a reference taken
 * for the event, or NULL to copy. */
static PyObject *view_ref(wisp_job *j, PyObject *body, Py_ssize_t bl) {
	if (bl < ZC_MIN || !j->loop) return NULL;
	INCREF(body); /* a bytes object never changes */
	return body;
}

/* emit(job, hdr, body) -> 0 sent, 1 sent and the window is full (await a
 * resume), -1 the client is gone. */
static PyObject *mod_emit(PyObject *self, PyObject *args) {
	(void)self;
	if (py.PyTuple_Size(args) != 3) {
		py.PyErr_SetString(exc_TypeError, "emit(job, hdr, body)");
		return NULL;
	}
	wisp_job *j = obj_ptr(py.PyTuple_GetItem(args, 0));
	PyObject *body = py.PyTuple_GetItem(args, 2);
	char *h, *b;
	Py_ssize_t hl, bl;
	if (!j || view(py.PyTuple_GetItem(args, 1), &h, &hl) < 0 || view(body, &b, &bl) < 0) return NULL;
	PyObject *ref = view_ref(j, body, bl);
	if (!ref) return py.PyLong_FromLong(wisp_emit_nowait(j, h, (size_t)hl, b, (size_t)bl));
	int rc = wisp_emit_ref_nowait(j, h, (size_t)hl, b, (size_t)bl, ref);
	if (rc < 0) DECREF(ref);
	return py.PyLong_FromLong(rc);
}

/* sendfile(job, hdr, fd, n) -> as emit: n bytes of the file fd, which Go
 * sends and closes (http.response.pathsend). */
static PyObject *mod_sendfile(PyObject *self, PyObject *args) {
	(void)self;
	if (py.PyTuple_Size(args) != 4) {
		py.PyErr_SetString(exc_TypeError, "sendfile(job, hdr, fd, n)");
		return NULL;
	}
	wisp_job *j = obj_ptr(py.PyTuple_GetItem(args, 0));
	char *h;
	Py_ssize_t hl;
	if (!j || view(py.PyTuple_GetItem(args, 1), &h, &hl) < 0) return NULL;
	long fd = py.PyLong_AsLong(py.PyTuple_GetItem(args, 2));
	long long n = py.PyLong_AsLongLong(py.PyTuple_GetItem(args, 3));
	if (py.PyErr_Occurred()) return NULL;
	return py.PyLong_FromLong(wisp_emit_file_nowait(j, h, (size_t)hl, (int)fd, n));
}

/* finish(job, hdr, body, code, err): the last hand-off; the job is Go's after it. */
static PyObject *mod_finish(PyObject *self, PyObject *args) {
	(void)self;
	if (py.PyTuple_Size(args) != 5) {
		py.PyErr_SetString(exc_TypeError, "finish(job, hdr, body, code, err)");
		return NULL;
	}
	wisp_job *j = obj_ptr(py.PyTuple_GetItem(args, 0));
	PyObject *body = py.PyTuple_GetItem(args, 2);
	char *h, *b, *e;
	Py_ssize_t hl, bl, el;
	if (!j || view(py.PyTuple_GetItem(args, 1), &h, &hl) < 0 || view(body, &b, &bl) < 0 ||
	    view(py.PyTuple_GetItem(args, 4), &e, &el) < 0)
		return NULL;
	long code = py.PyLong_AsLong(py.PyTuple_GetItem(args, 3));
	if (code == -1 && py.PyErr_Occurred()) return NULL;
	char *err = NULL;
	if (el > 0 && (err = malloc((size_t)el + 1))) {
		memcpy(err, e, (size_t)el);
		err[el] = 0;
	}
	PyObject *ref = view_ref(j, body, bl);
	if (!wisp_emit_done(j, h, (size_t)hl, b, (size_t)bl, (int)code, err, err ? (size_t)el : 0, ref) && ref) DECREF(ref);
	INCREF(Py_None_);
	return Py_None_;
}

/* consumed(job, n): the app received n bytes of request body. */
static PyObject *mod_consumed(PyObject *self, PyObject *args) {
	(void)self;
	if (py.PyTuple_Size(args) != 2) {
		py.PyErr_SetString(exc_TypeError, "consumed(job, n)");
		return NULL;
	}
	wisp_job *j = obj_ptr(py.PyTuple_GetItem(args, 0));
	long long n = py.PyLong_AsLongLong(py.PyTuple_GetItem(args, 1));
	if (!j || (n == -1 && py.PyErr_Occurred())) return NULL;
	/* sequentially consistent with Go's store of bodywait and load of bodyq */
	long long q = __atomic_sub_fetch(&j->bodyq, n, __ATOMIC_SEQ_CST);
	if (q <= WISP_BODY_AHEAD / 2 && __atomic_exchange_n(&j->bodywait, 0, __ATOMIC_SEQ_CST)) wisp_emit_credit(j);
	INCREF(Py_None_);
	return Py_None_;
}

/* stopped(loop): the loop ends; later posts fail. */
static PyObject *mod_stopped(PyObject *self, PyObject *arg) {
	(void)self;
	wisp_loop *l = obj_ptr(arg);
	if (!l) return NULL;
	pthread_mutex_lock(&l->mu);
	l->stopped = 1;
	wisp_amsg *m = l->head;
	l->head = l->tail = NULL;
	pthread_mutex_unlock(&l->mu);
	while (m) {
		wisp_amsg *next = m->next;
		free(m);
		m = next;
	}
	INCREF(Py_None_);
	return Py_None_;
}

/* ---- the scope and the response head, built in C: they cost a request on
 * the loop two microseconds in Python (make_scope, encode_head) ---- */

/* Keys of the scope, made once (interned). */
static PyObject *k_type, *k_asgi, *k_http_version, *k_method, *k_scheme, *k_path, *k_raw_path, *k_query_string,
    *k_root_path, *k_headers, *k_client, *k_server, *v_http;

static int scope_keys(void) {
	if (v_http) return 0;
	struct {
		PyObject **o;
		const char *s;
	} keys[] = {{&k_type, "type"},         {&k_asgi, "asgi"},
	            {&k_http_version, "http_version"}, {&k_method, "method"},
	            {&k_scheme, "scheme"},     {&k_path, "path"},
	            {&k_raw_path, "raw_path"}, {&k_query_string, "query_string"},
	            {&k_root_path, "root_path"}, {&k_headers, "headers"},
	            {&k_client, "client"},     {&k_server, "server"},
	            {&v_http, "http"}};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (!*keys[i].o && !(*keys[i].o = py.PyUnicode_InternFromString(keys[i].s))) return -1;
	return 0;
}

/* set puts v (a new reference, NULL: failed) in d under k. */
static int set(PyObject *d, PyObject *k, PyObject *v) {
	if (!v) return -1;
	int rc = py.PyDict_SetItem(d, k, v);
	DECREF(v);
	return rc;
}

static PyObject *latin1(const char *p, size_t n) { return py.PyUnicode_DecodeLatin1(p, (Py_ssize_t)n, NULL); }

/* port is the decimal port of a flat field: a new int, or NULL with ValueError. */
static PyObject *port(const char *p, size_t n) {
	long v = 0;
	if (n == 0 || n > 9) goto bad;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9') goto bad;
		v = v * 10 + (p[i] - '0');
	}
	return py.PyLong_FromLong(v);
bad:
	py.PyErr_SetString(exc_ValueError, "scope: a port that is not a number");
	return NULL;
}

/* pair is the tuple (a, b) of two new references (either NULL: failed). */
static PyObject *pair(PyObject *a, PyObject *b) {
	PyObject *t = a && b ? py.PyTuple_New(2) : NULL;
	if (!t) {
		XDECREF(a);
		XDECREF(b);
		return NULL;
	}
	py.PyTuple_SetItem(t, 0, a);
	py.PyTuple_SetItem(t, 1, b);
	return t;
}

/* scope(data, asgi) -> dict: the fields of an HTTP scope from Go's flat form
 * (server.asgiScope: http_version, method, scheme, raw_path, query_string,
 * root_path, client host and port, server host and port, then header names
 * and values, each ended by NUL). path is raw_path as latin-1, not yet
 * unquoted; state and extensions are the caller's (wisp_asgi.py make_scope). */
static PyObject *mod_scope(PyObject *self, PyObject *args) {
	(void)self;
	if (py.PyTuple_Size(args) != 2) {
		py.PyErr_SetString(exc_TypeError, "scope(data, asgi)");
		return NULL;
	}
	char *data;
	Py_ssize_t n;
	if (scope_keys() < 0 || view(py.PyTuple_GetItem(args, 0), &data, &n) < 0) return NULL;
	const char *f[10];
	size_t fl[10];
	const char *q = data, *end = data + n;
	for (int i = 0; i < 10; i++) {
		const char *z = q < end ? memchr(q, 0, (size_t)(end - q)) : NULL;
		if (!z) {
			py.PyErr_SetString(exc_ValueError, "scope: a short flat scope");
			return NULL;
		}
		f[i] = q;
		fl[i] = (size_t)(z - q);
		q = z + 1;
	}
	PyObject *d = py.PyDict_New();
	if (!d) return NULL;
	PyObject *asgi = py.PyTuple_GetItem(args, 1);
	INCREF(v_http);
	INCREF(asgi);
	if (set(d, k_type, v_http) < 0 || set(d, k_asgi, asgi) < 0 || set(d, k_http_version, latin1(f[0], fl[0])) < 0 ||
	    set(d, k_method, latin1(f[1], fl[1])) < 0 || set(d, k_scheme, latin1(f[2], fl[2])) < 0 ||
	    set(d, k_path, latin1(f[3], fl[3])) < 0 ||
	    set(d, k_raw_path, py.PyBytes_FromStringAndSize(f[3], (Py_ssize_t)fl[3])) < 0 ||
	    set(d, k_query_string, py.PyBytes_FromStringAndSize(f[4], (Py_ssize_t)fl[4])) < 0 ||
	    set(d, k_root_path, py.PyUnicode_DecodeUTF8(f[5], (Py_ssize_t)fl[5], "replace")) < 0)
		goto fail;
	PyObject *h = py.PyList_New(0);
	if (set(d, k_headers, h) < 0) goto fail; /* d holds h */
	while (q < end) {
		const char *z1 = memchr(q, 0, (size_t)(end - q));
		const char *v = z1 ? z1 + 1 : NULL;
		const char *z2 = v && v < end ? memchr(v, 0, (size_t)(end - v)) : NULL;
		if (!z2) break; /* the flat form ends with NUL after the last value */
		PyObject *t = pair(py.PyBytes_FromStringAndSize(q, z1 - q), py.PyBytes_FromStringAndSize(v, z2 - v));
		if (!t || py.PyList_Append(h, t) < 0) {
			XDECREF(t);
			goto fail;
		}
		DECREF(t);
		q = z2 + 1;
	}
	PyObject *client = Py_None_, *server = Py_None_;
	INCREF(Py_None_);
	INCREF(Py_None_);
	if (fl[7]) {
		DECREF(client);
		client = pair(latin1(f[6], fl[6]), port(f[7], fl[7]));
	}
	if (fl[8]) {
		DECREF(server);
		PyObject *sp = Py_None_;
		if (fl[9]) {
			sp = port(f[9], fl[9]);
		} else {
			INCREF(Py_None_);
		}
		server = pair(latin1(f[8], fl[8]), sp);
	}
	if (!client || !server) {
		XDECREF(client);
		XDECREF(server);
		goto fail;
	}
	if (set(d, k_client, client) < 0 || set(d, k_server, server) < 0) goto fail;
	return d;
fail:
	DECREF(d);
	return NULL;
}

/* token reports whether [p, p+n) is an HTTP token (RFC 9110 5.6.2). */
static int token(const char *p, Py_ssize_t n) {
	if (n <= 0) return 0;
	for (Py_ssize_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c)) || !c)
			return 0;
	}
	return 1;
}

/* field_value reports whether [p, p+n) may be a header value: no control
 * character but tab. */
static int field_value(const char *p, Py_ssize_t n) {
	for (Py_ssize_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f) return 0;
	}
	return 1;
}

/* header_at gets the name and value of headers[i] (list says whether
 * headers is a list or a tuple): 1 if they are a valid pair of bytes, 0 if
 * not (another shape, or a header no server may send), -1 on error. */
static int header_at(PyObject *hs, int list, Py_ssize_t i, char **np, Py_ssize_t *nn, char **vp, Py_ssize_t *vn) {
	PyObject *it = list ? py.PyList_GetItem(hs, i) : py.PyTuple_GetItem(hs, i);
	unsigned long f = FLAGS(it);
	int il = (f & TPF_LIST) != 0;
	if ((!il && !(f & TPF_TUPLE)) || (il ? py.PyList_Size(it) : py.PyTuple_Size(it)) != 2) return 0;
	PyObject *nm = il ? py.PyList_GetItem(it, 0) : py.PyTuple_GetItem(it, 0);
	PyObject *vl = il ? py.PyList_GetItem(it, 1) : py.PyTuple_GetItem(it, 1);
	if (!(FLAGS(nm) & TPF_BYTES) || !(FLAGS(vl) & TPF_BYTES)) return 0;
	if (py.PyBytes_AsStringAndSize(nm, np, nn) < 0 || py.PyBytes_AsStringAndSize(vl, vp, vn) < 0) return -1;
	return token(*np, *nn) && field_value(*vp, *vn);
}

/* head(line, headers) -> bytes or None: the encoded head, b"200 OK\0name\0
 * value\0...", of a list or tuple of (name, value) pairs of bytes, each
 * valid; None for anything else (wisp_asgi.py encode_head then converts, or
 * raises the error that names the header). */
static PyObject *mod_head(PyObject *self, PyObject *args) {
	(void)self;
	if (py.PyTuple_Size(args) != 2) {
		py.PyErr_SetString(exc_TypeError, "head(line, headers)");
		return NULL;
	}
	char *line, *np, *vp;
	Py_ssize_t ll, nn, vn;
	PyObject *hs = py.PyTuple_GetItem(args, 1);
	if (view(py.PyTuple_GetItem(args, 0), &line, &ll) < 0) return NULL;
	int list = (FLAGS(hs) & TPF_LIST) != 0;
	if (!list && !(FLAGS(hs) & TPF_TUPLE)) goto decline;
	Py_ssize_t k = list ? py.PyList_Size(hs) : py.PyTuple_Size(hs);
	size_t total = (size_t)ll + 1;
	for (Py_ssize_t i = 0; i < k; i++) {
		int rc = header_at(hs, list, i, &np, &nn, &vp, &vn);
		if (rc < 0) return NULL;
		if (rc == 0) goto decline;
		total += (size_t)nn + (size_t)vn + 2;
	}
	PyObject *out = py.PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
	char *w;
	Py_ssize_t on;
	if (!out || py.PyBytes_AsStringAndSize(out, &w, &on) < 0) {
		XDECREF(out);
		return NULL;
	}
	memcpy(w, line, (size_t)ll);
	w += ll;
	*w++ = 0;
	for (Py_ssize_t i = 0; i < k; i++) {
		header_at(hs, list, i, &np, &nn, &vp, &vn); /* as checked above: nothing ran between */
		memcpy(w, np, (size_t)nn);
		w += nn;
		*w++ = 0;
		memcpy(w, vp, (size_t)vn);
		w += vn;
		*w++ = 0;
	}
	return out;
decline:
	INCREF(Py_None_);
	return Py_None_;
}

static PyMethodDef scope_def = {"scope", mod_scope, METH_VARARGS, "scope(data, asgi): an HTTP scope's fields"};
static PyMethodDef head_def = {"head", mod_head, METH_VARARGS, "head(line, headers): the encoded head, or None"};
static PyMethodDef drain_def = {"drain", mod_drain, METH_O, "drain(loop): the queued messages"};
static PyMethodDef emit_def = {"emit", mod_emit, METH_VARARGS, "emit(job, hdr, body): a response hand-off"};
static PyMethodDef sendfile_def = {"sendfile", mod_sendfile, METH_VARARGS, "sendfile(job, hdr, fd, n): a file hand-off"};
static PyMethodDef finish_def = {"finish", mod_finish, METH_VARARGS, "finish(job, hdr, body, code, err): the end"};
static PyMethodDef consumed_def = {"consumed", mod_consumed, METH_VARARGS, "consumed(job, n): body received"};
static PyMethodDef stopped_def = {"stopped", mod_stopped, METH_O, "stopped(loop): the loop ends"};

/* asgi_module is _wisp_asgi_py (py/wisp_asgi.py), made on first use under the GIL. */
static PyObject *asgi_module;

static PyObject *load_module(const char *src) {
	if (asgi_module) return asgi_module;
	PyObject *modules = py.PyImport_GetModuleDict();
	PyObject *c = py.PyModule_New("_wisp_asgi");
	if (!c) return NULL;
	PyMethodDef *defs[] = {&drain_def, &emit_def, &finish_def, &sendfile_def, &consumed_def, &stopped_def, &scope_def, &head_def};
	for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
		PyObject *f = py.PyCFunction_NewEx(defs[i], NULL, NULL);
		if (!f || py.PyObject_SetAttrString(c, defs[i]->ml_name, f) < 0) {
			XDECREF(f);
			DECREF(c);
			return NULL;
		}
		DECREF(f);
	}
	if (py.PyDict_SetItemString(modules, "_wisp_asgi", c) < 0) {
		DECREF(c);
		return NULL;
	}
	DECREF(c);
	PyObject *m = py.PyModule_New("_wisp_asgi_py");
	if (!m) return NULL;
	PyObject *d = py.PyModule_GetDict(m);
	py.PyDict_SetItemString(d, "__builtins__", py.PyEval_GetBuiltins());
	py.PyDict_SetItemString(modules, "_wisp_asgi_py", m);
	PyObject *code = py.Py_CompileString(src, "wisp_asgi.py", Py_file_input);
	PyObject *r = code ? py.PyEval_EvalCode(code, d, d) : NULL;
	XDECREF(code);
	if (!r) {
		DECREF(m);
		return NULL;
	}
	DECREF(r);
	asgi_module = m;
	return m;
}

/* error_text returns the pending exception as text (malloc'd), through the
 * module's describe() when it loaded. */
static char *error_text(void) {
	PyObject *t = NULL, *v = NULL, *tb = NULL;
	py.PyErr_Fetch(&t, &v, &tb);
	if (!t) return strdup("unknown error");
	py.PyErr_NormalizeException(&t, &v, &tb);
	char *out = NULL;
	PyObject *s = v ? py.PyObject_Str(v) : NULL;
	PyObject *b = s ? py.PyUnicode_AsEncodedString(s, "utf-8", "replace") : NULL;
	char *p;
	Py_ssize_t n;
	if (b && py.PyBytes_AsStringAndSize(b, &p, &n) == 0) {
		out = malloc((size_t)n + 1);
		if (out) {
			memcpy(out, p, (size_t)n);
			out[n] = 0;
		}
	}
	if (!out) py.PyErr_Clear();
	XDECREF(b);
	XDECREF(s);
	XDECREF(t);
	XDECREF(v);
	XDECREF(tb);
	return out ? out : strdup("unprintable error");
}

/* call_module calls _wisp_asgi_py.name(args...) with the GIL held. */
static PyObject *call_module(const char *src, const char *name, PyObject *a, PyObject *b, PyObject *c) {
	PyObject *m = load_module(src);
	PyObject *f = m ? py.PyObject_GetAttrString(m, name) : NULL;
	PyObject *r = f ? py.PyObject_CallFunctionObjArgs(f, a, b, c, NULL) : NULL;
	XDECREF(f);
	return r;
}

/* attr is o.name, or NULL (with no error set) when o has none. */
static PyObject *attr(PyObject *o, const char *name) {
	PyObject *a = o ? py.PyObject_GetAttrString(o, name) : NULL;
	if (!a) py.PyErr_Clear();
	return a;
}

/* coroutine_code reports whether f is a function whose code is a
 * coroutine's (CO_COROUTINE), or is marked as one (asyncio's and inspect's
 * markers); a bound method is looked at through __func__. */
static int coroutine_code(PyObject *f) {
	if (!f) return 0;
	PyObject *fn = attr(f, "__func__");
	PyObject *target = fn ? fn : f;
	int yes = 0;
	PyObject *code = attr(target, "__code__");
	PyObject *flags = attr(code, "co_flags");
	if (flags) {
		long v = py.PyLong_AsLong(flags);
		if (v == -1) py.PyErr_Clear();
		yes = v != -1 && (v & 0x80); /* CO_COROUTINE */
	}
	for (const char *const *m = (const char *const[]){"_is_coroutine_marker", "_is_coroutine", NULL}; !yes && *m; m++) {
		PyObject *a = attr(target, *m);
		yes = a != NULL;
		XDECREF(a);
	}
	XDECREF(flags);
	XDECREF(code);
	XDECREF(fn);
	return yes;
}

/* maybe_asgi reports whether o may be an ASGI app: a coroutine function, or
 * an object whose __call__ is one (through functools.partial), looked at
 * without importing anything. Only then is wisp_asgi.py (which imports
 * asyncio, some megabytes) loaded to decide: a WSGI app costs no memory
 * for it. */
static int maybe_asgi(PyObject *o) {
	PyObject *f = o;
	py.Py_IncRef(f);
	for (int i = 0; i < 4; i++) { /* functools.partial, nested */
		PyObject *inner = attr(f, "func");
		PyObject *args = inner ? attr(f, "args") : NULL;
		if (!inner || !args) {
			XDECREF(inner);
			XDECREF(args);
			break;
		}
		DECREF(args);
		DECREF(f);
		f = inner;
	}
	int yes = coroutine_code(f);
	if (!yes) {
		PyObject *call = attr(f, "__call__");
		yes = coroutine_code(call);
		XDECREF(call);
	}
	DECREF(f);
	return yes;
}

int wisp_app_interface(int app, const char *want, const char *src, char **err) {
	wisp_main_acquire();
	int rc = -1;
	PyObject *obj = wisp_app_object(app);
	if (obj && strcmp(want, "asgi") != 0 && !maybe_asgi(obj)) {
		wisp_main_release(); /* WSGI: wisp_asgi.py need not be loaded */
		return 0;
	}
	PyObject *id = py.PyLong_FromLong(app);
	PyObject *w = py.PyUnicode_FromString(want);
	PyObject *r = (obj && id && w) ? call_module(src, "register", id, obj, w) : NULL;
	if (r) {
		rc = py.PyObject_IsTrue(r);
		DECREF(r);
	}
	if (rc < 0) *err = error_text();
	XDECREF(id);
	XDECREF(w);
	wisp_main_release();
	return rc;
}

char *wisp_loop_run(wisp_loop *l, const char *kind, const char *src) {
	wisp_acquire();
	wisp_crash_loop = 1; /* a fatal signal on this thread is in app code */
	char *err = NULL;
	PyObject *lp = ptr_obj(l);
	PyObject *fd = py.PyLong_FromLong(l->efd);
	PyObject *k = py.PyUnicode_FromString(kind);
	PyObject *r = (lp && fd && k) ? call_module(src, "run", lp, fd, k) : NULL;
	if (!r) err = error_text();
	XDECREF(r);
	XDECREF(lp);
	XDECREF(fd);
	XDECREF(k);
	pthread_mutex_lock(&l->mu);
	l->stopped = 1;
	wisp_ev *rel = l->rel;
	l->rel = NULL;
	pthread_mutex_unlock(&l->mu);
	drop_refs(rel);
	wisp_crash_loop = 0; /* the thread goes back to Go */
	wisp_release();
	return err;
}

/* ---- observing the loop: trace tags, what blocks it, a stuck task's stack ----
 * (the Python half is the last section of py/wisp_asgi.py) */

/* wisp_asgi_job returns the handle of the Go job whose ASGI request the
 * calling thread's context serves (a request's task on the loop, or a
 * thread asyncio.to_thread started from one), or 0. GIL held. */
uintptr_t wisp_asgi_job(void) {
	if (!asgi_module) return 0; /* no ASGI app: wisp_asgi.py was never loaded */
	PyObject *f = py.PyObject_GetAttrString(asgi_module, "current_job");
	PyObject *r = f ? py.PyObject_CallFunctionObjArgs(f, NULL) : NULL;
	wisp_job *j = r ? obj_ptr(r) : NULL;
	if (!r || !j) py.PyErr_Clear();
	XDECREF(r);
	XDECREF(f);
	return j ? j->handle : 0;
}

/* wisp_loop_inspect takes the GIL for the calling thread (not the loop's),
 * calls _wisp_asgi_py.blocked() (j NULL) or task_stack(j, gen) and returns
 * its text (malloc'd, *n bytes: it may hold NULs), or NULL with no ASGI app. */
char *wisp_loop_inspect(wisp_job *j, unsigned long long gen, size_t *n) {
	*n = 0;
	wisp_acquire();
	char *out = NULL;
	if (asgi_module) {
		PyObject *a = j ? ptr_obj(j) : NULL;
		PyObject *b = j ? py.PyLong_FromUnsignedLongLong(gen) : NULL;
		PyObject *f = py.PyObject_GetAttrString(asgi_module, j ? "task_stack" : "blocked");
		PyObject *s = f && (!j || (a && b)) ? py.PyObject_CallFunctionObjArgs(f, a, b, NULL) : NULL;
		PyObject *u = s ? py.PyUnicode_AsEncodedString(s, "utf-8", "replace") : NULL;
		char *p;
		Py_ssize_t len;
		if (u && py.PyBytes_AsStringAndSize(u, &p, &len) == 0 && (out = malloc((size_t)len + 1))) {
			memcpy(out, p, (size_t)len);
			out[len] = 0;
			*n = (size_t)len;
		}
		if (!out) py.PyErr_Clear();
		XDECREF(u);
		XDECREF(s);
		XDECREF(f);
		XDECREF(b);
		XDECREF(a);
	}
	wisp_release();
	return out;
}
