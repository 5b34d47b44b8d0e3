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

/* Result codes of wisp_handle. */
enum {
	WISP_OK = 0,          /* response complete */
	WISP_ERR_EARLY = 1,   /* app failed before the headers were sent: answer 500 */
	WISP_ERR_LATE = 2,    /* app failed after the headers were sent: abort the connection */
	WISP_GONE = 3,        /* the client went away; the app's close() was called */
};

int wisp_load_lib(const char *path, char *err, size_t errlen);
const char *wisp_version(void);
int wisp_init(const char *program, uintptr_t log_handle, const char *boot,
              const char *keys, size_t keyslen, const char *paths, size_t pathslen,
              char **err);
int wisp_load_app(const char *target, int multithread, int multiprocess,
                  char **hint, char **err, char **tb);
void wisp_thread_detach(void);
/* wisp_out is what remains of a response when wisp_handle returns: the
 * headers if they were not handed to Go yet, the body bytes gathered since the
 * last hand-off (both valid until the thread's next request), and the app's
 * traceback on failure (malloc'd; the caller frees it). */
typedef struct wisp_out {
	const char *hdr;
	size_t hdrlen;
	const char *body;
	size_t bodylen;
	char *err;
	size_t errlen;
} wisp_out;

/* wisp_acquire and wisp_release take and drop the GIL for the calling OS
 * thread (whose Python thread state wisp_acquire creates on first use); a
 * thread may run several requests under one acquisition. */
void wisp_acquire(void);
void wisp_release(void);

/* wisp_handle runs one request on the calling worker thread, which holds the
 * GIL. The environ is a flat, pointer-free buffer: entries of [u8 key id][u32
 * len][value]; key id 0 is followed by [u32 len][key name] before the value.
 * The body is in memory (body, bodylen) or in the file bodyfd (>= 0). */
int wisp_handle(uintptr_t handle, int app, const char *env, size_t envlen, const char *body,
                size_t bodylen, int bodyfd, wisp_out *out);
int wisp_set_multithread(int app, int on);
int wisp_finalize(void);
unsigned long wisp_thread_ident(void);
char *wisp_interrupt_begin(unsigned long ident);
int wisp_interrupt_raise(unsigned long ident);

#endif
