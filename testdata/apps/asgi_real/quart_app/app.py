"""A Quart app as a user writes it for `uvicorn app:app` (or hypercorn), run
unchanged with `wisp run app:app` (e2e/asgi_apps_test.go TestRealQuart).

A route, JSON in and out, a before_serving hook, and a websocket route that
echoes.
"""
from quart import Quart, jsonify, request, websocket

app = Quart(__name__)


@app.before_serving
async def ready():
    app.config["GREETING"] = "hello from before_serving"


@app.route("/")
async def index():
    return "Hello, Quart!"


@app.route("/greet/<name>")
async def greet(name):
    return jsonify(greeting=app.config.get("GREETING"), name=name)


@app.route("/sum", methods=["POST"])
async def total():
    data = await request.get_json()
    if not isinstance(data, dict) or not isinstance(data.get("numbers"), list):
        return jsonify(error="want {\"numbers\": [...]}"), 400
    return jsonify(sum=sum(data["numbers"]), count=len(data["numbers"]))


@app.websocket("/ws")
async def echo():
    while True:
        data = await websocket.receive()
        await websocket.send(f"quart echo: {data}")
