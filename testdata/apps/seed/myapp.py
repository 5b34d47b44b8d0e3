# Enable tracing. Run 'python -m win32traceutil'
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
