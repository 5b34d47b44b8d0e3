# An ISAPI-WSGI script as written for IIS (see "Understanding ISAPI WSGI"):
# one default app and two sub-apps, foo and bar, returned by
# __ExtensionFactory__ through isapi_wsgi.ISAPIThreadPoolHandler. The tracing
# line and the isapi.install block are kept exactly as they were for IIS.
import json
import sys

# Enable tracing. Run 'python -m win32traceutil'
if hasattr(sys, "isapidllhandle"): 
    import win32traceutil


def _reporter(name):
    def app(environ, start_response):
        data = json.dumps({
            "app": name,
            "SCRIPT_NAME": environ.get("SCRIPT_NAME"),
            "PATH_INFO": environ.get("PATH_INFO"),
            "QUERY_STRING": environ.get("QUERY_STRING"),
            "multithread": environ.get("wsgi.multithread"),
        }).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]
    return app


default_app = _reporter("default")
foo_app = _reporter("foo")
bar_app = _reporter("bar")


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
