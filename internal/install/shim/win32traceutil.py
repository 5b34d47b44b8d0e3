"""wisp's stand-in for pywin32's win32traceutil: importing it changes
nothing. Under wisp, what an app prints reaches the server's log and
`wisp trace`, the successor of `python -m win32traceutil`."""
