# The Paste Deploy example of "Understanding ISAPI WSGI", as written for IIS,
# with only the configuration file's path changed (C:\MyApp\MyApp.ini there).
# webob_app (testdata/apps/pastedeploy) must be importable: --pythonpath.
import os
import sys

# Enable tracing. Run 'python -m win32traceutil'
if hasattr(sys, "isapidllhandle"): 
    import win32traceutil

# The entry point for the ISAPI extension.
def __ExtensionFactory__():
    from paste.deploy import loadapp
    from paste.script.util.logging_config import fileConfig

    configfile=os.path.join(os.path.dirname(os.path.abspath(__file__)), "MyApp.ini")
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
