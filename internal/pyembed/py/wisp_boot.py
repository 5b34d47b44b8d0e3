"""Python side of wisp's embedded interpreter.

The C shim executes this file once at start-up as the module ``_wisp_boot``
(it is placed in ``sys.modules['_wisp_boot']``; it has no ``__file__``), calls
:func:`install` once, and then :func:`load` once per mounted application.
Before this file runs, the C side provides the module ``_wisp`` with a single
function ``_wisp.log(level, msg)`` (0=debug, 1=info, 2=warning, 3=error) that
writes to the server's structured error log.

What lives here:

* :func:`load` turns a target string into ``(wsgi_app, handler_hint)``.
* :class:`FileWrapper` is ``wsgi.file_wrapper`` (the C side serves regular
  files wrapped in it with sendfile).
* :class:`ErrorStream` is ``wsgi.errors``: one shared, thread-safe text stream
  whose lines go to the server's error log.
* :func:`input_from_fd` builds ``wsgi.input`` over a request body that Go
  spilled to a temporary file.
* :func:`format_exception` renders a traceback for the log, never raising.
* :func:`install` puts compatibility modules in place so that scripts written
  for ISAPI-WSGI under IIS run unchanged: ``isapi_wsgi``, ``win32traceutil``
  and (only where the real one is missing or unusable)
  ``paste.script.util.logging_config``.

This file must stay importable on CPython 3.9 and newer and use only the
standard library at import time.
"""

import importlib
import importlib.machinery
import importlib.util
import io
import os
import sys
import threading

__all__ = [
    "LoadError",
    "load",
    "install",
    "FileWrapper",
    "ErrorStream",
    "input_from_fd",
    "format_exception",
    "ISAPISimpleHandler",
    "ISAPIThreadPoolHandler",
]

try:
    import _wisp
except ImportError:  # running outside wisp (e.g. a quick interactive check)
    _wisp = None

# Log levels understood by _wisp.log.
DEBUG, INFO, WARNING, ERROR = 0, 1, 2, 3
# Lines written to sys.stdout / sys.stderr: for the trace only (`wisp trace`).
STDOUT, STDERR = 10, 11


def _log(level, msg, now=False):
    """Send one message to the server's error log; never raises.

    now: written before this returns (the process is about to end), not
    queued for the server's log goroutine.
    Messages that the C side cannot take as they are (lone surrogates from
    undecodable file names, NUL characters) are retried in an escaped form.
    """
    sink = _wisp
    args = (True,) if now else ()
    try:
        if sink is None:
            sys.stderr.write("wisp[%d]: %s\n" % (level, msg))
        else:
            sink.log(level, msg, *args)
        return
    except Exception:
        pass
    try:
        safe = msg.encode("utf-8", "backslashreplace").decode("utf-8")
        sink.log(level, safe.replace("\0", "\\x00"), *args)
    except Exception:
        pass


def _oneline(exc):
    """``'TypeName: first line of the message'`` for a one-line report."""
    text = ""
    try:
        text = str(exc)
    except Exception:
        pass
    lines = text.strip().splitlines()
    name = type(exc).__name__
    if not lines:
        return name
    first = lines[0].strip()
    if len(lines) > 1:
        first += " ..."
    return "%s: %s" % (name, first)


# ---------------------------------------------------------------------------
# Loading applications
# ---------------------------------------------------------------------------


class LoadError(Exception):
    """A target could not be turned into a WSGI application.

    ``str(err)`` is one line that names the target, e.g.
    ``target 'foo:bar': module 'foo' has no attribute 'bar'``; the underlying
    exception, if any, is chained as ``__cause__`` so the full traceback can
    be logged.  ``err.target`` is the target string.
    """

    def __init__(self, target, message):
        super().__init__("target %r: %s" % (target, message))
        self.target = target
        self.message = message

    def __reduce__(self):
        return (type(self), (self.target, self.message))


def _fail(target, message, cause=None):
    err = LoadError(target, message)
    if cause is not None:
        raise err from cause
    raise err


# Names looked up, in this order, when a target names a module or a file but
# no object.  __ExtensionFactory__ comes first: it is what IIS called for an
# ISAPI-WSGI script, so a script that also defines ``application`` is served
# the way IIS served it (e.g. with its sub-applications).
_DEFAULT_FACTORY = "__ExtensionFactory__"
_DEFAULT_NAMES = ("application", "app")


def load(target):
    """Load the WSGI application named by *target*.

    Returns ``(app, hint)``.  *hint* is ``'simple'`` when the application is an
    :class:`ISAPISimpleHandler` (ISAPI-WSGI's single-threaded handler),
    ``'threadpool'`` for an :class:`ISAPIThreadPoolHandler`, and ``''``
    otherwise.

    Target forms:

    ``module`` / ``module:expr``
        Import *module* (the current directory is put on ``sys.path`` first
        if it is not there).  *expr* is an attribute path (``obj.attr``),
        optionally called with literal arguments like gunicorn
        (``create_app()``, ``make('prod', debug=False)``).  Without *expr*:
        the result of ``__ExtensionFactory__()`` if the module defines it,
        else ``application``, else ``app``.
    ``path/to/app.py`` / ``path/to/app.py:expr``
        Execute the file (relative to the current directory) as a module named
        after the file (``app``), with its directory first on ``sys.path``,
        ``__file__`` set and ``__name__`` not ``'__main__'`` (so an ISAPI
        script's ``if __name__=='__main__':`` install block does not run).
        The name ``sys`` is pre-bound in its namespace, because the
        ISAPI-WSGI example script tests ``hasattr(sys, "isapidllhandle")``
        without importing ``sys``.  A file already loaded under that module
        name is reused rather than executed again.  Same defaults as above.
    ``config:path/app.ini`` / ``config:path/app.ini#name``
        Paste Deploy: if the ini has a ``[loggers]`` section it is applied with
        ``logging.config.fileConfig`` (``here``/``__file__`` defaults, existing
        loggers kept), then ``paste.deploy.loadapp('config:<abspath>',
        name=name)``.

    Raises :class:`LoadError` (one line naming the target, the original
    exception chained) on every failure.
    """
    if not isinstance(target, str):
        raise LoadError(target, "target must be a str, not %s" % type(target).__name__)
    spec = target.strip()
    if not spec:
        _fail(target, "empty target")
    if not _installed:
        install()
    importlib.invalidate_caches()

    if spec.startswith("config:"):
        app = _load_config(target, spec[len("config:"):])
    else:
        pos = spec.find(".py:")
        if spec.endswith(".py"):
            app = _load_file(target, spec, None)
        elif pos > 0:
            app = _load_file(target, spec[: pos + 3], spec[pos + 4:])
        else:
            modname, colon, expr = spec.partition(":")
            app = _load_module(target, modname.strip(), expr if colon else None)

    if not callable(app):
        _fail(target, "the application is not callable (got %s)" % _describe(app))
    hint = _hint_for(app)
    _log(DEBUG, "loaded target %r: %s%s" % (target, _describe(app),
                                             " (handler %s)" % hint if hint else ""))
    return app, hint


def _describe(obj):
    try:
        r = repr(obj)
    except Exception:
        r = "<%s object>" % type(obj).__name__
    if len(r) > 120:
        r = r[:117] + "..."
    return r


def _hint_for(app):
    if isinstance(app, ISAPISimpleHandler):
        return "simple"
    if isinstance(app, ISAPIThreadPoolHandler):
        return "threadpool"
    return ""


def _ensure_cwd_on_path():
    cwd = os.getcwd()
    for entry in sys.path:
        try:
            if os.path.abspath(entry or os.curdir) == cwd:
                return
        except Exception:
            continue
    sys.path.insert(0, cwd)


def _parse_expr(target, expr):
    """Parse ``a.b.c`` or ``a.b.c(literal, key=literal)``.

    Returns ``(names, call)`` where *call* is ``None`` or ``(args, kwargs)``.
    """
    names = expr.strip().split(".")
    if all(n.isidentifier() for n in names):
        return names, None  # the common case, without importing ast
    import ast
    try:
        node = ast.parse(expr.strip(), mode="eval").body
    except SyntaxError as e:
        _fail(target, "%r is not an attribute path or call" % expr, e)
    call = None
    if isinstance(node, ast.Call):
        try:
            args = [ast.literal_eval(a) for a in node.args]
            kwargs = {}
            for kw in node.keywords:
                if kw.arg is None:
                    raise ValueError("**kwargs not allowed")
                kwargs[kw.arg] = ast.literal_eval(kw.value)
        except Exception as e:  # ValueError mostly; TypeError for {[]: 1}
            _fail(target, "arguments in %r must be literals" % expr, e)
        call = (args, kwargs)
        node = node.func
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        _fail(target, "%r is not an attribute path or call" % expr)
    names.append(node.id)
    names.reverse()
    return names, call


def _resolve(target, module, expr):
    """Resolve *expr* (attribute path, optional call) against *module*."""
    names, call = _parse_expr(target, expr)
    obj = module
    path = module.__name__
    for i, name in enumerate(names):
        try:
            obj = getattr(obj, name)
        except AttributeError as e:
            if i == 0:
                _fail(target, "module %r has no attribute %r" % (module.__name__, name), e)
            _fail(target, "%r (%s) has no attribute %r" % (path, type(obj).__name__, name), e)
        except Exception as e:
            _fail(target, "getting %s.%s raised %s" % (path, name, _oneline(e)), e)
        path = path + (":" if i == 0 else ".") + name
    if call is not None:
        args, kwargs = call
        obj = _call(target, path + "()", obj, args, kwargs)
    return obj


def _call(target, label, func, args=(), kwargs=None):
    if not callable(func):
        _fail(target, "%s is not callable (got %s)" % (label, _describe(func)))
    try:
        return func(*args, **(kwargs or {}))
    except SystemExit as e:
        _fail(target, "%s called sys.exit(%r)" % (label, e.code), e)
    except Exception as e:
        _fail(target, "%s raised %s" % (label, _oneline(e)), e)


def _default_app(target, module):
    """The app a module provides when the target names no object."""
    factory = getattr(module, _DEFAULT_FACTORY, None)
    if factory is not None:
        return _call(target, "%s.%s()" % (module.__name__, _DEFAULT_FACTORY), factory)
    for name in _DEFAULT_NAMES:
        obj = getattr(module, name, None)
        if obj is not None:
            return obj
    _fail(target, "module %r defines none of 'application', 'app' or '%s'"
          % (module.__name__, _DEFAULT_FACTORY))


def _load_module(target, modname, expr):
    if not modname or not all(p.isidentifier() for p in modname.split(".")):
        _fail(target, "%r is not a valid module name" % modname)
    _ensure_cwd_on_path()
    try:
        module = importlib.import_module(modname)
    except ModuleNotFoundError as e:
        missing = e.name or ""
        if missing and (modname == missing or modname.startswith(missing + ".")):
            _fail(target, "module %r not found" % modname, e)
        _fail(target, "importing module %r failed: %s" % (modname, _oneline(e)), e)
    except SystemExit as e:
        _fail(target, "importing module %r called sys.exit(%r)" % (modname, e.code), e)
    except Exception as e:
        _fail(target, "importing module %r raised %s" % (modname, _oneline(e)), e)
    if expr is None:
        return _default_app(target, module)
    return _resolve(target, module, expr)


def _module_name_for(path):
    """A module name for the file *path*: its stem, made an identifier."""
    stem = os.path.splitext(os.path.basename(path))[0]
    name = "".join(c if (c.isalnum() or c == "_") else "_" for c in stem) or "app"
    if not name.isidentifier():
        name = "_" + name
    return name


def _same_file(module, path):
    f = getattr(module, "__file__", None)
    if not f:
        return False
    try:
        return os.path.realpath(f) == os.path.realpath(path)
    except Exception:
        return False


def _load_file(target, relpath, expr):
    path = os.path.abspath(relpath)
    if not os.path.exists(path):
        _fail(target, "file not found (%s)" % path)
    if not os.path.isfile(path):
        _fail(target, "not a regular file (%s)" % path)
    directory = os.path.dirname(path)
    if not sys.path or sys.path[0] != directory:
        sys.path.insert(0, directory)

    base = _module_name_for(path)
    name = base
    module = None
    n = 1
    while name in sys.modules or name in sys.builtin_module_names:
        if _same_file(sys.modules.get(name), path):
            module = sys.modules[name]
            break
        n += 1
        name = "%s_wisp%d" % (base, n)
    if name != base and module is None:
        taken_by = getattr(sys.modules.get(base), "__file__", None) or "a built-in module"
        _log(WARNING, "target %r: module name %r is taken by %s; loading %s as %r"
             % (target, base, taken_by, path, name))
    elif base in getattr(sys, "stdlib_module_names", ()):
        _log(WARNING, "target %r: %s shadows the standard library module %r"
             % (target, path, base))

    if module is None:
        module = _exec_file(target, name, path)
    if expr is None:
        return _default_app(target, module)
    return _resolve(target, module, expr)


def _exec_file(target, name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        _fail(target, "cannot load %s as a Python module" % path)
    module = importlib.util.module_from_spec(spec)
    # The ISAPI-WSGI wiki example uses sys without importing it.
    module.__dict__.setdefault("sys", sys)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as e:
        if sys.modules.get(name) is module:
            del sys.modules[name]
        if isinstance(e, SystemExit):
            _fail(target, "executing %s called sys.exit(%r)" % (path, e.code), e)
        if isinstance(e, Exception):
            _fail(target, "executing %s raised %s" % (path, _oneline(e)), e)
        raise
    return module


def _load_config(target, rest):
    relpath, _, name = rest.partition("#")
    relpath = relpath.strip()
    name = name.strip() or None
    if not relpath:
        _fail(target, "no ini file given")
    path = os.path.abspath(relpath)
    if not os.path.exists(path):
        _fail(target, "file not found (%s)" % path)
    if not os.path.isfile(path):
        _fail(target, "not a regular file (%s)" % path)
    _ensure_cwd_on_path()
    try:
        _apply_logging_config(path, None, quiet=True)
    except Exception as e:
        _fail(target, "applying the logging configuration in %s failed: %s"
              % (path, _oneline(e)), e)
    try:
        from paste.deploy import loadapp
    except ImportError as e:
        _fail(target, "Paste Deploy is not installed (%s)" % _oneline(e), e)
    try:
        return loadapp("config:" + path, name=name)
    except SystemExit as e:
        _fail(target, "loadapp called sys.exit(%r)" % (e.code,), e)
    except Exception as e:
        _fail(target, "loadapp failed: %s" % _oneline(e), e)


def _apply_logging_config(fname, defaults=None, quiet=False):
    """Apply the logging sections of an ini file (path or open text file).

    ``here`` (the file's directory) and ``__file__`` are available for
    interpolation, *defaults* override them.  Existing loggers stay enabled.
    Without a ``[loggers]`` section nothing happens; missing ``[formatters]``
    or ``[handlers]`` sections count as empty.  Returns True if applied.
    """
    import configparser
    import logging.config
    if hasattr(fname, "readline"):
        source = getattr(fname, "name", None)
        path = os.path.abspath(source) if isinstance(source, str) else None
    else:
        path = os.path.abspath(os.fspath(fname))
    if path is not None:
        merged = {"here": os.path.dirname(path), "__file__": path}
    else:
        merged = {"here": os.getcwd(), "__file__": ""}
    if defaults:
        merged.update(defaults)
    cp = configparser.ConfigParser(merged)
    if hasattr(fname, "readline"):
        cp.read_file(fname)
    else:
        with open(path, encoding="utf-8") as f:
            cp.read_file(f, path)
    if not cp.has_section("loggers"):
        if not quiet:
            _log(DEBUG, "%s has no [loggers] section; logging left as it is" % (path or fname))
        return False
    for section in ("formatters", "handlers"):
        if not cp.has_section(section):
            cp.add_section(section)
            cp.set(section, "keys", "")
    logging.config.fileConfig(cp, disable_existing_loggers=False)
    return True


# ---------------------------------------------------------------------------
# Per-request helpers used by the C side
# ---------------------------------------------------------------------------


def _plain_reader(f, base):
    """Whether f is a base whose reading methods are base's own."""
    if not isinstance(f, base):
        return False
    t = type(f)
    return all(getattr(t, m, None) is getattr(base, m, None)
               for m in ("read", "readinto", "read1", "readinto1", "readall"))


class FileWrapper:
    """``wsgi.file_wrapper`` (PEP 3333 "optional platform-specific file handling").

    ``FileWrapper(filelike, blksize=8192)``.  The C side checks
    ``isinstance(result, FileWrapper)`` and, when ``sendfile_source()`` gives
    a plain file over a regular file, sends it with sendfile from the current
    position; otherwise
    the wrapper is iterated like any response, yielding
    ``filelike.read(blksize)`` blocks until one is empty.  ``close()`` closes
    the file-like object if it has a ``close`` method.
    """

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize

    def sendfile_source(self):
        """The file-like object if its bytes are exactly those of its file
        descriptor, so that sendfile may send them: an ``io.FileIO``, or an
        ``io.BufferedReader``/``io.BufferedRandom`` over one (``open(path,
        "rb")``), subclasses included as long as they do not override how
        bytes are read. A ``gzip.GzipFile`` (bz2, lzma, a decrypting
        wrapper...) also has a ``fileno()``, but it reads other bytes than the
        file holds: it is iterated. None if not sendable."""
        f = self.filelike
        if _plain_reader(f, io.FileIO):
            return f
        if _plain_reader(f, io.BufferedReader) or _plain_reader(f, io.BufferedRandom):
            if _plain_reader(getattr(f, "raw", None), io.FileIO):
                return f
        return None

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration

    def close(self):
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


class ErrorStream(io.TextIOBase):
    """``wsgi.errors``: a text stream whose lines go to the server's error log.

    One instance is shared by every request and thread.  ``write(s)`` takes
    ``str`` only.  Each complete line is sent to ``_wisp.log(level, line)``
    without its line ending (``\\n`` or ``\\r\\n``); a trailing partial line is
    kept per thread until that thread writes a newline or calls ``flush()``
    (or it reaches ``MAX_PARTIAL`` characters).
    ``flush_all()`` sends every thread's pending partial line (for shutdown).
    ``close()`` only flushes: the stream is shared, so it never closes.
    """

    encoding = "utf-8"
    errors = "strict"
    name = "<wsgi.errors>"
    mode = "w"
    MAX_PARTIAL = 65536  # a partial line this long is logged without waiting

    def __init__(self, level=ERROR):
        super().__init__()
        self.level = level
        self._lock = threading.Lock()
        self._partial = {}  # thread ident -> pending partial line (str)

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("wsgi.errors.write() argument must be str, not %s"
                            % type(s).__name__)
        if not s:
            return 0
        ident = threading.get_ident()
        if "\n" not in s:
            with self._lock:
                pending = self._partial.get(ident, "") + s
                if len(pending) < self.MAX_PARTIAL:
                    self._partial[ident] = pending
                    return len(s)
                del self._partial[ident]
            _log(self.level, pending)  # a runaway line without newlines
            return len(s)
        with self._lock:
            pending = self._partial.pop(ident, None)
        lines = (pending + s if pending else s).split("\n")
        rest = lines.pop()
        if rest:
            with self._lock:
                self._partial[ident] = rest
        level = self.level
        for line in lines:
            if line.endswith("\r"):
                line = line[:-1]
            _log(level, line)
        return len(s)

    def writelines(self, lines):
        self.write("".join(lines))

    def flush(self):
        with self._lock:
            pending = self._partial.pop(threading.get_ident(), None)
        if pending:
            _log(self.level, pending)

    def flush_all(self):
        with self._lock:
            pending = list(self._partial.values())
            self._partial.clear()
        for line in pending:
            _log(self.level, line)

    def close(self):
        try:
            self.flush()
        except Exception:
            pass

    def isatty(self):
        return False

    def readable(self):
        return False

    def writable(self):
        return True

    def seekable(self):
        return False


class TraceStream:
    """``sys.stdout`` / ``sys.stderr`` under wisp: everything written goes to
    the original stream as before, and each complete line also to
    ``wisp trace``, tagged by the C side with the request the writing thread
    serves.  Partial lines wait per thread for their newline (at most
    ``MAX_PARTIAL`` characters).  Every other attribute (``fileno``,
    ``buffer``, ``encoding``, ``isatty``...) is the original stream's.
    """

    MAX_PARTIAL = 65536

    def __init__(self, stream, level):
        self._stream = stream
        self._level = level
        self._lock = threading.Lock()
        self._partial = {}
        self._busy = threading.local()  # a write made while tracing is not traced again

    def __getattr__(self, name):
        if self._stream is None:
            raise AttributeError(name)
        return getattr(self._stream, name)

    def write(self, s):
        n = self._stream.write(s) if self._stream is not None else len(s)
        busy = self._busy
        if not getattr(busy, "on", False):
            busy.on = True
            try:
                self._trace(s)
            except Exception:
                pass
            finally:
                busy.on = False
        return n

    def _trace(self, s):
        if not isinstance(s, str) or not s:
            return
        ident = threading.get_ident()
        with self._lock:
            pending = self._partial.pop(ident, "")
            text = pending + s
            lines = text.split("\n")
            rest = lines.pop()
            if rest:
                if len(rest) < self.MAX_PARTIAL:
                    self._partial[ident] = rest
                else:
                    lines.append(rest)
        sink = _wisp
        for line in lines:
            if line.endswith("\r"):
                line = line[:-1]
            sink.log(self._level, line)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        with self._lock:
            pending = self._partial.pop(threading.get_ident(), None)
        if pending:
            try:
                _wisp.log(self._level, pending)
            except Exception:
                pass
        if self._stream is not None:
            return self._stream.flush()


def _tee_std_streams():
    """Route sys.stdout and sys.stderr through :class:`TraceStream`, once."""
    if _wisp is None:
        return
    if not isinstance(sys.stdout, TraceStream):
        sys.stdout = TraceStream(sys.stdout, STDOUT)
    if not isinstance(sys.stderr, TraceStream):
        sys.stderr = TraceStream(sys.stderr, STDERR)


def gc_collections():
    """The collections Python's garbage collector made, all generations
    together (for wisp's metrics)."""
    import gc
    return sum(s.get("collections", 0) for s in gc.get_stats())


def input_from_fd(fd, buffer_size=65536):
    """``wsgi.input`` over a request body Go has written to the file *fd*.

    Returns a binary buffered reader positioned at the start of the file
    (``read(n)``, ``read()``, ``readline(limit)``, ``readlines(hint)`` and
    iteration).  It reads a duplicate of *fd* that it owns and closes, so Go
    may close *fd* when the request ends, and an application that kept
    ``wsgi.input`` still reads its own body, never a recycled descriptor.
    """
    raw = io.FileIO(os.dup(fd), "rb", closefd=True)
    try:
        raw.seek(0)
    except (OSError, ValueError):
        pass  # not seekable: read from where it is
    return io.BufferedReader(raw, buffer_size)


def _type_name(etype):
    module = getattr(etype, "__module__", None)
    name = getattr(etype, "__qualname__", None) or getattr(etype, "__name__", "?")
    if module in (None, "builtins", "__main__"):
        return name
    return "%s.%s" % (module, name)


def describe_load_error(etype, value, tb):
    """Split a failure of :func:`load` into ``(message, traceback)``.

    *message* is one line for the command line.  *traceback* is the text worth
    logging with it: the traceback of the exception the app's own code raised
    (at import, in a factory, in Paste Deploy), or ``''`` when the message says
    it all (a missing file, module or attribute), so that a typo in a target
    gets one clear line rather than a page of importlib frames.  A
    SyntaxError (IndentationError, TabError) adds its file, line, source line
    and caret to the message, as Python prints them, and is logged with them
    even when no frame of the app's ran.
    """
    try:
        if isinstance(value, LoadError):
            cause = value.__cause__
            where = _syntax_where(cause)
            if cause is None or not _has_app_frames(cause.__traceback__):
                return str(value) + where, format_exception_only(cause) if where else ""
            return str(value) + where, format_exception(type(cause), cause, cause.__traceback__)
        return ("%s: %s%s" % (_type_name(etype), value, _syntax_where(value)),
                format_exception(etype, value, tb))
    except Exception:  # never let reporting fail
        return "%s" % (etype,), ""


def format_exception_only(exc):
    """What Python prints for exc without its traceback (for a SyntaxError:
    file, line, source line, caret and message); never raises."""
    try:
        import traceback
        return "".join(traceback.format_exception_only(type(exc), exc))
    except Exception:
        return _oneline(exc) + "\n"


def _syntax_where(exc):
    """For a SyntaxError, the lines Python prints above its message (the
    file and line, the source line, the caret), with a leading newline; ''
    for anything else."""
    if not isinstance(exc, SyntaxError):
        return ""
    try:
        lines = format_exception_only(exc).rstrip("\n").split("\n")
        where = "\n".join(lines[:-1])  # the last line is "SyntaxError: message"
        return "\n" + where if where.strip() else ""
    except Exception:
        return ""


def _has_app_frames(tb):
    """Whether a traceback runs through code other than the loading machinery
    (wisp's, importlib's and Paste Deploy's)."""
    machinery = [os.path.dirname(importlib.__file__) + os.sep]
    deploy = sys.modules.get("paste.deploy")
    if deploy is not None and getattr(deploy, "__file__", None):
        machinery.append(os.path.dirname(deploy.__file__) + os.sep)
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if not (os.path.basename(name) == "wisp_boot.py" or name.startswith("<frozen ")
                or any(name.startswith(m) for m in machinery)):
            return True
        tb = tb.tb_next
    return False


def absorb_timeout():
    """Take a TimeoutError that a request timeout raised at this thread after
    its app had returned (wisp_py.c calls this only after such an interrupt).
    Delivering it clears CPython's eval breaker; clearing it unraised would
    not. Returns whether one arrived here."""
    try:
        for _ in range(4):
            pass
    except TimeoutError:
        return True
    return False


def thread_stack(ident):
    """The Python stack of thread *ident* as text (for a request that timed out)."""
    try:
        frame = sys._current_frames().get(ident)
        if frame is None:
            return "(thread %d is not running Python code)" % ident
        import traceback
        return "".join(traceback.format_stack(frame))
    except Exception as e:  # never let diagnosis fail
        return "(no stack: %s)" % e


def format_exception(etype, value, tb):
    """The full traceback text of an exception, for the log; never raises.

    *value* may be ``None`` (then *etype* alone is reported) and *tb* may be
    ``None`` (then ``value.__traceback__`` is used).
    """
    import traceback
    try:
        if value is None and isinstance(etype, type):
            # An exception that was never instantiated: name its type.
            lines = []
            if tb is not None:
                lines.append("Traceback (most recent call last):\n")
                lines.extend(traceback.format_tb(tb))
            lines.append(_type_name(etype) + "\n")
            return "".join(lines)
        if value is not None:
            if etype is None:
                etype = type(value)
            if tb is None:
                tb = getattr(value, "__traceback__", None)
        return "".join(traceback.format_exception(etype, value, tb))
    except Exception:
        pass
    try:
        return "%s (wisp could not format the traceback)\n" % (
            _oneline(value) if value is not None else _type_name(etype))
    except Exception:
        return "<exception that could not be formatted>\n"


# ---------------------------------------------------------------------------
# isapi_wsgi compatibility
# ---------------------------------------------------------------------------


def isapi_error(environ, start_response):
    """The response ISAPI-WSGI gave when no application matched: a 404."""
    body = b"Page not found"
    start_response("404 Not Found", [("Content-Type", "text/plain"),
                                     ("Content-Length", str(len(body)))])
    return [body]


class _ISAPIDispatcher:
    """WSGI side of ISAPI-WSGI's handlers: dispatch to the root or a named app.

    ``Handler(rootapp=None, **apps)``, as in isapi_wsgi.  A request whose
    PATH_INFO is ``/name`` or starts with ``/name/`` (``name`` a keyword given
    to the constructor) goes to that application with ``/name`` moved from
    PATH_INFO to the end of SCRIPT_NAME (``/name`` -> PATH_INFO ``''``,
    ``/name/x`` -> ``/x``); the match is on the whole first segment, so
    ``/namex`` does not match.  Everything else goes to *rootapp*, or gets a
    404 if there is none.  As in isapi_wsgi, every keyword argument is an
    application: the original accepted no tuning arguments.
    """

    def __init__(self, rootapp=None, **apps):
        if rootapp is not None and not callable(rootapp):
            raise TypeError("%s: rootapp is not callable (got %s)"
                            % (type(self).__name__, _describe(rootapp)))
        for name, app in apps.items():
            if not callable(app):
                raise TypeError("%s: application %r is not callable (got %s)"
                                % (type(self).__name__, name, _describe(app)))
        self.rootapp = rootapp
        self.apps = apps

    def __call__(self, environ, start_response):
        apps = self.apps
        if apps:
            path = environ.get("PATH_INFO", "")
            if path[:1] == "/":
                slash = path.find("/", 1)
                segment = path[1:] if slash < 0 else path[1:slash]
                if segment:
                    app = apps.get(segment)
                    if app is not None:
                        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + "/" + segment
                        environ["PATH_INFO"] = "" if slash < 0 else path[slash:]
                        return app(environ, start_response)
        if self.rootapp is None:
            return isapi_error(environ, start_response)
        return self.rootapp(environ, start_response)

    def __repr__(self):
        return "<%s rootapp=%r apps=%s>" % (type(self).__name__, self.rootapp,
                                           sorted(self.apps))


class ISAPISimpleHandler(_ISAPIDispatcher):
    """isapi_wsgi.ISAPISimpleHandler: runs requests one at a time under IIS.

    ``load()`` reports it with the hint ``'simple'`` so the server can keep
    the single-threaded behaviour the script was written for.
    """


class ISAPIThreadPoolHandler(_ISAPIDispatcher):
    """isapi_wsgi.ISAPIThreadPoolHandler: runs requests on a thread pool.

    ``load()`` reports it with the hint ``'threadpool'``.  The class attributes
    below come from pywin32's ``ThreadPoolExtension`` so subclasses that set
    them still work; wisp's pool configuration decides the real sizes.
    """

    max_workers = 20
    worker_shutdown_wait = 15000


def _populate_isapi_wsgi(module):
    module.__doc__ = (
        "wisp's stand-in for isapi_wsgi (ISAPI-WSGI by Mark Rees).\n\n"
        "ISAPISimpleHandler and ISAPIThreadPoolHandler(rootapp=None, **apps) are\n"
        "plain WSGI applications that dispatch /name to the keyword app 'name'.")
    module.__version__ = "0.4.2+wisp"
    module.ISAPISimpleHandler = ISAPISimpleHandler
    module.ISAPIThreadPoolHandler = ISAPIThreadPoolHandler
    module.isapi_error = isapi_error
    module.traceon = 0

    def trace(*msgs):
        """isapi_wsgi.trace: send messages to the error log when traceon is set."""
        if module.traceon:
            for msg in msgs:
                _log(DEBUG, str(msg))

    module.trace = trace


def _populate_win32traceutil(module):
    module.__doc__ = (
        "wisp's stand-in for pywin32's win32traceutil.\n\n"
        "Importing it changes nothing: under wisp, what the app prints and\n"
        "writes to sys.stderr already reaches the server's log and\n"
        "`wisp trace` (the successor of `python -m win32traceutil`).")


# ---------------------------------------------------------------------------
# paste.script.util.logging_config compatibility
# ---------------------------------------------------------------------------


def fileConfig(fname, defaults=None):
    """paste.script.util.logging_config.fileConfig, as wisp provides it.

    Applies the logging sections of the ini *fname* (a path or an open text
    file) with ``logging.config.fileConfig``: ``here`` and ``__file__`` are
    available for interpolation (overridden by *defaults*), existing loggers
    stay enabled, and an ini without a ``[loggers]`` section is left alone.
    """
    _apply_logging_config(fname, defaults)


def _populate_logging_config(module):
    import logging.config
    module.__doc__ = (
        "wisp's stand-in for paste.script.util.logging_config (PasteScript is\n"
        "not installed, or its version cannot run on this Python).")
    module.fileConfig = fileConfig
    module.listen = logging.config.listen
    module.stopListening = logging.config.stopListening


def _populate_package(module):
    module.__doc__ = "wisp's stand-in package for %s." % module.__name__


class _ShimLoader:
    """Loader that fills a fresh module with a populate function."""

    def __init__(self, populate):
        self._populate = populate

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        self._populate(module)


def _shim_spec(name, populate, package=False):
    return importlib.machinery.ModuleSpec(
        name, _ShimLoader(populate), origin="wisp", is_package=package)


def _install_module(name, populate):
    spec = _shim_spec(name, populate)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent and parent in sys.modules:
        setattr(sys.modules[parent], child, module)
    return module


def _legacy_logging_api():
    """True if logging still has _acquireLock (removed in Python 3.13)."""
    import logging
    return hasattr(logging, "_acquireLock")


def _spec_elsewhere(skip, fullname, path, target):
    """The spec the other finders of sys.meta_path (not those of class skip)
    give for fullname, or None."""
    for finder in list(sys.meta_path):
        if isinstance(finder, skip):
            continue
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        try:
            spec = find_spec(fullname, path, target)
        except Exception:
            continue
        if spec is not None:
            return spec
    return None


class _PasteScriptFinder:
    """Meta-path finder that supplies ``paste.script.util.logging_config``.

    It answers only for ``paste.script``, ``paste.script.util`` and
    ``paste.script.util.logging_config``, and only when nothing else can:
    the real PasteScript wins when it is installed and usable on this Python
    (it needs ``six`` and ``logging._acquireLock``, which 3.13 removed).  It
    never provides ``paste`` itself, so ``import paste`` and ``paste.deploy``
    behave exactly as without wisp.  Nothing is imported when it is installed.
    """

    LEAF = "paste.script.util.logging_config"
    PACKAGES = ("paste.script", "paste.script.util")

    def find_spec(self, fullname, path=None, target=None):
        if fullname == self.LEAF:
            if self._real_usable(fullname, path, target):
                return None
            _log(DEBUG, "using wisp's %s" % fullname)
            return _shim_spec(fullname, _populate_logging_config)
        if fullname in self.PACKAGES:
            if self._find_elsewhere(fullname, path, target) is not None:
                return None
            return _shim_spec(fullname, _populate_package, package=True)
        return None

    def invalidate_caches(self):
        pass

    def _find_elsewhere(self, fullname, path, target):
        return _spec_elsewhere(_PasteScriptFinder, fullname, path, target)

    def _real_usable(self, fullname, path, target):
        if self._find_elsewhere(fullname, path, target) is None:
            return False
        if not _legacy_logging_api():
            return False
        try:
            return importlib.util.find_spec("six") is not None
        except (ImportError, ValueError):
            return False


def _dewindows(path):
    """A Windows path as Paste Deploy reads it: backslashes become slashes
    (``C:\\MyApp\\MyApp.ini`` is ``C:/MyApp/MyApp.ini``, a relative path
    here)."""
    return path.replace("\\", "/")


def _patch_loadwsgi(module):
    """``loadcontext`` gets ``relative_to=os.getcwd()`` when given none."""
    real = getattr(module, "loadcontext", None)
    if real is None or getattr(real, "_wisp_relative", False):
        return

    def loadcontext(object_type, uri, name=None, relative_to=None, global_conf=None):
        if relative_to is None and isinstance(uri, str) and uri.startswith("config:"):
            relative_to = os.getcwd()
        return real(object_type, uri, name=name, relative_to=relative_to, global_conf=global_conf)

    loadcontext._wisp_relative = True
    loadcontext.__doc__ = real.__doc__
    module.loadcontext = loadcontext


def _patch_logging_config(module):
    """``fileConfig`` reads a Windows path as Paste Deploy does."""
    real = getattr(module, "fileConfig", None)
    if real is None or getattr(real, "_wisp_dewindows", False):
        return

    def fileConfig(fname, *args, **kwargs):
        if isinstance(fname, str) and "\\" in fname and not os.path.exists(fname) and os.path.exists(_dewindows(fname)):
            fname = _dewindows(fname)
        return real(fname, *args, **kwargs)

    fileConfig._wisp_dewindows = True
    fileConfig.__doc__ = real.__doc__
    module.fileConfig = fileConfig


class _PasteDeployFinder:
    """Meta-path finder that lets the ISAPI-WSGI example script's Windows ini
    path work here, unchanged.

    The script passes ``C:\\MyApp\\MyApp.ini`` to PasteScript's
    ``fileConfig`` and, as ``"config:" + configfile``, to Paste Deploy's
    ``loadapp``: absolute on Windows, relative here, where Paste Deploy
    refuses a relative ``config:`` URI without ``relative_to``.  Once the
    real modules are imported (nothing is imported ahead of the app),
    ``paste.deploy.loadwsgi.loadcontext`` gets ``relative_to=os.getcwd()``
    when given none, and ``paste.script.util.logging_config.fileConfig``
    reads ``C:/MyApp/MyApp.ini`` (Paste Deploy's reading of the same path)
    when the backslashed name does not exist.  Absolute paths and explicit
    arguments are untouched.
    """

    PATCHES = {"paste.deploy.loadwsgi": _patch_loadwsgi,
               "paste.script.util.logging_config": _patch_logging_config}

    def find_spec(self, fullname, path=None, target=None):
        patch = self.PATCHES.get(fullname)
        if patch is None:
            return None
        spec = _spec_elsewhere(_PasteDeployFinder, fullname, path, target)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _PatchingLoader(spec.loader, patch)
            return spec
        return None

    def invalidate_caches(self):
        pass


class _PatchingLoader:
    """A module's own loader, then a patch of the loaded module."""

    def __init__(self, loader, patch):
        self._loader = loader
        self._patch = patch

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        self._patch(module)


_installed = False


def _install_exit_hook():
    """Make ``os._exit`` log one line before the process goes: what was
    called, with which code, and the request this thread was serving.
    ``os._exit`` skips every handler and flush, so without this line the
    server would vanish without a word. A forked child (multiprocessing)
    exits quietly, as it would without wisp: it is not the server."""
    real = os._exit
    if getattr(real, "_wisp_hook", False):
        return
    pid = os.getpid()

    def _exit(status):
        if os.getpid() == pid and _wisp is not None:
            try:
                req = _wisp.current_request()
                _log(ERROR, "the app called os._exit(%r)%s: the process exits now, "
                     "with status %r" % (status, " while serving %s" % req if req else "",
                                         status), now=True)
            except BaseException:
                pass
        real(status)

    _exit._wisp_hook = True
    _exit.__doc__ = real.__doc__
    _exit.__name__ = real.__name__
    _exit.__qualname__ = real.__qualname__
    os._exit = _exit


def install():
    """Install the compatibility modules; safe to call more than once.

    * ``sys.modules['isapi_wsgi']``: always wisp's (the real one needs
      pywin32 and IIS); its handlers are plain WSGI dispatchers.
    * ``sys.modules['win32traceutil']``: a harmless empty module.
      ``sys.isapidllhandle`` is not set.
    * a meta-path finder supplying ``paste.script.util.logging_config`` when
      the real one is missing or unusable (see :class:`_PasteScriptFinder`).
    """
    global _installed
    current = sys.modules.get("isapi_wsgi")
    if getattr(current, "ISAPIThreadPoolHandler", None) is not ISAPIThreadPoolHandler:
        _install_module("isapi_wsgi", _populate_isapi_wsgi)
    _install_module("win32traceutil", _populate_win32traceutil)
    if not any(isinstance(f, _PasteScriptFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _PasteScriptFinder())
    if not any(isinstance(f, _PasteDeployFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _PasteDeployFinder())
    _install_exit_hook()
    _tee_std_streams()
    _installed = True
