"""wisp's shim folder (``wisp pythonpath``) for running ISAPI-WSGI scripts
with a plain ``python3 myapp.py install``: the ISAPI-WSGI example script uses
``sys`` without importing it (IIS's Python had it at hand), so it is made a
builtin here, as wisp itself pre-binds it when it loads such a script."""
import builtins
import sys

if not hasattr(builtins, "sys"):
    builtins.sys = sys

# the sitecustomize this one shadows (Debian has one) still runs
import os as _os

_here = _os.path.dirname(_os.path.abspath(__file__))
for _d in sys.path:
    _p = _os.path.join(_d or ".", "sitecustomize.py")
    if _os.path.abspath(_d or ".") != _here and _os.path.isfile(_p):
        try:
            with open(_p) as _f:
                exec(compile(_f.read(), _p, "exec"), {"__name__": "sitecustomize", "__file__": _p})
        except Exception:
            pass
        break
