"""A small Flask app, served by its own pool in examples/pools/wisp.toml."""
import os

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/")
def index():
    return jsonify(app="flask", pid=os.getpid(), mode=os.environ.get("APP_MODE"),
                   script_name=request.script_root, path=request.path)
