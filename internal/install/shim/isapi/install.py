"""wisp's stand-in for pywin32's ``isapi.install``.

An ISAPI-WSGI script ends with an install block::

    if __name__ == '__main__':
        from isapi.install import ISAPIParameters, ScriptMapParams, VirtualDirParameters, HandleCommandLine
        params = ISAPIParameters()
        vd = VirtualDirParameters(Name="wsgi-test", Description="A test application",
                                  ScriptMaps=[ScriptMapParams(Extension="*", Flags=0)],
                                  ScriptMapUpdate="replace")
        params.VirtualDirs = [vd]
        HandleCommandLine(params)

Under IIS, ``python myapp.py install --server=MySite`` made the virtual
directory. With this package on the path (``wisp pythonpath`` prints its
folder), ``HandleCommandLine`` runs ``wisp install myapp.py --server MySite``
(or ``wisp remove``), which reads these parameters and installs the script
into a running wisp. ``Name="/"`` installs at the site's root.

When wisp itself runs the block (``wisp install myapp.py``), the variable
``WISP_INSTALL_RECORD`` names a file: the parameters are written there as
JSON and nothing else happens.
"""

import json
import os
import sys

__all__ = ["ISAPIParameters", "VirtualDirParameters", "ScriptMapParams", "FilterParameters",
           "HandleCommandLine", "InstallationError", "ItemNotFound", "ConfigurationError"]


class InstallationError(Exception):
    pass


class ItemNotFound(InstallationError):
    pass


class ConfigurationError(InstallationError):
    pass


class _Params:
    """Keyword parameters, as pywin32's classes take them."""
    _defaults = {}

    def __init__(self, **kw):
        for k, v in self._defaults.items():
            setattr(self, k, list(v) if isinstance(v, list) else v)
        for k, v in kw.items():
            setattr(self, k, v)

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join("%s=%r" % kv for kv in sorted(vars(self).items())))


class ScriptMapParams(_Params):
    _defaults = {"Extension": None, "Module": None, "Flags": 5, "Verbs": "", "Path": None, "AddExtensionFile": True,
                 "AddExtensionFile_Enabled": True, "AddExtensionFile_GroupID": None,
                 "AddExtensionFile_CanDelete": True, "AddExtensionFile_Description": None}


class VirtualDirParameters(_Params):
    _defaults = {"Name": None, "Description": None, "AppProtection": None, "Headers": None, "Path": None,
                 "Type": None, "AccessExecute": None, "AccessRead": None, "AccessWrite": None,
                 "AccessScript": None, "ContentIndexed": None, "EnableDirBrowsing": None,
                 "EnableDefaultDoc": None, "DefaultDoc": None, "ScriptMaps": [], "ScriptMapUpdate": "end",
                 "Server": None}


class FilterParameters(_Params):
    _defaults = {"Name": None, "Description": None, "Path": None, "Server": None, "AddExtensionFile": True}


class ISAPIParameters(_Params):
    _defaults = {"ServerName": None, "Filters": [], "VirtualDirs": []}


def _parse(argv, default_arg):
    """The verb (install or remove) and the --server option of pywin32's
    command line; its other options are accepted and ignored."""
    verb, server, rest = None, None, list(argv[1:])
    i = 0
    while i < len(rest):
        a = rest[i]
        if a.startswith("--server="):
            server = a.split("=", 1)[1]
        elif a == "--server" and i + 1 < len(rest):
            server = rest[i + 1]
            i += 1
        elif not a.startswith("-") and verb is None:
            verb = a
        i += 1
    verb = verb or default_arg
    if verb not in ("install", "remove"):
        raise SystemExit("%s: unknown command %r: want install or remove" % (argv[0], verb))
    return verb, server


def _vdir_name(name):
    name = (name or "").strip().strip("/")
    return "/" + name if name else "/"


def _params_json(params, verb, server, script):
    vdirs = []
    for vd in getattr(params, "VirtualDirs", []) or []:
        vdirs.append({
            "name": _vdir_name(getattr(vd, "Name", None)),
            "description": getattr(vd, "Description", None) or "",
            "script_map_update": getattr(vd, "ScriptMapUpdate", None) or "",
            "server": getattr(vd, "Server", None) or "",
        })
    return {"verb": verb, "server": server or getattr(params, "ServerName", None) or "",
            "script": os.path.abspath(script), "vdirs": vdirs}


def _wisp_exe():
    exe = os.environ.get("WISP_BIN")
    if exe:
        return exe
    try:
        with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "wisp.json")) as f:
            exe = json.load(f).get("exe")
        if exe and os.access(exe, os.X_OK):
            return exe
    except (OSError, ValueError):
        pass
    return "wisp"


def HandleCommandLine(params, argv=None, conf_module_name=None, default_arg="install",
                      opt_parser=None, custom_arg_handlers=None):
    """Install (or remove) the script's virtual directories into wisp."""
    argv = list(argv if argv is not None else sys.argv)
    verb, server = _parse(argv, default_arg)
    script = conf_module_name or argv[0]
    record = os.environ.get("WISP_INSTALL_RECORD")
    if record:
        with open(record, "w") as f:
            json.dump(_params_json(params, verb, server, script), f)
        return
    cmd = [_wisp_exe(), verb, os.path.abspath(script)]
    if server:
        cmd += ["--server", server]
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(cmd[0], cmd)
    except OSError as e:
        raise SystemExit("cannot run %s: %s (set WISP_BIN to the wisp binary)" % (cmd[0], e))
