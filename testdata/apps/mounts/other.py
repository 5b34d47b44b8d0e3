"""other: an app mounted by file path; it only defines `app` (no `application`)."""
import json


def app(environ, start_response):
    data = json.dumps({
        "app": "other",
        "SCRIPT_NAME": environ.get("SCRIPT_NAME"),
        "PATH_INFO": environ.get("PATH_INFO"),
        "QUERY_STRING": environ.get("QUERY_STRING"),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]
