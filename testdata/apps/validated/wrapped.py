"""wrapped: other test apps, each wrapped in wsgiref.validate.validator.

Mount them with e.g. --mount /environ=wrapped:environ_app. Any PEP 3333
violation by the server (environ, wsgi.input/errors, start_response, write,
close) raises AssertionError inside the validator (a 500), or is printed to
stderr ("Iterator garbage collected without being closed").
"""
import importlib.util
import os
import sys
import warnings
from wsgiref.validate import validator

HERE = os.path.dirname(os.path.abspath(__file__))

# Make every validator warning visible, every time.
warnings.simplefilter("always")

# Proves to the test that sys.stderr (where the validator complains) is logged.
sys.stderr.write("e2e-validated-stderr-canary\n")
sys.stderr.flush()


def _load(case):
    path = os.path.join(HERE, "..", case, "app.py")
    spec = importlib.util.spec_from_file_location("e2e_validated_" + case, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.application


environ_app = validator(_load("environ"))
input_app = validator(_load("input"))
write_app = validator(_load("write"))
close_app = validator(_load("close"))
filewrap_app = validator(_load("filewrap"))
upload_app = validator(_load("upload"))
errors_app = validator(_load("errors"))
excinfo_app = validator(_load("excinfo"))


def _hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "6")])
    return [b"hello\n"]


application = validator(_hello)
