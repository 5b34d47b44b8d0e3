"""URLs of the project: / answers which project and settings serve it."""
import os

from django.http import HttpResponse
from django.urls import path


def index(request):
    return HttpResponse("hello from mysite (settings %s)\n" % os.environ.get("DJANGO_SETTINGS_MODULE"),
                        content_type="text/plain")


urlpatterns = [path("", index)]
