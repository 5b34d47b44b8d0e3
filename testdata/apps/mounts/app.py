"""mounts: the root app; mountapps.py and other.py hold the mounted ones."""
import json


def reporter(name):
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


application = reporter("root")
