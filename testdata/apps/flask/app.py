"""flask: a small Flask app (Debian's python3-flask)."""
import hashlib

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/hello")
def hello():
    return "Hello, %s!" % request.args.get("name", "world")


@app.post("/form")
def form():
    return jsonify(name=request.form.get("name"), tags=request.form.getlist("tag"))


@app.post("/json")
def json_echo():
    data = request.get_json()
    return jsonify(sum=sum(data["numbers"]), echo=data)


@app.post("/upload")
def upload():
    f = request.files["file"]
    content = f.read()
    return jsonify(filename=f.filename, len=len(content), sha256=hashlib.sha256(content).hexdigest())


@app.get("/env")
def env():
    return jsonify(script_name=request.environ.get("SCRIPT_NAME"), path=request.path,
                   url=request.url, remote_addr=request.remote_addr)


application = app
