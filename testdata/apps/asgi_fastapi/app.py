"""A FastAPI app with a Pydantic model, served as `wisp run app:app` (e2e/asgi_test.go)."""
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

app = FastAPI()


class Item(BaseModel):
    name: str
    price: float
    quantity: int = 1


@app.get("/")
async def root():
    return {"hello": "fastapi"}


@app.post("/items")
async def create(item: Item):
    return {"name": item.name, "total": item.price * item.quantity}


@app.get("/stream")
async def stream():
    async def parts():
        for i in range(3):
            yield b"part %d\n" % i

    return StreamingResponse(parts(), media_type="text/plain")
