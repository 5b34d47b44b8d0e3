"""Tests for wisp_boot.py (run: /usr/bin/python3 -m pytest -q in this directory).

A fake ``_wisp`` module (recording log calls) is put in ``sys.modules`` before
``wisp_boot`` is imported, as the C side does.  Tests that reconfigure logging
or need a fresh interpreter (the ISAPI-WSGI seed scripts, ``[loggers]``
sections, an environment without PasteScript) run in a subprocess that loads
wisp_boot exactly as the C side does: executed as ``_wisp_boot`` from source,
then ``install()``, then ``load()``.
"""

import io
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import threading
import types
import wsgiref.util
import wsgiref.validate

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
BOOT_SOURCE = os.path.join(HERE, "wisp_boot.py")
SEED_DOC = "/work/shared/seed/understanding-isapi-wsgi.txt"

RECORDS = []
_fake_wisp = types.ModuleType("_wisp")
_fake_wisp.log = lambda level, msg: RECORDS.append((level, msg))
sys.modules["_wisp"] = _fake_wisp
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import wisp_boot as wb  # noqa: E402

wb.install()


# The ISAPI-WSGI example script, verbatim from the "Understanding ISAPI WSGI"
# wiki page (it uses sys without importing it).
SEED_SINGLE_APP = r'''# Enable tracing. Run 'python -m win32traceutil'
if hasattr(sys, "isapidllhandle"): 
    import win32traceutil

# The entry point for the ISAPI extension.
def __ExtensionFactory__():
    from paste.deploy import loadapp
    from paste.script.util.logging_config import fileConfig

    configfile="C:\\MyApp\\MyApp.ini"
    fileConfig(configfile)
    application = loadapp("config:" + configfile)

    import isapi_wsgi
    return isapi_wsgi.ISAPIThreadPoolHandler(application)

# ISAPI installation
if __name__=='__main__':
    from isapi.install import ISAPIParameters, ScriptMapParams, VirtualDirParameters, HandleCommandLine
    
    params = ISAPIParameters()
    sm = [
        ScriptMapParams(Extension="*", Flags=0)
    ]
    
    vd = VirtualDirParameters(Name="wsgi-test",
                          Description = "A test application",
                          ScriptMaps = sm,
                          ScriptMapUpdate = "replace"
                          )
    
    params.VirtualDirs = [vd]
    HandleCommandLine(params)
'''
SEED_CONFIG_LINE = r'configfile="C:\\MyApp\\MyApp.ini"'


def seed_single_app(ini_path):
    """The seed script with only its config file path changed."""
    assert SEED_SINGLE_APP.count(SEED_CONFIG_LINE) == 1
    return SEED_SINGLE_APP.replace(SEED_CONFIG_LINE, "configfile=%r" % str(ini_path))


# The same page's multiple-apps variant, as a complete script.
SEED_MULTI_APPS = r'''# Enable tracing. Run 'python -m win32traceutil'
if hasattr(sys, "isapidllhandle"): 
    import win32traceutil

def default_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("default %s|%s" % (environ["SCRIPT_NAME"], environ["PATH_INFO"])).encode()]

def foo_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("foo %s|%s" % (environ["SCRIPT_NAME"], environ["PATH_INFO"])).encode()]

def bar_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("bar %s|%s" % (environ["SCRIPT_NAME"], environ["PATH_INFO"])).encode()]

# The entry point for the ISAPI extension.
def __ExtensionFactory__():
    import isapi_wsgi
    return isapi_wsgi.ISAPIThreadPoolHandler(default_app, foo=foo_app, bar=bar_app)

# ISAPI installation
if __name__=='__main__':
    from isapi.install import ISAPIParameters, ScriptMapParams, VirtualDirParameters, HandleCommandLine
    params = ISAPIParameters()
    sm = [
        ScriptMapParams(Extension="*", Flags=0)
    ]
    vd = VirtualDirParameters(Name="wsgi-test",
                          Description = "A test application",
                          ScriptMaps = sm,
                          ScriptMapUpdate = "replace"
                          )
    params.VirtualDirs = [vd]
    HandleCommandLine(params)
'''

# A Paste Deploy application factory used by the ini files below.
PASTE_FACTORY_MODULE = '''
import logging

log = logging.getLogger("wisptest.app")

def make_app(global_conf, greeting="hello", **local_conf):
    def app(environ, start_response):
        log.info("request %s", environ.get("PATH_INFO"))
        body = ("%s %s|%s" % (greeting, environ.get("SCRIPT_NAME", ""),
                              environ.get("PATH_INFO", ""))).encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    app.global_conf = global_conf
    return app
'''

# Logging sections in the shape paster-generated ini files have.  No
# %(here)s: the real PasteScript fileConfig offers no such default.
LOGGING_SECTIONS = '''
[loggers]
keys = root, wisptest

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[logger_wisptest]
level = DEBUG
handlers =
qualname = wisptest

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(asctime)s %(levelname)-5.5s [%(name)s] %(message)s
'''

# Logging sections that need the here/__file__ defaults.
LOGGING_SECTIONS_HERE = '''
[loggers]
keys = root, wisptest

[handlers]
keys = file

[formatters]
keys = plain

[logger_root]
level = WARNING
handlers =

[logger_wisptest]
level = DEBUG
handlers = file
qualname = wisptest

[handler_file]
class = FileHandler
args = ('%(here)s/app.log', 'a')
formatter = plain

[formatter_plain]
format = %(name)s %(levelname)s %(message)s
'''


def paste_ini(extra="", app_module="wisp_pastefactory"):
    return textwrap.dedent('''
        [DEFAULT]
        debug = false

        [app:main]
        use = call:%(mod)s:make_app
        greeting = hello from main

        [app:other]
        use = call:%(mod)s:make_app
        greeting = hello from other
        ''') % {"mod": app_module} + extra


# ---------------------------------------------------------------------------
# helpers and fixtures
# ---------------------------------------------------------------------------


def write(path, text):
    path = str(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(textwrap.dedent(text))
    return path


def call(app, path="/", script_name="", method="GET", body=b""):
    """Run one request; returns (status, headers, body, environ)."""
    environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": wb.ErrorStream(),
    }
    wsgiref.util.setup_testing_defaults(environ)
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"] = status
        seen["headers"] = headers
        return lambda data: None

    result = app(environ, start_response)
    try:
        data = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return seen["status"], seen["headers"], data, environ


def simple_app(label):
    def app(environ, start_response):
        body = ("%s %s|%s" % (label, environ["SCRIPT_NAME"], environ["PATH_INFO"])).encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    app.label = label
    return app


@pytest.fixture
def records():
    del RECORDS[:]
    return RECORDS


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """cwd = tmp_path; sys.path and modules loaded from tmp_path restored."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield tmp_path
    root = str(tmp_path)
    for name in list(sys.modules):
        f = getattr(sys.modules.get(name), "__file__", None) or ""
        new_test_module = name not in before and name.startswith(("wisp_", "wtm_"))
        if f.startswith(root) or (new_test_module and name != "wisp_boot"):
            sys.modules.pop(name, None)


def load_error(target):
    with pytest.raises(wb.LoadError) as info:
        wb.load(target)
    err = info.value
    msg = str(err)
    assert "\n" not in msg
    assert msg.startswith("target %r: " % (target,)), msg
    assert err.target == target
    return err


RUNNER = r'''
import json, os, sys, types
records = []
_w = types.ModuleType("_wisp")
_w.log = lambda level, msg: records.append([level, msg])
sys.modules["_wisp"] = _w
for p in reversed(json.loads(os.environ["WISP_TEST_PATH"])):
    sys.path.insert(0, p)
# Load wisp_boot the way the C side does.
boot = types.ModuleType("_wisp_boot")
sys.modules["_wisp_boot"] = boot
with open(os.environ["WISP_TEST_BOOT"]) as f:
    exec(compile(f.read(), "wisp_boot.py", "exec"), boot.__dict__)
if os.environ.get("WISP_TEST_NO_ACQUIRELOCK"):
    # As on Python 3.13+, where logging._acquireLock is gone.
    boot._legacy_logging_api = lambda: False
boot.install()

def call(app, path="/", script_name=""):
    import io
    env = {"REQUEST_METHOD": "GET", "SCRIPT_NAME": script_name, "PATH_INFO": path,
           "SERVER_NAME": "localhost", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
           "QUERY_STRING": "", "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
           "wsgi.input": io.BytesIO(), "wsgi.errors": boot.ErrorStream(),
           "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False}
    out = {}
    def start_response(status, headers, exc_info=None):
        out["status"] = status
    body = b"".join(app(env, start_response))
    return out["status"] + " " + body.decode()

result = {}
'''


def run_isolated(cwd, body, no_site=False, extra_path=(), no_acquirelock=False):
    """Run RUNNER + body in a fresh interpreter; body fills ``result``."""
    code = RUNNER + textwrap.dedent(body) + \
        "\nresult['records'] = records\nprint('RESULT ' + json.dumps(result))\n"
    env = dict(os.environ)
    env["WISP_TEST_PATH"] = json.dumps(list(extra_path))
    env["WISP_TEST_BOOT"] = BOOT_SOURCE
    if no_site:
        env.pop("PYTHONPATH", None)
    if no_acquirelock:
        env["WISP_TEST_NO_ACQUIRELOCK"] = "1"
    cmd = [sys.executable] + (["-S"] if no_site else []) + ["-c", code]
    proc = subprocess.run(cmd, cwd=str(cwd), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, proc.stdout + proc.stderr
    result = json.loads(lines[-1][len("RESULT "):])
    result["stderr"] = proc.stderr
    return result


def paste_available():
    try:
        import paste.deploy  # noqa: F401
        return True
    except ImportError:
        return False


needs_paste = pytest.mark.skipif(not paste_available(), reason="Paste Deploy not installed")


# ---------------------------------------------------------------------------
# module targets
# ---------------------------------------------------------------------------


def test_module_colon_callable(sandbox):
    write(sandbox / "wtm_basic.py", '''
        def app(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"basic"]
    ''')
    app, hint = wb.load("wtm_basic:app")
    assert hint == ""
    assert call(app)[2] == b"basic"
    assert str(sandbox) in sys.path  # the cwd is importable


def test_module_dotted_attribute_path(sandbox):
    write(sandbox / "wtm_pkg" / "__init__.py", "")
    write(sandbox / "wtm_pkg" / "sub.py", '''
        class Holder:
            pass
        obj = Holder()
        def _app(environ, start_response):
            start_response("200 OK", [])
            return [b"dotted"]
        obj.attr = _app
    ''')
    app, hint = wb.load("wtm_pkg.sub:obj.attr")
    assert call(app)[2] == b"dotted"


def test_module_factory_call_syntax(sandbox):
    write(sandbox / "wtm_factory.py", '''
        def create_app(name="default", n=1):
            def app(environ, start_response):
                start_response("200 OK", [])
                return [("%s-%d" % (name, n)).encode()]
            return app
        class Maker:
            @staticmethod
            def build():
                return create_app("static")
    ''')
    assert call(wb.load("wtm_factory:create_app()")[0])[2] == b"default-1"
    assert call(wb.load("wtm_factory:create_app('prod', n=3)")[0])[2] == b"prod-3"
    assert call(wb.load("wtm_factory:Maker.build()")[0])[2] == b"static-1"


def test_plain_module_prefers_application_then_app(sandbox):
    write(sandbox / "wtm_both.py", '''
        def application(environ, start_response):
            start_response("200 OK", [])
            return [b"application"]
        def app(environ, start_response):
            start_response("200 OK", [])
            return [b"app"]
    ''')
    write(sandbox / "wtm_apponly.py", '''
        def app(environ, start_response):
            start_response("200 OK", [])
            return [b"app"]
    ''')
    assert call(wb.load("wtm_both")[0])[2] == b"application"
    assert call(wb.load("wtm_apponly")[0])[2] == b"app"


def test_plain_module_extension_factory(sandbox):
    write(sandbox / "wtm_isapi_mod.py", '''
        import isapi_wsgi
        def application(environ, start_response):
            start_response("200 OK", [])
            return [b"plain application"]
        def __ExtensionFactory__():
            return isapi_wsgi.ISAPISimpleHandler(application)
    ''')
    app, hint = wb.load("wtm_isapi_mod")
    # __ExtensionFactory__ is what IIS served, so it wins over `application`.
    assert isinstance(app, wb.ISAPISimpleHandler)
    assert hint == "simple"
    assert call(app)[2] == b"plain application"


def test_explicit_factory_target_gives_hint(sandbox):
    write(sandbox / "wtm_isapi2.py", '''
        import isapi_wsgi
        def root(environ, start_response):
            start_response("200 OK", [])
            return [b"root"]
        def __ExtensionFactory__():
            return isapi_wsgi.ISAPIThreadPoolHandler(root)
    ''')
    app, hint = wb.load("wtm_isapi2:__ExtensionFactory__()")
    assert hint == "threadpool"
    app, hint = wb.load("wtm_isapi2:root")
    assert hint == ""


# ---------------------------------------------------------------------------
# file targets
# ---------------------------------------------------------------------------


def test_file_target(sandbox):
    write(sandbox / "site" / "wisp_helper.py", "GREETING = b'from sibling'\n")
    write(sandbox / "site" / "wisp_fileapp.py", '''
        import os
        import wisp_helper  # sibling import
        RAN_AS = __name__
        FILE = __file__
        def application(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [wisp_helper.GREETING]
        if __name__ == "__main__":
            raise SystemExit("the __main__ block must not run")
    ''')
    app, hint = wb.load("site/wisp_fileapp.py")
    assert hint == ""
    assert call(app)[2] == b"from sibling"
    mod = sys.modules["wisp_fileapp"]
    assert mod.RAN_AS == "wisp_fileapp"
    assert mod.FILE == str(sandbox / "site" / "wisp_fileapp.py")
    assert sys.path[0] == str(sandbox / "site")


def test_file_target_defaults_and_expr(sandbox):
    write(sandbox / "wisp_f_app.py", '''
        def app(environ, start_response):
            start_response("200 OK", [])
            return [b"app attr"]
        def make(word="made"):
            def inner(environ, start_response):
                start_response("200 OK", [])
                return [word.encode()]
            return inner
    ''')
    assert call(wb.load("wisp_f_app.py")[0])[2] == b"app attr"
    assert call(wb.load("wisp_f_app.py:make('custom')")[0])[2] == b"custom"


def test_file_target_extension_factory(sandbox):
    write(sandbox / "wisp_f_factory.py", '''
        import isapi_wsgi
        def root(environ, start_response):
            start_response("200 OK", [])
            return [b"factory root"]
        def __ExtensionFactory__():
            return isapi_wsgi.ISAPISimpleHandler(root)
    ''')
    app, hint = wb.load("wisp_f_factory.py")
    assert hint == "simple"
    assert call(app)[2] == b"factory root"


def test_file_loaded_once_and_reused(sandbox):
    write(sandbox / "wisp_once.py", '''
        import builtins
        builtins.WISP_ONCE_COUNT = getattr(builtins, "WISP_ONCE_COUNT", 0) + 1
        def application(environ, start_response):
            start_response("200 OK", [])
            return [b"once"]
    ''')
    import builtins
    try:
        app1, _ = wb.load("wisp_once.py")
        app2, _ = wb.load("./wisp_once.py")
        assert app1 is app2
        assert builtins.WISP_ONCE_COUNT == 1
    finally:
        builtins.__dict__.pop("WISP_ONCE_COUNT", None)


def test_file_name_collision_and_odd_names(sandbox, records):
    import json as real_json
    write(sandbox / "json.py", '''
        def application(environ, start_response):
            start_response("200 OK", [])
            return [b"my json"]
    ''')
    app, _ = wb.load("json.py")
    assert call(app)[2] == b"my json"
    assert sys.modules["json"] is real_json
    assert sys.modules["json_wisp2"].__file__ == str(sandbox / "json.py")
    assert any(level == wb.WARNING and "'json' is taken" in msg for level, msg in records)

    write(sandbox / "my-app.py", '''
        def app(environ, start_response):
            start_response("200 OK", [])
            return [b"dashed"]
    ''')
    app, _ = wb.load("my-app.py")
    assert call(app)[2] == b"dashed"
    assert sys.modules["my_app"].__name__ == "my_app"


def test_file_named_like_a_builtin_or_stdlib_module(sandbox, records):
    free = [n for n in sys.builtin_module_names
            if n.isidentifier() and n not in sys.modules and not n.startswith("_")]
    if free:
        write(sandbox / (free[0] + ".py"), "app = lambda e, s: [s('200 OK', []) or b'b']\n")
        app, _ = wb.load(free[0] + ".py")
        assert sys.modules[free[0] + "_wisp2"].__file__ == str(sandbox / (free[0] + ".py"))
    if hasattr(sys, "stdlib_module_names"):  # 3.10+
        assert "turtle" not in sys.modules
        write(sandbox / "turtle.py", "app = lambda e, s: [s('200 OK', []) or b't']\n")
        wb.load("turtle.py")
        assert any(level == wb.WARNING and "shadows the standard library module 'turtle'" in msg
                   for level, msg in records)


# ---------------------------------------------------------------------------
# config targets (Paste Deploy)
# ---------------------------------------------------------------------------


@needs_paste
def test_config_target(sandbox):
    write(sandbox / "wisp_pastefactory.py", PASTE_FACTORY_MODULE)
    write(sandbox / "conf" / "app.ini", paste_ini())
    app, hint = wb.load("config:conf/app.ini")
    assert hint == ""
    assert call(app, "/x")[2] == b"hello from main |/x"
    assert app.global_conf["here"] == str(sandbox / "conf")


@needs_paste
def test_config_target_named_section(sandbox):
    write(sandbox / "wisp_pastefactory.py", PASTE_FACTORY_MODULE)
    write(sandbox / "app.ini", paste_ini())
    app, _ = wb.load("config:app.ini#other")
    assert call(app)[2] == b"hello from other |/"
    app, _ = wb.load("config:%s#main" % (sandbox / "app.ini"))
    assert call(app)[2] == b"hello from main |/"


@needs_paste
def test_config_target_applies_loggers(tmp_path):
    write(tmp_path / "wisp_pastefactory.py", PASTE_FACTORY_MODULE)
    write(tmp_path / "conf" / "app.ini", paste_ini(LOGGING_SECTIONS_HERE))
    res = run_isolated(tmp_path, '''
        import logging
        early = logging.getLogger("library.loaded.before")
        app, hint = boot.load("config:conf/app.ini")
        result["hint"] = hint
        result["response"] = call(app, "/logged")
        result["level"] = logging.getLogger("wisptest").level
        result["early_disabled"] = early.disabled
        for h in logging.getLogger("wisptest").handlers:
            h.flush()
    ''')
    assert res["response"] == "200 OK hello from main |/logged"
    assert res["level"] == logging.DEBUG
    assert res["early_disabled"] is False
    with open(str(tmp_path / "conf" / "app.log")) as f:
        assert "wisptest.app INFO request /logged" in f.read()


@needs_paste
def test_config_without_logging_sections_leaves_logging_alone(sandbox):
    write(sandbox / "wisp_pastefactory.py", PASTE_FACTORY_MODULE)
    write(sandbox / "app.ini", paste_ini())
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    wb.load("config:app.ini")
    assert root.handlers == handlers and root.level == level


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


@pytest.fixture
def error_modules(sandbox):
    write(sandbox / "wtm_err.py", '''
        class Holder:
            pass
        obj = Holder()
        notcallable = 42
        def fac(x):
            return x
        def boom():
            raise RuntimeError("kaboom\\nsecond line")
        def returns_none():
            return None
        def app(environ, start_response):
            start_response("200 OK", [])
            return [b""]
    ''')
    write(sandbox / "wtm_raises.py", "x = 1 / 0\n")
    write(sandbox / "wtm_imports_missing.py", "import wtm_zzz_missing\n")
    write(sandbox / "wtm_nothing.py", "value = 1\n")
    write(sandbox / "wtm_exits.py", "import sys\nsys.exit(4)\n")
    write(sandbox / "syntaxerr.py", "def broken(:\n")
    write(sandbox / "exits.py", "import sys\nsys.exit(3)\n")
    write(sandbox / "noapp.py", "x = 1\n")
    write(sandbox / "factory_raises.py", '''
        def __ExtensionFactory__():
            raise ValueError("bad config")
    ''')
    write(sandbox / "notcallable.py", "application = 'text'\n")
    os.mkdir(str(sandbox / "adir.py"))
    return sandbox


@pytest.mark.parametrize("target, expected, chained", [
    ("", "empty target", False),
    ("   ", "empty target", False),
    ("wtm_nosuchmod:app", "module 'wtm_nosuchmod' not found", True),
    ("wtm_nosuchpkg.sub", "module 'wtm_nosuchpkg.sub' not found", True),
    ("wtm_err:missing", "module 'wtm_err' has no attribute 'missing'", True),
    ("wtm_err:obj.missing", "'wtm_err:obj' (Holder) has no attribute 'missing'", True),
    ("wtm_err:notcallable", "is not callable (got 42)", False),
    ("wtm_err:returns_none()", "is not callable (got None)", False),
    ("wtm_err:notcallable()", "wtm_err:notcallable() is not callable", False),
    ("wtm_err:bad(", "'bad(' is not an attribute path or call", True),
    ("wtm_err:obj[0]", "'obj[0]' is not an attribute path or call", False),
    ("wtm_err:fac(x)", "arguments in 'fac(x)' must be literals", True),
    ("wtm_err:boom()", "wtm_err:boom() raised RuntimeError: kaboom ...", True),
    ("wtm_raises", "importing module 'wtm_raises' raised ZeroDivisionError: division by zero", True),
    ("wtm_imports_missing:app", "importing module 'wtm_imports_missing' failed: "
                                "ModuleNotFoundError: No module named 'wtm_zzz_missing'", True),
    ("wtm_exits:app", "importing module 'wtm_exits' called sys.exit(4)", True),
    ("wtm_nothing", "module 'wtm_nothing' defines none of 'application', 'app' or "
                    "'__ExtensionFactory__'", False),
    ("bad-name:app", "'bad-name' is not a valid module name", False),
    (":app", "'' is not a valid module name", False),
    ("missing.py", "file not found (", False),
    ("adir.py", "not a regular file (", False),
    ("syntaxerr.py", "raised SyntaxError: ", True),
    ("exits.py", "called sys.exit(3)", True),
    ("noapp.py", "module 'noapp' defines none of", False),
    ("factory_raises.py", "factory_raises.__ExtensionFactory__() raised ValueError: bad config", True),
    ("notcallable.py", "is not callable (got 'text')", False),
    ("config:missing.ini", "file not found (", False),
    ("config:", "no ini file given", False),
])
def test_load_errors(error_modules, target, expected, chained):
    err = load_error(target)
    assert expected in str(err)
    assert (err.__cause__ is not None) == chained, repr(err.__cause__)


def test_failed_file_is_not_left_in_sys_modules(error_modules):
    load_error("exits.py")
    load_error("syntaxerr.py")
    assert "exits" not in sys.modules and "syntaxerr" not in sys.modules


def test_load_error_pickles(error_modules):
    import pickle
    err = load_error("wtm_err:missing")
    copy = pickle.loads(pickle.dumps(err))
    assert str(copy) == str(err) and copy.target == err.target


def test_non_string_target():
    with pytest.raises(wb.LoadError) as info:
        wb.load(None)
    assert "must be a str" in str(info.value)


@needs_paste
def test_config_errors(sandbox):
    write(sandbox / "wisp_pastefactory.py", PASTE_FACTORY_MODULE)
    write(sandbox / "app.ini", paste_ini())
    err = load_error("config:app.ini#nosuch")
    assert "loadapp failed: LookupError: " in str(err)
    assert "nosuch" in str(err)
    write(sandbox / "badlog.ini", paste_ini("\n[loggers]\nkeys = root\n"))
    err = load_error("config:badlog.ini")
    assert "applying the logging configuration in %s failed" % (sandbox / "badlog.ini") in str(err)
    assert err.__cause__ is not None


# ---------------------------------------------------------------------------
# isapi_wsgi shim and dispatch
# ---------------------------------------------------------------------------


def test_isapi_wsgi_and_win32traceutil_modules():
    import isapi_wsgi
    import win32traceutil  # noqa: F401  harmless
    assert isapi_wsgi.ISAPISimpleHandler is wb.ISAPISimpleHandler
    assert isapi_wsgi.ISAPIThreadPoolHandler is wb.ISAPIThreadPoolHandler
    assert isapi_wsgi.__spec__ is not None and win32traceutil.__spec__ is not None
    assert not hasattr(sys, "isapidllhandle")
    wb.install()  # idempotent
    assert sys.modules["isapi_wsgi"] is isapi_wsgi
    assert sum(isinstance(f, wb._PasteScriptFinder) for f in sys.meta_path) == 1


DISPATCH_CASES = [
    # (SCRIPT_NAME, PATH_INFO) -> (app, SCRIPT_NAME, PATH_INFO)
    (("", "/foo"), ("foo", "/foo", "")),
    (("", "/foo/"), ("foo", "/foo", "/")),
    (("", "/foo/x/y"), ("foo", "/foo", "/x/y")),
    (("/vdir", "/foo/x"), ("foo", "/vdir/foo", "/x")),
    (("/vdir", "/foo"), ("foo", "/vdir/foo", "")),
    (("", "/foobar"), ("default", "", "/foobar")),
    (("", "/fo"), ("default", "", "/fo")),
    (("", "/bar"), ("bar", "/bar", "")),
    (("", "/bar/baz"), ("bar", "/bar", "/baz")),
    (("", "/"), ("default", "", "/")),
    (("/vdir", ""), ("default", "/vdir", "")),
    (("", "/baz/foo"), ("default", "", "/baz/foo")),
    (("", "//foo"), ("default", "", "//foo")),
]


@pytest.mark.parametrize("cls", [wb.ISAPIThreadPoolHandler, wb.ISAPISimpleHandler])
@pytest.mark.parametrize("request_, expected", DISPATCH_CASES)
def test_dispatch(cls, request_, expected):
    handler = cls(simple_app("default"), foo=simple_app("foo"), bar=simple_app("bar"))
    script_name, path = request_
    status, _, body, environ = call(handler, path, script_name)
    assert status == "200 OK"
    assert body.decode() == "%s %s|%s" % expected
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == expected[1:]


def test_dispatch_without_rootapp_gives_404():
    handler = wb.ISAPIThreadPoolHandler(foo=simple_app("foo"))
    status, headers, body, _ = call(handler, "/other")
    assert status.startswith("404")
    assert body == b"Page not found"
    assert call(handler, "/foo/1")[2] == b"foo /foo|/1"
    assert call(wb.ISAPISimpleHandler(), "/")[0].startswith("404")


def test_handler_attributes_and_validation():
    root = simple_app("root")
    h = wb.ISAPIThreadPoolHandler(root, foo=simple_app("foo"))
    assert h.rootapp is root and list(h.apps) == ["foo"]
    assert wb.ISAPIThreadPoolHandler.max_workers == 20
    assert "foo" in repr(h)
    with pytest.raises(TypeError, match="'foo' is not callable"):
        wb.ISAPIThreadPoolHandler(root, foo="nope")
    with pytest.raises(TypeError, match="rootapp is not callable"):
        wb.ISAPISimpleHandler(42)


@pytest.mark.parametrize("path, script_name", [
    ("/foo", ""), ("/foo/x", "/vdir"), ("/foobar", ""), ("/bar/", "/v"), ("/", ""),
    ("/nothing", ""),
])
@pytest.mark.parametrize("with_root", [True, False])
def test_dispatch_passes_wsgiref_validator(path, script_name, with_root):
    v = wsgiref.validate.validator
    root = v(simple_app("default")) if with_root else None
    handler = v(wb.ISAPIThreadPoolHandler(root, foo=v(simple_app("foo")),
                                          bar=v(simple_app("bar"))))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # validator problems are warnings too
        status, _, body, _ = call(handler, path, script_name)
    assert status in ("200 OK", "404 Not Found")


def test_seed_multiple_apps_script(sandbox):
    write(sandbox / "wisp_multi.py", SEED_MULTI_APPS)
    app, hint = wb.load("wisp_multi.py")
    assert hint == "threadpool"
    assert isinstance(app, wb.ISAPIThreadPoolHandler)
    results = {p: call(app, p, "/wsgi-test")[2].decode()
               for p in ("/foo", "/foo/x", "/foobar", "/bar", "/")}
    assert results == {
        "/foo": "foo /wsgi-test/foo|",
        "/foo/x": "foo /wsgi-test/foo|/x",
        "/foobar": "default /wsgi-test|/foobar",
        "/bar": "bar /wsgi-test/bar|",
        "/": "default /wsgi-test|/",
    }


def test_seed_multiple_apps_as_the_c_side_loads_it(tmp_path):
    write(tmp_path / "myapp.py", SEED_MULTI_APPS)
    res = run_isolated(tmp_path, '''
        app, hint = boot.load("myapp.py")
        result["hint"] = hint
        result["foo"] = call(app, "/foo/x", "/wsgi-test")
        result["root"] = call(app, "/", "/wsgi-test")
        result["name"] = sys.modules["myapp"].__name__
    ''')
    assert res["hint"] == "threadpool"
    assert res["foo"] == "200 OK foo /wsgi-test/foo|/x"
    assert res["root"] == "200 OK default /wsgi-test|/"
    assert res["name"] == "myapp"


# ---------------------------------------------------------------------------
# the seed single-app example (Paste Deploy + paste.script fileConfig)
# ---------------------------------------------------------------------------


def test_seed_snippet_is_verbatim():
    if not os.path.exists(SEED_DOC):
        pytest.skip("seed document not available")
    with open(SEED_DOC) as f:
        lines = f.read().splitlines()
    start = lines.index("# Enable tracing. Run 'python -m win32traceutil'")
    end = lines.index("    HandleCommandLine(params)", start)
    assert "\n".join(lines[start:end + 1]) + "\n" == SEED_SINGLE_APP


def seed_project(tmp_path, logging_sections):
    write(tmp_path / "MyApp" / "wisp_pastefactory.py", PASTE_FACTORY_MODULE)
    ini = write(tmp_path / "MyApp" / "MyApp.ini", paste_ini(logging_sections))
    write(tmp_path / "MyApp" / "myapp.py", seed_single_app(ini))
    return ini


SEED_BODY = '''
    import logging
    early = logging.getLogger("wisptest.early")
    app, hint = boot.load("MyApp/myapp.py")
    result["hint"] = hint
    result["response"] = call(app, "/hello", "/wsgi-test")
    result["level"] = logging.getLogger("wisptest").level
    import paste.script.util.logging_config as lc
    import paste.deploy
    result["lc_origin"] = lc.__spec__.origin
    result["paste_file"] = getattr(paste, "__file__", None)
    result["isapi_wsgi_origin"] = sys.modules["isapi_wsgi"].__spec__.origin
    result["has_isapidllhandle"] = hasattr(sys, "isapidllhandle")
    for h in logging.getLogger("wisptest").handlers:
        h.flush()
'''


@needs_paste
def test_seed_single_app_with_installed_pastescript(tmp_path):
    try:
        import paste.script.util.logging_config  # noqa: F401
        import six  # noqa: F401
    except ImportError:
        pytest.skip("PasteScript is not installed here")
    seed_project(tmp_path, LOGGING_SECTIONS)
    res = run_isolated(tmp_path, SEED_BODY)
    assert res["hint"] == "threadpool"
    assert res["response"] == "200 OK hello from main /wsgi-test|/hello"
    assert res["level"] == logging.DEBUG
    if hasattr(logging, "_acquireLock"):  # Python < 3.13
        assert res["lc_origin"].endswith("logging_config.py")  # the real one
    else:
        assert res["lc_origin"] == "wisp"
    assert res["isapi_wsgi_origin"] == "wisp"
    assert res["has_isapidllhandle"] is False
    assert "the __main__ block" not in res["stderr"]


@needs_paste
@pytest.mark.parametrize("namespace", [False, True], ids=["regular-paste", "namespace-paste"])
def test_seed_single_app_without_pastescript(tmp_path, namespace):
    # A site directory holding Paste Deploy but no PasteScript; -S keeps the
    # system site-packages (and Debian's PasteScript) out.  `paste` is a
    # regular package in Debian's Paste, a namespace package elsewhere.
    import paste.deploy
    site = tmp_path / "site"
    os.makedirs(str(site / "paste"))
    if not namespace:
        write(site / "paste" / "__init__.py", "")
    os.symlink(os.path.dirname(paste.deploy.__file__), str(site / "paste" / "deploy"))
    ini = seed_project(tmp_path, LOGGING_SECTIONS_HERE)
    res = run_isolated(tmp_path, SEED_BODY + '''
    try:
        import paste.script.templates
        result["templates"] = "imported"
    except ImportError as e:
        result["templates"] = "ImportError"
    ''', no_site=True, extra_path=[str(site)])
    assert res["response"] == "200 OK hello from main /wsgi-test|/hello"
    assert res["hint"] == "threadpool"
    assert res["lc_origin"] == "wisp"
    assert res["paste_file"] == (None if namespace else str(site / "paste" / "__init__.py"))
    assert res["level"] == logging.DEBUG
    assert res["templates"] == "ImportError"  # only logging_config is provided
    with open(os.path.join(os.path.dirname(ini), "app.log")) as f:
        assert "wisptest.app INFO request /hello" in f.read()


@needs_paste
def test_seed_single_app_when_pastescript_cannot_run(tmp_path):
    # Python 3.13 removed logging._acquireLock, which PasteScript 3.2 uses:
    # then wisp's fileConfig replaces the real one.
    try:
        import paste.script.util  # noqa: F401
    except ImportError:
        pytest.skip("PasteScript is not installed here")
    seed_project(tmp_path, LOGGING_SECTIONS_HERE)
    res = run_isolated(tmp_path, SEED_BODY, no_acquirelock=True)
    assert res["response"] == "200 OK hello from main /wsgi-test|/hello"
    assert res["lc_origin"] == "wisp"
    assert res["level"] == logging.DEBUG


def test_shim_fileconfig(tmp_path):
    ini = write(tmp_path / "log.ini", LOGGING_SECTIONS_HERE)
    # wisp's paste.script fileConfig is wisp_boot.fileConfig.
    res = run_isolated(tmp_path, '''
        import logging
        early = logging.getLogger("some.library")
        boot.fileConfig(%r)
        boot.fileConfig(%r)
        with open(%r) as f:
            boot.fileConfig(f)
        logging.getLogger("wisptest.x").warning("hi %%s", "there")
        result["disabled"] = early.disabled
        for h in logging.getLogger("wisptest").handlers:
            h.flush()
    ''' % (ini, write(tmp_path / "plain.ini", "[app:main]\nuse = egg:x\n"), ini))
    assert res["disabled"] is False
    with open(str(tmp_path / "app.log")) as f:
        assert "wisptest.x WARNING hi there" in f.read()


def test_paste_finder_leaves_other_names_alone():
    finder = wb._PasteScriptFinder()
    assert finder.find_spec("paste", None) is None
    assert finder.find_spec("paste.deploy", None) is None
    assert finder.find_spec("json", None) is None
    spec = finder.find_spec("paste.script", [])
    # Nothing can be found in an empty path list, so the shim package answers.
    assert spec is not None and spec.origin == "wisp" and spec.submodule_search_locations == []


# ---------------------------------------------------------------------------
# FileWrapper
# ---------------------------------------------------------------------------


def test_file_wrapper_blocks_and_close():
    data = bytes(range(256)) * 100
    f = io.BytesIO(data)
    w = wb.FileWrapper(f, 1000)
    assert w.filelike is f and w.blksize == 1000
    blocks = list(w)
    assert all(len(b) == 1000 for b in blocks[:-1]) and len(blocks) == 26
    assert b"".join(blocks) == data
    w.close()
    assert f.closed
    assert wb.FileWrapper(io.BytesIO(b"x")).blksize == 8192


def test_file_wrapper_without_close_and_with_real_file(tmp_path):
    class Reader:
        def __init__(self):
            self.chunks = [b"a", b"b", b""]

        def read(self, n):
            return self.chunks.pop(0)

    w = wb.FileWrapper(Reader())
    assert list(w) == [b"a", b"b"]
    w.close()  # no close() on the file-like object: nothing to do

    p = tmp_path / "f.bin"
    p.write_bytes(b"0123456789")
    with open(str(p), "rb") as f:
        w = wb.FileWrapper(f, 4)
        assert isinstance(w, wb.FileWrapper)
        assert w.filelike.fileno() >= 0
        assert list(w) == [b"0123", b"4567", b"89"]
        w.close()
        assert f.closed


# ---------------------------------------------------------------------------
# ErrorStream
# ---------------------------------------------------------------------------


def test_error_stream_lines(records):
    s = wb.ErrorStream()
    assert s.write("one\ntwo\n") == 8
    assert records == [(3, "one"), (3, "two")]
    s.write("par")
    s.write("tial")
    assert len(records) == 2
    s.write(" line\r\nnext")
    assert records[2:] == [(3, "partial line")]
    s.flush()
    assert records[3:] == [(3, "next")]
    s.flush()  # nothing pending
    assert len(records) == 4
    s.writelines(["a\n", "b", "c\n"])
    assert records[4:] == [(3, "a"), (3, "bc")]
    s.write("\n")
    assert records[6:] == [(3, "")]
    assert s.write("") == 0


def test_error_stream_runaway_partial_line(records):
    s = wb.ErrorStream()
    chunk = "x" * 1000
    for _ in range(s.MAX_PARTIAL // 1000 + 1):
        s.write(chunk)
    assert len(records) == 1 and len(records[0][1]) >= s.MAX_PARTIAL
    s.write("tail\n")
    assert records[1] == (3, "x" * (1000 * (s.MAX_PARTIAL // 1000 + 1) - len(records[0][1])) + "tail")


def test_error_stream_rejects_bytes():
    s = wb.ErrorStream()
    with pytest.raises(TypeError, match="must be str, not bytes"):
        s.write(b"bytes")
    with pytest.raises(TypeError):
        s.writelines([b"bytes\n"])


def test_error_stream_is_a_usable_text_stream(records):
    s = wb.ErrorStream()
    print("printed", 42, file=s)
    handler = logging.StreamHandler(s)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("wisp_boot_test.errors")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.error("via logging")
    finally:
        logger.removeHandler(handler)
    assert records == [(3, "printed 42"), (3, "ERROR via logging")]
    assert s.writable() and not s.readable() and not s.isatty()
    assert isinstance(s, io.TextIOBase)
    with pytest.raises(io.UnsupportedOperation):
        s.fileno()
    s.write("left")
    s.close()  # flushes, never closes the shared stream
    assert records[-1] == (3, "left") and not s.closed
    s.write("still works\n")
    assert records[-1] == (3, "still works")


def test_error_stream_partial_lines_are_per_thread(records):
    s = wb.ErrorStream()
    s.write("main-start ")
    t = threading.Thread(target=lambda: (s.write("other-partial"), s.write(" done\n")))
    t.start()
    t.join()
    s.write("main-end\n")
    assert records == [(3, "other-partial done"), (3, "main-start main-end")]
    s.write("dangling")
    t = threading.Thread(target=lambda: s.write("thread dangling"))
    t.start()
    t.join()
    s.flush_all()
    assert sorted(records[2:]) == [(3, "dangling"), (3, "thread dangling")]


def test_error_stream_thread_safety(records):
    s = wb.ErrorStream()
    threads, per_thread = 8, 300
    barrier = threading.Barrier(threads)

    def worker(n):
        barrier.wait()
        for i in range(per_thread):
            s.write("t%d-" % n)
            s.write("%d" % i)
            s.write("-end\nt%d-extra-%d" % (n, i))
            s.write("\n")

    ts = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(records) == threads * per_thread * 2
    pattern = re.compile(r"^t(\d+)-(\d+)-end$|^t(\d+)-extra-(\d+)$")
    seen = {}
    for level, msg in records:
        assert level == 3
        m = pattern.match(msg)
        assert m, msg
        key = (m.group(1) or m.group(3), "end" if m.group(1) else "extra")
        seen.setdefault(key, []).append(int(m.group(2) or m.group(4)))
    for n in range(threads):
        for kind in ("end", "extra"):
            assert seen[(str(n), kind)] == list(range(per_thread))


def test_error_stream_log_failures_do_not_reach_the_app(monkeypatch):
    calls = []

    def picky_log(level, msg):
        msg.encode("utf-8")  # fails on lone surrogates, like the C side
        if "\0" in msg:
            raise ValueError("embedded null character")
        calls.append(msg)

    monkeypatch.setattr(wb, "_wisp", types.SimpleNamespace(log=picky_log))
    s = wb.ErrorStream()
    s.write("bad \udcff name\n")
    s.write("nul \0 here\n")
    assert calls == ["bad \\udcff name", "nul \\x00 here"]

    def broken_log(level, msg):
        raise RuntimeError("log is gone")

    monkeypatch.setattr(wb, "_wisp", types.SimpleNamespace(log=broken_log))
    s.write("dropped quietly\n")


# ---------------------------------------------------------------------------
# input_from_fd
# ---------------------------------------------------------------------------


def test_input_from_fd():
    body = b"first line\nsecond line\n" + b"x" * 200000 + b"\nlast"
    fd, name = tempfile.mkstemp()
    try:
        os.write(fd, body)  # the fd's offset is now at the end
        f = wb.input_from_fd(fd)
        assert f.read(5) == b"first"
        assert f.readline() == b" line\n"
        assert f.readline(3) == b"sec"
        assert f.readline() == b"ond line\n"
        big = f.readline()
        assert big == b"x" * 200000 + b"\n"
        assert f.read() == b"last"
        assert f.read() == b"" and f.read(10) == b""
        f.close()
        os.fstat(fd)  # still open: Go owns it

        f = wb.input_from_fd(fd)
        assert list(f) == [b"first line\n", b"second line\n", b"x" * 200000 + b"\n", b"last"]
        f = wb.input_from_fd(fd)
        assert f.readlines(5) == [b"first line\n"]
        assert f.readlines() == [b"second line\n", b"x" * 200000 + b"\n", b"last"]
        f = wb.input_from_fd(fd)
        assert f.read() == body
        del f
        import gc
        gc.collect()
        os.fstat(fd)
    finally:
        os.close(fd)
        os.unlink(name)


# ---------------------------------------------------------------------------
# format_exception
# ---------------------------------------------------------------------------


def test_format_exception():
    def inner():
        raise ValueError("bad value")

    try:
        inner()
    except ValueError:
        text = wb.format_exception(*sys.exc_info())
    assert text.startswith("Traceback (most recent call last):")
    assert "in inner" in text and text.endswith("ValueError: bad value\n")

    try:
        inner()
    except ValueError as e:
        alone = wb.format_exception(None, e, None)  # type and traceback from the value
    assert alone.startswith("Traceback (most recent call last):")
    assert "in inner" in alone and alone.endswith("ValueError: bad value\n")

    assert wb.format_exception(KeyError, None, None) == "KeyError\n"


def test_format_exception_never_raises():
    class Unprintable(Exception):
        def __str__(self):
            raise RuntimeError("no str for you")

    text = wb.format_exception(Unprintable, Unprintable(), None)
    assert "Unprintable" in text
    for args in [(1, 2, 3), (None, None, None), (ValueError, "not an exception", "not a tb"),
                 (object, object(), None)]:
        assert isinstance(wb.format_exception(*args), str)


# ---------------------------------------------------------------------------
# the module itself
# ---------------------------------------------------------------------------


def test_source_is_python39_syntax():
    import ast
    with open(BOOT_SOURCE) as f:
        source = f.read()
    if sys.version_info >= (3, 9):
        ast.parse(source, feature_version=(3, 9))
    assert "print(" not in source


def test_boot_runs_as_the_c_side_runs_it(tmp_path):
    res = run_isolated(tmp_path, '''
        result["name"] = boot.__name__
        result["has_file"] = hasattr(boot, "__file__")
        result["classes"] = boot.FileWrapper.__module__
        result["errors"] = isinstance(boot.ErrorStream(), boot.io.TextIOBase)
    ''')
    assert res == dict(res, name="_wisp_boot", has_file=False, classes="_wisp_boot", errors=True)


def test_input_from_fd_outlives_go_descriptor():
    """An app that keeps wsgi.input past the request reads its own body even
    after Go closed (and the kernel may have reused) the original descriptor."""
    fd, name = tempfile.mkstemp()
    try:
        os.write(fd, b"body bytes")
        f = wb.input_from_fd(fd)
        os.close(fd)
        other_fd, other = tempfile.mkstemp()  # likely reuses the number
        os.write(other_fd, b"someone else's data")
        assert f.read() == b"body bytes"
        f.close()
        os.close(other_fd)
        os.unlink(other)
    finally:
        os.unlink(name)


def test_describe_load_error(tmp_path, monkeypatch):
    """A typo in a target is one line; an app that raises at import keeps its traceback."""
    try:
        wb.load("wisp_no_such_module_xyz:app")
    except wb.LoadError as e:
        msg, tb = wb.describe_load_error(type(e), e, e.__traceback__)
    assert "wisp_no_such_module_xyz" in msg and "\n" not in msg
    assert tb == ""
    (tmp_path / "boom_at_import.py").write_text("def helper():\n    raise ZeroDivisionError('boom')\nhelper()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        wb.load("boom_at_import:app")
    except wb.LoadError as e:
        msg, tb = wb.describe_load_error(type(e), e, e.__traceback__)
    assert "ZeroDivisionError" in msg and "\n" not in msg
    assert "boom_at_import.py" in tb and "helper" in tb
    msg, tb = wb.describe_load_error(ValueError, ValueError("x"), None)
    assert msg == "ValueError: x"


def test_os_exit_logs_one_line_then_exits():
    """os._exit() logs what was called and the request being served, then
    exits with the status asked for; a forked child exits without a word."""
    script = textwrap.dedent('''
        import os, sys, types
        fake = types.ModuleType("_wisp")
        fake.log = lambda level, msg, now=False: (sys.__stdout__.write("LOG %%s %%s\\n" %% (level, msg)), sys.__stdout__.flush())
        fake.current_request = lambda: "GET /boom?x=1"
        sys.modules["_wisp"] = fake
        sys.path.insert(0, %r)
        import wisp_boot
        wisp_boot.install()
        wisp_boot.install()  # twice: still one hook
        pid = os.fork()
        if pid == 0:
            os._exit(7)
        _, st = os.waitpid(pid, 0)
        print("CHILD", os.waitstatus_to_exitcode(st), flush=True)
        os._exit(5)
    ''' % HERE)
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert p.returncode == 5, p.stderr
    # (the trace's copy of the print: LOG 10)
    lines = [l for l in p.stdout.splitlines() if not l.startswith("LOG 10 ")]
    assert lines[0] == "CHILD 7"
    assert len(lines) == 2, lines
    assert lines[1].startswith("LOG 3 the app called os._exit(5) while serving GET /boom?x=1")


def test_file_wrapper_sendfile_source(tmp_path):
    """Only plain files (FileIO, BufferedReader/Random over one, subclasses
    that keep their reading methods) may go through sendfile; compressed
    files, which have a fileno() too, and readers that change the bytes are
    iterated."""
    import bz2
    import gzip
    import lzma

    p = tmp_path / "f"
    p.write_bytes(b"abc")

    class Tracked(io.BufferedReader):
        def close(self):
            super().close()

    class Rot(io.BufferedReader):
        def read(self, n=-1):
            return bytes(b ^ 1 for b in super().read(n))

    sendable = [open(p, "rb"), io.FileIO(p), Tracked(io.FileIO(p)), open(p, "r+b")]
    not_sendable = [gzip.open(tmp_path / "g", "wb"), bz2.open(tmp_path / "b", "wb"),
                    lzma.open(tmp_path / "l", "wb"), Rot(io.FileIO(p)), open(p, "r"), io.BytesIO(b"x")]
    try:
        for f in sendable:
            assert wb.FileWrapper(f).sendfile_source() is f, type(f)
        for f in not_sendable:
            assert wb.FileWrapper(f).sendfile_source() is None, type(f)
    finally:
        for f in sendable + not_sendable:
            f.close()


def test_syntax_error_shows_source_line_and_caret(error_modules):
    """A SyntaxError in the target's own file: the one-line message gains the
    file, the source line and the caret, and the text to log has them with
    the message, although no frame of the app's ran."""
    err = load_error("syntaxerr.py")
    message, tb = wb.describe_load_error(type(err), err, err.__traceback__)
    lines = message.split("\n")
    assert "raised SyntaxError: " in lines[0]
    assert any("syntaxerr.py" in line and "line 1" in line for line in lines[1:]), message
    assert any(line.strip() == "def broken(:" for line in lines[1:]), message
    assert lines[-1].strip() == "^", message
    assert "def broken(:" in tb and "^" in tb and "SyntaxError: " in tb, tb
    # other errors keep their one line
    err = load_error("wtm_raises")
    message, _ = wb.describe_load_error(type(err), err, err.__traceback__)
    assert "\n" not in message


def test_trace_stream_tees_lines():
    """sys.stdout under wisp: the original stream gets every write as it is,
    and _wisp.log gets each complete line once (level 10 for stdout), a
    partial line when its newline comes, per thread."""
    script = textwrap.dedent('''
        import sys, threading, types
        got = []
        fake = types.ModuleType("_wisp")
        fake.log = lambda level, msg, now=False: got.append((level, msg))
        fake.current_request = lambda: None
        sys.modules["_wisp"] = fake
        sys.path.insert(0, %r)
        import wisp_boot
        wisp_boot.install()
        print("hello", "world")
        sys.stdout.write("part")
        t = threading.Thread(target=lambda: print("other thread"))
        t.start(); t.join()
        sys.stdout.write("ial\\nnext\\r\\n")
        sys.stderr.write("to stderr\\n")
        assert sys.stdout.fileno() == 1 and sys.stdout.encoding
        sys.__stdout__.write("GOT %%r\\n" %% got)
    ''' % HERE)
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("hello world\npartother thread\nial\nnext\n"), p.stdout
    assert "GOT [(10, 'hello world'), (10, 'other thread'), (10, 'partial'), (10, 'next'), (11, 'to stderr')]" in p.stdout, p.stdout
    assert p.stderr == "to stderr\n"
