"""pool_exit: kills its process while being imported (rapid-fail tests)."""
import os

os._exit(3)


def application(environ, start_response):  # never reached
    start_response("200 OK", [])
    return [b""]
