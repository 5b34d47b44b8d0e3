"""The chat's pages: an index (JSON, for a quick check over HTTP), the room
page, whose script opens ws://HOST/ws/chat/ROOM/, an async view (Django runs
it on the event loop under ASGI) and an upload that Django reads through its
ASGI handler."""
import asyncio
import hashlib

from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


def index(request):
    return JsonResponse({"app": "chat", "rooms": "/chat/<room>/", "path": request.path})


def room(request, room_name):
    return render(request, "chat/room.html", {"room_name": room_name})


async def ping(request):
    await asyncio.sleep(0.01)
    return JsonResponse({"pong": True, "loop_running": asyncio.get_running_loop().is_running()})


@csrf_exempt
@require_POST
def upload(request):
    body = request.body
    return JsonResponse({"size": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                         "content_type": request.content_type})
