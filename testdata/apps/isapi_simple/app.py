# An ISAPI-WSGI script using the single-threaded ISAPISimpleHandler.
import json
import sys

if hasattr(sys, "isapidllhandle"):
    import win32traceutil


def demo_app(environ, start_response):
    data = json.dumps({"app": "simple", "PATH_INFO": environ.get("PATH_INFO"),
                       "SCRIPT_NAME": environ.get("SCRIPT_NAME"),
                       "multithread": environ.get("wsgi.multithread")}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


import isapi_wsgi


# The entry points for the ISAPI extension.
def __ExtensionFactory__():
    return isapi_wsgi.ISAPISimpleHandler(demo_app)


if __name__ == '__main__':
    # If run from the command-line, install ourselves.
    from isapi.install import *
    params = ISAPIParameters()
    sm = [
        ScriptMapParams(Extension="*", Flags=0)
    ]
    vd = VirtualDirParameters(Name="isapi-wsgi-demo",
                              Description="ISAPI-WSGI ISAPISimpleHandler Demo",
                              ScriptMaps=sm,
                              ScriptMapUpdate="replace"
                              )
    params.VirtualDirs = [vd]
    HandleCommandLine(params)
