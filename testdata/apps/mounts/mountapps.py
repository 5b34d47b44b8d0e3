"""mountapps: apps mounted as module:callable (--pythonpath to this folder)."""
import json


def _reporter(name):
    def app(environ, start_response):
        data = json.dumps({
            "app": name,
            "SCRIPT_NAME": environ.get("SCRIPT_NAME"),
            "PATH_INFO": environ.get("PATH_INFO"),
            "QUERY_STRING": environ.get("QUERY_STRING"),
        }).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]
    return app


foo_app = _reporter("foo")
foobar_app = _reporter("foo/bar")
