"""The chat's pages: an index (JSON, for a quick check over HTTP) and the room
page, whose script opens ws://HOST/ws/chat/ROOM/."""
from django.http import JsonResponse
from django.shortcuts import render


def index(request):
    return JsonResponse({"app": "chat", "rooms": "/chat/<room>/", "path": request.path})


def room(request, room_name):
    return render(request, "chat/room.html", {"room_name": room_name})
