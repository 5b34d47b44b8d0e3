/* wisp_py.h: the C side of wisp's CPython embedding.
 *
 * libpython is loaded at run time with dlopen(RTLD_GLOBAL) and every function is
 * reached through a table filled by dlsym, using only stable-ABI (Py_LIMITED_API)
 * symbols. No Python header is included, so the binary is tied to no Python build.
 * All PyObject*, GIL and reference counting live in wisp_py.c; Go sees coarse calls.
 */
#ifndef WISP_PY_H
#define WISP_PY_H

#include <stddef.h>
#include <stdint.h>

/* Result codes of a request (wisp_ev.code). */
enum {
	WISP_OK = 0,          /* response complete */
	WISP_ERR_EARLY = 1,   /* app failed before the headers were sent: answer 500 */
	WISP_ERR_LATE = 2,    /* app failed after the headers were sent: abort the connection */
	WISP_GONE = 3,        /* the client went away; the app's close() was called */
};

int wisp_load_lib(const char *path, char *err, size_t errlen);
const char *wisp_version(void);
/* names: the hop-by-hop header names start_response refuses, each ended by a NUL (httphdr.Names). */
void wisp_set_hop_by_hop(const char *names, size_t len);
int wisp_init(const char *program, uintptr_t log_handle, const char *boot,
              const char *keys, size_t keyslen, const char *paths, size_t pathslen,
              char **err);
int wisp_load_app(const char *target, int multithread, int multiprocess,
                  char **hint, char **err, char **tb);
void wisp_thread_detach(void);
/* ---- the request pool (wisp_pool.c) ----
 *
 * Python threads live in one long C call (wisp_pool_work) and never return to
 * Go between requests: Go queues jobs (wisp_pool_submit), the threads run them
 * under the GIL, several per acquisition while more wait, and hand each
 * response back as events on a completion queue. Go drains that queue
 * (wisp_pool_drain) after an eventfd wake-up that is written only when its
 * reader sleeps. No Go scheduler hand-off happens per request on the Python side. */

typedef struct wisp_pool wisp_pool;

/* wisp_job is one request. wisp_pool_submit fills the request fields; Go owns
 * the job again once it has taken its done event. */
typedef struct wisp_job {
	uintptr_t handle;    /* the Go job (cgo.Handle) */
	int app;
	char *env;           /* the flat environ (C memory, see wisp_run_job) */
	size_t envlen, envcap;
	const char *body;    /* in-memory body (pinned Go memory), or */
	size_t bodylen;
	int bodyfd;          /* the spilled body's file, or -1 */
	int aborted;         /* atomic: the client is gone, or the request timed out */
	int running;         /* atomic: in the app; changes only under the GIL */
	unsigned long ident; /* atomic: Python thread id of the thread running it */
	long long submitted; /* when it was queued (CLOCK_MONOTONIC ns) */
	long long waited;    /* how long it waited for a thread (ns), once taken */
	/* private to wisp_pool.c */
	int inflight;        /* data events Go has not freed yet */
	size_t inbytes;      /* and their bytes */
	int infiles;         /* and those of them that carry a file */
	int ended;           /* the done event was queued */
	/* direct writes (wisp_job_direct): body bytes go from the app's buffers
	 * straight to the client's socket, on the app's thread */
	int dfd;             /* the socket (a duplicate, closed at the end), or -1 */
	int dchunked;
	long long dleft;     /* body bytes the Content-Length still allows, or -1 */
	long long drate, dgrace, dtimeout; /* minimum rate (bytes/s), its grace and the write timeout (ns) */
	long long dsent0, dwaited0;        /* the connection's rate accounting so far */
	long long dsent, dsentw, dwaited;  /* bytes written, those that waited, and the wait (ns) */
	int derr, dover;     /* the write's errno; the app passed its Content-Length */
	/* the response spill: bytes the client was too slow for, in a temp file
	 * that Go sends from (wisp_spill_claim) while the app goes on */
	int sfd;             /* the file, or -1 */
	long long swoff;     /* its size: bytes written to it */
	long long sclaimed;  /* of which Go has taken (and reads in order) */
	int bell;            /* an event tells Go that bytes are waiting in it */
	long long sraw, sbody; /* bytes spilled over the response, and the body bytes among them */
	void *waitcond;      /* the thread waits here for inflight to drop */
	int waitempty;       /* to 0 */
	void *worker;        /* the pool thread that took it (set under the pool's lock) */
	wisp_pool *pool;
	/* ASGI (wisp_asgi.c): the job is a request on an event loop, not a pool thread */
	struct wisp_loop *loop; /* its loop, or NULL for a WSGI job */
	unsigned long long gen; /* which request of the job the loop's messages are for */
	int resume;          /* the loop's send() waits for room in the window (under emu) */
	long long bodyq;     /* atomic: request body bytes posted to the loop and not yet received */
	int bodywait;        /* atomic: Go waits for the loop to receive some of them */
	struct wisp_job *next;
} wisp_job;

/* wisp_ev is one hand-off from a Python thread to Go: the status and headers
 * (the first time), body bytes, then n bytes of a file (an fd of its own, which
 * Go closes), or the end of the response with its code and traceback. */
typedef struct wisp_ev {
	struct wisp_ev *next;
	wisp_job *job;
	uintptr_t handle;
	char *hdr;           /* "status\0name\0value\0..." or NULL (points into buf) */
	size_t hdrlen;
	char *data;          /* body bytes (points into buf) */
	size_t len;
	int fd;              /* -1: none */
	long long n;
	int done, code;
	char *err;           /* the app's traceback (done, malloc'd) */
	size_t errlen;
	int big;             /* from wisp_pool.c's cache of big events */
	int raw;             /* fd is the job's spill file: send what wisp_spill_claim gives, as it is */
	int credit;          /* ASGI: the app received request body; Go may read more (no job: not counted) */
	void *ref;           /* ASGI: the bytes object data points into (a held reference), or NULL */
	struct wisp_loop *rl; /* the loop that drops ref (wisp_loop_unref) */
	char buf[];
} wisp_ev;

/* wisp_pool_new makes a pool; efd is a non-blocking eventfd. A pool is never
 * freed: Go may release events after its threads are gone. */
wisp_pool *wisp_pool_new(int threads, int queue, int efd);
/* wisp_pool_work runs the calling thread as one of the pool's Python threads
 * until wisp_pool_quit; the thread's Python state is created on first use. */
int wisp_pool_work(wisp_pool *p); /* 1: the thread was written off and left */
/* wisp_pool_writeoff writes off the thread running j, stuck in the app past
 * the request timeout: the pool counts one thread more, so that another can
 * take queued jobs, and the stuck thread leaves (wisp_pool_work returns 1) as
 * soon as it is done with j. 1: done; 0: j is not in the app any more. */
int wisp_pool_writeoff(wisp_pool *p, wisp_job *j);
/* wisp_pool_submit fills j with a request (the environ is copied; the body,
 * pinned Go memory, is kept until the done event) and queues it: 0 queued, 1
 * queued while threads run (the caller may check for a stall), -1 the queue is
 * full, -2 out of memory. Go never writes a pointer into a C struct itself:
 * its write barrier would look at the stale value. */
int wisp_pool_submit(wisp_pool *p, wisp_job *j, int app, const char *env, size_t envlen, const char *body,
                     size_t bodylen, int bodyfd);
void wisp_pool_wake(wisp_pool *p);
void wisp_pool_stats(wisp_pool *p, int *queued, int *running, unsigned long long *taken);
/* wisp_pool_oldest is how long the oldest queued job has waited for a thread
 * (ns), 0 when none waits. */
long long wisp_pool_oldest(wisp_pool *p);
/* wisp_pool_drain takes up to max events; with none, it arms the eventfd wake-up
 * and returns 0, or -1 once the pool has quit and every event was taken. */
int wisp_pool_drain(wisp_pool *p, wisp_ev **out, int max);
void wisp_pool_quit(wisp_pool *p);
/* wisp_pool_closed tells the drainer that the threads have exited. */
void wisp_pool_closed(wisp_pool *p);
/* wisp_ev_free frees an event Go is done with, which lets its thread go on if
 * it waited for room. */
void wisp_ev_free(wisp_ev *e);
/* wisp_job_direct lets the thread running j write the rest of its body to
 * fd itself, with the given framing and limits, whenever no hand-off is
 * waiting for Go: 1 if taken (j closes fd when it ends), 0 if not (the job
 * ended, or a file is on its way). left is the body Go's writes left to the
 * Content-Length (-1: none); rate, grace and timeout bound each write as Go's
 * own writes are (0: no bound). */
int wisp_job_direct(wisp_job *j, int fd, int chunked, long long left, long long rate, long long grace_ns,
                    long long timeout_ns, long long sent, long long waited_ns);
/* wisp_pool_spill lets the pool's direct writes spill what a slow client
 * does not take at once into temp files in dir, within the budget at *free
 * (bytes, shared with Go through atomics): the app's thread goes on instead of
 * waiting for the client. */
void wisp_pool_spill(wisp_pool *p, long long *free, const char *dir);
/* wisp_spill_claim takes the bytes waiting in j's spill file (for the Go
 * side that holds its raw event); 0 ends that event's work. */
long long wisp_spill_claim(wisp_job *j);
/* wisp_job_reset clears j's per-request state before it is queued again. */
void wisp_job_reset(wisp_pool *p, wisp_job *j);
/* wisp_emit_nowait queues a hand-off of an ASGI job without waiting (an event
 * loop must not block): 0, or 1 if the window is full after it (the loop gets
 * a resume message once Go has written half of it), or -1 if j was aborted or
 * memory ran out. */
int wisp_emit_nowait(wisp_job *j, const char *hdr, size_t hl, const char *a, size_t al);
/* wisp_emit_ref_nowait is wisp_emit_nowait without copying a: it points into
 * the bytes object ref, whose reference the event takes over (on 0 or 1; on
 * -1 the caller still owns it). When Go releases the event, the reference
 * goes back to j's loop, which drops it holding the GIL (wisp_loop_unref). */
int wisp_emit_ref_nowait(wisp_job *j, const char *hdr, size_t hl, const char *a, size_t al, void *ref);
/* wisp_emit_file_nowait hands Go the fd (n bytes of a file, sent with
 * sendfile; Go closes it) as wisp_emit_nowait hands bytes; on -1 (the job was
 * aborted) the fd is closed. */
int wisp_emit_file_nowait(wisp_job *j, const char *hdr, size_t hl, int fd, long long n);
/* wisp_emit_credit tells Go that the app received request body bytes. */
void wisp_emit_credit(wisp_job *j);
/* wisp_job_abort tells the thread running j that its client is gone. */
void wisp_job_abort(wisp_job *j);

unsigned long wisp_job_ident(wisp_job *j);

/* ---- ASGI: one event loop per process (wisp_asgi.c) ----
 *
 * Go queues messages for the loop (a new request, body chunks, a disconnect,
 * a cancel) in C and wakes the loop through an eventfd it watches
 * (add_reader) only when it waits; the loop drains every queued message per
 * wake-up. Responses come back as events of the pool's completion queue. */
typedef struct wisp_loop wisp_loop;
enum {
	WISP_A_NEW = 1,      /* a request: data is its scope, body its first body bytes */
	WISP_A_BODY = 2,     /* more request body */
	WISP_A_GONE = 3,     /* the client went away: http.disconnect; of a WebSocket: app = the close code, data its reason */
	WISP_A_CANCEL = 4,   /* the request timed out: cancel its task */
	WISP_A_RESUME = 5,   /* room in the response window again (from wisp_ev_free) */
	WISP_A_LIFESPAN = 6, /* more = 0 startup, 1 shutdown; data is the mode; done event carries the outcome */
	WISP_A_PING = 7,     /* answered with a done event: the loop runs */
	WISP_A_QUIT = 8,     /* stop the loop */
	WISP_A_WS = 9,       /* a WebSocket handshake: data is its scope (as NEW's) */
	WISP_A_MSG = 10,     /* a WebSocket's message: body; more = 1 text, 2 binary */
};
/* WISP_MSG_COST is what a WebSocket message counts against WISP_BODY_AHEAD
 * beyond its bytes (its queue entry, and the tuple and dict made of it), so
 * that a flood of empty messages is bounded too. */
#define WISP_MSG_COST 256
/* WISP_BODY_AHEAD is how much request body Go may post before the app has
 * received it: beyond, Go reads no more from the client until the app has
 * taken half of it. */
#define WISP_BODY_AHEAD (256 * 1024)
wisp_loop *wisp_loop_new(int efd);
/* wisp_loop_submit readies j for a request (or a control message) of the
 * loop, with gen identifying it, and posts it: see wisp_loop_post. */
int wisp_loop_submit(wisp_loop *l, wisp_pool *p, wisp_job *j, int kind, unsigned long long gen, int app, int more,
                     const char *data, size_t dl, const char *body, size_t bl);
/* wisp_loop_post queues a message: data (the scope, the lifespan mode) and
 * body are copied. 0, or -1 if the loop has stopped or memory ran out. */
int wisp_loop_post(wisp_loop *l, int kind, wisp_job *j, int app, int more, const char *data, size_t dl,
                   const char *body, size_t bl);
/* wisp_loop_run runs the loop on the calling thread until WISP_A_QUIT; kind
 * is auto, asyncio or uvloop. It returns NULL, or why it could not run (malloc'd). */
char *wisp_loop_run(wisp_loop *l, const char *kind, const char *src);
/* wisp_app_interface tells whether app is ASGI: want is auto, asgi or wsgi.
 * 1 ASGI, 0 WSGI, -1 with *err (malloc'd). Main thread. */
int wisp_app_interface(int app, const char *want, const char *src, char **err);
/* wisp_asgi_job is the handle of the job whose ASGI request the calling
 * thread's context serves, or 0 (GIL held); wisp_loop_inspect describes
 * from another thread what blocks the loop (j NULL) or where the task of
 * (j, gen) stands (malloc'd, *n bytes). */
uintptr_t wisp_asgi_job(void);
char *wisp_loop_inspect(wisp_job *j, unsigned long long gen, size_t *n);
/* used by wisp_asgi.c */
void *wisp_app_object(int app);
void wisp_main_acquire(void);
void wisp_main_release(void);
void wisp_loop_resume(wisp_job *j);
/* wisp_loop_unref takes a released event whose ref the loop drops, holding
 * the GIL, at its next drain, before wisp_ev_dispose frees it; any thread. */
void wisp_loop_unref(wisp_loop *l, wisp_ev *e);
void wisp_ev_dispose(wisp_ev *e);
int wisp_job_running(wisp_job *j);

/* used by wisp_py.c on a pool thread */
int wisp_emit(wisp_job *j, const char *hdr, size_t hl, const char *a, size_t al, const char *b, size_t bl, int fd,
              long long n);
/* wisp_emit_done ends j's response (the last body bytes, the outcome); with
 * ref (ASGI: the bytes object body points into) the body is not copied and
 * the event takes the reference, if it returns 1. */
int wisp_emit_done(wisp_job *j, const char *hdr, size_t hl, const char *body, size_t bl, int code, char *err,
                   size_t errlen, void *ref);
void wisp_run_job(wisp_job *j);
/* wisp_emit_log queues a message for the error log (an event without a job,
 * its level in code) if the calling thread is a pool thread; else it returns -1. */
int wisp_emit_log(int level, const char *msg, size_t n);

/* wisp_acquire and wisp_release take and drop the GIL for the calling OS
 * thread (whose Python thread state wisp_acquire creates on first use). */
void wisp_acquire(void);
void wisp_release(void);

/* ---- fatal signals in app code (wisp_crash.c) ---- */
extern __thread wisp_job *wisp_crash_job; /* the job this thread runs in its app, or NULL */
/* wisp_crash_loop is set on the thread of the ASGI event loop: a fatal
 * signal there is app code's too (a coroutine's), reported as wisp_crash_job's. */
extern __thread int wisp_crash_loop;
int wisp_crash_install(int fd, const char *prefix);

int wisp_set_multithread(int app, int on);
/* wisp_beat is the interpreter's heartbeat: it takes the GIL for the calling
 * thread, reads the garbage collector's count when count is set (else
 * returns -1), and drops the GIL. It returns when a thread holding the GIL
 * lets it go. */
long long wisp_beat(int count);
int wisp_finalize(void);
char *wisp_interrupt_begin(unsigned long ident);
int wisp_interrupt_raise(unsigned long ident);

#endif
