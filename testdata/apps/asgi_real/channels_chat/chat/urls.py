from django.urls import path

from . import views

urlpatterns = [
    path("", views.index, name="index"),
    path("ping/", views.ping, name="ping"),
    path("upload/", views.upload, name="upload"),
    path("<str:room_name>/", views.room, name="room"),
]
