"""A FastAPI service as a user writes it for `uvicorn app:app`, run unchanged
with `wisp run app:app` (e2e/asgi_apps_test.go TestRealFastAPI*).

A Pydantic model validates POSTed JSON (422 with FastAPI's error body), a
path and a query parameter, a streamed response, a startup handler that sets
the app's state, and a WebSocket route that echoes with its path parameter
and closes with a code of its own.
"""
import asyncio
import os

from fastapi import FastAPI, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

app = FastAPI(title="inventory")


class Item(BaseModel):
    name: str = Field(min_length=1)
    price: float = Field(gt=0)
    quantity: int = 1
    tags: list[str] = []


@app.on_event("startup")
async def startup():
    app.state.started_pid = os.getpid()
    app.state.items = {}


@app.get("/")
async def root():
    return {"service": "inventory", "pid": app.state.started_pid}


@app.post("/items", status_code=201)
async def create_item(item: Item):
    item_id = len(app.state.items) + 1
    app.state.items[item_id] = item
    return {"id": item_id, "name": item.name, "total": item.price * item.quantity, "tags": item.tags}


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = Query(default=None, max_length=20)):
    return {"item_id": item_id, "q": q}


@app.get("/count")
async def count(n: int = 3):
    async def numbers():
        for i in range(n):
            yield f"line {i}\n"
            await asyncio.sleep(0.05)

    return StreamingResponse(numbers(), media_type="text/plain", headers={"X-Lines": str(n)})


@app.websocket("/ws/{room}")
async def room_socket(websocket: WebSocket, room: str):
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            if text == "bye":
                await websocket.close(code=4001, reason=f"bye from {room}")
                return
            await websocket.send_text(f"{room}: {text}")
    except WebSocketDisconnect:
        pass
