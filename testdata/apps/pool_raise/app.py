"""pool_raise: raises while being imported (rapid-fail tests)."""
raise RuntimeError("e2e-pool-import-failure")


def application(environ, start_response):  # never reached
    start_response("200 OK", [])
    return [b""]
