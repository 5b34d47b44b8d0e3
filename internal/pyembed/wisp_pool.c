/* wisp_pool.c: the queue between Go and the Python threads, in both directions.
 *
 * Jobs go in through a bounded queue; a thread that finds it empty parks on a
 * condition variable. Threads are woken lazily: a job wakes one only when none
 * is running (a running thread takes queued jobs one after another under one
 * GIL hold, with no hand-off); Go's watcher wakes more when the queue stalls
 * (wisp_pool_wake). Responses come back as events on one completion queue,
 * drained by a Go goroutine that sleeps on an eventfd, written only when that
 * goroutine is asleep. No Python API is used here except through wisp_py.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "wisp_py.h"

/* MAX_BATCH bounds the jobs one thread runs under one GIL acquisition;
 * CONTENDED_NS is how long taking the GIL may take before it counts as waiting
 * for another thread; MAX_INFLIGHT bounds the data events of one response that
 * Go has not written yet (with 64 KiB each, the memory of a streaming response);
 * a thread that waits for room is woken when half of them are written, so that
 * it makes several hand-offs per wake-up. */
#define MAX_BATCH 64
#define CONTENDED_NS 200000LL
#define MAX_INFLIGHT 16
/* MAX_INFLIGHT_BYTES bounds the bytes of those events too: a response of big
 * items (100 MB each) keeps one in flight, not eight. */
#define MAX_INFLIGHT_BYTES (1 << 20)
#ifndef SPIN_NS
#define SPIN_NS 50000LL
#endif

struct wisp_pool {
	pthread_mutex_t mu; /* the job queue and thread counts */
	pthread_cond_t wake;
	wisp_job *head, *tail;
	int queued, cap;
	int threads;
	int tokens;  /* wake-ups granted and not yet taken by a parked thread */
	int running; /* threads taking jobs */
	int quit;
	unsigned long long taken; /* jobs taken so far (atomic) */

	pthread_mutex_t emu; /* the completion queue and every job's inflight */
	wisp_ev *ehead, *etail;
	int armed;  /* the drainer sleeps on the eventfd */
	int closed; /* the threads have exited */
	int efd;

	long long *sfree; /* the spill budget (atomic), or NULL: no response spill */
	char *sdir;
};

/* MAX_RESPONSE_SPILL bounds the spill file of one response (as nginx's
 * proxy_max_temp_file_size): beyond, the app's thread waits for the client. */
#define MAX_RESPONSE_SPILL (1LL << 30)
/* SPILL_AFTER_NS is how long a direct write waits for the client (or for Go
 * to write what is queued before it) before what is left goes to the spill:
 * a client that keeps up never costs a write to disk, even on a machine so
 * busy that a reader or Go's writer misses a few time slices (at 20 ms, a
 * fifth of the blocks of a loaded stream benchmark went through the disk). */
#define SPILL_AFTER_NS 250000000LL

wisp_pool *wisp_pool_new(int threads, int queue, int efd) {
	wisp_pool *p = calloc(1, sizeof *p);
	if (!p) return NULL;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->wake, NULL);
	pthread_mutex_init(&p->emu, NULL);
	p->cap = queue;
	p->threads = threads;
	p->efd = efd;
	return p;
}

static long long now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* wake_locked grants one parked thread a wake-up. */
static void wake_locked(wisp_pool *p) {
	if (p->running + p->tokens < p->threads) {
		p->tokens++;
		pthread_cond_signal(&p->wake);
	}
}

/* wisp_job_reset clears j's per-request state (see wisp_py.h). */
void wisp_job_reset(wisp_pool *p, wisp_job *j) {
	j->next = NULL;
	j->pool = p;
	j->worker = NULL;
	j->inflight = 0;
	j->inbytes = 0;
	j->infiles = 0;
	j->ended = 0;
	j->waitcond = NULL;
	j->dfd = -1;
	j->dleft = -1;
	j->dsent = j->dsentw = j->dwaited = 0;
	j->derr = j->dover = 0;
	j->sfd = -1;
	j->swoff = j->sclaimed = 0;
	j->sraw = j->sbody = 0;
	j->bell = 0;
	__atomic_store_n(&j->aborted, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&j->running, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&j->ident, 0, __ATOMIC_RELAXED);
	j->waited = 0;
	j->loop = NULL;
	j->resume = 0;
	__atomic_store_n(&j->bodyq, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&j->bodywait, 0, __ATOMIC_RELAXED);
}

int wisp_pool_submit(wisp_pool *p, wisp_job *j, int app, const char *env, size_t envlen, const char *body,
                     size_t bodylen, int bodyfd) {
	if (envlen > j->envcap) {
		char *e = realloc(j->env, envlen);
		if (!e) return -2;
		j->env = e;
		j->envcap = envlen;
	}
	if (envlen) memcpy(j->env, env, envlen);
	j->envlen = envlen;
	j->app = app;
	j->body = body;
	j->bodylen = bodylen;
	j->bodyfd = bodyfd;
	wisp_job_reset(p, j);
	j->submitted = now_ns();
	pthread_mutex_lock(&p->mu);
	if (p->queued >= p->cap || p->quit) {
		pthread_mutex_unlock(&p->mu);
		return -1;
	}
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	__atomic_add_fetch(&p->queued, 1, __ATOMIC_RELAXED); /* read without the lock by spinning threads */
	int rc = 1;
	if (p->running == 0 && p->tokens == 0) {
		wake_locked(p);
		rc = 0;
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

void wisp_pool_wake(wisp_pool *p) {
	pthread_mutex_lock(&p->mu);
	if (p->queued > 0) wake_locked(p);
	pthread_mutex_unlock(&p->mu);
}

void wisp_pool_stats(wisp_pool *p, int *queued, int *running, unsigned long long *taken) {
	pthread_mutex_lock(&p->mu);
	*queued = p->queued;
	*running = p->running;
	pthread_mutex_unlock(&p->mu);
	*taken = __atomic_load_n(&p->taken, __ATOMIC_RELAXED);
}

long long wisp_pool_oldest(wisp_pool *p) {
	pthread_mutex_lock(&p->mu);
	long long w = p->head ? now_ns() - p->head->submitted : 0;
	pthread_mutex_unlock(&p->mu);
	return w;
}

/* wthread is a pool thread's own state; retire is set (under the pool's lock)
 * when the thread was written off. */
typedef struct wthread {
	int retire;
} wthread;

/* tself is the calling pool thread's state. */
static __thread wthread *tself;

static wisp_job *pop_locked(wisp_pool *p) {
	wisp_job *j = p->head;
	if (!j) return NULL;
	j->worker = tself;
	j->waited = now_ns() - j->submitted;
	p->head = j->next;
	if (!p->head) p->tail = NULL;
	__atomic_sub_fetch(&p->queued, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&p->taken, 1, __ATOMIC_RELAXED);
	return j;
}

static wisp_job *poll_job(wisp_pool *p) {
	pthread_mutex_lock(&p->mu);
	wisp_job *j = tself->retire ? NULL : pop_locked(p); /* written off: take no more */
	pthread_mutex_unlock(&p->mu);
	return j;
}

/* batch runs j and then, while more jobs are queued, those too without
 * dropping the GIL in between (Python still switches threads every switch
 * interval when another thread wants the GIL). It reports whether taking the
 * GIL had to wait for another thread. */
static int batch(wisp_pool *p, wisp_job *j) {
	long long t0 = now_ns();
	wisp_acquire();
	int contended = now_ns() - t0 > CONTENDED_NS;
	for (int n = 1;; n++) {
		wisp_run_job(j);
		if (n == MAX_BATCH || !(j = poll_job(p))) break;
	}
	wisp_release();
	return contended;
}

/* tpool is the pool of the calling thread, if it is a pool thread. */
static __thread wisp_pool *tpool;

static int work(wisp_pool *p);

/* THREAD_NAME is what a pool thread is called while it serves (ps -L,
 * top -H, /proc/PID/task/TID/comm): the Python threads stand apart from
 * Go's. */
#define THREAD_NAME "wisp-python"

int wisp_pool_work(wisp_pool *p) {
	char was[16] = "";
	pthread_getname_np(pthread_self(), was, sizeof was);
	pthread_setname_np(pthread_self(), THREAD_NAME);
	int rc = work(p);
	pthread_setname_np(pthread_self(), was); /* the OS thread goes back to Go */
	return rc;
}

static int work(wisp_pool *p) {
	wthread self = {0};
	tself = &self;
	tpool = p;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->tokens && !p->quit) pthread_cond_wait(&p->wake, &p->mu);
		if (p->quit && !p->tokens) {
			/* finish what is queued, then leave */
			wisp_job *j;
			while ((j = pop_locked(p))) {
				pthread_mutex_unlock(&p->mu);
				batch(p, j);
				pthread_mutex_lock(&p->mu);
			}
			pthread_mutex_unlock(&p->mu);
			tpool = NULL;
			tself = NULL;
			return 0;
		}
		p->tokens--;
		p->running++;
		for (;;) {
			wisp_job *j = pop_locked(p);
			if (!j && SPIN_NS > 0) {
				/* Under load the next job is usually a few microseconds
				 * away: wait for it a little, yielding the CPU, rather than
				 * park and cost a wake-up on both sides. */
				pthread_mutex_unlock(&p->mu);
				long long t0 = now_ns();
				while (!__atomic_load_n(&p->queued, __ATOMIC_RELAXED) && now_ns() - t0 < SPIN_NS) sched_yield();
				pthread_mutex_lock(&p->mu);
				j = pop_locked(p);
			}
			if (!j) {
				p->running--;
				break;
			}
			pthread_mutex_unlock(&p->mu);
			int contended = batch(p, j);
			pthread_mutex_lock(&p->mu);
			if (self.retire) {
				/* written off while stuck: a replacement took its place */
				p->running--;
				p->threads--;
				pthread_mutex_unlock(&p->mu);
				tpool = NULL;
				tself = NULL;
				return 1;
			}
			if (contended && p->running > 1) {
				/* Another running thread held the GIL: two CPU-bound threads
				 * only trade it every switch interval (a convoy that makes tail
				 * latency). Step back; the watcher wakes threads again if the
				 * queue stalls. */
				p->running--;
				break;
			}
		}
	}
}

int wisp_pool_writeoff(wisp_pool *p, wisp_job *j) {
	int rc = 0;
	pthread_mutex_lock(&p->mu);
	/* running is cleared by the thread before it takes this lock to look at
	 * retire, so a thread seen running here will see retire set */
	wthread *t = j->worker;
	if (t && !t->retire && __atomic_load_n(&j->running, __ATOMIC_ACQUIRE)) {
		t->retire = 1;
		p->threads++;
		rc = 1;
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

void wisp_pool_quit(wisp_pool *p) {
	pthread_mutex_lock(&p->mu);
	p->quit = 1;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);
}

/* ---- completions ---- */

static void notify(wisp_pool *p) {
	uint64_t one = 1;
	while (write(p->efd, &one, sizeof one) < 0 && errno == EINTR) {
	}
}

/* push_locked appends e; it returns whether the drainer must be woken. */
static int push_locked(wisp_pool *p, wisp_ev *e) {
	e->next = NULL;
	if (p->etail)
		p->etail->next = e;
	else
		p->ehead = e;
	p->etail = e;
	if (p->armed) {
		p->armed = 0;
		return 1;
	}
	return 0;
}

void wisp_pool_closed(wisp_pool *p) {
	pthread_mutex_lock(&p->emu);
	p->closed = 1;
	int w = p->armed;
	p->armed = 0;
	pthread_mutex_unlock(&p->emu);
	if (w) notify(p);
}

int wisp_pool_drain(wisp_pool *p, wisp_ev **out, int max) {
	int n = 0;
	pthread_mutex_lock(&p->emu);
	while (n < max && p->ehead) {
		wisp_ev *e = p->ehead;
		p->ehead = e->next;
		if (!p->ehead) p->etail = NULL;
		out[n++] = e;
	}
	if (n == 0) {
		if (p->closed) n = -1;
		else p->armed = 1;
	}
	pthread_mutex_unlock(&p->emu);
	return n;
}

/* Events of a streaming response (64 KiB chunks and some headers) come and
 * go thousands of times a second; from malloc, each one grew and trimmed the
 * arena, faulting its pages in again. Up to EV_KEEP of them are kept. */
#define EV_BIG (68 * 1024)
#define EV_KEEP 32
static pthread_mutex_t evmu = PTHREAD_MUTEX_INITIALIZER;
static wisp_ev *evfree;
static int nevfree;

static wisp_ev *alloc_ev(size_t n) {
	if (n > EV_BIG) {
		wisp_ev *e = malloc(sizeof *e + n);
		if (e) e->big = 0;
		return e;
	}
	if (n > 4096) {
		pthread_mutex_lock(&evmu);
		wisp_ev *e = evfree;
		if (e) {
			evfree = e->next;
			nevfree--;
		}
		pthread_mutex_unlock(&evmu);
		if (!e && (e = malloc(sizeof *e + EV_BIG))) e->big = 1;
		return e;
	}
	wisp_ev *e = malloc(sizeof *e + n);
	if (e) e->big = 0;
	return e;
}

static void free_ev(wisp_ev *e) {
	if (e->big) {
		pthread_mutex_lock(&evmu);
		if (nevfree < EV_KEEP) {
			e->next = evfree;
			evfree = e;
			nevfree++;
			e = NULL;
		}
		pthread_mutex_unlock(&evmu);
	}
	free(e);
}

static wisp_ev *new_ev(wisp_job *j, const char *hdr, size_t hl, const char *a, size_t al, const char *b, size_t bl) {
	wisp_ev *e = alloc_ev(hl + al + bl);
	if (!e) return NULL;
	int big = e->big;
	memset(e, 0, sizeof *e);
	e->big = big;
	e->job = j;
	e->handle = j->handle;
	e->fd = -1;
	char *q = e->buf;
	if (hdr) {
		e->hdr = q;
		e->hdrlen = hl;
		memcpy(q, hdr, hl);
		q += hl;
	}
	e->data = q;
	if (al) memcpy(q, a, al);
	if (bl) memcpy(q + al, b, bl);
	e->len = al + bl;
	return e;
}

/* set_view makes e's data the al bytes at a, inside the bytes object ref
 * (ASGI), whose reference e takes: j's loop drops it once Go has written them. */
static void set_view(wisp_ev *e, wisp_job *j, const char *a, size_t al, void *ref) {
	e->data = (char *)a;
	e->len = al;
	e->ref = ref;
	e->rl = j->loop;
}

/* window_full: the thread must wait for Go to write earlier hand-offs.
 * Called holding emu. */
static int window_full(wisp_job *j) {
	return j->inflight >= MAX_INFLIGHT || (j->inflight > 0 && j->inbytes >= MAX_INFLIGHT_BYTES);
}

/* wait_window waits, without the GIL, until Go has written the earlier
 * hand-offs of j: enough of them (the window is full: a slow client), or all
 * of them (empty, before a direct write). It returns -1 if j was aborted
 * meanwhile. Lock order is GIL, then emu: the caller holds the GIL only. */
static int wait_window_nogil(wisp_job *j, int empty, long long until) {
	wisp_pool *p = j->pool;
	pthread_cond_t cond;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&cond, &ca);
	pthread_condattr_destroy(&ca);
	struct timespec ts = {.tv_sec = until / 1000000000LL, .tv_nsec = until % 1000000000LL};
	int rc = 0;
	pthread_mutex_lock(&p->emu);
	j->waitcond = &cond;
	j->waitempty = empty;
	while ((empty ? j->inflight > 0 : window_full(j)) && !__atomic_load_n(&j->aborted, __ATOMIC_ACQUIRE)) {
		if (!until) {
			pthread_cond_wait(&cond, &p->emu);
		} else if (pthread_cond_timedwait(&cond, &p->emu, &ts) == ETIMEDOUT) {
			rc = (empty ? j->inflight > 0 : window_full(j));
			break;
		}
	}
	j->waitcond = NULL;
	pthread_mutex_unlock(&p->emu);
	pthread_cond_destroy(&cond);
	return __atomic_load_n(&j->aborted, __ATOMIC_ACQUIRE) ? -1 : rc;
}

static int wait_window(wisp_job *j, int empty) {
	wisp_release();
	int rc = wait_window_nogil(j, empty, 0);
	wisp_acquire();
	return rc;
}

void wisp_pool_spill(wisp_pool *p, long long *free, const char *dir) {
	p->sdir = strdup(dir);
	p->sfree = p->sdir ? free : NULL;
}

/* budget_take reserves n bytes of the spill budget, if free. */
static int budget_take(wisp_pool *p, long long n) {
	long long f = __atomic_load_n(p->sfree, __ATOMIC_RELAXED);
	do {
		if (f < n) return 0;
	} while (!__atomic_compare_exchange_n(p->sfree, &f, f - n, 1, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
	return 1;
}

static void budget_give(wisp_pool *p, long long n) {
	if (n) __atomic_add_fetch(p->sfree, n, __ATOMIC_ACQ_REL);
}

static int open_spill(const char *dir) {
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)) return fd;
	/* no O_TMPFILE on this file system: a named file, unlinked at once */
	char path[4096];
	if (snprintf(path, sizeof path, "%s/wisp-response-XXXXXX", dir) >= (int)sizeof path) return -1;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0) unlink(path);
	return fd;
}

/* iov_advance drops the first w bytes of the cnt parts at *iov, after a
 * partial write. */
static void iov_advance(struct iovec **iov, int *cnt, size_t w) {
	struct iovec *q = *iov;
	while (*cnt > 0 && w >= q->iov_len) {
		w -= q->iov_len;
		q++;
		(*cnt)--;
	}
	if (*cnt > 0) {
		q->iov_base = (char *)q->iov_base + w;
		q->iov_len -= w;
	}
	*iov = q;
}

/* spill appends the iov (the rest of a body block, framing included) to j's
 * spill file, for Go to send when the client takes it, and makes sure an
 * event tells Go. It returns -1 when it cannot (no budget, the response's
 * bound reached, a failed write): the caller then waits for the client.
 * Called without the GIL, by the thread running j. */
static int spill(wisp_job *j, const struct iovec *iov, int cnt) {
	wisp_pool *p = j->pool;
	if (!p->sfree) return -1;
	long long r = 0;
	for (int i = 0; i < cnt; i++) r += (long long)iov[i].iov_len;
	if (r == 0) return 0;
	if (j->swoff + r > MAX_RESPONSE_SPILL || !budget_take(p, r)) return -1;
	if (j->sfd < 0 && (j->sfd = open_spill(p->sdir)) < 0) {
		budget_give(p, r);
		return -1;
	}
	struct iovec v[4];
	memcpy(v, iov, (size_t)cnt * sizeof *v);
	struct iovec *q = v;
	long long off = j->swoff, left = r;
	while (left > 0) {
		ssize_t w = pwritev(j->sfd, q, cnt, off);
		if (w < 0 && errno == EINTR) continue;
		if (w <= 0) {
			budget_give(p, r);
			return -1; /* the bytes past swoff are not part of the spill */
		}
		off += w;
		left -= w;
		iov_advance(&q, &cnt, (size_t)w);
	}
	pthread_mutex_lock(&p->emu);
	j->swoff += r;
	j->sraw += r;
	int ring = !j->bell;
	j->bell = 1;
	pthread_mutex_unlock(&p->emu);
	if (!ring) return 0; /* Go is sending from the file: it claims these bytes too */
	wisp_ev *e = NULL;
	int fd = fcntl(j->sfd, F_DUPFD_CLOEXEC, 0); /* shares the file offset Go reads at */
	while (fd >= 0 && !(e = new_ev(j, NULL, 0, NULL, 0, NULL, 0))) usleep(1000);
	if (fd < 0) {
		/* cannot tell Go: take the bytes back and wait for the client */
		pthread_mutex_lock(&p->emu);
		j->swoff -= r;
		j->sraw -= r;
		j->bell = 0;
		pthread_mutex_unlock(&p->emu);
		budget_give(p, r);
		return -1;
	}
	e->fd = fd;
	e->raw = 1;
	pthread_mutex_lock(&p->emu);
	j->inflight++;
	int w = push_locked(p, e);
	pthread_mutex_unlock(&p->emu);
	if (w) notify(p);
	return 0;
}

long long wisp_spill_claim(wisp_job *j) {
	wisp_pool *p = j->pool;
	pthread_mutex_lock(&p->emu);
	long long n = j->swoff - j->sclaimed;
	if (n == 0)
		j->bell = 0; /* the next spilled bytes come with a new event */
	else
		j->sclaimed = j->swoff;
	pthread_mutex_unlock(&p->emu);
	return n;
}

/* spill_reset empties j's spill file once Go has sent all of it and holds
 * no event of it, giving its space back. */
static void spill_reset(wisp_job *j) {
	if (j->sfd < 0 || j->swoff == 0) return;
	if (ftruncate(j->sfd, 0) == 0 && lseek(j->sfd, 0, SEEK_SET) == 0) {
		budget_give(j->pool, j->swoff);
		j->swoff = j->sclaimed = 0;
	}
}

/* direct_deadline is when a direct write of n bytes that started at t0 must
 * have finished: the write timeout, or sooner if the client would otherwise
 * take less than the minimum rate (as h1's setWriteDeadline); 0: never. */
static long long direct_deadline(wisp_job *j, long long t0, size_t n) {
	long long dl = j->dtimeout > 0 ? t0 + j->dtimeout : 0;
	if (j->drate > 0) {
		double sent = (double)(j->dsent0 + j->dsentw + (long long)n);
		long long allowed = j->dgrace + (long long)(sent / (double)j->drate * 1e9) - (j->dwaited0 + j->dwaited);
		if (allowed < 1000000) allowed = 1000000;
		if (!dl || t0 + allowed < dl) dl = t0 + allowed;
	}
	return dl;
}

/* direct_send writes the n body bytes of iov (cnt parts, framing included,
 * the body starting pre bytes in) to the socket, waiting for room in poll(2)
 * up to the deadline, or leaves the rest to Go in the spill (*spilled: the
 * body bytes among it) when Go still sends earlier bytes or the client took
 * nothing for SPILL_AFTER_NS. It returns 0 or an errno (ETIMEDOUT: the client
 * is too slow). Called without the GIL. */
static int direct_send(wisp_job *j, struct iovec *iov, int cnt, size_t n, size_t pre, size_t *spilled) {
	size_t done = 0; /* bytes of the iov sent */
	*spilled = 0;
	wisp_pool *p = j->pool;
	long long t0 = now_ns(), dl = -1;
	for (int tried = 0;;) {
		/* Go still sends earlier bytes. From the spill (the client is
		 * slow): go behind them there. Hand-offs from before the socket was
		 * handed over: wait a little for Go, then spill. Without room in
		 * the spill, wait until Go is done. */
		pthread_mutex_lock(&p->emu);
		int busy = j->inflight > 0, ringing = j->bell;
		pthread_mutex_unlock(&p->emu);
		if (!busy) break;
		if (!ringing && !tried) {
			tried = 1;
			int rc = wait_window_nogil(j, 1, t0 + SPILL_AFTER_NS);
			if (rc < 0) return EPIPE;
			continue;
		}
		if (spill(j, iov, cnt) == 0) {
			*spilled = n;
			return 0;
		}
		if (wait_window_nogil(j, 1, 0) < 0) return EPIPE;
	}
	spill_reset(j);
	int nospill = 0;
	while (cnt > 0) {
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
		ssize_t w = sendmsg(j->dfd, &m, MSG_NOSIGNAL);
		if (w >= 0) {
			done += (size_t)w;
			iov_advance(&iov, &cnt, (size_t)w);
			continue;
		}
		if (errno == EINTR) continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) return errno;
		if (__atomic_load_n(&j->aborted, __ATOMIC_ACQUIRE)) return EPIPE;
		/* A client that has not taken anything for SPILL_AFTER_NS gets the
		 * rest from the spill, sent by Go, and the app goes on. */
		long long now = now_ns();
		if (!nospill && now - t0 >= SPILL_AFTER_NS) {
			if (spill(j, iov, cnt) == 0) {
				/* the body bytes among those spilled: the body is [pre, pre+n) of the iov */
				size_t from = done > pre ? done : pre;
				*spilled = pre + n > from ? pre + n - from : 0;
				return 0;
			}
			nospill = 1;
		}
		if (dl < 0) dl = direct_deadline(j, t0, n);
		long long until = dl;
		if (dl > 0 && now >= dl) return ETIMEDOUT;
		if (!nospill && (!until || t0 + SPILL_AFTER_NS < until)) until = t0 + SPILL_AFTER_NS;
		int ms = until ? (int)((until - now + 999999) / 1000000) : -1;
		struct pollfd pfd = {.fd = j->dfd, .events = POLLOUT};
		if (poll(&pfd, 1, ms) < 0 && errno != EINTR) return errno;
	}
	long long d = now_ns() - t0;
	if (d > 1000000) {
		/* only writes that waited for the client count for the rate (h1's wrote) */
		j->dsentw += (long long)n;
		j->dwaited += d;
	}
	return 0;
}

/* direct_write writes body bytes a then b to the client itself, without the
 * GIL: the app's buffers go straight to the socket, with no hand-off to Go. */
static int direct_write(wisp_job *j, const char *a, size_t al, const char *b, size_t bl) {
	size_t n = al + bl;
	int over = 0;
	if (j->dleft >= 0 && (long long)n > j->dleft) {
		/* past the Content-Length: send what was declared and stop the app */
		over = 1;
		n = (size_t)j->dleft;
		if (al > n) al = n;
		bl = n - al;
	}
	if (n > 0) {
		char pre[24];
		struct iovec iov[4];
		int k = 0;
		if (j->dchunked) {
			int m = snprintf(pre, sizeof pre, "%zx\r\n", n);
			iov[k++] = (struct iovec){pre, (size_t)m};
		}
		if (al) iov[k++] = (struct iovec){(void *)a, al};
		if (bl) iov[k++] = (struct iovec){(void *)b, bl};
		if (j->dchunked) iov[k++] = (struct iovec){(void *)"\r\n", 2};
		size_t spilled;
		wisp_release();
		int err = direct_send(j, iov, k, n, j->dchunked ? iov[0].iov_len : 0, &spilled);
		wisp_acquire();
		if (err) {
			j->derr = err;
			__atomic_store_n(&j->aborted, 1, __ATOMIC_RELEASE);
			return -1;
		}
		j->dsent += (long long)(n - spilled); /* spilled bytes count as Go sends them */
		j->sbody += (long long)spilled;
		if (j->dleft >= 0) j->dleft -= (long long)n;
	}
	if (over) {
		j->dover = 1;
		__atomic_store_n(&j->aborted, 1, __ATOMIC_RELEASE);
		return -1;
	}
	return 0;
}

int wisp_job_direct(wisp_job *j, int fd, int chunked, long long left, long long rate, long long grace_ns,
                    long long timeout_ns, long long sent, long long waited_ns) {
	wisp_pool *p = j->pool;
	int ok = 0;
	pthread_mutex_lock(&p->emu);
	if (!j->ended && !j->infiles && j->dfd < 0) {
		/* the hand-offs still on their way to Go come out of the Content-Length first */
		if (left >= 0) {
			left -= (long long)j->inbytes;
			if (left < 0) left = 0;
		}
		j->dchunked = chunked;
		j->dleft = left;
		j->drate = rate;
		j->dgrace = grace_ns;
		j->dtimeout = timeout_ns;
		j->dsent0 = sent;
		j->dwaited0 = waited_ns;
		__atomic_store_n(&j->dfd, fd, __ATOMIC_RELEASE); /* last: wisp_emit reads it without the lock */
		ok = 1;
	}
	pthread_mutex_unlock(&p->emu);
	return ok;
}

int wisp_emit(wisp_job *j, const char *hdr, size_t hl, const char *a, size_t al, const char *b, size_t bl, int fd,
              long long n) {
	wisp_pool *p = j->pool;
	if (__atomic_load_n(&j->aborted, __ATOMIC_ACQUIRE)) return -1;
	/* Body bytes once Go handed over the socket: this thread writes them
	 * (direct_send first lets Go finish the hand-offs still on their way). */
	if (!hdr && fd < 0 && __atomic_load_n(&j->dfd, __ATOMIC_ACQUIRE) >= 0) return direct_write(j, a, al, b, bl);
	wisp_ev *e = new_ev(j, hdr, hl, a, al, b, bl);
	if (!e) return -1;
	e->fd = fd;
	e->n = n;
	/* A file (wsgi.file_wrapper) may queue behind a spill that Go still
	 * sends: it is the end of the response, so no spilled byte can follow
	 * it into that spill's claims. */
	pthread_mutex_lock(&p->emu);
	if (window_full(j)) {
		pthread_mutex_unlock(&p->emu);
		if (wait_window(j, 0) < 0) {
			free_ev(e);
			return -1;
		}
		pthread_mutex_lock(&p->emu);
	}
	j->inflight++;
	j->inbytes += e->len;
	if (fd >= 0) j->infiles++;
	if (j->dfd >= 0 && j->dleft >= 0) {
		/* Go writes this hand-off: it comes out of what direct writes may send */
		j->dleft -= (long long)e->len + (fd >= 0 ? n : 0);
		if (j->dleft < 0) j->dleft = 0;
	}
	int w = push_locked(p, e);
	pthread_mutex_unlock(&p->emu);
	if (w) notify(p);
	return 0;
}

int wisp_emit_done(wisp_job *j, const char *hdr, size_t hl, const char *body, size_t bl, int code, char *err,
                   size_t errlen, void *ref) {
	wisp_pool *p = j->pool;
	wisp_ev *e = new_ev(j, hdr, hl, ref ? NULL : body, ref ? 0 : bl, NULL, 0);
	int took = e && ref;
	if (took) set_view(e, j, body, bl, ref);
	if (!e) {
		/* no memory for the body: end the response as failed */
		if (code == WISP_OK) code = hdr ? WISP_ERR_EARLY : WISP_ERR_LATE;
		while (!(e = new_ev(j, NULL, 0, NULL, 0, NULL, 0))) usleep(1000);
	}
	e->done = 1;
	e->code = code;
	e->err = err;
	e->errlen = errlen;
	pthread_mutex_lock(&p->emu);
	j->ended = 1;
	if (j->dfd >= 0) {
		close(j->dfd); /* Go may close the connection once it has the done event */
		j->dfd = -1;
	}
	if (j->sfd >= 0) {
		close(j->sfd); /* Go's event holds its own descriptor; Go gives back the space (swoff) */
		j->sfd = -1;
	}
	int w = push_locked(p, e);
	pthread_mutex_unlock(&p->emu);
	if (w) notify(p);
	/* j belongs to Go from here on */
	return took;
}

int wisp_emit_log(int level, const char *msg, size_t n) {
	wisp_pool *p = tpool;
	if (!p) return -1;
	wisp_ev *e = alloc_ev(n);
	if (!e) return -1;
	int big = e->big;
	memset(e, 0, sizeof *e);
	e->big = big;
	e->fd = -1;
	e->code = level;
	e->n = wisp_crash_job ? (long long)wisp_crash_job->handle : 0; /* the request it belongs to (trace) */
	e->data = e->buf;
	memcpy(e->buf, msg, n);
	e->len = n;
	pthread_mutex_lock(&p->emu);
	int w = push_locked(p, e);
	pthread_mutex_unlock(&p->emu);
	if (w) notify(p);
	return 0;
}

void wisp_ev_free(wisp_ev *e) {
	if (!e->done && e->job) {
		wisp_job *j = e->job;
		wisp_pool *p = j->pool;
		pthread_mutex_lock(&p->emu);
		j->inflight--;
		j->inbytes -= e->len;
		if (e->fd >= 0 && !e->raw) j->infiles--;
		/* wake the thread when half the window is free: several hand-offs per wake-up */
		if (j->waitcond && (j->inflight == 0 || (!j->waitempty && j->inflight <= MAX_INFLIGHT / 2 &&
		                                         j->inbytes <= MAX_INFLIGHT_BYTES / 2)))
			pthread_cond_signal(j->waitcond);
		/* an ASGI send() waits for the same room: tell its loop */
		int resume = j->resume && j->inflight <= MAX_INFLIGHT / 2 && j->inbytes <= MAX_INFLIGHT_BYTES / 2;
		if (resume) j->resume = 0;
		pthread_mutex_unlock(&p->emu);
		if (resume) wisp_loop_resume(j);
	}
	free(e->err);
	e->err = NULL;
	if (e->ref) {
		wisp_loop_unref(e->rl, e); /* the bytes object goes back under the GIL, then e */
		return;
	}
	free_ev(e);
}

void wisp_ev_dispose(wisp_ev *e) { free_ev(e); }

void wisp_job_abort(wisp_job *j) {
	__atomic_store_n(&j->aborted, 1, __ATOMIC_RELEASE);
	wisp_pool *p = j->pool;
	if (!p) return;
	pthread_mutex_lock(&p->emu);
	if (j->waitcond) pthread_cond_signal(j->waitcond);
	pthread_mutex_unlock(&p->emu);
}

unsigned long wisp_job_ident(wisp_job *j) { return __atomic_load_n(&j->ident, __ATOMIC_ACQUIRE); }
int wisp_job_running(wisp_job *j) { return __atomic_load_n(&j->running, __ATOMIC_ACQUIRE); }

/* ---- ASGI hand-offs (the event loop must never wait here) ---- */

/* emit_nowait queues e, a hand-off of an ASGI job (see wisp_emit_nowait). */
static int emit_nowait(wisp_job *j, wisp_ev *e) {
	wisp_pool *p = j->pool;
	pthread_mutex_lock(&p->emu);
	j->inflight++;
	j->inbytes += e->len;
	if (e->fd >= 0) j->infiles++;
	int full = window_full(j);
	if (full) j->resume = 1;
	int w = push_locked(p, e);
	pthread_mutex_unlock(&p->emu);
	if (w) notify(p);
	return full;
}

int wisp_emit_nowait(wisp_job *j, const char *hdr, size_t hl, const char *a, size_t al) {
	if (__atomic_load_n(&j->aborted, __ATOMIC_ACQUIRE)) return -1;
	wisp_ev *e = new_ev(j, hdr, hl, a, al, NULL, 0);
	return e ? emit_nowait(j, e) : -1;
}

int wisp_emit_ref_nowait(wisp_job *j, const char *hdr, size_t hl, const char *a, size_t al, void *ref) {
	if (__atomic_load_n(&j->aborted, __ATOMIC_ACQUIRE)) return -1;
	wisp_ev *e = new_ev(j, hdr, hl, NULL, 0, NULL, 0);
	if (!e) return -1;
	set_view(e, j, a, al, ref);
	return emit_nowait(j, e);
}

int wisp_emit_file_nowait(wisp_job *j, const char *hdr, size_t hl, int fd, long long n) {
	wisp_ev *e = __atomic_load_n(&j->aborted, __ATOMIC_ACQUIRE) ? NULL : new_ev(j, hdr, hl, NULL, 0, NULL, 0);
	if (!e) {
		close(fd);
		return -1;
	}
	e->fd = fd;
	e->n = n;
	return emit_nowait(j, e);
}

void wisp_emit_credit(wisp_job *j) {
	wisp_pool *p = j->pool;
	wisp_ev *e;
	while (!(e = new_ev(j, NULL, 0, NULL, 0, NULL, 0))) usleep(1000);
	e->job = NULL; /* not part of the response's window */
	e->credit = 1;
	pthread_mutex_lock(&p->emu);
	int w = push_locked(p, e);
	pthread_mutex_unlock(&p->emu);
	if (w) notify(p);
}
