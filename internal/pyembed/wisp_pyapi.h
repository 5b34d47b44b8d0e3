/* wisp_pyapi.h: the stable-ABI surface of libpython that wisp uses, declared by
 * hand (no Python header is included) and reached through the `py` table that
 * wisp_load_lib fills with dlsym. Shared by wisp_py.c (WSGI) and wisp_asgi.c
 * (ASGI); nothing outside this package's C sees it.
 */
#ifndef WISP_PYAPI_H
#define WISP_PYAPI_H

#include <stddef.h>
#include <sys/types.h>
#include <wchar.h>

/* ---- the minimal stable-ABI surface, declared by hand ---- */

typedef ssize_t Py_ssize_t;
typedef struct _typeobject PyTypeObject;
typedef struct _object {
	Py_ssize_t ob_refcnt;
	PyTypeObject *ob_type;
} PyObject;
typedef void PyThreadState;
typedef PyObject *(*PyCFunction)(PyObject *, PyObject *);
typedef struct PyMethodDef {
	const char *ml_name;
	PyCFunction ml_meth;
	int ml_flags;
	const char *ml_doc;
} PyMethodDef;

#define METH_VARARGS 0x0001
#define METH_KEYWORDS 0x0002
#define METH_O 0x0008
#define Py_file_input 257
#define TPF_LONG (1UL << 24)
#define TPF_LIST (1UL << 25)
#define TPF_TUPLE (1UL << 26)
#define TPF_BYTES (1UL << 27)
#define TPF_UNICODE (1UL << 28)
#define TPF_BASE_EXC (1UL << 30)
#define TPF_TYPE (1UL << 31)

#define WISP_API(X)                                                                   \
	X(void, Py_IncRef, (PyObject *))                                                  \
	X(void, Py_DecRef, (PyObject *))                                                  \
	X(void, Py_InitializeEx, (int))                                                   \
	X(int, Py_IsInitialized, (void))                                                  \
	X(int, Py_FinalizeEx, (void))                                                     \
	X(void, Py_SetProgramName, (const wchar_t *))                                     \
	X(wchar_t *, Py_DecodeLocale, (const char *, size_t *))                           \
	X(const char *, Py_GetVersion, (void))                                            \
	X(PyThreadState *, PyEval_SaveThread, (void))                                     \
	X(void, PyEval_RestoreThread, (PyThreadState *))                                  \
	X(int, PyGILState_Ensure, (void))                                                 \
	X(void, PyGILState_Release, (int))                                                \
	X(PyObject *, PyErr_Occurred, (void))                                             \
	X(void, PyErr_Fetch, (PyObject **, PyObject **, PyObject **))                     \
	X(void, PyErr_Restore, (PyObject *, PyObject *, PyObject *))                      \
	X(void, PyErr_NormalizeException, (PyObject **, PyObject **, PyObject **))        \
	X(void, PyErr_SetString, (PyObject *, const char *))                              \
	X(PyObject *, PyErr_Format, (PyObject *, const char *, ...))                      \
	X(void, PyErr_Clear, (void))                                                      \
	X(PyObject *, PyUnicode_DecodeLatin1, (const char *, Py_ssize_t, const char *))   \
	X(PyObject *, PyUnicode_DecodeUTF8, (const char *, Py_ssize_t, const char *))     \
	X(PyObject *, PyUnicode_FromString, (const char *))                               \
	X(PyObject *, PyUnicode_InternFromString, (const char *))                         \
	X(PyObject *, PyUnicode_AsLatin1String, (PyObject *))                             \
	X(PyObject *, PyUnicode_AsEncodedString, (PyObject *, const char *, const char *)) \
	X(PyObject *, PyUnicode_DecodeFSDefault, (const char *))                          \
	X(PyObject *, PyBytes_FromStringAndSize, (const char *, Py_ssize_t))              \
	X(int, PyBytes_AsStringAndSize, (PyObject *, char **, Py_ssize_t *))              \
	X(PyObject *, PyDict_New, (void))                                                 \
	X(PyObject *, PyDict_Copy, (PyObject *))                                          \
	X(int, PyDict_SetItem, (PyObject *, PyObject *, PyObject *))                      \
	X(int, PyDict_SetItemString, (PyObject *, const char *, PyObject *))              \
	X(PyObject *, PyDict_GetItemString, (PyObject *, const char *))                   \
	X(Py_ssize_t, PyDict_Size, (PyObject *))                                          \
	X(PyObject *, PyTuple_New, (Py_ssize_t))                                          \
	X(PyObject *, PyTuple_GetItem, (PyObject *, Py_ssize_t))                          \
	X(Py_ssize_t, PyTuple_Size, (PyObject *))                                         \
	X(int, PyTuple_SetItem, (PyObject *, Py_ssize_t, PyObject *))                     \
	X(Py_ssize_t, PyList_Size, (PyObject *))                                          \
	X(PyObject *, PyList_GetItem, (PyObject *, Py_ssize_t))                           \
	X(int, PyList_Insert, (PyObject *, Py_ssize_t, PyObject *))                       \
	X(PyObject *, PyLong_FromLong, (long))                                            \
	X(long, PyLong_AsLong, (PyObject *))                                              \
	X(long long, PyLong_AsLongLong, (PyObject *))                                     \
	X(PyObject *, PyLong_FromUnsignedLongLong, (unsigned long long))                  \
	X(unsigned long long, PyLong_AsUnsignedLongLong, (PyObject *))                    \
	X(PyObject *, PyBool_FromLong, (long))                                            \
	X(PyObject *, PyObject_GetAttrString, (PyObject *, const char *))                 \
	X(int, PyObject_SetAttrString, (PyObject *, const char *, PyObject *))            \
	X(int, PyObject_IsTrue, (PyObject *))                                            \
	X(PyObject *, PyObject_CallObject, (PyObject *, PyObject *))                      \
	X(PyObject *, PyObject_CallFunctionObjArgs, (PyObject *, ...))                    \
	X(PyObject *, PyObject_GetIter, (PyObject *))                                     \
	X(PyObject *, PyIter_Next, (PyObject *))                                          \
	X(int, PyObject_IsInstance, (PyObject *, PyObject *))                             \
	X(PyObject *, PyObject_Str, (PyObject *))                                         \
	X(unsigned long, PyType_GetFlags, (PyTypeObject *))                               \
	X(PyObject *, PyCFunction_NewEx, (PyMethodDef *, PyObject *, PyObject *))         \
	X(PyObject *, PyModule_New, (const char *))                                       \
	X(PyObject *, PyModule_GetDict, (PyObject *))                                     \
	X(PyObject *, PyImport_ImportModule, (const char *))                              \
	X(PyObject *, PyImport_GetModuleDict, (void))                                     \
	X(PyObject *, PySys_GetObject, (const char *))                                    \
	X(PyObject *, PyEval_GetBuiltins, (void))                                         \
	X(PyObject *, Py_CompileString, (const char *, const char *, int))                \
	X(PyObject *, PyEval_EvalCode, (PyObject *, PyObject *, PyObject *))              \
	X(unsigned long, PyThread_get_thread_ident, (void))                               \
	X(int, PyThreadState_SetAsyncExc, (unsigned long, PyObject *))                     \
	X(PyObject *, PyList_New, (Py_ssize_t))                                           \
	X(int, PyList_Append, (PyObject *, PyObject *))

#define WISP_FIELD(ret, name, args) ret(*name) args;
struct wisp_pyapi {
	WISP_API(WISP_FIELD)
};
extern struct wisp_pyapi py;
extern PyObject *Py_None_;
extern PyObject *exc_TypeError, *exc_ValueError, *exc_RuntimeError, *exc_OSError, *exc_TimeoutError;

#define INCREF(o) py.Py_IncRef((PyObject *)(o))
#define DECREF(o) py.Py_DecRef((PyObject *)(o))
#define XDECREF(o)              \
	do {                        \
		if (o) DECREF(o);       \
	} while (0)
#define FLAGS(o) py.PyType_GetFlags(((PyObject *)(o))->ob_type)

#endif
