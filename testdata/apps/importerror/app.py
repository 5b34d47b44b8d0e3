"""importerror: raises while being imported."""
raise RuntimeError("e2e-import-time-failure")


def application(environ, start_response):  # never reached
    start_response("200 OK", [])
    return [b""]
