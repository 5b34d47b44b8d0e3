"""sysinfo: reports the interpreter the app runs in."""
import json
import os
import sys


def _try_import(name):
    try:
        mod = __import__(name)
    except ImportError as e:
        return "ImportError: %s" % e
    return getattr(mod, "VALUE", "imported")


def application(environ, start_response):
    info = {
        "version": sys.version,
        "prefix": sys.prefix,
        "base_prefix": sys.base_prefix,
        "executable": sys.executable,
        "cwd": os.getcwd(),
        "path": sys.path,
        "e2e_venv_only": _try_import("e2e_venv_only"),
        "e2e_pp_one": _try_import("e2e_pp_one"),
        "e2e_pp_two": _try_import("e2e_pp_two"),
        "flask": _try_import("flask"),
        "multithread": environ["wsgi.multithread"],
    }
    data = json.dumps(info).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]
