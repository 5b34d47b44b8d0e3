/* handoff.h: the C half of the hand-off benchmark (see main.go).
 *
 * A request queue from Go to the event loop, in the variants measured, and a
 * completion queue back to Go built as wisp_pool.c's is (a mutex, a list and
 * an eventfd written only when its reader sleeps). Nothing here is part of
 * wisp: it copies the shape of wisp_asgi.c and wisp_pool.c so that the
 * mechanisms can be compared in one process.
 */
#ifndef HANDOFF_H
#define HANDOFF_H

#include <stdint.h>

/* Mechanisms (main.go's mechs). */
enum {
	HB_ARMED = 0, /* a: eventfd written only when the loop has drained everything */
	HB_EACH = 1,  /* b: eventfd written for every message, the loop drains everything */
	HB_SEM = 2,   /* b1: a semaphore eventfd written for every message, one message per wake-up */
	HB_CST = 3,   /* c: loop.call_soon_threadsafe called from Go through cgo */
	HB_PIPE = 4,  /* d: as a, with a pipe for the eventfd */
	HB_POLL = 5,  /* e: the loop drains the queue on every iteration, no fd */
	HB_CSTG = 6,  /* c1: as c, with PyGILState_Ensure and Release around each call */
	HB_ARMEDC = 7, /* a2: as a, with a reader callback in C (reads the fd, calls the handler per message) */
};

/* hb_counts are the counters of one run. */
typedef struct hb_counts {
	unsigned long long req_writes;  /* writes to the loop's fd */
	unsigned long long loop_wakes;  /* times the loop took messages (drain calls that found some) */
	unsigned long long loop_empty;  /* drain calls that found none (spurious wake-ups, polls) */
	unsigned long long resp_writes; /* writes to the completion eventfd */
	int loop_tid;                   /* the loop thread's id (for /proc/self/task/tid/status) */
} hb_counts;

/* hb_init starts the interpreter; 0 or -1 (the error printed). */
int hb_init(void);
/* hb_setup prepares a run of mechanism mech; the loop's thread then calls
 * hb_run. It returns the completion eventfd Go reads, or -1. With a handle
 * (not 0), answers do not go through the completion queue: done(id) calls
 * the exported Go function goAnswer(handle, id) on the loop's thread. */
int hb_setup(int mech, uintptr_t handle);
/* hb_run runs the event loop (kind "asyncio" or "uvloop", work "call" or
 * "task") on the calling thread until hb_quit; NULL or an error (malloc'd). */
char *hb_run(const char *src, const char *kind, const char *work);
/* hb_ready reports whether the loop of this run is running. */
int hb_ready(void);
/* hb_loop_cpu is the CPU time (ns) the loop's thread has used, -1 before it runs. */
long long hb_loop_cpu(void);
/* hb_post hands the loop message id (>= 0); 0, or -1 when it failed. */
int hb_post(long long id);
/* hb_quit stops the loop. */
void hb_quit(void);
/* hb_drain takes up to max completed ids; with none it arms the completion
 * eventfd and returns 0. */
int hb_drain(long long *out, int max);
/* hb_teardown closes the fds of the run (after hb_run returned). */
void hb_teardown(void);
void hb_get_counts(hb_counts *c);

#endif
