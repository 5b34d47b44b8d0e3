"""osenv: reports the process environment the app sees, as JSON:
{"environ": {...os.environ...}, "subprocess": {...what /usr/bin/env prints...},
 "proc": {...what /proc/self/environ holds: the environment the process was started with...}}.
"""
import json
import os
import subprocess


def application(environ, start_response):
    out = subprocess.run(["/usr/bin/env"], capture_output=True, check=True).stdout.decode("latin-1")
    sub = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    with open("/proc/self/environ", "rb") as f:
        proc = dict(kv.split("=", 1) for kv in f.read().decode("latin-1").split("\0") if "=" in kv)
    body = json.dumps({"environ": dict(os.environ), "subprocess": sub, "proc": proc}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
