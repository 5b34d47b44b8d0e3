"""identity: who the worker runs as (e2e/identity_test.go).

Every path answers JSON: the pool's POOL_NAME env var, uid, gid, the
supplementary groups (os.getgroups), HOME, USER and SCRIPT_NAME.
"""
import json
import os


def application(environ, start_response):
    body = json.dumps({
        "pool": os.environ.get("POOL_NAME"),
        "uid": os.getuid(),
        "gid": os.getgid(),
        "groups": sorted(os.getgroups()),
        "home": os.environ.get("HOME"),
        "user": os.environ.get("USER"),
        "script_name": environ.get("SCRIPT_NAME"),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
